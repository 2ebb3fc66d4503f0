package bmc_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// TestBackendJSON: stored nodes keep the flat backend keys of old, in
// their old order, and a backend this program does not know keeps its
// settings through a read and a write.
func TestBackendJSON(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  bmc.Backend
		write string // what it is written back as
	}{
		{"sim", `{"type":"sim","soft_off_delay":1000000000}`, bmc.Backend{Type: "sim", Config: bmc.SimConfig{SoftOffDelay: time.Second}}, `{"type":"sim","soft_off_delay":1000000000}`},
		{"sim defaulted later", `{"type":"sim"}`, bmc.Backend{Type: "sim", Config: bmc.SimConfig{}}, `{"type":"sim"}`},
		{"no type reads as sim settings", `{"soft_off_delay":5}`, bmc.Backend{Config: bmc.SimConfig{SoftOffDelay: 5}}, `{"type":"","soft_off_delay":5}`},
		{"sim node vbmc add stored with a domain", `{"type":"sim","soft_off_delay":1000000000,"domain":"a"}`, bmc.Backend{Type: "sim", Config: bmc.SimConfig{SoftOffDelay: time.Second}}, `{"type":"sim","soft_off_delay":1000000000}`},
		{"unknown keys ignored as ever", `{"type":"sim","colour":"blue"}`, bmc.Backend{Type: "sim", Config: bmc.SimConfig{}}, `{"type":"sim"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bmc.Backend
			if err := json.Unmarshal([]byte(tc.in), &b); err != nil {
				t.Fatal(err)
			}
			if b != tc.want {
				t.Errorf("read %+v, want %+v", b, tc.want)
			}
			raw, err := json.Marshal(b)
			if err != nil || string(raw) != tc.write {
				t.Errorf("written as %s (%v), want %s", raw, err, tc.write)
			}
		})
	}

	const other = `{"type":"vmware","host":"esx1","port":443}`
	var b bmc.Backend
	if err := json.Unmarshal([]byte(other), &b); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	_ = json.Unmarshal(raw, &got)
	_ = json.Unmarshal([]byte(other), &want)
	if len(got) != 3 || got["host"] != want["host"] || got["port"] != want["port"] || got["type"] != "vmware" {
		t.Errorf("unknown backend written back as %s, want %s", raw, other)
	}
}

func TestStoredNodeFormat(t *testing.T) {
	n := validNode("n", 623)
	raw, err := json.Marshal(bmc.StoredNode{Node: n, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"node":{"name":"n","address":"127.0.0.1","port":623,"users":[{"name":"admin","password":"password","privilege":"administrator"}],"identity":{},"backend":{"type":"sim","soft_off_delay":1000000000}},"active":true}`
	if string(raw) != want {
		t.Errorf("stored as\n%s\nwant\n%s", raw, want)
	}
}

func TestRegisterBackendRefusesDuplicates(t *testing.T) {
	if !slices.Contains(bmc.BackendTypes(), bmc.BackendSim) {
		t.Fatalf("BackendTypes() = %v, want sim among them", bmc.BackendTypes())
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "twice") {
			t.Errorf("a second registration of sim: panic %v, want one saying registered twice", r)
		}
	}()
	bmc.RegisterBackend(bmc.BackendSpec[bmc.SimConfig]{Name: bmc.BackendSim, New: func(*slog.Logger) bmc.Driver { return nil }})
}

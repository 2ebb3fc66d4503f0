package main

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/redfish"
)

// shown is `vbmc show NAME -f json` (a Property/Value list, as
// VirtualBMC's) as a map.
func (e *env) shown(name string) map[string]any {
	e.t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal([]byte(e.vbmc("show", name, "-f", "json")), &rows); err != nil {
		e.t.Fatal(err)
	}
	props := map[string]any{}
	for _, r := range rows {
		props[fmt.Sprint(r["Property"])] = r["Value"]
	}
	return props
}

// TestShowGivesTheRedfishURL: with Redfish on, `vbmc show` has a
// redfish_url row, the node's System by machine UUID, which curl reads;
// with Redfish off there is no such row.
func TestShowGivesTheRedfishURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e := newEnv(t)
	e.startDaemon("--redfish-address", addr) // detached: the flag must reach the child
	e.vbmc("add", "n1", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(freePort(t)))
	e.vbmc("start", "n1")
	want := "https://" + addr + "/redfish/v1/Systems/" + bmc.DeriveUUID("n1").String()
	if got := e.shown("n1")["redfish_url"]; got != want {
		t.Fatalf("redfish_url = %v, want %s", got, want)
	}
	if table := e.vbmc("show", "n1"); !strings.Contains(table, "| redfish_url           | "+want) {
		t.Errorf("the table has no redfish_url row:\n%s", table)
	}
	if sh := e.vbmc("show", "n1", "-f", "shell"); !strings.Contains(sh, `redfish_url="`+want+`"`) {
		t.Errorf("-f shell:\n%s", sh)
	}
	out, err := testtool.Run(t, 30*time.Second, "curl", "-sS", "--fail", "--cacert", filepath.Join(e.dir, redfish.SelfSignedCertName), "-u", "admin:password", want)
	if err != nil || !strings.Contains(out, `"Id":"`+bmc.DeriveUUID("n1").String()+`"`) {
		t.Fatalf("curl %s: %v\n%s", want, err, out)
	}
	// A stopped node keeps its URL.
	e.vbmc("stop", "n1")
	if got := e.shown("n1")["redfish_url"]; got != want {
		t.Errorf("stopped: redfish_url = %v, want %s", got, want)
	}

	off := newEnv(t)
	off.startDaemon()
	off.vbmc("add", "n1", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(freePort(t)))
	props := off.shown("n1")
	if _, ok := props["redfish_url"]; ok || props["domain_name"] != "n1" {
		t.Errorf("Redfish off: show gives %v", props)
	}
}

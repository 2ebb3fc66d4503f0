package ipmi

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/govbmc/govbmc/bmc"
)

// TestSDRRepositoryIsSharedAndReadAsACopy: nodes whose machines report the
// same sensors share one SDR repository, and a record read from it is a
// copy: changing it changes no node's repository.
func TestSDRRepositoryIsSharedAndReadAsACopy(t *testing.T) {
	var repos []*sensors
	for i := range 2 {
		m, err := bmc.NewSimMachine(bmc.Node{Name: fmt.Sprint("sdr", i), Backend: bmc.Backend{Type: bmc.BackendSim}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		repos = append(repos, newSensors(m))
	}
	if repos[0].sdrRepo != repos[1].sdrRepo {
		t.Fatal("two simulated machines have an SDR repository each, want one shared")
	}
	if repos[0] == repos[1] {
		t.Fatal("two nodes share their readings, want them their own")
	}
	ctx := context.Background()
	ids, err := sdrStore{repos[0]}.RecordIDs(ctx)
	if err != nil || len(ids) == 0 {
		t.Fatalf("record IDs %v, %v", ids, err)
	}
	first, err := sdrStore{repos[0]}.Read(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(first)
	for i := range first {
		first[i] = 0xEE
	}
	again, err := sdrStore{repos[1]}.Read(ctx, ids[0])
	if err != nil || !bytes.Equal(again, want) {
		t.Fatalf("the other node's record after a reader changed its copy: % x, %v; want % x", again, err, want)
	}
}

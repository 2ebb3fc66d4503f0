package redfish

import (
	"context"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// TestReadCacheForgetsUnusedMachines: answers of machines nobody reads any
// more (a node restarted with a new machine, or deleted) go once they have
// been unused for cacheIdle and the cache has grown, while those in use
// stay; the cache stays within twice the machines read lately.
func TestReadCacheForgetsUnusedMachines(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	c := newReadCache(time.Second, time.Second)
	c.now = func() time.Time { return now }
	machines := func(n int) []bmc.Machine {
		out := make([]bmc.Machine, n)
		for i := range out {
			m, err := bmc.NewSimMachine(bmc.Node{Name: "cache"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close() })
			out[i] = m
		}
		return out
	}
	read := func(m bmc.Machine) {
		if _, err := c.get(context.Background(), m, "boot", func(context.Context) (any, error) { return 1, nil }); err != nil {
			t.Fatal(err)
		}
	}
	kept, gone := machines(10), machines(200)
	for _, m := range append(append([]bmc.Machine(nil), kept...), gone...) {
		read(m)
	}
	if len(c.entries) != 210 {
		t.Fatalf("%d entries after 210 machines read once: answers were dropped while fresh", len(c.entries))
	}
	now = now.Add(cacheIdle / 2)
	for _, m := range kept {
		read(m)
	}
	now = now.Add(cacheIdle/2 + time.Second)
	// New machines (the restarted nodes') fill the cache up to its next
	// sweep, which drops the 200 unused for longer than cacheIdle.
	for _, m := range machines(300) {
		read(m)
	}
	for _, m := range gone {
		if _, ok := c.entries[cacheKey{m, "boot"}]; ok {
			t.Fatalf("an answer unused for %v is still kept (%d entries)", cacheIdle+time.Second, len(c.entries))
		}
	}
	for _, m := range kept {
		if _, ok := c.entries[cacheKey{m, "boot"}]; !ok {
			t.Fatal("an answer in use was dropped")
		}
	}
	if len(c.entries) > 2*310 {
		t.Fatalf("%d entries for 310 machines in use", len(c.entries))
	}
}

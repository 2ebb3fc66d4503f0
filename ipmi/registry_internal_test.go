package ipmi

import (
	"context"
	"testing"

	"github.com/govbmc/govbmc/bmc"
)

func registeredNodes() int {
	n := 0
	nodes.Range(func(any, any) bool { n++; return true })
	return n
}

// TestClosedServerLeavesSharedRegistry: a node's entry in the shared handler
// registry goes with its server, so a daemon that adds and deletes BMCs for
// months does not grow.
func TestClosedServerLeavesSharedRegistry(t *testing.T) {
	before := registeredNodes()
	for i := range 50 {
		node := bmc.Node{Name: "reg", Address: "127.0.0.1", Users: []bmc.User{{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}},
			Backend: bmc.Backend{Type: bmc.BackendSim}}
		m, err := bmc.NewSimMachine(node)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(node, m, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := registeredNodes(); got != before+1 {
			t.Fatalf("round %d: %d nodes registered, want %d", i, got, before+1)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		_ = m.Close()
	}
	if got := registeredNodes(); got != before {
		t.Fatalf("%d nodes registered after every server closed, want %d", got, before)
	}
}

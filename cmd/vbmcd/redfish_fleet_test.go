package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

type idleFrontend struct{ done chan struct{} }

func (f *idleFrontend) Serve(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-f.done:
	}
	return nil
}
func (f *idleFrontend) Close() error { close(f.done); return nil }

// unreachable is a machine whose hypervisor does not answer.
type unreachable struct {
	*bmc.SimMachine
	asked atomic.Int32
}

func (u *unreachable) UUID(ctx context.Context) (bmc.UUID, error) {
	u.asked.Add(1)
	<-ctx.Done()
	return bmc.UUID{}, errors.New("hypervisor unreachable")
}

func TestManagerFleet(t *testing.T) {
	var down *unreachable
	machines := func(_ context.Context, n bmc.Node) (bmc.Machine, error) {
		sim, err := bmc.NewSimMachine(n)
		if err != nil {
			return nil, err
		}
		if n.Name == "down" {
			down = &unreachable{SimMachine: sim}
			return down, nil
		}
		return sim, nil
	}
	frontends := func(bmc.Node, bmc.Machine) (bmc.Frontend, error) {
		return &idleFrontend{done: make(chan struct{})}, nil
	}
	mgr := bmc.NewManager(machines, frontends, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = mgr.Close() })
	user := bmc.User{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}
	for i, name := range []string{"a", "b", "down", "stopped"} {
		n := bmc.Node{Name: name, Address: "127.0.0.1", Port: 7000 + i, Users: []bmc.User{user}}
		n.ApplyDefaults()
		if err := mgr.Add(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		if name != "stopped" {
			if err := mgr.Start(context.Background(), name); err != nil {
				t.Fatal(err)
			}
		}
	}
	f := newManagerFleet(mgr)
	clock := &testClock{t: time.Now()}
	f.now = clock.Now
	start := time.Now()
	systems := f.Systems()
	if took := time.Since(start); took > uuidBudget+time.Second {
		t.Fatalf("first snapshot took %v", took)
	}
	if len(systems) != 3 || systems[0].Name != "a" || systems[1].Name != "b" || systems[2].Name != "down" {
		t.Fatalf("systems %+v", systems)
	}
	if systems[0].ID != bmc.DeriveUUID("a").String() || systems[0].Users[0].Name != "admin" || systems[0].IPMIPort != 7000 {
		t.Fatalf("system a: %+v", systems[0])
	}
	if systems[2].ID != "down" {
		t.Fatalf("a machine without a UUID goes by its name, got %q", systems[2].ID)
	}
	for _, id := range []string{"a", bmc.DeriveUUID("a").String(), "down"} {
		if s, ok := f.System(id); !ok || s.Machine == nil {
			t.Fatalf("System(%q) not found", id)
		}
	}
	if _, ok := f.System("stopped"); ok {
		t.Fatal("a stopped node is served")
	}
	// The unreachable machine is not asked again at every refresh, but
	// once uuidRetry has passed.
	clock.Advance(fleetTTL)
	f.Systems()
	if n := down.asked.Load(); n != 1 {
		t.Fatalf("UUID of the unreachable machine asked %d times", n)
	}
	clock.Advance(uuidRetry)
	f.Systems()
	if n := down.asked.Load(); n != 2 {
		t.Fatalf("UUID of the unreachable machine asked %d times after %v, want 2", n, uuidRetry)
	}
	// A node started later is found at once, by name and by UUID.
	if err := mgr.Start(context.Background(), "stopped"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(fleetMissRetry)
	if _, ok := f.System(bmc.DeriveUUID("stopped").String()); !ok {
		t.Fatal("a node started later is not found")
	}
	// A stopped node disappears.
	if err := mgr.Stop("b"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(fleetMissRetry)
	if _, ok := f.System("nonexistent"); ok {
		t.Fatal("found a node that does not exist")
	}
	if _, ok := f.System("b"); ok {
		t.Fatal("a stopped node is still served")
	}
}

// testClock is a clock that moves only when the test says.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// Now tells the clock's time.
func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
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

// counted is a machine that counts how often its UUID is asked.
type counted struct {
	*bmc.SimMachine
	asked atomic.Int32
}

func (c *counted) UUID(ctx context.Context) (bmc.UUID, error) {
	c.asked.Add(1)
	return c.SimMachine.UUID(ctx)
}

func TestManagerFleet(t *testing.T) {
	f := newManagerFleet()
	var down *unreachable
	var machines []*counted
	newMachine := func(_ context.Context, n bmc.Node) (bmc.Machine, error) {
		sim, err := bmc.NewSimMachine(n)
		if err != nil {
			return nil, err
		}
		if n.Name == "down" {
			down = &unreachable{SimMachine: sim}
			return down, nil
		}
		c := &counted{SimMachine: sim}
		machines = append(machines, c)
		return c, nil
	}
	asked := func() (n int32) {
		for _, m := range machines {
			n += m.asked.Load()
		}
		return n
	}
	frontends := func(n bmc.Node, m bmc.Machine) (bmc.Frontend, error) {
		f.Started(n.Name, m)
		return &idleFrontend{done: make(chan struct{})}, nil
	}
	mgr := bmc.NewManager(newMachine, frontends, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.mgr = mgr
	mgr.OnDelete(f.Deleted)
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
	uuid := func(name string) string { return bmc.DeriveUUID(name).String() }
	f.mu.Lock()
	records := len(f.nodes)
	f.mu.Unlock()
	if records != 0 || asked() != 0 {
		t.Fatalf("started and never looked up: %d records, %d UUIDs asked; want none", records, asked())
	}
	if id := f.ID(context.Background(), "stopped"); id != "stopped" {
		t.Errorf("a node never started goes by its name, got %q", id)
	}
	systems := f.Systems()
	if len(systems) != 3 || systems[0].Name != "a" || systems[1].Name != "b" || systems[2].Name != "down" {
		t.Fatalf("systems %+v", systems)
	}
	if systems[0].ID != uuid("a") || systems[0].Users[0].Name != "admin" || systems[0].IPMIPort != 7000 {
		t.Fatalf("system a: %+v", systems[0])
	}
	if systems[2].ID != "down" {
		t.Fatalf("a machine without a UUID goes by its name, got %q", systems[2].ID)
	}
	// Found by name and by UUID without asking any machine again.
	before := asked()
	for _, id := range []string{"a", uuid("a"), "b", uuid("b"), "down"} {
		if s, ok := f.System(id); !ok || s.Machine == nil || (id != "down" && s.ID != uuid(s.Name)) {
			t.Fatalf("System(%q) = %+v, %v", id, s, ok)
		}
	}
	if _, ok := f.System(uuid("nonexistent")); ok {
		t.Fatal("found a node that does not exist")
	}
	if n := asked() - before; n != 0 {
		t.Errorf("lookups asked machines their UUID %d times; the index knows them", n)
	}
	if _, ok := f.System("stopped"); ok {
		t.Fatal("a stopped node is served")
	}
	// The unreachable machine is not asked again within uuidRetry.
	f.Systems()
	f.System("down")
	if n := down.asked.Load(); n != 1 {
		t.Fatalf("UUID of the unreachable machine asked %d times", n)
	}
	// A node started later is found at once by UUID: the manager told the fleet.
	if err := mgr.Start(context.Background(), "stopped"); err != nil {
		t.Fatal(err)
	}
	if s, ok := f.System(uuid("stopped")); !ok || s.Name != "stopped" {
		t.Fatal("a node started later is not found by its UUID")
	}
	if len(f.Systems()) != 4 {
		t.Fatalf("the listing misses the node started later: %+v", f.Systems())
	}
	// A stopped node disappears at once, by name and by UUID, and keeps its UUID as its ID.
	if err := mgr.Stop("b"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b", uuid("b")} {
		if _, ok := f.System(id); ok {
			t.Fatalf("stopped node found as %q", id)
		}
	}
	if id := f.ID(context.Background(), "b"); id != uuid("b") {
		t.Errorf("a stopped node's ID is %q, want its machine's UUID", id)
	}
	// A deleted node is forgotten.
	if err := mgr.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.System(uuid("a")); ok {
		t.Fatal("a deleted node is found by its UUID")
	}
	if id := f.ID(context.Background(), "a"); id != "a" {
		t.Errorf("a deleted node's ID is %q", id)
	}
}

// flaky is a machine whose hypervisor is unreachable while fail is set.
type flaky struct {
	*bmc.SimMachine
	fail atomic.Bool
}

func (u *flaky) UUID(ctx context.Context) (bmc.UUID, error) {
	if u.fail.Load() {
		return bmc.UUID{}, errors.New("hypervisor unreachable")
	}
	return u.SimMachine.UUID(ctx)
}

// TestManagerFleetAsksAFailedUUIDAgain: a machine whose UUID could not be
// read when a client first asked for it by UUID is asked again by a later
// miss once uuidRetry has passed, and is then found by its UUID.
func TestManagerFleetAsksAFailedUUIDAgain(t *testing.T) {
	f := newManagerFleet()
	var m *flaky
	newMachine := func(_ context.Context, n bmc.Node) (bmc.Machine, error) {
		sim, err := bmc.NewSimMachine(n)
		if err != nil {
			return nil, err
		}
		m = &flaky{SimMachine: sim}
		m.fail.Store(true)
		return m, nil
	}
	frontends := func(n bmc.Node, mm bmc.Machine) (bmc.Frontend, error) {
		f.Started(n.Name, mm)
		return &idleFrontend{done: make(chan struct{})}, nil
	}
	mgr := bmc.NewManager(newMachine, frontends, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.mgr = mgr
	t.Cleanup(func() { _ = mgr.Close() })
	n := bmc.Node{Name: "x", Address: "127.0.0.1", Port: 7100, Users: []bmc.User{{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}}}
	n.ApplyDefaults()
	if err := mgr.Add(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Start(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	id := bmc.DeriveUUID("x").String()
	if _, ok := f.System(id); ok {
		t.Fatal("found by a UUID its machine could not tell")
	}
	m.fail.Store(false)
	f.mu.Lock()
	f.nodes["x"].failed = time.Now().Add(-uuidRetry - time.Second) // uuidRetry has passed
	f.mu.Unlock()
	if s, ok := f.System(id); !ok || s.Name != "x" {
		t.Fatalf("not found by its UUID once the hypervisor answers again: %+v %v", s, ok)
	}
}

package ipmi

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/govbmc/govbmc/bmc"
)

// TestIdleBMCParksAndWakes: a BMC with no session parks once quiet, stays
// awake while a session is open however quiet it is, and answers the first
// datagram after parking as before.
func TestIdleBMCParksAndWakes(t *testing.T) {
	const idle = 100 * time.Millisecond
	node := bmc.Node{Name: "parks", Address: "127.0.0.1", Users: []bmc.User{{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}},
		Backend: bmc.Backend{Type: bmc.BackendSim}}
	m, err := bmc.NewSimMachine(node)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := New(node, m, Options{IdleAfter: idle})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background()) }()
	defer func() {
		_ = s.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	waitAwake := func(want bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); s.awake.Load() != want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("awake = %v after 5 s, want %v", !want, want)
			}
		}
	}
	session := func(round int) *client.Client {
		t.Helper()
		c, err := client.NewClient("127.0.0.1", s.Addr().Port, "admin", "password")
		if err != nil {
			t.Fatal(err)
		}
		iface := client.InterfaceLanplus // RMCP+, then IPMI 1.5
		if round%2 == 1 {
			iface = client.InterfaceLan
		}
		c = c.WithInterface(iface).WithTimeout(2 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("connect: %v", err)
		}
		return c
	}
	ctx := context.Background()

	waitAwake(false) // a new BMC starts parked
	// Parked, the BMC is one goroutine, waiting: go-ipmi's loop, its
	// eviction ticker and the goroutine that ran them are gone, and so are
	// the node's handlers (made again at its next request) and the maps
	// its sessions filled, an IPMI 1.5 one's too.
	parked := runtime.NumGoroutine()
	waitParkedGoroutines := func(round int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > parked; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d goroutines after parking again, %d when parked first", round, runtime.NumGoroutine(), parked)
			}
		}
	}
	for round := range 2 {
		c := session(round)
		time.Sleep(5 * idle)
		if !s.awake.Load() {
			t.Fatalf("round %d: parked with a session open", round)
		}
		if _, err := c.GetChassisStatus(ctx); err != nil {
			t.Fatalf("round %d: chassis status after %v of quiet: %v", round, 5*idle, err)
		}
		if s.h.own.list.Load() == nil {
			t.Fatalf("round %d: awake and answering without the node's handlers", round)
		}
		if _, err := c.ChassisControl(ctx, chassis.ChassisControlPowerUp); err != nil {
			t.Fatalf("round %d: power on: %v", round, err)
		}
		s.h.peers.mu.Lock()
		peers := len(s.h.peers.addr)
		s.h.peers.mu.Unlock()
		s.h.retransmits.mu.Lock()
		controls := len(s.h.retransmits.last)
		s.h.retransmits.mu.Unlock()
		if peers == 0 || controls == 0 {
			t.Fatalf("round %d: with a session open and a power on answered, %d peers and %d controls kept, want some of each", round, peers, controls)
		}
		if err := c.Close(ctx); err != nil {
			t.Fatalf("round %d: close: %v", round, err)
		}
		waitAwake(false)
		waitParkedGoroutines(round)
		if s.h.own.list.Load() != nil {
			t.Fatalf("round %d: parked still holding the node's handlers", round)
		}
		s.h.peers.mu.Lock()
		peerMap := s.h.peers.addr
		s.h.peers.mu.Unlock()
		s.h.retransmits.mu.Lock()
		controlMap := s.h.retransmits.last
		s.h.retransmits.mu.Unlock()
		if peerMap != nil || controlMap != nil {
			t.Fatalf("round %d: parked with per-session maps: peers %v, controls %d", round, peerMap, len(controlMap))
		}
	}
}

// TestPutDelDropEmptyMaps: the per-session maps go when their last entry does.
func TestPutDelDropEmptyMaps(t *testing.T) {
	var m map[uint32]string
	put(&m, 1, "a")
	put(&m, 2, "b")
	del(&m, 1)
	if m == nil || m[2] != "b" {
		t.Fatalf("after deleting one of two: %v", m)
	}
	del(&m, 2)
	if m != nil {
		t.Fatalf("empty map kept: %v", m)
	}
	del(&m, 3) // deleting from no map is fine
}

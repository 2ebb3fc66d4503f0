package redfish_test

import (
	"context"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/redfish"
)

// busyMachine answers PowerState at once (as libvirt does from its events)
// but its other queries wait while busy is held.
type busyMachine struct {
	*bmc.SimMachine
	busy chan struct{}
}

func (b *busyMachine) wait(ctx context.Context) {
	select {
	case b.busy <- struct{}{}:
		<-b.busy
	case <-ctx.Done():
	}
}

func (b *busyMachine) BootOverride(ctx context.Context) (bmc.BootOverride, error) {
	b.wait(ctx)
	return b.SimMachine.BootOverride(ctx)
}

func (b *busyMachine) Inventory(ctx context.Context) (bmc.Inventory, error) {
	b.wait(ctx)
	return b.SimMachine.Inventory(ctx)
}

func TestGetAnswersWhileTheMachineIsBusy(t *testing.T) {
	e := newEnv(t, func(o *redfish.Options) { o.MachinePatience = 50 * time.Millisecond })
	busy := &busyMachine{SimMachine: e.a, busy: make(chan struct{}, 1)}
	e.fleet.mu.Lock()
	for i := range e.fleet.systems {
		if e.fleet.systems[i].Name == "node-a" {
			e.fleet.systems[i].Machine = busy
		}
	}
	e.fleet.mu.Unlock()
	p := "/redfish/v1/Systems/" + e.aID
	_ = e.a.SetBootOverride(context.Background(), bmc.BootOverride{Device: bmc.BootPXE, Persistent: true})
	expect(t, e.admin("GET", p, nil), 200, "idle machine")

	busy.busy <- struct{}{} // the machine is busy now (a start in progress)
	start := time.Now()
	r := e.admin("GET", p, nil)
	took := time.Since(start)
	expect(t, r, 200, "busy machine")
	if took > time.Second || r.str("Boot", "BootSourceOverrideTarget") != "Pxe" || r.json["ProcessorSummary"] == nil {
		t.Fatalf("GET of a busy machine took %v: %s", took, r.body)
	}
	// A change waits for the machine and reads it directly.
	done := make(chan resp, 1)
	go func() {
		done <- e.admin("PATCH", p, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Cd"}})
	}()
	select {
	case r := <-done:
		t.Fatalf("a PATCH did not wait for the busy machine: %d", r.status)
	case <-time.After(200 * time.Millisecond):
	}
	<-busy.busy // the machine is free again
	if r := <-done; r.status != 200 || r.str("Boot", "BootSourceOverrideTarget") != "Cd" {
		t.Fatalf("PATCH after the machine was free: %d %s", r.status, r.body)
	}
	if r := e.admin("GET", p, nil); r.str("Boot", "BootSourceOverrideTarget") != "Cd" {
		t.Fatalf("GET after the change: %s", r.body)
	}
}

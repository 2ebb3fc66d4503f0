package bmc_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/govbmc/govbmc/bmc"
)

// recorder is a Persister that records what the manager asks of it.
type recorder struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (r *recorder) Save(sn bmc.StoredNode) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "save "+sn.Node.Name+map[bool]string{true: " active", false: " inactive"}[sn.Active])
	return r.fail
}

func (r *recorder) Delete(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "delete "+name)
	return r.fail
}

func (r *recorder) took() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func simNode(name string, port int) bmc.Node {
	return bmc.Node{Name: name, Address: "127.0.0.1", Port: port, Users: []bmc.User{{Name: "admin", Password: "password"}}}
}

// TestManagerAdoptedNodeKeepsItsPersister: a node adopted from another
// tool's file is written nowhere when adopted, applied or forgotten; its
// own Persister (not the store's) gets the starts, stops and delete.
func TestManagerAdoptedNodeKeepsItsPersister(t *testing.T) {
	fx := newManager(t)
	file, adds := &recorder{}, &recorder{}
	fx.m.PersistAddsWith(adds)
	var deleted []string
	fx.m.OnDelete(func(name string) { deleted = append(deleted, name) })
	ctx := context.Background()

	if err := fx.m.Adopt(ctx, simNode("vm", 6300), true, file); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, fx.m, "vm", bmc.StatusRunning)
	if err := fx.m.Apply(ctx, simNode("vm", 6301), true); err != nil {
		t.Fatal(err)
	}
	if st := wantStatus(t, fx.m, "vm", bmc.StatusRunning); st.Node.Port != 6301 {
		t.Errorf("after Apply with a new port: port %d", st.Node.Port)
	}
	if got := fx.ffs.of("vm"); len(got) != 2 || !got[0].isClosed() {
		t.Errorf("a redefined node is restarted on its new configuration: %d listeners, the first closed %v", len(got), len(got) > 0 && got[0].isClosed())
	}
	if err := fx.m.Apply(ctx, simNode("vm", 6301), false); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, fx.m, "vm", bmc.StatusDown)
	if len(file.took()) != 0 {
		t.Errorf("adopting and applying wrote %v, want nothing: the file said it", file.took())
	}
	if err := fx.m.Start(ctx, "vm"); err != nil {
		t.Fatal(err)
	}
	if err := fx.m.Delete("vm"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"save vm active", "delete vm"}; !slices.Equal(file.took(), want) {
		t.Errorf("vbmc start and delete asked the node's file for %v, want %v", file.took(), want)
	}

	if err := fx.m.Add(ctx, simNode("added", 6302)); err != nil {
		t.Fatal(err)
	}
	if err := fx.m.Adopt(ctx, simNode("gone", 6303), false, file); err != nil {
		t.Fatal(err)
	}
	if err := fx.m.Forget("gone"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"save added inactive"}; !slices.Equal(adds.took(), want) {
		t.Errorf("Add asked PersistAddsWith's persister for %v, want %v", adds.took(), want)
	}
	if got := file.took(); len(got) != 2 {
		t.Errorf("Forget wrote to the file: %v", got)
	}
	if want := []string{"vm", "gone"}; !slices.Equal(deleted, want) {
		t.Errorf("OnDelete saw %v, want %v", deleted, want)
	}
}

// TestManagerApplyRefusesAClash: a file changed to another node's port is
// refused, naming the holder, and the node keeps its configuration.
func TestManagerApplyRefusesAClash(t *testing.T) {
	fx := newManager(t, simNode("other", 6310))
	ctx := context.Background()
	if err := fx.m.Adopt(ctx, simNode("vm", 6311), true, &recorder{}); err != nil {
		t.Fatal(err)
	}
	err := fx.m.Apply(ctx, simNode("vm", 6310), true)
	var pe *bmc.PortInUseError
	if !errors.As(err, &pe) || pe.Holder != "other" {
		t.Fatalf("Apply onto another node's port: %v, want a PortInUseError naming other", err)
	}
	if st := wantStatus(t, fx.m, "vm", bmc.StatusRunning); st.Node.Port != 6311 {
		t.Errorf("the refused node moved to port %d", st.Node.Port)
	}
	if err := fx.m.Adopt(ctx, simNode("third", 6311), true, &recorder{}); !errors.As(err, &pe) || pe.Holder != "vm" {
		t.Errorf("the old port is still held by vm: %v", err)
	}
}

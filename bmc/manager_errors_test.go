package bmc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/govbmc/govbmc/bmc"
)

// probed is a simulated machine that is a bmc.Prober.
type probed struct {
	*bmc.SimMachine
	exists error
	health atomic.Pointer[error]
}

func (p *probed) Exists(context.Context) error { return p.exists }

func (p *probed) Health() error {
	if e := p.health.Load(); e != nil {
		return *e
	}
	return nil
}

// TestManagerTypedErrors: every refusal matches its typed error with
// errors.Is and errors.As, and names what it is about.
func TestManagerTypedErrors(t *testing.T) {
	ctx := context.Background()
	squat, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	taken := squat.LocalAddr().(*net.UDPAddr).Port

	gone := errors.New("no domain")
	made := 0
	machines := func(ctx context.Context, n bmc.Node) (bmc.Machine, error) {
		made++
		sim, err := bmc.NewSimMachine(n)
		if err != nil {
			return nil, err
		}
		p := &probed{SimMachine: sim}
		if n.Name == "ghost-vm" {
			p.exists = gone
		}
		return p, nil
	}
	m := bmc.NewManager(machines, newFakeFrontends().factory, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m.UseAddChecks(bmc.AddChecks{Port: bmc.UDPPortFree, Machine: true})
	t.Cleanup(func() { _ = m.Close() })
	if err := m.Add(ctx, validNode("a", 7000)); err != nil {
		t.Fatal(err)
	}
	if made != 1 {
		t.Errorf("Add built %d machines to look at, want 1", made)
	}
	if m.Machine("a") != nil {
		t.Error("the machine Add looked at was kept")
	}
	if err := m.AddReadOnly(ctx, validNode("fleet", 7001)); err != nil {
		t.Fatal(err)
	}
	if st, err := m.Get("fleet"); err != nil || st.Status != bmc.StatusRunning || !st.ReadOnly || !st.Active {
		t.Fatalf("AddReadOnly: %+v, %v; want running, read-only, active", st, err)
	}

	ghost := validNode("ghost-vm", 7002)
	other := validNode("b", taken)
	tests := []struct {
		name   string
		do     func() error
		is     error
		holder string // for ErrPortInUse
		want   []string
	}{
		{"add duplicate", func() error { return m.Add(ctx, validNode("a", 7005)) }, bmc.ErrExists, "", []string{`"a"`, "already exists"}},
		{"add on a node's port", func() error { return m.Add(ctx, validNode("b", 7000)) }, bmc.ErrPortInUse, "a", []string{`"b"`, `"a"`, "7000"}},
		{"add on a process's port", func() error { return m.Add(ctx, other) }, bmc.ErrPortInUse, "", []string{`"b"`, "another process"}},
		{"add a missing machine", func() error { return m.Add(ctx, ghost) }, bmc.ErrMachineUnavailable, "", []string{`"ghost-vm"`, "no domain"}},
		{"start unknown", func() error { return m.Start(ctx, "nope") }, bmc.ErrNotFound, "", []string{`"nope"`}},
		{"stop unknown", func() error { return m.Stop("nope") }, bmc.ErrNotFound, "", []string{`"nope"`}},
		{"delete unknown", func() error { return m.Delete("nope") }, bmc.ErrNotFound, "", []string{`"nope"`}},
		{"get unknown", func() error { _, err := m.Get("nope"); return err }, bmc.ErrNotFound, "", []string{`"nope"`}},
		{"start read-only", func() error { return m.Start(ctx, "fleet") }, bmc.ErrReadOnly, "", []string{`"fleet"`, "read-only"}},
		{"stop read-only", func() error { return m.Stop("fleet") }, bmc.ErrReadOnly, "", []string{`"fleet"`, "read-only"}},
		{"delete read-only", func() error { return m.Delete("fleet") }, bmc.ErrReadOnly, "", []string{`"fleet"`, "read-only"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			var pe *bmc.PortInUseError
			if errors.As(err, &pe) && pe.Holder != tc.holder {
				t.Errorf("holder %q, want %q", pe.Holder, tc.holder)
			}
			var me *bmc.MachineError
			if tc.is == bmc.ErrMachineUnavailable && (!errors.As(err, &me) || !errors.Is(err, gone)) {
				t.Errorf("error %v is not a *MachineError wrapping the backend's reason", err)
			}
		})
	}
	if names := len(m.List()); names != 2 {
		t.Errorf("%d nodes after the refusals, want 2", names)
	}
	if st, _ := m.Get("fleet"); st.Status != bmc.StatusRunning {
		t.Errorf("the refused stop changed the read-only node: %s", st.Status)
	}
}

// TestManagerGetProbesOneMachine: Get reports a running node whose machine
// is unreachable in error, asking only that machine.
func TestManagerGetProbesOneMachine(t *testing.T) {
	ctx := context.Background()
	var built []*probed
	machines := func(_ context.Context, n bmc.Node) (bmc.Machine, error) {
		sim, err := bmc.NewSimMachine(n)
		p := &probed{SimMachine: sim}
		built = append(built, p)
		return p, err
	}
	m := bmc.NewManager(machines, newFakeFrontends().factory, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = m.Close() })
	for i, name := range []string{"a", "b"} {
		if err := m.Add(ctx, validNode(name, 7000+i)); err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	down := errors.New("hypervisor unreachable")
	built[1].health.Store(&down)
	if st, err := m.Get("a"); err != nil || st.Status != bmc.StatusRunning {
		t.Errorf("Get(a) = %s, %v; want running", st.Status, err)
	}
	if st, err := m.Get("b"); err != nil || st.Status != bmc.StatusError || st.Reason != down.Error() {
		t.Errorf("Get(b) = %s (%q), %v; want error with the machine's reason", st.Status, st.Reason, err)
	}
}

// TestManagerDeleteFreesPort: a deleted node's port can be taken again,
// and a node on another address of the same port was never in the way.
func TestManagerDeleteFreesPort(t *testing.T) {
	ctx := context.Background()
	fx := newManager(t, validNode("a", 7000))
	six := validNode("six", 7000)
	six.Address = "::1"
	if err := fx.m.Add(ctx, six); err != nil {
		t.Fatalf("Add on ::1 beside 127.0.0.1 on the same port: %v", err)
	}
	if err := fx.m.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if err := fx.m.Add(ctx, validNode("b", 7000)); err != nil {
		t.Fatalf("Add on the deleted node's port: %v", err)
	}
}

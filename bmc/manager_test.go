package bmc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
)

// fakeFrontend stands in for an IPMI listener: Serve blocks until Close or
// until its context ends.
type fakeFrontend struct {
	node     string
	machine  bmc.Machine
	closed   chan struct{} // closed by Close
	returned chan struct{} // closed when Serve returns
	once     sync.Once
	closes   atomic.Int32

	failNow  error // Serve returns this at once
	closeErr error // Serve returns this after Close
}

func (f *fakeFrontend) Serve(ctx context.Context) error {
	defer close(f.returned)
	if f.failNow != nil {
		return f.failNow
	}
	select {
	case <-f.closed:
		return f.closeErr
	case <-ctx.Done():
		return nil
	}
}

func (f *fakeFrontend) Close() error {
	f.closes.Add(1)
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeFrontend) isClosed() bool {
	select {
	case <-f.closed:
		return true
	default:
		return false
	}
}

// fakeFrontends is a FrontendFactory recording what it builds; bindErr and
// the serve settings let a test make a node's next frontend misbehave.
type fakeFrontends struct {
	mu       sync.Mutex
	made     []*fakeFrontend
	bindErr  map[string]error
	failNow  map[string]error
	closeErr map[string]error
}

func newFakeFrontends() *fakeFrontends {
	return &fakeFrontends{bindErr: map[string]error{}, failNow: map[string]error{}, closeErr: map[string]error{}}
}

func (ff *fakeFrontends) factory(n bmc.Node, m bmc.Machine) (bmc.Frontend, error) {
	ff.mu.Lock()
	defer ff.mu.Unlock()
	if err := ff.bindErr[n.Name]; err != nil {
		return nil, err
	}
	f := &fakeFrontend{
		node: n.Name, machine: m,
		closed: make(chan struct{}), returned: make(chan struct{}),
		failNow: ff.failNow[n.Name], closeErr: ff.closeErr[n.Name],
	}
	ff.made = append(ff.made, f)
	return f, nil
}

func (ff *fakeFrontends) set(table map[string]error, node string, err error) {
	ff.mu.Lock()
	defer ff.mu.Unlock()
	table[node] = err
}

// of returns every frontend built for a node, oldest first.
func (ff *fakeFrontends) of(node string) []*fakeFrontend {
	ff.mu.Lock()
	defer ff.mu.Unlock()
	var out []*fakeFrontend
	for _, f := range ff.made {
		if f.node == node {
			out = append(out, f)
		}
	}
	return out
}

// closeCounted is a real simulated machine that counts its Close calls.
type closeCounted struct {
	*bmc.SimMachine
	closes atomic.Int32
}

func (c *closeCounted) Close() error {
	c.closes.Add(1)
	return c.SimMachine.Close()
}

// machines is a MachineFactory over NewSimMachine recording what it builds.
type machines struct {
	mu   sync.Mutex
	made map[string][]*closeCounted
	fail map[string]error
}

func newMachines() *machines {
	return &machines{made: map[string][]*closeCounted{}, fail: map[string]error{}}
}

func (ms *machines) factory(ctx context.Context, n bmc.Node) (bmc.Machine, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if err := ms.fail[n.Name]; err != nil {
		return nil, err
	}
	sim, err := bmc.NewSimMachine(n)
	if err != nil {
		return nil, err
	}
	m := &closeCounted{SimMachine: sim}
	ms.made[n.Name] = append(ms.made[n.Name], m)
	return m, nil
}

func (ms *machines) of(node string) []*closeCounted {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]*closeCounted(nil), ms.made[node]...)
}

type managerFixture struct {
	m   *bmc.Manager
	ms  *machines
	ffs *fakeFrontends
}

func newManager(t *testing.T, nodes ...bmc.Node) *managerFixture {
	t.Helper()
	fx := &managerFixture{ms: newMachines(), ffs: newFakeFrontends()}
	fx.m = bmc.NewManager(fx.ms.factory, fx.ffs.factory, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, n := range nodes {
		if err := fx.m.Add(context.Background(), n); err != nil {
			t.Fatalf("Add(%s): %v", n.Name, err)
		}
	}
	t.Cleanup(func() { _ = fx.m.Close() })
	return fx
}

func statusOf(t *testing.T, m *bmc.Manager, name string) bmc.NodeStatus {
	t.Helper()
	for _, st := range m.List() {
		if st.Node.Name == name {
			return st
		}
	}
	t.Fatalf("node %q not in List()", name)
	return bmc.NodeStatus{}
}

func wantStatus(t *testing.T, m *bmc.Manager, name string, want bmc.Status) bmc.NodeStatus {
	t.Helper()
	st := statusOf(t, m, name)
	if st.Status != want {
		t.Fatalf("node %q is %s (reason %q), want %s", name, st.Status, st.Reason, want)
	}
	return st
}

func TestManagerAddRefuses(t *testing.T) {
	at := func(name, addr string, port int) bmc.Node {
		n := validNode(name, port)
		n.Address = addr
		return n
	}
	noUsers := at("bad", "127.0.0.1", 7001)
	noUsers.Users = nil
	suite0 := at("bad", "127.0.0.1", 7001)
	suite0.CipherSuites = []int{0}

	tests := []struct {
		name string
		node bmc.Node
		want []string // fragments the error must contain
	}{
		{"no users", noUsers, []string{`"bad"`, "users"}},
		{"cipher suite 0", suite0, []string{`"bad"`, "cipher_suites", "suite 0"}},
		{"bad address", at("bad", "nowhere", 7001), []string{`"bad"`, "address"}},
		{"port clash", at("b", "127.0.0.1", 7000), []string{`"b"`, `"a"`, "port", "7000"}},
		{"ipv6 wildcard clash", at("b", "::", 7000), []string{`"b"`, `"a"`, "port"}},
		{"ipv4 wildcard clash", at("b", "0.0.0.0", 7000), []string{`"b"`, `"a"`, "port"}},
		{"duplicate name", at("a", "127.0.0.1", 7002), []string{`"a"`, "name", "already exists"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newManager(t, at("a", "127.0.0.1", 7000))
			err := fx.m.Add(context.Background(), tc.node)
			if err == nil {
				t.Fatalf("Add(%+v) succeeded", tc.node)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Add error %q does not contain %s", err, w)
				}
			}
			list := fx.m.List()
			if len(list) != 1 || list[0].Node.Name != "a" || list[0].Node.Port != 7000 {
				t.Errorf("List() after a refused Add = %+v, want only the original a", list)
			}
		})
	}
}

func TestManagerAddAppliesDefaults(t *testing.T) {
	n := bmc.Node{Name: "plain", Address: "127.0.0.1", Port: 7000, Users: []bmc.User{{Name: "admin", Password: "pw"}}}
	fx := newManager(t, n)
	st := wantStatus(t, fx.m, "plain", bmc.StatusDown)
	if st.Node.Backend.Type != bmc.BackendSim || st.Node.Backend.Config != (bmc.SimConfig{SoftOffDelay: bmc.DefaultSoftOffDelay}) {
		t.Errorf("backend = %+v, want sim defaults", st.Node.Backend)
	}
	if st.Node.Users[0].Privilege != bmc.PrivilegeAdministrator {
		t.Errorf("privilege = %v, want administrator", st.Node.Users[0].Privilege)
	}
	// A stopped node holds its address: another node cannot take it.
	if err := fx.m.Add(context.Background(), validNode("other", 7000)); err == nil {
		t.Error("Add of a second node on a stopped node's port succeeded")
	}
}

func TestManagerStartStop(t *testing.T) {
	ctx := context.Background()
	fx := newManager(t, validNode("n", 7000))
	if m := fx.m.Machine("n"); m != nil {
		t.Fatalf("Machine() of a stopped node = %v, want nil", m)
	}

	for i := 0; i < 3; i++ {
		if err := fx.m.Start(ctx, "n"); err != nil {
			t.Fatalf("Start #%d: %v", i+1, err)
		}
	}
	wantStatus(t, fx.m, "n", bmc.StatusRunning)
	fes, sims := fx.ffs.of("n"), fx.ms.of("n")
	if len(fes) != 1 || len(sims) != 1 {
		t.Fatalf("three Starts built %d frontends and %d machines, want 1 each", len(fes), len(sims))
	}
	fe, sim := fes[0], sims[0]
	if fx.m.Machine("n") != bmc.Machine(sim) || fe.machine != bmc.Machine(sim) {
		t.Fatal("the frontend and Machine() do not share the machine the factory built")
	}
	if u, err := sim.UUID(ctx); err != nil || u != bmc.DeriveUUID("n") {
		t.Errorf("machine UUID = %v, %v; want the real sim's derived UUID", u, err)
	}
	if fe.isClosed() {
		t.Fatal("frontend closed while running")
	}

	for i := 0; i < 2; i++ {
		if err := fx.m.Stop("n"); err != nil {
			t.Fatalf("Stop #%d: %v", i+1, err)
		}
	}
	wantStatus(t, fx.m, "n", bmc.StatusDown)
	if !fe.isClosed() {
		t.Error("Stop did not close the frontend")
	}
	select {
	case <-fe.returned:
	default:
		t.Error("Stop returned before Serve did")
	}
	if n := fe.closes.Load(); n != 1 {
		t.Errorf("frontend closed %d times, want 1", n)
	}
	if n := sim.closes.Load(); n != 1 {
		t.Errorf("machine closed %d times, want 1", n)
	}
	if m := fx.m.Machine("n"); m != nil {
		t.Errorf("Machine() after Stop = %v, want nil", m)
	}

	// A stopped node starts again with a fresh machine and listener.
	if err := fx.m.Start(ctx, "n"); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	wantStatus(t, fx.m, "n", bmc.StatusRunning)
	if len(fx.ffs.of("n")) != 2 || len(fx.ms.of("n")) != 2 {
		t.Errorf("restart built %d frontends and %d machines, want 2 each", len(fx.ffs.of("n")), len(fx.ms.of("n")))
	}
}

func TestManagerConcurrentStart(t *testing.T) {
	fx := newManager(t, validNode("n", 7000))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- fx.m.Start(context.Background(), "n")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Start: %v", err)
		}
	}
	if n := len(fx.ffs.of("n")); n != 1 {
		t.Errorf("concurrent Starts built %d frontends, want 1", n)
	}
	wantStatus(t, fx.m, "n", bmc.StatusRunning)
}

func TestManagerStartContextOnlyBoundsStartup(t *testing.T) {
	fx := newManager(t, validNode("n", 7000))
	ctx, cancel := context.WithCancel(context.Background())
	if err := fx.m.Start(ctx, "n"); err != nil {
		t.Fatal(err)
	}
	cancel()
	fe := fx.ffs.of("n")[0]
	select {
	case <-fe.returned:
		t.Fatal("cancelling Start's context stopped the node from serving")
	case <-time.After(30 * time.Millisecond):
	}
	wantStatus(t, fx.m, "n", bmc.StatusRunning)
}

func TestManagerList(t *testing.T) {
	ctx := context.Background()
	fx := newManager(t, validNode("charlie", 7002), validNode("alpha", 7000), validNode("bravo", 7001), validNode("alpha-2", 7003))
	if err := fx.m.Start(ctx, "bravo"); err != nil {
		t.Fatal(err)
	}
	if err := fx.m.Start(ctx, "alpha-2"); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name   string
		status bmc.Status
		port   int
	}{
		{"alpha", bmc.StatusDown, 7000},
		{"alpha-2", bmc.StatusRunning, 7003},
		{"bravo", bmc.StatusRunning, 7001},
		{"charlie", bmc.StatusDown, 7002},
	}
	list := fx.m.List()
	if len(list) != len(want) {
		t.Fatalf("List() has %d nodes, want %d", len(list), len(want))
	}
	for i, w := range want {
		got := list[i]
		if got.Node.Name != w.name || got.Status != w.status || got.Node.Port != w.port || got.Reason != "" {
			t.Errorf("List()[%d] = {%s %s port %d reason %q}, want {%s %s port %d}", i, got.Node.Name, got.Status, got.Node.Port, got.Reason, w.name, w.status, w.port)
		}
	}
	if err := fx.m.Stop("bravo"); err != nil {
		t.Fatal(err)
	}
	if st := fx.m.List()[2]; st.Node.Name != "bravo" || st.Status != bmc.StatusDown {
		t.Errorf("after Stop, List()[2] = %s %s, want bravo down", st.Node.Name, st.Status)
	}
}

func TestManagerStartFailures(t *testing.T) {
	bindErr := errors.New("address already in use")
	hvErr := errors.New("hypervisor unreachable")
	tests := []struct {
		name       string
		breakIt    func(*managerFixture)
		fixIt      func(*managerFixture)
		wantErr    error
		wantReason []string
		machines   int // machines built by the failed Start (each must be closed)
	}{
		{
			name:       "frontend factory error",
			breakIt:    func(fx *managerFixture) { fx.ffs.set(fx.ffs.bindErr, "n", bindErr) },
			fixIt:      func(fx *managerFixture) { fx.ffs.set(fx.ffs.bindErr, "n", nil) },
			wantErr:    bindErr,
			wantReason: []string{`"n"`, "127.0.0.1:7000", "address already in use"},
			machines:   1,
		},
		{
			name:       "machine factory error",
			breakIt:    func(fx *managerFixture) { fx.ms.mu.Lock(); fx.ms.fail["n"] = hvErr; fx.ms.mu.Unlock() },
			fixIt:      func(fx *managerFixture) { fx.ms.mu.Lock(); delete(fx.ms.fail, "n"); fx.ms.mu.Unlock() },
			wantErr:    hvErr,
			wantReason: []string{`"n"`, "machine", "hypervisor unreachable"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			fx := newManager(t, validNode("n", 7000), validNode("ok", 7001))
			tc.breakIt(fx)
			err := fx.m.Start(ctx, "n")
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Start = %v, want an error wrapping %v", err, tc.wantErr)
			}
			st := wantStatus(t, fx.m, "n", bmc.StatusError)
			for _, w := range tc.wantReason {
				if !strings.Contains(st.Reason, w) {
					t.Errorf("reason %q does not contain %s", st.Reason, w)
				}
			}
			if m := fx.m.Machine("n"); m != nil {
				t.Errorf("Machine() of a failed node = %v, want nil", m)
			}
			sims := fx.ms.of("n")
			if len(sims) != tc.machines {
				t.Fatalf("failed Start built %d machines, want %d", len(sims), tc.machines)
			}
			for _, s := range sims {
				if s.closes.Load() != 1 {
					t.Errorf("failed Start left its machine open (%d closes)", s.closes.Load())
				}
			}
			// The failure is the node's own: another node starts fine.
			if err := fx.m.Start(ctx, "ok"); err != nil {
				t.Fatalf("Start(ok): %v", err)
			}
			wantStatus(t, fx.m, "ok", bmc.StatusRunning)

			// Once the cause is gone, Start recovers the node.
			tc.fixIt(fx)
			if err := fx.m.Start(ctx, "n"); err != nil {
				t.Fatalf("Start after fixing: %v", err)
			}
			if st := wantStatus(t, fx.m, "n", bmc.StatusRunning); st.Reason != "" {
				t.Errorf("running node keeps reason %q", st.Reason)
			}
		})
	}
}

func TestManagerServeFailure(t *testing.T) {
	fx := newManager(t, validNode("n", 7000))
	fx.ffs.set(fx.ffs.failNow, "n", errors.New("socket exploded"))
	if err := fx.m.Start(context.Background(), "n"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	eventually(t, "node to report its serve failure", func() bool { return statusOf(t, fx.m, "n").Status == bmc.StatusError })
	if st := statusOf(t, fx.m, "n"); !strings.Contains(st.Reason, "socket exploded") {
		t.Errorf("reason %q does not carry the serve error", st.Reason)
	}
	if err := fx.m.Stop("n"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	wantStatus(t, fx.m, "n", bmc.StatusDown)
	if s := fx.ms.of("n")[0]; s.closes.Load() != 1 {
		t.Errorf("Stop after a serve failure closed the machine %d times, want 1", s.closes.Load())
	}
}

// A listener whose Serve reports an error once closed (as net/http's does
// with ErrServerClosed) must still leave a stopped node down, not failed.
func TestManagerStopWithServeErrorOnClose(t *testing.T) {
	fx := newManager(t, validNode("n", 7000))
	fx.ffs.set(fx.ffs.closeErr, "n", errors.New("use of closed network connection"))
	if err := fx.m.Start(context.Background(), "n"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := fx.m.Stop("n"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st := statusOf(t, fx.m, "n"); st.Status != bmc.StatusDown {
		t.Fatalf("a stopped node whose Serve reports the close as an error ends %s (reason %q), want down", st.Status, st.Reason)
	}
}

// Restarting a node whose listener failed on its own must release the failed
// listener and machine, or the new listener cannot bind the same port.
func TestManagerRestartAfterServeFailureReleases(t *testing.T) {
	ctx := context.Background()
	fx := newManager(t, validNode("n", 7000))
	fx.ffs.set(fx.ffs.failNow, "n", errors.New("socket exploded"))
	if err := fx.m.Start(ctx, "n"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	eventually(t, "serve failure", func() bool { return statusOf(t, fx.m, "n").Status == bmc.StatusError })
	fx.ffs.set(fx.ffs.failNow, "n", nil)
	if err := fx.m.Start(ctx, "n"); err != nil {
		t.Fatalf("restart: %v", err)
	}
	wantStatus(t, fx.m, "n", bmc.StatusRunning)
	oldFE, oldSim := fx.ffs.of("n")[0], fx.ms.of("n")[0]
	if oldFE.closes.Load() == 0 || oldSim.closes.Load() == 0 {
		t.Fatalf("restarting after a Serve failure leaked the old listener and machine (frontend closes %d, machine closes %d)", oldFE.closes.Load(), oldSim.closes.Load())
	}
}

func TestManagerUnknownNode(t *testing.T) {
	fx := newManager(t, validNode("n", 7000))
	if err := fx.m.Start(context.Background(), "ghost"); !errors.Is(err, bmc.ErrNotFound) || !strings.Contains(err.Error(), `"ghost"`) {
		t.Errorf("Start(ghost) = %v, want ErrNotFound naming ghost", err)
	}
	if err := fx.m.Stop("ghost"); !errors.Is(err, bmc.ErrNotFound) || !strings.Contains(err.Error(), `"ghost"`) {
		t.Errorf("Stop(ghost) = %v, want ErrNotFound naming ghost", err)
	}
	if m := fx.m.Machine("ghost"); m != nil {
		t.Errorf("Machine(ghost) = %v, want nil", m)
	}
	if n := len(fx.m.List()); n != 1 {
		t.Errorf("List() has %d nodes after unknown-node calls, want 1", n)
	}
}

func TestManagerClose(t *testing.T) {
	ctx := context.Background()
	fx := newManager(t, validNode("a", 7000), validNode("b", 7001), validNode("c", 7002))
	for _, n := range []string{"a", "c"} {
		if err := fx.m.Start(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	fx.ffs.set(fx.ffs.bindErr, "b", errors.New("address already in use"))
	if err := fx.m.Start(ctx, "b"); err == nil {
		t.Fatal("Start(b) succeeded despite the bind error")
	}
	if err := fx.m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, st := range fx.m.List() {
		if st.Status != bmc.StatusDown || st.Reason != "" {
			t.Errorf("after Close node %s is %s (%q), want down", st.Node.Name, st.Status, st.Reason)
		}
	}
	for _, n := range []string{"a", "c"} {
		fe := fx.ffs.of(n)[0]
		if !fe.isClosed() {
			t.Errorf("Close left %s's frontend open", n)
		}
		if s := fx.ms.of(n)[0]; s.closes.Load() != 1 {
			t.Errorf("Close closed %s's machine %d times, want 1", n, s.closes.Load())
		}
		if fx.m.Machine(n) != nil {
			t.Errorf("Machine(%s) after Close is not nil", n)
		}
	}
	if err := fx.m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := len(fx.m.List()); n != 3 {
		t.Errorf("Close forgot nodes: %d listed, want 3", n)
	}
}

// udpFrontend is a listener bound to a real loopback UDP port, whose Close
// waits at gate (while it is not nil) and counts the closes under way.
type udpFrontend struct {
	conn    net.PacketConn
	gate    <-chan struct{}
	running *atomic.Int32
	peak    *atomic.Int32
}

func (f *udpFrontend) Serve(ctx context.Context) error {
	buf := make([]byte, 1)
	for {
		if _, _, err := f.conn.ReadFrom(buf); err != nil {
			return nil // closed
		}
	}
}

func (f *udpFrontend) Close() error {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for old := f.peak.Load(); n > old; old = f.peak.Load() {
		if f.peak.CompareAndSwap(old, n) {
			break
		}
	}
	if f.gate != nil {
		<-f.gate
	}
	return f.conn.Close()
}

// TestManagerCloseParallel: Close takes a fleet down several nodes at a
// time, never more than its worker bound, and still closes every machine
// and frees every port.
func TestManagerCloseParallel(t *testing.T) {
	ctx := context.Background()
	const nodes = 3*bmc.CloseWorkers + 5
	gate := make(chan struct{})
	var running, peak atomic.Int32
	var mu sync.Mutex
	addrs := map[string]string{}
	frontends := func(n bmc.Node, _ bmc.Machine) (bmc.Frontend, error) {
		conn, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		mu.Lock()
		addrs[n.Name] = conn.LocalAddr().String()
		mu.Unlock()
		return &udpFrontend{conn: conn, gate: gate, running: &running, peak: &peak}, nil
	}
	ms := newMachines()
	m := bmc.NewManager(ms.factory, frontends, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range nodes {
		name := fmt.Sprintf("n%03d", i)
		if err := m.Add(ctx, validNode(name, 7000+i)); err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	// A serial Close would hold one node at the gate, never two.
	testtool.Eventually(t, 10*time.Second, fmt.Sprintf("%d nodes closing at once", bmc.CloseWorkers), func() bool {
		return running.Load() == bmc.CloseWorkers
	})
	close(gate)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if p := peak.Load(); p != bmc.CloseWorkers {
		t.Errorf("%d nodes closed at once, want at most %d", p, bmc.CloseWorkers)
	}
	for i := range nodes {
		name := fmt.Sprintf("n%03d", i)
		if st := statusOf(t, m, name); st.Status != bmc.StatusDown {
			t.Errorf("after Close %s is %s", name, st.Status)
		}
		if s := ms.of(name); len(s) != 1 || s[0].closes.Load() != 1 {
			t.Errorf("Close closed %s's machine %d times, want 1", name, s[0].closes.Load())
		}
		// Its port is free again: a new listener can bind it.
		conn, err := net.ListenPacket("udp", addrs[name])
		if err != nil {
			t.Errorf("%s's port after Close: %v", name, err)
			continue
		}
		conn.Close()
	}
}

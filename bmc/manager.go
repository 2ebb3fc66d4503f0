package bmc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"
)

// Frontend is a node's running management endpoint (its IPMI listener).
type Frontend interface {
	// Serve answers requests until ctx ends or Close is called.
	Serve(ctx context.Context) error
	// Close stops serving and releases the listener.
	Close() error
}

// MachineFactory builds the machine a node manages from its backend settings.
type MachineFactory func(ctx context.Context, n Node) (Machine, error)

// FrontendFactory binds a node's listener in front of its machine.
type FrontendFactory func(n Node, m Machine) (Frontend, error)

// Status is the state of a node in the manager.
type Status string

// The states a node can be in.
const (
	StatusRunning Status = "running"
	StatusDown    Status = "down"
	StatusError   Status = "error"
)

// NodeStatus is a node's configuration and its current state.
type NodeStatus struct {
	Node   Node
	Status Status
	// Reason explains StatusError (bind failure, unreachable hypervisor…).
	Reason string
	// Active is whether the node was started (and comes back after a restart).
	Active bool
	// ReadOnly nodes come from a fleet file and cannot be changed at run time.
	ReadOnly bool
}

type managedNode struct {
	node     Node
	status   Status
	reason   string
	active   bool
	readOnly bool
	// persist keeps the node between daemon runs: the manager's store, the
	// file the node was adopted from, or nil (a fleet file's node).
	persist  Persister
	machine  Machine
	frontend Frontend
	done     chan struct{} // closed when Serve has returned
}

// Manager runs a fleet of nodes: it is the one place that adds, starts,
// stops, deletes and reports them, building each node's machine and
// frontend and persisting what changes.
type Manager struct {
	machines  MachineFactory
	frontends FrontendFactory
	log       *slog.Logger

	store  *Store    // where nodes persist and are restored from; nil: nothing persists
	adds   Persister // where added nodes persist, when not the store
	checks AddChecks

	onDelete []func(name string)

	opMu   sync.Mutex // serialises changes (add, start, stop, delete)
	mu     sync.Mutex // guards nodes and byPort
	nodes  map[string]*managedNode
	byPort map[int][]*managedNode // the nodes on each port, for O(1) clash checks
}

// probeTimeout bounds the look at a node's machine when it is added.
const probeTimeout = 15 * time.Second

// NewManager returns an empty manager using the given factories.
func NewManager(machines MachineFactory, frontends FrontendFactory, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	return &Manager{machines: machines, frontends: frontends, log: log,
		nodes: map[string]*managedNode{}, byPort: map[int][]*managedNode{}}
}

// Persister keeps nodes between daemon runs. The manager calls it for a
// node before it changes the node in memory, so that a refusal (a full or
// read-only disk) changes nothing. *Store is govbmc's own; a node adopted
// from another tool's file (VirtualBMC's INI) keeps its own Persister.
type Persister interface {
	// Save records the node's configuration and whether it runs.
	Save(sn StoredNode) error
	// Delete forgets the node.
	Delete(name string) error
}

// UseStore makes the manager persist every node it adds, starts, stops or
// deletes (except read-only ones and adopted ones, which keep their own
// Persister) in s.
func (m *Manager) UseStore(s *Store) { m.store = s }

// PersistAddsWith makes nodes added from now on persist through p rather
// than the store (which still restores the nodes it holds).
func (m *Manager) PersistAddsWith(p Persister) { m.adds = p }

// stored is the Persister of the nodes the manager's store keeps, nil
// without a store.
func (m *Manager) stored() Persister {
	if m.store == nil {
		return nil
	}
	return m.store
}

// AddChecks are what Add checks beyond a node's configuration and the other
// nodes: each costs a system call or a hypervisor round trip.
type AddChecks struct {
	// Port reports a listen address another process holds (UDPPortFree).
	Port func(Node) error
	// Machine builds the node's machine once and, when it is a Prober,
	// asks whether it exists.
	Machine bool
}

// UseAddChecks sets the checks Add runs (none by default).
func (m *Manager) UseAddChecks(c AddChecks) { m.checks = c }

// Add registers a node (stopped) and persists it, after checking what can
// be checked before it runs: its configuration (*FieldError), its name
// (ErrExists), its port against other nodes and, with AddChecks, other
// processes (*PortInUseError) and that its machine is there when the
// backend can tell (*MachineError). The machine is looked at without any
// lock held, so a slow hypervisor holds up no other change.
func (m *Manager) Add(ctx context.Context, n Node) error {
	n.ApplyDefaults()
	if err := n.Validate(); err != nil {
		return err
	}
	if err := m.admissible(n); err != nil {
		return err
	}
	if m.checks.Port != nil {
		if err := m.checks.Port(n); err != nil {
			return err
		}
	}
	if m.checks.Machine {
		if err := m.probe(ctx, n); err != nil {
			return &MachineError{Node: n.Name, Err: err}
		}
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if err := m.register(n, false, false, cmp.Or(m.adds, m.stored()), true); err != nil {
		return err
	}
	m.log.Info("node added", "node", n.Name, "listen", n.ListenAddr(), "backend", n.Backend.Type)
	return nil
}

// AddReadOnly registers a node of a fleet file and starts it: listed, not
// persisted, not changeable at run time. Only a refused registration is
// returned; a node that fails to start stays listed in StatusError.
func (m *Manager) AddReadOnly(ctx context.Context, n Node) error {
	n.ApplyDefaults()
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if err := m.register(n, false, true, nil, false); err != nil {
		return err
	}
	m.mu.Lock()
	mn := m.nodes[n.Name]
	m.mu.Unlock()
	_ = m.start(ctx, mn) // a failure is logged and shown in the node's status
	return nil
}

// Adopt registers a node that lives in a file another tool also reads
// (VirtualBMC's config directory): nothing is written, since the file
// already says it all; later starts, stops and deletes go to p. An active
// node is started. Only a refused registration (*FieldError, ErrExists,
// *PortInUseError naming the holder) is returned; a node that fails to
// start stays listed in StatusError.
func (m *Manager) Adopt(ctx context.Context, n Node, active bool, p Persister) error {
	n.ApplyDefaults()
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if err := m.register(n, active, false, p, false); err != nil {
		return err
	}
	m.log.Info("node adopted", "node", n.Name, "listen", n.ListenAddr(), "backend", n.Backend.Type, "active", active)
	if !active {
		return nil
	}
	m.mu.Lock()
	mn := m.nodes[n.Name]
	m.mu.Unlock()
	_ = m.start(ctx, mn)
	return nil
}

// Apply brings an adopted node to what its file now says, writing nothing
// back: a changed configuration restarts it (when it runs) with the new
// one, and active starts or stops it. A configuration refused (invalid, or
// a port another node holds) leaves the node as it was.
func (m *Manager) Apply(ctx context.Context, n Node, active bool) error {
	n.ApplyDefaults()
	if err := n.Validate(); err != nil {
		return err
	}
	return m.change("apply", n.Name, func(mn *managedNode) error {
		m.mu.Lock()
		same := reflect.DeepEqual(mn.node, n)
		m.mu.Unlock()
		if !same {
			if err := m.redefine(mn, n); err != nil {
				return err
			}
		}
		// The file already says it: with active set here, start and stop
		// find nothing to save.
		m.mu.Lock()
		mn.active = active
		m.mu.Unlock()
		if !active {
			return m.stop(mn)
		}
		return m.start(ctx, mn)
	})
}

// redefine gives mn a new configuration, taking it down first; m.opMu must
// be held.
func (m *Manager) redefine(mn *managedNode, n Node) error {
	m.mu.Lock()
	m.unindex(mn)
	err := m.portFree(n)
	if err != nil {
		m.byPort[mn.node.Port] = append(m.byPort[mn.node.Port], mn)
	}
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if err := m.release(mn); err != nil {
		m.log.Warn("releasing the redefined node", "node", n.Name, "err", err)
	}
	m.mu.Lock()
	mn.node = n
	m.byPort[n.Port] = append(m.byPort[n.Port], mn)
	m.mu.Unlock()
	m.log.Info("node redefined", "node", n.Name, "listen", n.ListenAddr())
	return nil
}

// Forget stops an adopted node and drops it without touching its file
// (which another tool removed).
func (m *Manager) Forget(name string) error {
	return m.change("forget", name, func(mn *managedNode) error { return m.drop(mn, false) })
}

// probe builds a node's machine once to see that it is there (for a
// libvirt node: the hypervisor answers and the domain exists).
func (m *Manager) probe(ctx context.Context, n Node) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	machine, err := m.machines(ctx, n)
	if err != nil {
		return err
	}
	defer machine.Close()
	if p, ok := machine.(Prober); ok {
		return p.Exists(ctx)
	}
	return nil
}

// admissible reports a node whose name or listen address another node has.
// It looks only at the nodes on the same port.
func (m *Manager) admissible(n Node) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.nodes[n.Name]; ok {
		return fmt.Errorf("a BMC named %q %w", n.Name, ErrExists)
	}
	return m.portFree(n)
}

// portFree reports a node whose listen address another node has; m.mu
// must be held.
func (m *Manager) portFree(n Node) error {
	ip := net.ParseIP(n.Address)
	for _, other := range m.byPort[n.Port] {
		if bindsOverlap(ip, net.ParseIP(other.node.Address)) {
			return &PortInUseError{Node: n.Name, Address: n.Address, Port: n.Port, Holder: other.node.Name}
		}
	}
	return nil
}

// register validates a defaulted node and adds it, kept by p; write saves
// it there first (not for nodes restored or adopted from their files).
// m.opMu must be held.
func (m *Manager) register(n Node, active, readOnly bool, p Persister, write bool) error {
	if err := n.Validate(); err != nil {
		return err
	}
	if err := m.admissible(n); err != nil {
		return err
	}
	if write && p != nil {
		if err := p.Save(StoredNode{Node: n, Active: active}); err != nil {
			return err
		}
	}
	mn := &managedNode{node: n, status: StatusDown, active: active, readOnly: readOnly, persist: p}
	m.mu.Lock()
	m.nodes[n.Name] = mn
	m.byPort[n.Port] = append(m.byPort[n.Port], mn)
	m.mu.Unlock()
	return nil
}

// Restore brings back the store's nodes: every one is added, and those that
// were started are started again. Unreadable files are reported, not fatal.
func (m *Manager) Restore(ctx context.Context) []error {
	if m.store == nil {
		return nil
	}
	stored, errs := m.store.LoadAll()
	for _, sn := range stored {
		sn.Node.ApplyDefaults()
		m.opMu.Lock()
		err := m.register(sn.Node, sn.Active, false, m.stored(), false) // its file is there: nothing to write
		m.opMu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("restore %q: %w", sn.Node.Name, err))
			continue
		}
		if sn.Active {
			if err := m.Start(ctx, sn.Node.Name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// Delete stops a node and forgets it, removing its file.
func (m *Manager) Delete(name string) error {
	return m.change("delete", name, func(mn *managedNode) error { return m.drop(mn, true) })
}

// drop takes a node down and out of the manager; with persisted, its
// Persister forgets it first. m.opMu must be held.
func (m *Manager) drop(mn *managedNode, persisted bool) error {
	name := mn.node.Name
	// The file goes first: when it cannot be removed (a read-only config
	// directory), the node stays as it was, running or not.
	if persisted && mn.persist != nil {
		if err := mn.persist.Delete(name); err != nil {
			return err
		}
	}
	if err := m.release(mn); err != nil {
		m.log.Warn("releasing the deleted node", "node", name, "err", err)
	}
	m.mu.Lock()
	delete(m.nodes, name)
	m.unindex(mn)
	m.mu.Unlock()
	m.log.Info("node deleted", "node", name)
	for _, f := range m.onDelete {
		f(name)
	}
	return nil
}

// unindex takes mn out of the port index; m.mu must be held.
func (m *Manager) unindex(mn *managedNode) {
	port := mn.node.Port
	m.byPort[port] = slices.DeleteFunc(m.byPort[port], func(o *managedNode) bool { return o == mn })
	if len(m.byPort[port]) == 0 {
		delete(m.byPort, port)
	}
}

// OnDelete calls f with the name of every node deleted or forgotten (to
// drop its metrics, say). It is meant for setup, before the manager serves.
func (m *Manager) OnDelete(f func(name string)) { m.onDelete = append(m.onDelete, f) }

// change runs fn, the operation op, holding m.opMu, on a node that
// run-time commands may change: ErrNotFound or ErrReadOnly otherwise,
// naming the operation and the node.
func (m *Manager) change(op, name string, fn func(mn *managedNode) error) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	mn, ok := m.nodes[name]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s %q: %w", op, name, ErrNotFound)
	}
	if mn.readOnly {
		return fmt.Errorf("%s: %q %w", op, name, ErrReadOnly)
	}
	return fn(mn)
}

// setActive records whether a stored node should run after a restart.
// The file is written first: when that fails (a full or read-only config
// directory), nothing changes, in memory or on disk. m.opMu must be held.
func (m *Manager) setActive(mn *managedNode, active bool) error {
	m.mu.Lock()
	changed := mn.active != active
	n, readOnly, p := mn.node, mn.readOnly, mn.persist
	m.mu.Unlock()
	if !changed {
		return nil
	}
	if !readOnly && p != nil {
		if err := p.Save(StoredNode{Node: n, Active: active}); err != nil {
			return err
		}
	}
	m.mu.Lock()
	mn.active = active
	m.mu.Unlock()
	return nil
}

// Start brings a node up: its machine, then its listener. Starting a running
// node does nothing. A failure leaves the node in StatusError with the reason.
func (m *Manager) Start(ctx context.Context, name string) error {
	return m.change("start", name, func(mn *managedNode) error { return m.start(ctx, mn) })
}

// start brings mn up; m.opMu must be held.
func (m *Manager) start(ctx context.Context, mn *managedNode) error {
	m.mu.Lock()
	running := mn.status == StatusRunning
	node := mn.node
	m.mu.Unlock()
	name := node.Name
	if err := m.setActive(mn, true); err != nil {
		return fmt.Errorf("start %q: %w", name, err)
	}
	if running {
		return nil
	}

	// A listener that failed on its own still holds its socket and machine.
	if err := m.release(mn); err != nil {
		m.log.Warn("releasing the failed node", "node", name, "err", err)
	}
	machine, err := m.machines(ctx, node)
	if err != nil {
		return m.fail(mn, nil, fmt.Errorf("node %q: machine: %w", name, err))
	}
	fe, err := m.frontends(node, machine)
	if err != nil {
		_ = machine.Close()
		return m.fail(mn, nil, fmt.Errorf("node %q: listen %s: %w", name, node.ListenAddr(), err))
	}
	done := make(chan struct{})
	m.mu.Lock()
	mn.status, mn.reason, mn.machine, mn.frontend, mn.done = StatusRunning, "", machine, fe, done
	m.mu.Unlock()

	go func() {
		defer close(done)
		if err := fe.Serve(context.WithoutCancel(ctx)); err != nil {
			_ = m.fail(mn, fe, fmt.Errorf("node %q: serve: %w", name, err))
		}
	}()
	m.log.Info("node started", "node", name, "listen", node.ListenAddr(), "backend", node.Backend.Type)
	return nil
}

// fail puts a node in StatusError. With a frontend given, only while that
// frontend is still the node's own: an error Serve returns because Stop
// closed it is not a failure.
func (m *Manager) fail(mn *managedNode, fe Frontend, err error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if fe != nil && mn.frontend != fe {
		return err
	}
	mn.status, mn.reason = StatusError, err.Error()
	m.log.Error("node failed", "node", mn.node.Name, "err", err)
	return err
}

// Stop takes a node down; stopping a stopped node does nothing.
func (m *Manager) Stop(name string) error {
	return m.change("stop", name, m.stop)
}

func (m *Manager) stop(mn *managedNode) error {
	name := mn.node.Name
	m.mu.Lock()
	wasUp := mn.frontend != nil
	m.mu.Unlock()

	// Persist first: if that fails, the node keeps running and says so.
	if err := m.setActive(mn, false); err != nil {
		return fmt.Errorf("stop %q: %w", name, err)
	}
	if err := m.release(mn); err != nil {
		return fmt.Errorf("stop %q: %w", name, err)
	}
	if wasUp {
		m.log.Info("node stopped", "node", name)
	}
	return nil
}

// release detaches a node's listener and machine, marks it down and closes
// them, waiting for Serve to return. m.opMu must be held.
func (m *Manager) release(mn *managedNode) error {
	m.mu.Lock()
	fe, machine, done := mn.frontend, mn.machine, mn.done
	mn.frontend, mn.machine, mn.done = nil, nil, nil
	mn.status, mn.reason = StatusDown, ""
	m.mu.Unlock()

	var errs []error
	if fe != nil {
		if err := fe.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close listener: %w", err))
		}
		<-done
	}
	if machine != nil {
		if err := machine.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close machine: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Machine returns the running machine of a node, or nil.
func (m *Manager) Machine(name string) Machine {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mn, ok := m.nodes[name]; ok {
		return mn.machine
	}
	return nil
}

// Get returns one node with its state, probing only its own machine.
func (m *Manager) Get(name string) (NodeStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mn, ok := m.nodes[name]
	if !ok {
		return NodeStatus{}, fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	return mn.state(), nil
}

// List returns every node with its state, sorted by name.
func (m *Manager) List() []NodeStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]NodeStatus, 0, len(m.nodes))
	for _, mn := range m.nodes {
		out = append(out, mn.state())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node.Name < out[j].Node.Name })
	return out
}

// state is the node's state; the manager's mu must be held. A running
// BMC whose machine cannot be reached is in error.
func (mn *managedNode) state() NodeStatus {
	st := NodeStatus{Node: mn.node, Status: mn.status, Reason: mn.reason, Active: mn.active, ReadOnly: mn.readOnly}
	if p, ok := mn.machine.(Prober); ok && st.Status == StatusRunning {
		if err := p.Health(); err != nil {
			st.Status, st.Reason = StatusError, err.Error()
		}
	}
	return st
}

// Close takes every node down without touching what is persisted, so that
// the next daemon brings back the same nodes.
func (m *Manager) Close() error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	nodes := make([]*managedNode, 0, len(m.nodes))
	for _, mn := range m.nodes {
		nodes = append(nodes, mn)
		mn.status, mn.reason = StatusDown, ""
	}
	m.mu.Unlock()
	errs := make([]error, len(nodes))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(closeWorkers, len(nodes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := m.release(nodes[i]); err != nil {
					errs[i] = fmt.Errorf("close %q: %w", nodes[i].node.Name, err)
				}
			}
		}()
	}
	for i := range nodes {
		work <- i
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// closeWorkers bounds how many nodes Close takes down at once. A node's
// close waits for its listener's Serve to return and for its machine (a
// libvirt call or two), so a fleet of thousands closes in parallel, yet
// without a goroutine and a libvirt call in flight per node.
const closeWorkers = 32

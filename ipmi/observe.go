package ipmi

import (
	"context"
	"io"
	"math/bits"
	"net"
	"sync"
	"time"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/govbmc/govbmc/bmc"
)

// observer reports one node's IPMI activity to Options.Observer: logins
// and failed logins from the answers the BMC sends, commands by name and
// completion code from a middleware, and the occupancy of its session
// table and SOL payloads whenever they may have changed. Its labels are
// the node's name, the command's name and the code, never an address.
type observer struct {
	node  string
	obs   bmc.Observer
	state *gobmc.BMC

	mu sync.Mutex
	// handshakes are RMCP+ logins answered with RAKP 2, by client address
	// (never a label): a client whose password does not match gives up
	// without RAKP 3, so a timer counts the failure when none comes. Nil
	// while there is none (lazymap.go).
	handshakes map[string]*time.Timer
	closed     bool
}

// newObserver returns nil without an observer: every method of a nil
// *observer does nothing, so a BMC without metrics pays nothing.
func newObserver(node string, o bmc.Observer, state *gobmc.BMC) *observer {
	if o == nil {
		return nil
	}
	return &observer{node: node, obs: o, state: state}
}

// inbound looks at a request go-ipmi is about to handle: a RAKP 3 goes on
// with a login.
func (o *observer) inbound(h header, from net.Addr) {
	if o == nil {
		return
	}
	if !h.is(types.PayloadTypeRAKPMessage3) {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if t, ok := o.handshakes[from.String()]; ok {
		t.Stop()
		del(&o.handshakes, from.String())
	}
}

// handshake starts the clock on a RAKP 2 sent to addr.
func (o *observer) handshake(addr string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || len(o.handshakes) >= maxThrottledSources {
		return
	}
	if t, ok := o.handshakes[addr]; ok {
		t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(handshakeTimeout, func() {
		o.mu.Lock()
		mine := o.handshakes[addr] == t && !o.closed
		if mine {
			del(&o.handshakes, addr)
		}
		o.mu.Unlock()
		if mine {
			o.obs.LoginFailed(o.node)
		}
	})
	put(&o.handshakes, addr, t)
}

// close stops the clocks, so a node closed reports nothing more.
func (o *observer) close() {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	for _, t := range o.handshakes {
		t.Stop()
	}
	o.handshakes = nil
}

// outbound looks at an answer on its way to a client.
func (o *observer) outbound(h header, to net.Addr) {
	if o == nil {
		return
	}
	switch {
	case loginFailed(h):
		o.obs.LoginFailed(o.node)
	case h.is(types.PayloadTypeRAKPMessage2):
		o.handshake(to.String())
	case h.is(types.PayloadTypeRAKPMessage4) || (h.v15Response(types.CommandActivateSession) && h.msg.code == uint8(types.CodeOK)):
		if _, ok := h.establishedSession(); ok || !h.rmcpp() {
			o.obs.SessionOpened(o.node)
		}
		o.tables()
	case h.is(types.PayloadTypeRmcpOpenSessionResponse):
		o.tables()
	}
}

// tables reports how many session slots and SOL payloads are taken.
func (o *observer) tables() {
	if o == nil {
		return
	}
	o.obs.SessionTable(o.node, o.state.Sessions.Count()+o.state.V15Sessions.CountActiveSessions())
	_, low, high := o.state.SOL.ActivationStatus()
	o.obs.SOLSessions(o.node, bits.OnesCount8(low)+bits.OnesCount8(high))
}

// middleware counts every command by name and the completion code the
// client gets; it runs outermost so that a recovered panic counts too.
func (o *observer) middleware(next handlers.Handler) handlers.Handler {
	if o == nil {
		return next
	}
	return handlers.HandlerFunc(func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		resp, cc, err := next.Handle(ctx, hctx, req)
		o.obs.Command(o.node, commandName(hctx), uint8(cc))
		if hctx != nil && (hctx.Command.ID == types.CommandActivatePayload.ID || hctx.Command.ID == types.CommandDeactivatePayload.ID) &&
			hctx.Command.NetFn == types.NetFnAppRequest {
			o.tables()
		}
		return resp, cc, err
	})
}

// timedMachine times every operation of a machine for Options.Observer, by
// operation and backend. Unwrap returns the machine, for a front end that
// looks for an optional capability.
type timedMachine struct {
	m       bmc.Machine
	backend string
	obs     bmc.Observer
}

// observeMachine wraps m when there is an observer.
func observeMachine(m bmc.Machine, backend string, o bmc.Observer) bmc.Machine {
	if o == nil {
		return m
	}
	return timedMachine{m: m, backend: backend, obs: o}
}

// Unwrap returns the machine timed.
func (t timedMachine) Unwrap() bmc.Machine { return t.m }

// timed runs op, reporting how long it took.
func timed[T any](t timedMachine, op string, fn func() (T, error)) (T, error) {
	start := time.Now()
	v, err := fn()
	t.obs.Operation(op, t.backend, time.Since(start), err)
	return v, err
}

// run is timed for an operation that returns only an error.
func (t timedMachine) run(op string, fn func() error) error {
	_, err := timed(t, op, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

func (t timedMachine) PowerState(ctx context.Context) (bmc.PowerState, error) {
	return timed(t, "power_state", func() (bmc.PowerState, error) { return t.m.PowerState(ctx) })
}

func (t timedMachine) PowerOn(ctx context.Context) error {
	return t.run("power_on", func() error { return t.m.PowerOn(ctx) })
}

func (t timedMachine) PowerOff(ctx context.Context) error {
	return t.run("power_off", func() error { return t.m.PowerOff(ctx) })
}

func (t timedMachine) SoftOff(ctx context.Context) error {
	return t.run("soft_off", func() error { return t.m.SoftOff(ctx) })
}

func (t timedMachine) Reset(ctx context.Context) error {
	return t.run("reset", func() error { return t.m.Reset(ctx) })
}

func (t timedMachine) PowerCycle(ctx context.Context) error {
	return t.run("power_cycle", func() error { return t.m.PowerCycle(ctx) })
}

func (t timedMachine) DiagnosticInterrupt(ctx context.Context) error {
	return t.run("diagnostic_interrupt", func() error { return t.m.DiagnosticInterrupt(ctx) })
}

func (t timedMachine) BootOverride(ctx context.Context) (bmc.BootOverride, error) {
	return timed(t, "get_boot_override", func() (bmc.BootOverride, error) { return t.m.BootOverride(ctx) })
}

func (t timedMachine) SetBootOverride(ctx context.Context, o bmc.BootOverride) error {
	return t.run("set_boot_override", func() error { return t.m.SetBootOverride(ctx, o) })
}

func (t timedMachine) UUID(ctx context.Context) (bmc.UUID, error) {
	return timed(t, "uuid", func() (bmc.UUID, error) { return t.m.UUID(ctx) })
}

func (t timedMachine) OpenConsole(ctx context.Context) (io.ReadWriteCloser, error) {
	return timed(t, "open_console", func() (io.ReadWriteCloser, error) { return t.m.OpenConsole(ctx) })
}

// Close closes the machine (not timed: it is the node's end, not an operation).
func (t timedMachine) Close() error { return t.m.Close() }

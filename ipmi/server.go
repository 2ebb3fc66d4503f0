// Package ipmi is govbmc's IPMI-over-LAN front end: one UDP listener per node
// on go-ipmi's server (RMCP, RMCP+, RAKP, cipher suites and IPMI 1.5 come from
// go-ipmi), with handlers that drive a bmc.Machine where go-ipmi's defaults
// are wrong for a virtual BMC.
package ipmi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
)

// DefaultOpTimeout bounds one machine operation. ipmitool waits 2 s per try
// by default and Ironic runs it with -N 5 -R 1, so an answer must come back
// well within that: a slower backend gets 0xC0 (retry), not silence.
const DefaultOpTimeout = 4 * time.Second

// lanChannel is the channel number of the LAN channel go-ipmi models.
const lanChannel = 1

// Options tune a Server beyond its node configuration.
type Options struct {
	// Logger receives the node's logs; nil means slog.Default().
	Logger *slog.Logger
	// OpTimeout bounds each machine operation; zero means DefaultOpTimeout.
	OpTimeout time.Duration
	// SessionTimeout ends an RMCP+ session idle this long (and frees the
	// SOL console it held); zero means the IPMI default of 60 s.
	SessionTimeout time.Duration
	// AuthFailureLimit failed logins from one address within a minute block
	// its new logins for AuthBlock; zero means the defaults (10, 1 min).
	AuthFailureLimit int
	AuthBlock        time.Duration
	// MaxSessions bounds the node's concurrent RMCP+ sessions; zero means
	// DefaultMaxSessions.
	MaxSessions int
	// AckWithin is how long a Chassis Control may run before it is
	// acknowledged and left to finish; zero means DefaultAckWithin.
	AckWithin time.Duration
	// ControlTimeout bounds a Chassis Control that was acknowledged before
	// it finished; zero means DefaultControlTimeout.
	ControlTimeout time.Duration
	// Kg is the node's BMC key (IPMI 2.0 §13.31, two-key logins), as
	// bmc.ParseKg reads it from hex; nil means none (the user's password
	// keys the session, as on most BMCs).
	Kg []byte
	// EventLog is the node's System Event Log; nil means one in memory only.
	// The daemon passes one kept beside the node's file
	// (bmc.EventLogPath), so that it survives a restart.
	EventLog *bmc.EventLog
	// EvictIdle is how long an established session must be quiet before a
	// login into a full table may close it; zero means DefaultEvictIdle.
	EvictIdle time.Duration
	// IdleAfter is how long a node with no session open must be quiet
	// before its BMC parks (idle.go); zero means DefaultIdleAfter.
	IdleAfter time.Duration
	// Observer receives sessions, failed logins, commands, session table
	// and SOL occupancy and machine operation times; nil means none.
	Observer bmc.Observer
}

// Server is one node's BMC: a UDP listener speaking IPMI 1.5 and 2.0 in
// front of a machine.
type Server struct {
	name    string // the node's
	conn    *net.UDPConn
	srv     *server.Server
	log     *slog.Logger
	closing sync.Once
	closed  atomic.Bool
	awake   atomic.Bool // go-ipmi's read loop runs (idle.go)
	// unregister takes the node out of the shared handler registry.
	unregister func()
	h          *nodeHandlers
	stopWatch  func()
	obs        *observer
}

// New binds the node's UDP listener and prepares its BMC; Serve starts
// answering. The listener is bound here so that a port clash is reported at
// once, naming the address.
func New(node bmc.Node, m bmc.Machine, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("node", node.Name)
	if opts.OpTimeout <= 0 {
		opts.OpTimeout = DefaultOpTimeout
	}

	m = observeMachine(m, node.Backend.Type, opts.Observer)
	suites, err := cipherSuites(node)
	if err != nil {
		return nil, err
	}
	events := opts.EventLog
	if events == nil {
		events, _ = bmc.NewEventLog(0, "")
	}
	h := &nodeHandlers{machine: m, log: log, opTimeout: opts.OpTimeout, sel: sel{events: events}, sensors: newSensors(m),
		control: newControlQueue(cmp.Or(opts.AckWithin, DefaultAckWithin), cmp.Or(opts.ControlTimeout, DefaultControlTimeout)),
		fruID:   defaultIdentity(node), suites: suites, mac: lanMACOf(node.Name)}
	h.fru.h = h
	state := gobmc.New(deviceInfo(node), ipmiGUID(bmc.DeriveUUID("bmc:"+node.Name)), machineHAL{m: m, h: h}, gobmc.WithKG(opts.Kg))
	sessionOpts := []gobmc.SessionStoreOption{gobmc.WithMaxSessions(cmp.Or(opts.MaxSessions, DefaultMaxSessions))}
	if opts.SessionTimeout > 0 {
		sessionOpts = append(sessionOpts, gobmc.WithInactivityTimeout(opts.SessionTimeout))
	}
	state.Sessions = gobmc.NewSessionStoreWithOptions(state.Clock(), sessionOpts...)
	sessions := newSessionTable(state.Sessions, state.SOL, cmp.Or(opts.EvictIdle, DefaultEvictIdle), log)
	replay := newReplayGuard()
	obs := newObserver(node.Name, opts.Observer, state)
	state.Sessions.SetOnRemove(func(id uint32) {
		h.peers.forget(id)
		h.retransmits.forget(id)
		sessions.forget(id)
		replay.forget(id)
		state.SOL.DeactivateBySession(id)
		obs.tables()
	})
	state.SetCipherSuites(suites)
	// A console stream that ends (a VM powered off, libvirtd restarted) is
	// reopened while the SOL session lasts.
	state.SOL.SetReconnectPolicy(&gobmc.DefaultReconnectPolicy)
	if node.DisableIPMIv15 {
		gobmc.WithV15Disabled()(state)
	}
	if err := addUsers(state, node.Users); err != nil {
		return nil, fmt.Errorf("node %q: %w", node.Name, err)
	}

	addr, err := net.ResolveUDPAddr("udp", node.ListenAddr())
	if err != nil {
		return nil, fmt.Errorf("node %q: resolve %s: %w", node.Name, node.ListenAddr(), err)
	}
	udp, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("node %q: listen on %s: %w", node.Name, node.ListenAddr(), err)
	}
	h.listen = udp.LocalAddr().(*net.UDPAddr)
	unregister := registerNode(state, h, obs.middleware, recoverMiddleware(log), traceMiddleware(log), replay.middleware, sessions.middleware)
	// conn embeds *net.UDPConn, so go-ipmi also learns from LocalAddr the
	// port that SOL activation reports.
	srv := server.NewServer(state, &conn{UDPConn: udp, state: state, log: log, replay: replay, sessions: sessions, obs: obs, peers: &h.peers, idleAfter: cmp.Or(opts.IdleAfter, DefaultIdleAfter), throttle: newAuthThrottle(authLimit(opts), DefaultAuthWindow, authBlock(opts), h.loginFailed)}, server.WithHandlerRegistry(sharedRegistry()))
	stopWatch := func() {}
	if w, ok := bmc.As[bmc.PowerWatcher](m); ok {
		stopWatch = w.WatchPower(h.machinePower)
	}
	return &Server{name: node.Name, conn: udp, srv: srv, log: log, unregister: unregister, h: h, stopWatch: stopWatch, obs: obs}, nil
}

// Addr is the address the listener is bound to (with the real port when the
// node asked for port 0).
func (s *Server) Addr() *net.UDPAddr { return s.conn.LocalAddr().(*net.UDPAddr) }

// Serve answers IPMI requests until ctx ends or Close is called; the
// server is closed when it returns.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	err := s.serveWhenAwake(ctx)
	// However serving ended, the node is done: once Serve returns it is
	// closed and out of the shared registry (Close runs once; a Close
	// under way elsewhere is waited for).
	cerr := s.Close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("node %q: serve: %w", s.name, err)
	}
	return cerr
}

// Close stops the listener; Serve returns.
func (s *Server) Close() error {
	var err error
	s.closing.Do(func() {
		s.closed.Store(true)
		err = s.srv.Close()
		s.unregister()
		s.stopWatch()
		s.h.control.close()
		s.obs.close()
	})
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("node %q: close: %w", s.name, err)
	}
	return nil
}

func authLimit(o Options) int {
	if o.AuthFailureLimit > 0 {
		return o.AuthFailureLimit
	}
	return DefaultAuthFailureLimit
}

func authBlock(o Options) time.Duration {
	if o.AuthBlock > 0 {
		return o.AuthBlock
	}
	return DefaultAuthBlock
}

func deviceInfo(node bmc.Node) gobmc.DeviceInfo {
	return gobmc.DeviceInfo{
		DeviceID:                0x20,
		DeviceRevision:          0x01,
		FirmwareMajor:           0x01,
		FirmwareMinor:           0x00,
		IPMIVersion:             0x02, // IPMI 2.0, BCD nibbles minor:major
		ManufacturerID:          node.Identity.ManufacturerID,
		ProductID:               node.Identity.ProductID,
		AdditionalDeviceSupport: 0x80 | 0x04, // chassis device, SEL device (go-ipmi adds SDR repository and FRU)
	}
}

func cipherSuites(node bmc.Node) ([]types.CipherSuiteID, error) {
	var ids []types.CipherSuiteID
	for _, n := range node.EffectiveCipherSuites() {
		id := types.CipherSuiteID(n)
		// Node validation already refuses suite 0; go-ipmi panics on a
		// suite it cannot negotiate, so check again rather than crash.
		if n == 0 || !gobmc.SupportedCipherSuite(id) {
			return nil, &bmc.FieldError{Node: node.Name, Field: "cipher_suites", Err: fmt.Errorf("cipher suite %d is not supported", n)}
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// addUsers installs the node's accounts as user IDs 2, 3, …; ID 1 stays as
// go-ipmi makes it, its anonymous user, as whom logins are refused
// (GOIPMI.md, "Known and not worked around").
func addUsers(state *gobmc.BMC, users []bmc.User) error {
	for i, u := range users {
		gu, err := state.Users.Add(uint8(i+2), u.Name)
		if err != nil {
			return fmt.Errorf("user %q: %w", u.Name, err)
		}
		gu.SetPassword([]byte(u.Password))
		gu.Enabled = true
		gu.ChannelAccess[lanChannel] = gobmc.UserChannelAccess{
			MaxPrivilege: gobmc.PrivilegeLevel(u.Privilege),
			Enabled:      true,
		}
	}
	return nil
}

// nodeHandlers are the command handlers govbmc registers over go-ipmi's,
// bound to one node's machine.
type nodeHandlers struct {
	machine   bmc.Machine
	log       *slog.Logger
	opTimeout time.Duration
	boot      bootParams
	v15       v15Sessions
	// sensors are the node's SDR repository and readings.
	sensors *sensors
	// listen is the bound listener, mac the BMC's MAC, suites the cipher
	// suites offered, peers the clients' addresses (LAN configuration).
	listen *net.UDPAddr
	mac    [6]byte
	suites []types.CipherSuiteID
	peers  peers
	// fru is the node's FRU device; fruID what it says unless the machine
	// describes itself.
	fru   fruStore
	fruID fruIdentity
	// sel serves the node's event log.
	sel sel
	// control runs Chassis Controls one at a time, acknowledging slow ones.
	control *controlQueue
	// retransmits answers a retransmitted Chassis Control without running it again.
	retransmits retransmits
	// authCaps answers Get Channel Authentication Capabilities from a copy.
	authCaps authCaps
	// lastPowerOnByCommand feeds Get Chassis Status' last power event.
	lastPowerOnByCommand atomic.Bool
	// own are its handlers of the overrides while it is awake.
	own ownHandlers
}

// goipmiDefaults holds go-ipmi's own handlers, for the ones govbmc wraps.
// Its handlers keep no state of their own (they reach the node through the
// HandlerContext), so one read-only registry serves every node.
var goipmiDefaults = sync.OnceValue(func() *handlers.Registry {
	r := handlers.NewRegistry()
	handlers.RegisterAllHandlers(r)
	return r
})

// opContext bounds one machine operation.
func (h *nodeHandlers) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, h.opTimeout)
}

// machineRead runs one read of the machine (f) within the operation
// deadline; cc is the completion code the client gets, a failure logged as
// op.
func machineRead[T any](ctx context.Context, h *nodeHandlers, op string, f func(context.Context) (T, error)) (v T, cc types.CompletionCode) {
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	v, err := f(ctx)
	return v, completionCode(h.log, op, err)
}

// registered returns the handler reg holds for c, as a Handler, so that
// govbmc can wrap a go-ipmi default (the registry offers no lookup, but its
// Dispatch reaches exactly that handler).
func registered(reg *handlers.Registry, c types.Command) handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		return reg.Dispatch(ctx, hctx, uint8(c.NetFn), c.ID, req)
	})
}

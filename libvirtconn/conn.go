package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/go-libvirt"
	"golang.org/x/crypto/ssh"
)

// Tunables of a connection.
const (
	// DefaultCallTimeout is the hard limit on one libvirt RPC. go-libvirt
	// calls take no context, so a call that outlives it has the connection
	// closed under it (every call in flight fails, and the connection is
	// re-established): a hung libvirtd or tunnel must not hang a BMC.
	DefaultCallTimeout = 30 * time.Second
	dialTimeout        = 10 * time.Second
	backoffMin         = 100 * time.Millisecond
	backoffMax         = 5 * time.Second
)

// ErrUnavailable means the hypervisor cannot be reached right now; the
// connection keeps trying in the background.
var ErrUnavailable = errors.New("hypervisor unreachable")

// Credentials are the per-connection secrets beyond the URI.
type Credentials struct {
	SASLUsername string
	SASLPassword string
}

// Conn is one shared libvirt RPC connection to a hypervisor, used
// concurrently by every node on it. It connects in the background,
// reconnects with backoff when libvirtd restarts or the tunnel drops, and
// bounds every call.
type Conn struct {
	uri         *URI
	creds       Credentials
	log         *slog.Logger
	callTimeout time.Duration

	mu       sync.Mutex
	lv       *libvirt.Libvirt // nil while down
	netConn  net.Conn         // the stream under lv, closed to abort hung calls
	sshc     *ssh.Client      // the tunnel under netConn (ssh transport)
	lastErr  error
	tried    chan struct{} // closed once the first attempt has finished
	changed  chan struct{} // closed and replaced on every state change
	closed   bool
	stop     chan struct{}
	loopDone chan struct{}

	// pool bookkeeping: the pool that handed the connection out, under
	// which key, and how many users hold it (guarded by the pool's lock).
	pool *Pool
	key  poolKey
	refs int

	// states mirrors domain power states from lifecycle events.
	states stateCache
	// stats holds the domains' statistics for sensors (stats.go).
	stats statsCache

	// Dials counts connection attempts that reached the transport, and
	// SSHDials the SSH clients opened; tests and benchmarks read them.
	Dials    atomic.Int64
	SSHDials atomic.Int64
	// Calls counts libvirt calls made through Do.
	Calls atomic.Int64
	// Connects counts connections established (transport, login and
	// driver opened).
	Connects atomic.Int64
	// StalePackets counts the packets libvirtd sent for calls that had
	// ended, dropped before go-libvirt could hang on them (streamGuard).
	StalePackets atomic.Int64
	// EarlyPackets counts the stream packets libvirtd sent before the
	// reply to the call that opened the stream, held until that reply
	// (streamGuard).
	EarlyPackets atomic.Int64
}

// newConn starts a connection maintained in the background.
func newConn(u *URI, creds Credentials, log *slog.Logger, callTimeout time.Duration) (*Conn, error) {
	if callTimeout <= 0 {
		callTimeout = DefaultCallTimeout
	}
	c := &Conn{
		uri: u, creds: creds, log: log.With("uri", u.Raw), callTimeout: callTimeout,
		tried: make(chan struct{}), changed: make(chan struct{}), stop: make(chan struct{}), loopDone: make(chan struct{}),
	}
	go c.maintain()
	return c, nil
}

// Release gives the connection back to its pool; see Pool.Get.
func (c *Conn) Release() {
	if c.pool != nil {
		c.pool.release(c)
	}
}

// URI is the connection's URI.
func (c *Conn) URI() *URI { return c.uri }

// maintain keeps the connection up until Close.
func (c *Conn) maintain() {
	defer close(c.loopDone)
	backoff := backoffMin
	for {
		lv, err := c.connect()
		c.mu.Lock()
		c.lastErr = err
		select {
		case <-c.tried:
		default:
			close(c.tried)
		}
		c.notifyLocked()
		c.mu.Unlock()
		if err != nil {
			c.log.Warn("libvirt connection failed; retrying", "err", err, "retry_in", backoff)
			select {
			case <-c.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, backoffMax)
			continue
		}
		backoff = backoffMin
		c.Connects.Add(1)
		c.log.Info("libvirt connected")
		select {
		case <-c.stop:
			c.teardown(lv, nil)
			return
		case <-lv.Disconnected():
			c.teardown(lv, errors.New("connection to libvirtd lost"))
			c.log.Warn("libvirt connection lost; reconnecting")
		}
	}
}

// connect dials the transport and opens the driver.
func (c *Conn) connect() (*libvirt.Libvirt, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	var (
		nc   net.Conn
		sshc *ssh.Client
		err  error
	)
	switch c.uri.Transport {
	case TransportUnix:
		var d net.Dialer
		nc, err = d.DialContext(ctx, "unix", c.uri.SocketPath())
	case TransportTCP:
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", c.uri.Addr())
	case TransportTLS:
		nc, err = dialTLS(ctx, c.uri)
	case TransportSSH:
		sshc, err = dialSSH(ctx, c.uri)
		if err == nil {
			c.SSHDials.Add(1)
			// direct-streamlocal@openssh.com: the remote libvirtd socket.
			nc, err = bounded(ctx, func() (net.Conn, error) { return sshc.Dial("unix", c.uri.SocketPath()) }, sshc.Close)
			if err != nil {
				sshc.Close()
				err = fmt.Errorf("ssh %s: open %s: %w", c.uri.Addr(), c.uri.SocketPath(), err)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, c.uri.Raw, err)
	}
	c.Dials.Add(1)
	if nc, err = c.authenticate(ctx, nc); err != nil {
		if sshc != nil {
			sshc.Close()
		}
		return nil, err
	}
	lv := libvirt.NewWithDialer(alreadyDialed{newStreamGuard(nc, c.log, &c.StalePackets, &c.EarlyPackets)})
	// ConnectToURI blocks on RPCs without a deadline: bound it here.
	done := make(chan error, 1)
	go func() { done <- lv.ConnectToURI(libvirt.ConnectURI(c.uri.Name())) }()
	select {
	case err = <-done:
	case <-time.After(dialTimeout):
		nc.Close()
		err = <-done
		if err == nil {
			err = errors.New("timed out")
		}
	}
	if err != nil {
		nc.Close()
		if sshc != nil {
			sshc.Close()
		}
		return nil, fmt.Errorf("%w: open %s: %v", ErrUnavailable, c.uri.Name(), err)
	}
	c.mu.Lock()
	c.lv, c.netConn, c.sshc = lv, nc, sshc
	c.mu.Unlock()
	// Power states from events from now on; without them, by asking. The
	// subscription ends with the connection, never before it: cancelled
	// while the connection closes, go-libvirt deregisters it with an RPC
	// that races the close in libvirtd, and libvirtd 9.0.0 was seen to
	// crash on that (a NULL dereference in
	// remoteDispatchConnectDomainEventCallbackDeregisterAny, once in
	// thousands of closes). libvirtd drops a closed client's callbacks
	// itself; go-libvirt's deregistration after the disconnect is refused
	// before it is sent.
	evCtx, cancelEvents := context.WithCancel(context.Background())
	go func() {
		select {
		case <-lv.Disconnected():
			cancelEvents()
		case <-c.loopDone: // closed without go-libvirt noticing: nothing to cancel
		}
	}()
	// Subscribing is an RPC without a deadline of its own: bound it.
	if _, err := bounded(ctx, func() (struct{}, error) { return struct{}{}, c.states.follow(evCtx, lv) }, func() error { return nc.Close() }); err != nil {
		c.log.Warn("no lifecycle events from libvirt; power status will ask every time", "err", err)
	}
	return lv, nil
}

// authenticate runs libvirt's authentication phase on a fresh stream
// (closing it when that fails) and returns the stream to hand to
// go-libvirt.
func (c *Conn) authenticate(ctx context.Context, nc net.Conn) (net.Conn, error) {
	secured, err := authenticate(ctx, nc, c.uri, c.creds)
	if err != nil {
		nc.Close()
		if errors.Is(err, ErrAuth) {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, c.uri.Raw, err)
		}
		return nil, fmt.Errorf("%w: %s: authenticate: %v", ErrUnavailable, c.uri.Raw, err)
	}
	return secured, nil
}

// bounded runs fn, giving up when ctx ends; abort then unblocks fn (by
// closing what it waits on).
func bounded[T any](ctx context.Context, fn func() (T, error), abort func() error) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		_ = abort()
		var zero T
		return zero, ctx.Err()
	}
}

// teardown forgets a dead or closing connection and closes its tunnel.
func (c *Conn) teardown(lv *libvirt.Libvirt, cause error) {
	c.mu.Lock()
	nc, sshc := c.netConn, c.sshc
	if c.lv == lv {
		c.lv, c.netConn, c.sshc = nil, nil, nil
		if cause != nil {
			c.lastErr = fmt.Errorf("%w: %v", ErrUnavailable, cause)
		}
		c.notifyLocked()
	}
	c.mu.Unlock()
	if cause == nil {
		// Say goodbye to libvirtd, but never wait long on a sick connection.
		bye := make(chan struct{})
		go func() { _ = lv.Disconnect(); close(bye) }()
		select {
		case <-bye:
		case <-time.After(2 * time.Second):
		}
	}
	if nc != nil {
		nc.Close()
	}
	if sshc != nil {
		sshc.Close()
	}
}

func (c *Conn) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// current returns the live connection, waiting (within ctx) only for the
// very first attempt; during an outage it fails at once, so IPMI clients
// get a retryable answer instead of silence.
func (c *Conn) current(ctx context.Context) (*libvirt.Libvirt, net.Conn, error) {
	select {
	case <-c.tried:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("%w: still connecting: %v", ErrUnavailable, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil, fmt.Errorf("%w: connection closed", ErrUnavailable)
	}
	if c.lv == nil {
		if c.lastErr != nil {
			return nil, nil, c.lastErr
		}
		return nil, nil, ErrUnavailable
	}
	return c.lv, c.netConn, nil
}

// Do runs one libvirt call on the shared connection. It returns when the
// call does or ctx ends, whichever is first; a call still running after
// the connection's call timeout has the connection closed under it.
func (c *Conn) Do(ctx context.Context, fn func(*libvirt.Libvirt) error) error {
	lv, nc, err := c.current(ctx)
	if err != nil {
		return err
	}
	c.Calls.Add(1)
	done := make(chan error, 1)
	go func() { done <- fn(lv) }()
	hard := time.NewTimer(c.callTimeout)
	select {
	case err := <-done:
		hard.Stop()
		return classify(err)
	case <-ctx.Done():
		// The call goes on; the watchdog keeps the timer and still bounds it.
		go c.watch(done, nc, hard)
		return ctx.Err()
	case <-hard.C:
		c.abort(nc)
		return fmt.Errorf("%w: libvirt call exceeded %v", ErrUnavailable, c.callTimeout)
	}
}

// watch closes the connection under a call that outlives the hard timeout.
func (c *Conn) watch(done <-chan error, nc net.Conn, hard *time.Timer) {
	defer hard.Stop()
	select {
	case <-done:
	case <-hard.C:
		c.abort(nc)
	}
}

func (c *Conn) abort(nc net.Conn) {
	c.log.Error("libvirt call hung; closing the connection", "timeout", c.callTimeout)
	testHookStuck("libvirt call hung")
	nc.Close()
}

// classify marks connection-level failures as ErrUnavailable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, libvirt.ErrInterrupted) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// Close stops the connection and its reconnect loop.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	<-c.loopDone
	return nil
}

// alreadyDialed hands go-libvirt a stream govbmc dialled itself, so that
// govbmc owns its lifetime (and its SSH tunnel).
type alreadyDialed struct{ nc net.Conn }

func (a alreadyDialed) Dial() (net.Conn, error) { return a.nc, nil }

// Health reports why the connection is down, or nil while it is up (or
// still making its first attempt). It makes no call.
func (c *Conn) Health() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.tried:
	default:
		return nil
	}
	if c.lv == nil {
		if c.lastErr != nil {
			return c.lastErr
		}
		return ErrUnavailable
	}
	return nil
}

// Domains returns the names of every domain the hypervisor defines, sorted.
func (c *Conn) Domains(ctx context.Context) ([]string, error) {
	var names []string
	err := c.Do(ctx, func(lv *libvirt.Libvirt) error {
		doms, _, err := lv.ConnectListAllDomains(1, 0)
		if err != nil {
			return err
		}
		for _, d := range doms {
			names = append(names, d.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list domains on %s: %w", c.uri.Raw, err)
	}
	sort.Strings(names)
	return names, nil
}

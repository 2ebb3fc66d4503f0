package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

// consolePoll is how often a console waiting for its domain to start
// checks it.
const consolePoll = time.Second

// consoleHeldPoll is how often the BMC tries again, without taking it,
// for a console another client (virsh console) holds.
const consoleHeldPoll = 5 * time.Second

// consoleOpenWait bounds how long a domain started by the BMC stays paused
// waiting for its console stream, and how long a reset through the BMC
// waits for it; after that they go on without it.
const consoleOpenWait = 5 * time.Second

// streamOpenTimeout bounds the stream loop's look, between streams, at
// whether the domain runs.
const streamOpenTimeout = 10 * time.Second

// endWait is how long a reset waits for libvirtd to end the BMC's stream
// whose input it ended, before it takes the console with a new stream.
const endWait = time.Second

// consoleLookTimeout bounds the stream loop's look at the domain before it
// opens a stream; well under consoleOpenWait, so that a try again still
// opens the stream in time for the power on or reset waiting for it.
const consoleLookTimeout = 2 * time.Second

// resumeMargin is the time kept, within a caller's deadline, for resuming
// the domain once the console wait is over.
const resumeMargin = 500 * time.Millisecond

// console is a domain's serial console as its BMC sees it: a libvirt
// console stream kept open while the domain runs, feeding a bounded buffer,
// so that output written while no client is attached (a boot after a power
// on) is there when one attaches. The stream is wanted from a BMC power-on
// until the domain stops, and for as long as a client is attached.
//
// libvirt gives a console to one stream at a time. The BMC takes it from
// another holder (an operator's `virsh console --force`) only when one of
// its users asks (see claim): a SOL activation, or a power on, reset or
// cycle through the BMC. Otherwise it opens the console without libvirt's
// Force flag, so a console someone else took stays theirs until they let
// it go.
type console struct {
	conn *Conn
	// find looks the domain up on a live connection.
	find func(*libvirt.Libvirt) (libvirt.Domain, error)
	// runs reports whether the domain runs (a stream loop waiting for it
	// asks).
	runs func(context.Context) bool
	log  *slog.Logger
	buf  *bmc.ConsoleBuffer

	mu       sync.Mutex
	running  bool           // the stream loop is running
	attached int            // clients attached
	input    *io.PipeWriter // typed input into the current stream, or nil
	open     bool           // libvirtd has opened the current stream
	// ending, closed by claim(true) once it has ended the current stream's
	// input, tells the stream loop not to wait long for that stream (see
	// claim).
	ending chan struct{}
	// force makes the next stream take the console from any other holder:
	// a BMC user asked for it (see claim).
	force bool
	// heldLogged: that another client holds the console has been logged
	// since the BMC last had it.
	heldLogged bool
	stop       chan struct{} // closed when the domain is closed
	wake       chan struct{} // cuts short the loop's wait for the domain
	// waiters are closed by the next stream attempt once libvirtd has
	// opened the console, or once that attempt has failed (see captureBoot).
	waiters []chan struct{}
}

func newConsole(conn *Conn, find func(*libvirt.Libvirt) (libvirt.Domain, error), runs func(context.Context) bool, log *slog.Logger) *console {
	c := &console{conn: conn, find: find, runs: runs, log: log, stop: make(chan struct{}), wake: make(chan struct{}, 1)}
	c.buf = bmc.NewConsoleBuffer(bmc.DefaultConsoleBacklog, c.typed)
	return c
}

// typed passes client input to the guest; with no stream it is dropped, as
// a serial line with nothing on it would.
func (c *console) typed(p []byte) {
	c.mu.Lock()
	in := c.input
	c.mu.Unlock()
	if in != nil {
		_, _ = in.Write(p)
	}
}

// testHookHoldPausedStart, when a test sets it, runs between opening the
// console of a domain started paused and resuming it: it holds the paused
// start open (until ctx, the power on's, ends).
var testHookHoldPausedStart func(ctx context.Context)

// captureBoot runs start, which starts the domain (paused when asked), so
// that the console captures the boot from the guest's first byte. A stream
// opened once the domain runs misses the start of the boot (SeaBIOS's
// banner): libvirtd resumes the vCPUs before it answers a start (tens of
// milliseconds before, hundreds on a busy host), the stream takes more
// round trips to open (more again over qemu+ssh), and qemu drops what the
// guest writes to a pty that nobody has open. So the domain starts paused,
// the stream is opened, and the guest resumed then. A driver that cannot
// start a domain paused (the test driver) starts it running, the stream
// following as fast as it can. A power on through the BMC is a user of the
// BMC asking for the console: the stream takes it from any other holder.
func (c *console) captureBoot(ctx context.Context, lv *libvirt.Libvirt, dom libvirt.Domain, start func(paused bool) error) error {
	if err := start(true); err != nil {
		if !errors.Is(err, errCannotStartPaused) && !hasCode(err, libvirt.ErrInvalidArg, libvirt.ErrNoSupport) {
			return err
		}
		if err := start(false); err != nil {
			return err
		}
		c.claim(true)
		return nil
	}
	c.awaitOpen(ctx, c.claim(true), "power on")
	if hold := testHookHoldPausedStart; hold != nil {
		hold(ctx)
	}
	if err := lv.DomainResume(dom); err != nil {
		return undoPausedStart(lv, dom, err)
	}
	return nil
}

// takeForReset takes the console, from another holder if need be, before
// a reset through the BMC: the reboot's output is captured from its first
// line. It returns once the stream is open, or when it is not in time.
func (c *console) takeForReset(ctx context.Context) {
	c.awaitOpen(ctx, c.claim(true), "reset")
}

// claim asks for the console on behalf of a user of the BMC: the next
// stream the BMC opens takes it from any other holder. The channel
// returned is closed once libvirtd has opened that stream, or once that
// attempt has failed.
//
// With the BMC's own stream open, a SOL activation (renew false) takes
// nothing: the channel is closed at once. A power on, reset or cycle
// (renew true) ends that stream and opens a new one with Force, before
// the guest runs: the open stream may be one libvirtd has already given to
// another holder (a `virsh console --force`) without telling it. libvirtd
// tells a stream that lost its console only if it was waiting on that
// stream at that instant (libvirt's virfdstream.c, virFDStreamCloseInt);
// while it was passing the guest's output on, the stream stays open,
// silent, for good: a destroy of the domain does not end it either. Such a
// stream ends only when the BMC sends on it (its end), and libvirtd may
// answer that only at the guest's next output, so the loop waits endWait
// at most for it (see streamOnce).
func (c *console) claim(renew bool) <-chan struct{} {
	opened := make(chan struct{})
	c.mu.Lock()
	switch {
	case c.open && !renew:
		close(opened)
	default:
		c.force = true
		c.waiters = append(c.waiters, opened)
	}
	if renew && c.open && c.input != nil {
		_ = c.input.Close()
		if c.ending != nil {
			close(c.ending)
			c.ending = nil
		}
	}
	c.mu.Unlock()
	c.want()
	return opened
}

// awaitOpen waits for opened (see claim) while op (a power on or a reset)
// waits to go on: at most consoleOpenWait, and never so long that ctx's
// deadline passes before op goes on.
func (c *console) awaitOpen(ctx context.Context, opened <-chan struct{}, op string) {
	wait := consoleOpenWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)-resumeMargin)
	}
	timer := time.NewTimer(max(wait, 0))
	defer timer.Stop()
	select {
	case <-opened:
	case <-c.stop:
	case <-ctx.Done():
	case <-timer.C:
		c.log.Warn("console stream not open in time; going on without it", "op", op, "waited", wait)
		testHookStuck("console stream not open in time")
	}
}

// errCannotStartPaused is what a start function of captureBoot returns
// when it cannot start the domain paused (as a driver that refuses to
// does): captureBoot starts it running instead.
var errCannotStartPaused = errors.New("cannot start the domain paused")

// hasCode reports whether err is a libvirt error with one of codes.
func hasCode(err error, codes ...libvirt.ErrorNumber) bool {
	var le libvirt.Error
	if !errors.As(err, &le) {
		return false
	}
	for _, code := range codes {
		if le.Code == uint32(code) {
			return true
		}
	}
	return false
}

// errResume marks a power on whose paused domain could not be resumed.
var errResume = errors.New("resume after opening the console")

// undoPausedStart handles a failed resume: a domain still paused is
// destroyed (never left half-started, looking powered on); one that runs
// (resumed by someone else meanwhile) is left alone.
func undoPausedStart(lv *libvirt.Libvirt, dom libvirt.Domain, cause error) error {
	state, _, err := lv.DomainGetState(dom, 0)
	switch {
	case err == nil && libvirt.DomainState(state) == libvirt.DomainRunning:
		return nil
	case err == nil && libvirt.DomainState(state) == libvirt.DomainPaused:
		if derr := lv.DomainDestroy(dom); derr != nil {
			return fmt.Errorf("%w: %w; destroying the paused domain failed too: %w", errResume, cause, derr)
		}
		return fmt.Errorf("%w: %w (the domain was powered off again)", errResume, cause)
	case err != nil:
		return fmt.Errorf("%w: %w; its state is unknown: %w", errResume, cause, err)
	}
	return fmt.Errorf("%w: %w", errResume, cause)
}

// want makes sure the stream loop runs, and wakes it if it waits for the
// domain to start.
func (c *console) want() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		select {
		case c.wake <- struct{}{}:
		default:
		}
		return
	}
	select {
	case <-c.stop:
		return
	default:
	}
	c.running = true
	go c.loop()
}

// attach connects a client (a SOL activation): a user of the BMC asking
// for the console, which the BMC takes from any other holder.
func (c *console) attach() (io.ReadWriteCloser, error) {
	rwc, err := c.buf.Attach()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.attached++
	c.mu.Unlock()
	c.claim(false)
	return &attachment{ReadWriteCloser: rwc, c: c}, nil
}

type attachment struct {
	io.ReadWriteCloser
	c    *console
	once sync.Once
}

func (a *attachment) Close() error {
	a.once.Do(func() {
		a.c.mu.Lock()
		a.c.attached--
		a.c.mu.Unlock()
	})
	return a.ReadWriteCloser.Close()
}

// streamResult is what one attempt of the stream loop came to.
type streamResult int

const (
	streamNone  streamResult = iota // no stream: the domain is off, or libvirtd out of reach
	streamEnded                     // a stream was open, and has ended
	streamHeld                      // another client holds the console
	streamError                     // libvirtd refused the stream otherwise
)

// loop streams the console while the domain runs, and waits for it to
// start while a client is attached; otherwise it ends.
func (c *console) loop() {
	// finish ends the loop unless a client attached meanwhile; the decision
	// and running=false share the lock, so a want() is never lost.
	finish := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.attached > 0 || len(c.waiters) > 0 {
			return false
		}
		c.running = false
		c.force = false
		return true
	}
	for {
		result := c.streamOnce()
		if result == streamNone && finish() {
			return
		}
		wait := consolePoll
		if result == streamHeld {
			wait = consoleHeldPoll
		}
		select {
		case <-c.stop:
			c.mu.Lock()
			c.running = false
			c.mu.Unlock()
			return
		case <-c.wake:
		case <-time.After(wait):
		}
		// The stream ended (the domain stopped, or another client took the
		// console): go on only while the domain runs again or a client
		// waits for it.
		ctx, cancel := context.WithTimeout(context.Background(), streamOpenTimeout)
		runs := c.runs(ctx)
		cancel()
		if !runs && finish() {
			return
		}
	}
}

// streamOnce opens the console stream of a running domain and copies its
// output until the stream ends. It takes the console from another holder
// only when a user of the BMC asked for it (force, see claim).
func (c *console) streamOnce() streamResult {
	// The boots waiting for a stream from now on: released once libvirtd
	// has opened this one, or when it fails.
	c.mu.Lock()
	waiters, force := c.waiters, c.force
	c.waiters = nil
	c.mu.Unlock()
	var release sync.Once
	opened := func() {
		release.Do(func() {
			for _, w := range waiters {
				close(w)
			}
		})
	}
	defer opened()
	// The look at the domain is bounded, and short: a reset waits at most
	// consoleOpenWait for the stream, and the loop tries again. (Calls
	// that went unanswered right after libvirtd had ended the BMC's stream
	// were go-libvirt hanging on a packet after the stream's end:
	// streamGuard.)
	var (
		lv  *libvirt.Libvirt
		dom libvirt.Domain
		on  bool
	)
	ctx, cancel := context.WithTimeout(context.Background(), consoleLookTimeout)
	err := c.conn.Do(ctx, func(l *libvirt.Libvirt) error {
		d, err := c.find(l)
		if err != nil {
			return err
		}
		up, err := domainOn(l, d)
		lv, dom, on = l, d, up
		return err
	})
	cancel()
	if err != nil {
		if !libvirt.IsNotFound(err) {
			c.log.Debug("console: the domain's state not read; trying again", "err", err)
		}
		return streamNone
	}
	if !on {
		return streamNone
	}
	inR, inW := io.Pipe()
	ending := make(chan struct{})
	c.mu.Lock()
	c.input, c.ending = inW, ending
	c.mu.Unlock()
	// go-libvirt starts reading the input only once libvirtd has answered
	// the open: by then the stream has the console. (It may start after
	// the stream has ended: ended says so.)
	ended := false
	in := &firstRead{r: inR, fn: func() {
		c.gotConsole(&ended)
		opened()
	}}
	flags := uint32(0)
	if force {
		flags = uint32(libvirt.DomainConsoleForce)
	}
	done := make(chan error, 1)
	go func() {
		done <- lv.DomainOpenConsoleBidirectional(dom, nil, in, c.buf, flags)
	}()
	var err2 error
	left := false
	select {
	case err2 = <-done:
	case <-ending:
		// A claim (power on, reset) ended the stream's input: libvirtd
		// answers at once when the stream still has the console. When it
		// does not within endWait, another client took the console from
		// this stream (libvirtd answers at the guest's next output, if
		// ever): the stream is left to end then, and the loop opens the
		// forced one the claim waits for.
		t := time.NewTimer(endWait)
		select {
		case err2 = <-done:
		case <-t.C:
			left = true
		case <-c.stop:
		}
		t.Stop()
	case <-c.stop:
		inW.Close()
		select {
		case err2 = <-done:
		case <-time.After(2 * time.Second):
		}
	}
	c.mu.Lock()
	c.input, c.ending = nil, nil
	wasOpen := c.open
	c.open, ended = false, true
	c.mu.Unlock()
	inW.Close()
	if left {
		go func() {
			<-done
			inR.Close()
		}()
		return streamEnded
	}
	inR.Close()
	switch {
	case !wasOpen && !force && hasCode(err2, libvirt.ErrOperationFailed):
		// "Active console session exists for this domain".
		c.heldElsewhere(err2)
		return streamHeld
	case !wasOpen && err2 != nil:
		c.log.Debug("console stream not opened", "err", err2, "force", force)
		return streamError
	case err2 != nil && !errors.Is(err2, io.ErrClosedPipe):
		c.log.Debug("console stream ended", "err", err2)
	}
	return streamEnded
}

// gotConsole records that libvirtd has opened the BMC's stream, unless
// that stream has ended already: the console is the BMC's, and what a user
// of the BMC asked for is done, the claims made while libvirtd opened it
// included (the stream loop had taken the claims before them; without this
// they would wait for a next stream, consoleOpenWait at most).
func (c *console) gotConsole(ended *bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *ended {
		return
	}
	c.open = true
	c.force = false
	for _, w := range c.waiters {
		close(w)
	}
	c.waiters = nil
	if c.heldLogged {
		c.heldLogged = false
		c.log.Info("serial console free again: the BMC captures it")
	}
}

// heldElsewhere logs, once until the BMC has the console again, that
// another client holds it.
func (c *console) heldElsewhere(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.heldLogged {
		c.log.Debug("serial console still held by another client")
		return
	}
	c.heldLogged = true
	c.log.Info("serial console held by another client (virsh console?); the BMC leaves it and tries again without taking it; a SOL activate, power on, reset or cycle through the BMC takes it", "err", err)
}

// close stops the stream loop.
func (c *console) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	if c.input != nil {
		c.input.Close()
	}
}

// firstRead calls fn when its reader is first read.
type firstRead struct {
	r    io.Reader
	fn   func()
	once sync.Once
}

func (f *firstRead) Read(p []byte) (int, error) {
	f.once.Do(f.fn)
	return f.r.Read(p)
}

// stuckHook, when a test sets it, is called where the BMC finds a libvirt
// call stuck (the connection about to be closed under it, a console
// stream not open in time), while the stuck goroutines still are: the
// test records their stacks.
var stuckHook atomic.Pointer[func(what string)]

// testHookStuck calls stuckHook, if set.
func testHookStuck(what string) {
	if fn := stuckHook.Load(); fn != nil {
		(*fn)(what)
	}
}

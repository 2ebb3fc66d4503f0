package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

// consolePoll is how often a console waiting for its domain to start
// checks it.
const consolePoll = time.Second

// consoleOpenWait bounds how long a domain started by the BMC stays paused
// waiting for its console stream; after that it runs without it.
const consoleOpenWait = 5 * time.Second

// streamOpenTimeout bounds the stream loop's wait for the connection and
// its look at the domain's state.
const streamOpenTimeout = 10 * time.Second

// resumeMargin is the time kept, within a caller's deadline, for resuming
// the domain once the console wait is over.
const resumeMargin = 500 * time.Millisecond

// console is a domain's serial console as its BMC sees it: a libvirt
// console stream kept open while the domain runs, feeding a bounded buffer,
// so that output written while no client is attached (a boot after a power
// on) is there when one attaches. The stream is wanted from a BMC power-on
// until the domain stops, and for as long as a client is attached.
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
	stop     chan struct{}  // closed when the domain is closed
	wake     chan struct{}  // cuts short the loop's wait for the domain
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
// following as fast as it can.
func (c *console) captureBoot(ctx context.Context, lv *libvirt.Libvirt, dom libvirt.Domain, start func(paused bool) error) error {
	if err := start(true); err != nil {
		if !errors.Is(err, errCannotStartPaused) && !hasCode(err, libvirt.ErrInvalidArg, libvirt.ErrNoSupport) {
			return err
		}
		if err := start(false); err != nil {
			return err
		}
		c.want()
		return nil
	}
	opened := make(chan struct{})
	c.mu.Lock()
	c.waiters = append(c.waiters, opened)
	c.mu.Unlock()
	c.want()
	// The guest waits for its console at most consoleOpenWait, and never
	// so long that the caller's deadline passes before it is resumed.
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
		c.log.Warn("console stream not open in time; the guest starts without it", "waited", wait)
	}
	if hold := testHookHoldPausedStart; hold != nil {
		hold(ctx)
	}
	if err := lv.DomainResume(dom); err != nil {
		return undoPausedStart(lv, dom, err)
	}
	return nil
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

// attach connects a client.
func (c *console) attach() (io.ReadWriteCloser, error) {
	rwc, err := c.buf.Attach()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.attached++
	c.mu.Unlock()
	c.want()
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
		return true
	}
	for {
		streamed := c.streamOnce()
		if !streamed && finish() {
			return
		}
		select {
		case <-c.stop:
			c.mu.Lock()
			c.running = false
			c.mu.Unlock()
			return
		case <-c.wake:
		case <-time.After(consolePoll):
		}
		// The stream ended (the domain stopped): go on only while the
		// domain runs again or a client waits for it.
		ctx, cancel := context.WithTimeout(context.Background(), streamOpenTimeout)
		runs := c.runs(ctx)
		cancel()
		if !runs && finish() {
			return
		}
	}
}

// streamOnce opens the console stream of a running domain and copies its
// output until the stream ends. It reports whether a stream was open.
func (c *console) streamOnce() bool {
	// The boots waiting for a stream from now on: released once libvirtd
	// has opened this one, or when it fails.
	c.mu.Lock()
	waiters := c.waiters
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
	ctx, cancel := context.WithTimeout(context.Background(), streamOpenTimeout)
	lv, _, err := c.conn.current(ctx)
	cancel()
	if err != nil {
		return false
	}
	dom, err := c.find(lv)
	if err != nil {
		return false
	}
	if on, err := domainOn(lv, dom); err != nil || !on {
		return false
	}
	inR, inW := io.Pipe()
	c.mu.Lock()
	c.input = inW
	c.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		// Force: take the console over from a stale holder (virsh console).
		// go-libvirt starts reading the input only once libvirtd has
		// answered the open: by then the stream has the pty.
		in := &firstRead{r: inR, fn: opened}
		done <- lv.DomainOpenConsoleBidirectional(dom, nil, in, c.buf, uint32(libvirt.DomainConsoleForce))
	}()
	var err2 error
	select {
	case err2 = <-done:
	case <-c.stop:
		inW.Close()
		select {
		case err2 = <-done:
		case <-time.After(2 * time.Second):
		}
	}
	c.mu.Lock()
	c.input = nil
	c.mu.Unlock()
	inW.Close()
	inR.Close()
	if err2 != nil && !errors.Is(err2, io.ErrClosedPipe) {
		c.log.Debug("console stream ended", "err", err2)
	}
	return true
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

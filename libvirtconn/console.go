package libvirtconn

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

// consolePoll is how often a console waiting for its domain to start
// checks it.
const consolePoll = time.Second

// console is a domain's serial console as its BMC sees it: a libvirt
// console stream kept open while the domain runs, feeding a bounded buffer,
// so that output written while no client is attached (a boot after a power
// on) is there when one attaches. The stream is wanted from a BMC power-on
// until the domain stops, and for as long as a client is attached.
type console struct {
	d   *Domain
	buf *bmc.ConsoleBuffer

	mu       sync.Mutex
	running  bool           // the stream loop is running
	attached int            // clients attached
	input    *io.PipeWriter // typed input into the current stream, or nil
	stop     chan struct{}  // closed when the domain is closed
}

func newConsole(d *Domain) *console {
	c := &console{d: d, stop: make(chan struct{})}
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

// want makes sure the stream loop runs.
func (c *console) want() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
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
		if c.attached > 0 {
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
		case <-time.After(consolePoll):
		}
		// The stream ended (the domain stopped): go on only while the
		// domain runs again or a client waits for it.
		if on, _ := c.d.PowerState(context.Background()); on != bmc.PowerOn && finish() {
			return
		}
	}
}

// streamOnce opens the console stream of a running domain and copies its
// output until the stream ends. It reports whether a stream was open.
func (c *console) streamOnce() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	lv, _, err := c.d.conn.current(ctx)
	cancel()
	if err != nil {
		return false
	}
	dom, err := c.d.lookup(lv)
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
		done <- lv.DomainOpenConsoleBidirectional(dom, nil, inR, c.buf, uint32(libvirt.DomainConsoleForce))
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
		c.d.log.Debug("console stream ended", "err", err2)
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

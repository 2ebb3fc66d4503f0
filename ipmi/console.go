package ipmi

import (
	"context"
	"errors"
	"io"
	"sync"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/govbmc/govbmc/bmc"
)

// consoleBacklog bounds the console output read from the machine but not
// yet taken by go-ipmi's SOL pump.
const consoleBacklog = 64 << 10

// consoleHAL hands go-ipmi's SOL payload the machine's serial console.
type consoleHAL struct {
	m bmc.Machine
	h *nodeHandlers
}

// Open attaches to the machine's console. A console someone else holds is
// "already active" to the IPMI client; a machine without one has SOL
// disabled.
func (c consoleHAL) Open(ctx context.Context) (hal.ConsoleConn, error) {
	rwc, err := c.m.OpenConsole(ctx)
	switch {
	case errors.Is(err, bmc.ErrConsoleBusy):
		return nil, gobmc.ErrSOLAlreadyActive
	case errors.Is(err, bmc.ErrNotSupported):
		return nil, hal.ErrNotSupported
	case err != nil:
		return nil, err
	}
	if c.h != nil {
		c.h.record(bmc.EventConsoleActivated, "serial over LAN")
	}
	return newConsoleConn(rwc), nil
}

// consoleConn adapts a blocking console stream to go-ipmi's non-blocking
// ReadAvailable: a goroutine reads ahead into a bounded buffer. Close ends
// the stream, which ends the goroutine.
type consoleConn struct {
	rwc io.ReadWriteCloser

	mu  sync.Mutex
	buf []byte
	err error // the stream's end, reported once the buffer is drained
}

func newConsoleConn(rwc io.ReadWriteCloser) *consoleConn {
	c := &consoleConn{rwc: rwc}
	go c.readLoop()
	return c
}

func (c *consoleConn) readLoop() {
	chunk := make([]byte, 4096)
	for {
		n, err := c.rwc.Read(chunk)
		c.mu.Lock()
		c.buf = append(c.buf, chunk[:n]...)
		if over := len(c.buf) - consoleBacklog; over > 0 {
			c.buf = append(c.buf[:0], c.buf[over:]...)
		}
		if err != nil {
			c.err = err
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// ReadAvailable returns console output already read, without blocking.
func (c *consoleConn) ReadAvailable(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.buf) == 0 {
		return 0, c.err
	}
	n := copy(p, c.buf)
	c.buf = append(c.buf[:0], c.buf[n:]...)
	return n, nil
}

// Write sends typed characters to the machine.
func (c *consoleConn) Write(p []byte) (int, error) { return c.rwc.Write(p) }

// Close detaches from the console.
func (c *consoleConn) Close() error { return c.rwc.Close() }

// SendBreak is not available: neither a simulated nor a libvirt console
// stream can carry a serial BREAK.
func (c *consoleConn) SendBreak(context.Context) error { return hal.ErrNotSupported }

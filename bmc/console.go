package bmc

import (
	"io"
	"sync"
)

// DefaultConsoleBacklog bounds the serial output a machine keeps while no
// client is attached, so a client attaching after power-on still sees boot
// messages.
const DefaultConsoleBacklog = 64 << 10

// ConsoleBuffer is a machine's serial console as a BMC sees it: output the
// machine writes is queued (bounded: the oldest bytes go first) until the one
// attached client reads it; bytes the client writes go to the machine.
type ConsoleBuffer struct {
	mu       sync.Mutex
	pending  []byte
	limit    int
	wake     chan struct{} // closed and replaced whenever pending grows
	attached *consoleConn
	input    func([]byte)
}

// NewConsoleBuffer returns a console keeping at most limit bytes of unread
// output; input receives what an attached client types.
func NewConsoleBuffer(limit int, input func([]byte)) *ConsoleBuffer {
	if limit <= 0 {
		limit = DefaultConsoleBacklog
	}
	return &ConsoleBuffer{limit: limit, wake: make(chan struct{}), input: input}
}

// Write queues machine output for the attached (or next) client.
func (c *ConsoleBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, p...)
	if over := len(c.pending) - c.limit; over > 0 {
		c.pending = append(c.pending[:0], c.pending[over:]...)
	}
	close(c.wake)
	c.wake = make(chan struct{})
	return len(p), nil
}

// Attach connects a client; ErrConsoleBusy when one is attached already.
func (c *ConsoleBuffer) Attach() (io.ReadWriteCloser, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attached != nil {
		return nil, ErrConsoleBusy
	}
	c.attached = &consoleConn{buf: c, done: make(chan struct{})}
	return c.attached, nil
}

type consoleConn struct {
	buf       *ConsoleBuffer
	done      chan struct{}
	closeOnce sync.Once
}

// Read blocks until machine output is available or the connection is closed.
func (cc *consoleConn) Read(p []byte) (int, error) {
	c := cc.buf
	for {
		c.mu.Lock()
		if c.attached != cc {
			c.mu.Unlock()
			return 0, io.EOF
		}
		if len(c.pending) > 0 {
			n := copy(p, c.pending)
			c.pending = append(c.pending[:0], c.pending[n:]...)
			c.mu.Unlock()
			return n, nil
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-cc.done:
			return 0, io.EOF
		}
	}
}

// Write passes typed bytes to the machine.
func (cc *consoleConn) Write(p []byte) (int, error) {
	select {
	case <-cc.done:
		return 0, io.ErrClosedPipe
	default:
	}
	if cc.buf.input != nil {
		cc.buf.input(append([]byte(nil), p...))
	}
	return len(p), nil
}

// Close detaches the client, freeing the console for the next one.
func (cc *consoleConn) Close() error {
	cc.closeOnce.Do(func() {
		c := cc.buf
		c.mu.Lock()
		if c.attached == cc {
			c.attached = nil
		}
		c.mu.Unlock()
		close(cc.done)
	})
	return nil
}

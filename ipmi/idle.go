package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// DefaultIdleAfter is how long a node with no session open must be quiet
// before its BMC parks. Waking again costs microseconds (a goroutine and
// go-ipmi's loop set up), while every awake BMC holds its loop's stack,
// buffer and ticker: the shorter the window, the fewer a sweep keeps awake
// at once (10,000 BMCs right after a full-session sweep, this machine:
// about 220 MiB resident with 100 ms, 250 MiB with 500 ms).
const DefaultIdleAfter = 100 * time.Millisecond

// errParked ends go-ipmi's read loop when its BMC parks. It wraps
// net.ErrClosed, the one error on which go-ipmi's Serve returns
// without the server being closed.
var errParked = fmt.Errorf("ipmi: idle BMC parked: %w", net.ErrClosed)

// serveWhenAwake runs go-ipmi's read loop only while the node has traffic.
//
// go-ipmi's Serve holds, for as long as it runs, a 4 KiB read buffer and a
// goroutine of its own (its session eviction ticker) besides the one that
// reads, so ten thousand idle BMCs held 10,000 buffers and 20,000
// goroutines. A parked BMC instead waits on its socket without reading it
// (one goroutine, no buffer); its first datagram wakes it, and go-ipmi's
// loop runs again until the node has had no session open and no datagram
// for idleAfter. The socket stays bound throughout: the kernel queues what
// arrives while the BMC wakes.
//
// go-ipmi's loop runs on a goroutine of its own, started at each wake,
// and the wait here stays shallow: the stack the loop grows (tens of KiB
// through the RMCP+ and crypto paths) is freed when the BMC parks, and the
// goroutine that waits keeps its first 2 KiB stack. A parked BMC is one
// small stack, however much it served before.
func (s *Server) serveWhenAwake(ctx context.Context) error {
	served := make(chan error, 1)
	for {
		if err := s.awaitDatagram(); err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("wait for a datagram: %w", err)
		}
		s.awake.Store(true)
		go s.serveAwake(ctx, served)
		err := <-served
		s.h.parked()
		s.awake.Store(false)
		if err != nil || s.closed.Load() {
			return err
		}
	}
}

// serveAwake runs go-ipmi's read loop until the BMC parks, then clears the
// read deadline the loop left (awaitDatagram waits without one) and sends
// how the loop ended.
func (s *Server) serveAwake(ctx context.Context, served chan<- error) {
	err := s.srv.Serve(ctx)
	if derr := s.conn.SetReadDeadline(time.Time{}); err == nil && derr != nil && !s.closed.Load() {
		err = fmt.Errorf("clear the read deadline: %w", derr)
	}
	served <- err
}

// awaitDatagram returns once a datagram waits on the socket (or the socket
// has an error for ReadFrom to report), reading nothing. It peeks with a
// bare recvfrom(2), which asks for no source address: a parked BMC's
// goroutine never runs deeper than this (see serveWhenAwake).
func (s *Server) awaitDatagram() error {
	rc, err := s.conn.SyscallConn()
	if err != nil {
		return err
	}
	var b [1]byte
	return rc.Read(func(fd uintptr) bool {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		return errno != syscall.EAGAIN
	})
}

// readAwake reads the next datagram for go-ipmi's loop; once the node has
// been quiet for c.idleAfter with no session open, RMCP+ or IPMI 1.5
// (pending ones included, so a login under way and an SOL console keep it
// awake, and go-ipmi's eviction keeps running for them), it returns
// errParked instead.
func (c *conn) readAwake(p []byte) (int, net.Addr, error) {
	for {
		if err := c.UDPConn.SetReadDeadline(time.Now().Add(c.idleAfter)); err != nil {
			return 0, nil, err
		}
		n, addr, err := c.UDPConn.ReadFrom(p)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, addr, err
		}
		if c.state.Sessions.Count() == 0 && c.state.V15Sessions.Count() == 0 {
			return 0, nil, errParked
		}
	}
}

// parked lets go of what the node keeps only while awake: its handlers
// (the next request makes them again) and what its sessions left in the
// per-session maps. A node parks with no session open, RMCP+ or IPMI 1.5,
// so nothing there is anyone's any more; go-ipmi tells of an RMCP+
// session's end (see New) but not of an IPMI 1.5 one's, whose entries
// would otherwise stay.
func (h *nodeHandlers) parked() {
	h.own.list.Store(nil)
	h.peers.mu.Lock()
	h.peers.addr = nil
	h.peers.mu.Unlock()
	h.retransmits.mu.Lock()
	h.retransmits.last = nil
	h.retransmits.mu.Unlock()
}

package libvirtconn

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
)

// libvirt RPC framing (libvirt's src/rpc/virnetprotocol.x): a packet is a
// 4-byte big-endian length (counting itself), a 24-byte header of six
// big-endian words (program, version, procedure, type, serial, status),
// then the payload.
const (
	rpcLenSize    = 4
	rpcHeaderSize = 24

	rpcCall         = 0 // type: a call
	rpcReply        = 1 // type: a reply to a call
	rpcStream       = 3 // type: stream data, or a stream's end
	rpcCallWithFDs  = 4 // type: a call carrying file descriptors
	rpcReplyWithFDs = 5 // type: a reply carrying file descriptors
	rpcStreamHole   = 6 // type: a hole in a sparse stream

	rpcStatusOK       = 0
	rpcStatusError    = 1
	rpcStatusContinue = 2
)

// endedSerials is how many ended calls a streamGuard remembers.
const endedSerials = 256

// maxEarlyStream is how many bytes of stream packets a streamGuard holds
// for one call whose reply has not come yet (see streamGuard). libvirtd
// sends them only in the instant between its adding the stream and its
// sending the reply; more than this is not that, and the connection is
// given up rather than grow without bound.
const maxEarlyStream = 4 << 20

// streamGuard is the net.Conn govbmc hands go-libvirt. It works around two
// ways go-libvirt loses a connection on a stream (GOLIBVIRT.md, rows 1 and
// 2). go-libvirt's reader routes a packet by holding the callbacks' lock
// while it hands the packet to the caller on an unbuffered channel
// (rpc.go, callback), and a caller frees its channel only after it has
// returned from the call (requestStream's deferred deregister, which needs
// that lock). A packet libvirtd sends for a call after the one go-libvirt
// took as that call's last, when it comes before the caller has
// deregistered, blocks the reader for good, holding the lock: no later call
// on the connection gets an answer (until the call timeout closes the
// connection).
//
// Row 1: libvirtd 9.0.0 sends such a packet after a console stream's
// "stream had I/O failure" (another client took the console): an empty
// STREAM packet with status OK, for the same serial. The guard drops every
// packet for a call go-libvirt has had its last packet for: an error
// (status ERROR), a stream's end (a STREAM packet with status OK, or with
// no data: go-libvirt takes either as the end). go-libvirt would have had
// nowhere to put it anyway.
//
// Row 2: libvirtd starts a stream as it adds it, before it sends the
// reply to the call that opened it (remote_daemon_stream.c,
// daemonAddClientStream enables READABLE at once; the reply goes out when
// the dispatch returns), so a guest printing at that instant has its
// output arrive first. go-libvirt takes the first packet of a call as its
// reply, and the reply (status OK) that follows as the stream's end; the
// next output then hangs the reader as above. The guard holds the STREAM
// packets of a call whose reply has not come (it reads the calls go-libvirt
// writes) and passes them on right after the reply.
//
// Only go-libvirt's reader goroutine calls Read; go-libvirt writes a packet
// at a time under its own lock.
type streamGuard struct {
	net.Conn
	r       *bufio.Reader
	log     *slog.Logger
	dropped *atomic.Int64 // packets dropped, counted for tests
	held    *atomic.Int64 // packets held until their call's reply, counted for tests

	pending []byte   // the packet's length and header (or all of a held one), not yet read
	body    int64    // the kept packet's payload bytes not yet read from r
	queue   [][]byte // whole packets to pass on after the current one

	ended map[int32]struct{}
	ring  [endedSerials]int32
	next  int
	full  bool

	mu       sync.Mutex
	awaiting map[int32]*earlyStream // calls written whose reply has not come
	out      []byte                 // the start of the header being written
	outSkip  int64                  // payload bytes of the packet being written still to pass
}

// earlyStream is what a streamGuard holds of a call awaiting its reply.
type earlyStream struct {
	packets [][]byte
	bytes   int
}

// newStreamGuard wraps nc; dropped and held (either may be nil) count the
// packets it drops and holds.
func newStreamGuard(nc net.Conn, log *slog.Logger, dropped, held *atomic.Int64) *streamGuard {
	return &streamGuard{
		Conn: nc, r: bufio.NewReaderSize(nc, 64<<10), log: log, dropped: dropped, held: held,
		ended: make(map[int32]struct{}, endedSerials), awaiting: make(map[int32]*earlyStream),
	}
}

// Write records the calls go-libvirt sends, before libvirtd can answer
// them, and passes p on.
func (g *streamGuard) Write(p []byte) (int, error) {
	g.mu.Lock()
	g.scanCalls(p)
	g.mu.Unlock()
	return g.Conn.Write(p)
}

// scanCalls follows the packets go-libvirt writes, in pieces of any size,
// and records each call's serial as awaiting its reply.
func (g *streamGuard) scanCalls(p []byte) {
	for len(p) > 0 {
		if g.outSkip > 0 {
			n := min(int64(len(p)), g.outSkip)
			g.outSkip -= n
			p = p[n:]
			continue
		}
		n := min(len(p), rpcLenSize+rpcHeaderSize-len(g.out))
		g.out = append(g.out, p[:n]...)
		p = p[n:]
		if len(g.out) < rpcLenSize+rpcHeaderSize {
			return
		}
		length := int64(binary.BigEndian.Uint32(g.out[0:4]))
		h := g.out[rpcLenSize:]
		if typ := binary.BigEndian.Uint32(h[12:16]); typ == rpcCall || typ == rpcCallWithFDs {
			g.awaiting[int32(binary.BigEndian.Uint32(h[16:20]))] = &earlyStream{}
		}
		g.outSkip = max(length-int64(len(g.out)), 0)
		g.out = g.out[:0]
	}
}

// Read gives go-libvirt the packets it is to see.
func (g *streamGuard) Read(p []byte) (int, error) {
	for {
		if len(g.pending) > 0 {
			n := copy(p, g.pending)
			g.pending = g.pending[n:]
			return n, nil
		}
		if g.body > 0 {
			if int64(len(p)) > g.body {
				p = p[:g.body]
			}
			n, err := g.r.Read(p)
			g.body -= int64(n)
			return n, err
		}
		if len(g.queue) > 0 {
			pkt := g.queue[0]
			g.queue = g.queue[1:]
			if g.keep(pkt[rpcLenSize:], int64(len(pkt)-rpcLenSize-rpcHeaderSize)) {
				g.pending = pkt
			}
			continue
		}
		frame := make([]byte, rpcLenSize+rpcHeaderSize)
		if _, err := io.ReadFull(g.r, frame); err != nil {
			// Part of a frame is of no use to go-libvirt: the connection
			// is over.
			return 0, err
		}
		length := int64(binary.BigEndian.Uint32(frame[0:4]))
		body := max(length-int64(len(frame)), 0)
		held, err := g.holdEarly(frame, body)
		if err != nil {
			return 0, err
		}
		if held {
			continue
		}
		if g.keep(frame[rpcLenSize:], body) {
			g.pending, g.body = frame, body
			continue
		}
		if _, err := io.CopyN(io.Discard, g.r, body); err != nil {
			return 0, err
		}
	}
}

// holdEarly holds the packet whose frame has just been read (its body
// still to read) if it is stream data for a call awaiting its reply; at
// that reply, it queues what was held to follow it. It reports whether it
// held the packet.
func (g *streamGuard) holdEarly(frame []byte, body int64) (bool, error) {
	h := frame[rpcLenSize:]
	typ := binary.BigEndian.Uint32(h[12:16])
	serial := int32(binary.BigEndian.Uint32(h[16:20]))
	g.mu.Lock()
	early, awaiting := g.awaiting[serial]
	switch {
	case !awaiting:
	case typ == rpcReply || typ == rpcReplyWithFDs:
		delete(g.awaiting, serial)
		g.queue = append(g.queue, early.packets...)
	case typ == rpcStream || typ == rpcStreamHole:
		early.bytes += len(frame) + int(body)
		over := early.bytes > maxEarlyStream
		g.mu.Unlock()
		if over {
			return false, fmt.Errorf("libvirt: over %d bytes of stream data for call %d before its reply", maxEarlyStream, serial)
		}
		pkt := make([]byte, len(frame)+int(body))
		copy(pkt, frame)
		if _, err := io.ReadFull(g.r, pkt[len(frame):]); err != nil {
			return false, err
		}
		g.mu.Lock()
		early.packets = append(early.packets, pkt)
		g.mu.Unlock()
		if g.held != nil {
			g.held.Add(1)
		}
		g.log.Debug("libvirt: held a stream packet that came before its call's reply (go-libvirt would take it as the reply)", "serial", serial, "bytes", body)
		return true, nil
	}
	g.mu.Unlock()
	return false, nil
}

// keep decides on a packet from its header and payload size, and records
// the calls that have ended.
func (g *streamGuard) keep(h []byte, body int64) bool {
	procedure := binary.BigEndian.Uint32(h[8:12])
	typ := binary.BigEndian.Uint32(h[12:16])
	serial := int32(binary.BigEndian.Uint32(h[16:20]))
	status := binary.BigEndian.Uint32(h[20:24])
	if typ != rpcReply && typ != rpcStream && typ != rpcReplyWithFDs {
		return true // an event: routed by its procedure, not by serial
	}
	if _, over := g.ended[serial]; over {
		if g.dropped != nil {
			g.dropped.Add(1)
		}
		g.log.Debug("libvirt: dropped a packet for a call that has ended (go-libvirt would hang on it)",
			"serial", serial, "procedure", procedure, "type", typ, "status", status, "bytes", body)
		return false
	}
	if status == rpcStatusError || (typ == rpcStream && (status == rpcStatusOK || body == 0)) {
		g.remember(serial)
	}
	return true
}

// remember records that serial's call has ended, forgetting the oldest
// once endedSerials are remembered.
func (g *streamGuard) remember(serial int32) {
	if g.full {
		delete(g.ended, g.ring[g.next])
	}
	g.ring[g.next] = serial
	g.ended[serial] = struct{}{}
	g.next = (g.next + 1) % endedSerials
	g.full = g.full || g.next == 0
}

package libvirtconn

import (
	"bufio"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
)

// libvirt RPC framing (libvirt's src/rpc/virnetprotocol.x): a packet is a
// 4-byte big-endian length (counting itself), a 24-byte header of six
// big-endian words (program, version, procedure, type, serial, status),
// then the payload.
const (
	rpcLenSize    = 4
	rpcHeaderSize = 24

	rpcReply        = 1 // type: a reply to a call
	rpcStream       = 3 // type: stream data, or a stream's end
	rpcReplyWithFDs = 5 // type: a reply carrying file descriptors

	rpcStatusOK       = 0
	rpcStatusError    = 1
	rpcStatusContinue = 2
)

// endedSerials is how many ended calls a streamGuard remembers.
const endedSerials = 256

// streamGuard is the net.Conn govbmc hands go-libvirt. It works around a
// deadlock in go-libvirt (GOLIBVIRT.md, row 1): go-libvirt's reader routes
// a packet by holding the callbacks' lock while it hands the packet to the
// caller on an unbuffered channel (rpc.go, callback), and a caller frees its
// channel only after it has returned from the call (requestStream's
// deferred deregister, which needs that lock). A packet libvirtd sends for
// a call after the one go-libvirt took as that call's last, when it comes
// before the caller has deregistered, blocks the reader for good, holding
// the lock: no later call on the connection gets an answer (until the call
// timeout closes the connection). libvirtd 9.0.0 sends one after a console
// stream's "stream had I/O failure" (another client took the console): an
// empty STREAM packet with status OK, for the same serial.
//
// The guard reads the packets before go-libvirt does and drops every
// packet for a call go-libvirt has had its last packet for: an error
// (status ERROR), a stream's end (a STREAM packet with status OK, or with
// no data: go-libvirt takes either as the end). go-libvirt would have had
// nowhere to put it anyway. Only go-libvirt's reader goroutine calls Read.
type streamGuard struct {
	net.Conn
	r       *bufio.Reader
	log     *slog.Logger
	dropped *atomic.Int64 // packets dropped, counted for tests

	pending []byte // the kept packet's length and header, not yet read
	body    int64  // the kept packet's payload bytes not yet read

	ended map[int32]struct{}
	ring  [endedSerials]int32
	next  int
	full  bool
}

// newStreamGuard wraps nc; dropped counts the packets it drops.
func newStreamGuard(nc net.Conn, log *slog.Logger, dropped *atomic.Int64) *streamGuard {
	return &streamGuard{Conn: nc, r: bufio.NewReaderSize(nc, 64<<10), log: log, dropped: dropped, ended: make(map[int32]struct{}, endedSerials)}
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
		frame := make([]byte, rpcLenSize+rpcHeaderSize)
		if _, err := io.ReadFull(g.r, frame); err != nil {
			// Part of a frame is of no use to go-libvirt: the connection
			// is over.
			return 0, err
		}
		length := int64(binary.BigEndian.Uint32(frame[0:4]))
		body := max(length-int64(len(frame)), 0)
		if g.keep(frame[rpcLenSize:], body) {
			g.pending, g.body = frame, body
			continue
		}
		if _, err := io.CopyN(io.Discard, g.r, body); err != nil {
			return 0, err
		}
	}
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

package ipmi

import (
	"context"
	"sync"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// replayDepth is how far behind the highest sequence number an RMCP+
// request may still arrive (go-ipmi's window: 16 behind, 15 ahead).
const replayDepth = 16

// replayGuard makes an RMCP+ request execute at most once per session
// sequence number.
//
// go-ipmi's RMCP+ window only checks that a sequence number lies within 16
// behind and 15 ahead of the last one accepted; it does not remember which
// it has seen, so an authenticated datagram replayed verbatim (same
// sequence number, valid AuthCode) is executed again, e.g. a captured power
// cycle replayed after the session's next commands (IPMI 2.0 §6.12.13 asks
// for duplicates to be rejected, as go-ipmi's own IPMI 1.5 path does).
//
// The guard records, per session, which sequence numbers have been
// dispatched. It runs in two places:
//
//   - as the outermost handler middleware, where go-ipmi has already checked
//     the datagram's integrity and window and holds the session's ProcMu, so
//     that Session.InboundSeq is this request's sequence number. Only
//     verified datagrams are recorded, so forged ones cannot use up the
//     window. A duplicate that reaches it (sent before the original was
//     dispatched) is not executed: it gets the first execution's answer, or
//     0xCF (cannot execute duplicated request) when that is gone.
//   - in the transport's ReadFrom, which drops a datagram whose sequence
//     number the session has already dispatched, or that lies further behind
//     than the window, before go-ipmi spends any work on it: a replay gets
//     no answer, as from a BMC that rejects it.
//
// SOL payloads share the session's sequence numbers but are not tracked
// (SOL has packet sequence numbers of its own); the guard never refuses a
// number for being ahead, so SOL traffic in between does not matter.
type replayGuard struct {
	mu       sync.Mutex
	sessions map[uint32]*seqWindow
}

// seqWindow is one session's record: the highest sequence number
// dispatched and which of the replayDepth before it were.
type seqWindow struct {
	sess *gobmc.Session // the session it belongs to (an ID may be reused later)
	high uint32
	seen uint32 // bit i: high-i was dispatched
	// answers keeps the result of each sequence number in the window, for
	// a duplicate that slipped past ReadFrom.
	answers [2 * replayDepth]answer
}

type answer struct {
	seq  uint32
	ok   bool
	resp []byte
	cc   types.CompletionCode
}

func newReplayGuard() *replayGuard {
	return &replayGuard{}
}

// behind is how far seq is behind w.high (negative when ahead).
func (w *seqWindow) behind(seq uint32) int64 {
	return int64(int32(w.high - seq))
}

// done reports whether seq was dispatched or is too old to tell.
func (w *seqWindow) done(seq uint32) bool {
	b := w.behind(seq)
	switch {
	case b < 0:
		return false
	case b > replayDepth:
		return true
	}
	return w.seen&(1<<b) != 0
}

// mark records seq as dispatched.
func (w *seqWindow) mark(seq uint32) {
	if b := w.behind(seq); b < 0 {
		if -b >= 32 {
			w.seen = 0
		} else {
			w.seen <<= uint(-b)
		}
		w.high = seq
		w.seen |= 1
	} else {
		w.seen |= 1 << b
	}
}

// dropDatagram reports an in-session RMCP+ IPMI request whose sequence
// number its session has already dispatched (or that is older than the
// window); it is called from ReadFrom with the datagram's header.
func (g *replayGuard) dropDatagram(h header) bool {
	if !h.is(types.PayloadTypeIPMI) || h.sessionID == 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.sessions[h.sessionID]
	return w != nil && w.done(h.seq)
}

// forget drops a session's record; the session store calls it when the
// session goes.
func (g *replayGuard) forget(sid uint32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	del(&g.sessions, sid)
}

// middleware executes each RMCP+ session request once.
func (g *replayGuard) middleware(next handlers.Handler) handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		if hctx == nil || hctx.Session == nil {
			return next.Handle(ctx, hctx, req)
		}
		// go-ipmi set InboundSeq to this request's number when it accepted
		// the datagram, under the ProcMu it still holds.
		sess, seq := hctx.Session, hctx.Session.InboundSeq

		g.mu.Lock()
		w := g.sessions[sess.BMCID]
		if w == nil || w.sess != sess {
			w = &seqWindow{sess: sess, high: seq}
			put(&g.sessions, sess.BMCID, w)
		} else if w.done(seq) {
			a := w.answers[seq%uint32(len(w.answers))]
			cached := a.ok && a.seq == seq && w.behind(seq) <= replayDepth
			g.mu.Unlock()
			if cached {
				return a.resp, a.cc, nil
			}
			return nil, types.CodeCannotExecuteDuplicatedRequest, nil
		}
		w.mark(seq)
		g.mu.Unlock()

		resp, cc, err := next.Handle(ctx, hctx, req)

		g.mu.Lock()
		if g.sessions[sess.BMCID] == w {
			w.answers[seq%uint32(len(w.answers))] = answer{seq: seq, ok: err == nil, resp: resp, cc: cc}
		}
		g.mu.Unlock()
		return resp, cc, err
	})
}

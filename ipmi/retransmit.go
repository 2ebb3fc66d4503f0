package ipmi

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// retransmitWindow is how long a session's last Chassis Control result is
// kept to answer a retransmission of it. ipmitool retransmits an unanswered
// request (with a new session sequence number, so go-ipmi's replay window
// does not catch it) after its timeout, once per retry.
const retransmitWindow = 15 * time.Second

// retransmits makes Chassis Control, the one command whose repetition does
// harm (a second power cycle, a second reset), execute once per request: a
// client that retransmits because the machine took longer than its timeout
// gets the first execution's answer. The server dispatches one session's
// requests one at a time, so the retransmission is seen after the original
// completes. The same directive sent again in the same session within the
// window is taken for a retransmission; one-shot clients (Ironic, ipmipower,
// ipmitool per command) open a session per command.
type retransmits struct {
	mu   sync.Mutex
	last map[uint64]lastControl // by session; nil while there is none (lazymap.go)
}

type lastControl struct {
	req  []byte
	resp []byte
	cc   types.CompletionCode
	at   time.Time
}

// sessionKey identifies the session a request arrived on; ok is false for
// session-less requests.
func sessionKey(hctx *handlers.HandlerContext) (uint64, bool) {
	switch {
	case hctx == nil:
		return 0, false
	case hctx.Session != nil:
		return uint64(hctx.Session.BMCID), true
	case hctx.V15Session != nil:
		return 1<<32 | uint64(hctx.V15Session.SessionID), true
	}
	return 0, false
}

// wrap returns h answering retransmissions from the cache.
func (r *retransmits) wrap(h handlers.HandlerFunc) handlers.HandlerFunc {
	return func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		key, ok := sessionKey(hctx)
		if !ok {
			return h(ctx, hctx, req)
		}
		now := time.Now()
		r.mu.Lock()
		if l, seen := r.last[key]; seen && now.Sub(l.at) < retransmitWindow && bytes.Equal(l.req, req) {
			r.mu.Unlock()
			return l.resp, l.cc, nil
		}
		r.mu.Unlock()

		resp, cc, err := h(ctx, hctx, req)
		if cc != types.CodeOK {
			return resp, cc, err // a failure may be retried for real
		}

		r.mu.Lock()
		defer r.mu.Unlock()
		for k, l := range r.last {
			if now.Sub(l.at) >= retransmitWindow {
				del(&r.last, k)
			}
		}
		put(&r.last, key, lastControl{req: append([]byte(nil), req...), resp: resp, cc: cc, at: time.Now()})
		return resp, cc, err
	}
}

// forget drops what a session closed left (IPMI 2.0 and 1.5 IDs alike):
// nothing of it can be retransmitted any more.
func (r *retransmits) forget(id uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	del(&r.last, uint64(id))
	del(&r.last, 1<<32|uint64(id))
}

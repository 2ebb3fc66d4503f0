package ipmi

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// authCaps answers Get Channel Authentication Capabilities (App 0x38), which
// every client sends before every login, from a copy of go-ipmi's own
// answer. go-ipmi's handler looks up each of the 63 user IDs to report
// whether null and anonymous logins exist, and each empty slot builds an
// fmt.Errorf value: 136 allocations and ~10 µs per request on a node with
// a handful of users.
//
// The answer depends only on the request's channel number and on the
// node's users, which change only through Set User Access, Set User Name
// and Set User Password (the node's channel and authentication settings
// are fixed when it starts). Each of those, wrapped by changesUsers, bumps
// a generation that invalidates every copy.
type authCaps struct {
	gen atomic.Uint64 // users changed
	mu  sync.Mutex
	// answers holds one copy per channel number asked for (request byte
	// 1, bits 3:0), made on the first ask: clients ask for one or two.
	answers []capsAnswer
}

type capsAnswer struct {
	ch   uint8
	ok   bool
	gen  uint64
	resp []byte // shared: read-only once stored
	cc   types.CompletionCode
}

// wrap returns go-ipmi's handler next, answering from the copy while the
// users have not changed since it was made.
func (a *authCaps) wrap(next handlers.Handler) handlers.HandlerFunc {
	return func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		if len(req) < 2 {
			return next.Handle(ctx, hctx, req) // refused as truncated
		}
		ch := req[0] & 0x0F
		gen := a.gen.Load()
		a.mu.Lock()
		c, _ := a.find(ch)
		a.mu.Unlock()
		if c.ok && c.gen == gen {
			return c.resp, c.cc, nil
		}
		resp, cc, err := next.Handle(ctx, hctx, req)
		if err == nil && cc == types.CodeOK {
			a.mu.Lock()
			a.store(capsAnswer{ch: ch, ok: true, gen: gen, resp: resp, cc: cc})
			a.mu.Unlock()
		}
		return resp, cc, err
	}
}

// changesUsers returns go-ipmi's handler next of a command that changes
// the users, invalidating the copies once it has run.
func (a *authCaps) changesUsers(next handlers.Handler) handlers.HandlerFunc {
	return func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		defer a.gen.Add(1)
		return next.Handle(ctx, hctx, req)
	}
}

// find returns the copy for channel ch and its index; a.mu must be held.
func (a *authCaps) find(ch uint8) (capsAnswer, int) {
	for i, c := range a.answers {
		if c.ch == ch {
			return c, i
		}
	}
	return capsAnswer{}, -1
}

// store keeps c as the copy for its channel; a.mu must be held.
func (a *authCaps) store(c capsAnswer) {
	if _, i := a.find(c.ch); i >= 0 {
		a.answers[i] = c
		return
	}
	a.answers = append(a.answers, c)
}

package ipmi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Defaults of the RMCP+ session table.
const (
	// DefaultMaxSessions bounds the concurrent RMCP+ sessions of one node.
	// go-ipmi allows the spec's minimum of 4; Ironic's power sync, an
	// operator and a console easily need more at once.
	DefaultMaxSessions = 32
	// DefaultEvictIdle is how long an established session must have been
	// quiet (no command in flight, none for this long, no SOL) before a
	// new login may take its place in a full table.
	DefaultEvictIdle = time.Second
	// openingTimeout is how long an Open Session request counts as taking a
	// slot before its answer has gone out (go-ipmi handles each datagram
	// on a goroutine of its own, after the next one has been read).
	openingTimeout = time.Second
	// maxCloseTries bounds the sessions makeRoom tries to close for one login.
	maxCloseTries = 4
)

// sessionTable admits RMCP+ logins into go-ipmi's session store, which on
// its own, when full, evicts only the oldest *pending* session and refuses
// a login once every slot holds an established session. Two ways that
// locked real users out:
//
//   - a flood of Open Session requests (no credentials needed) evicts the
//     pending sessions of everyone else, so a real client's handshake is
//     pushed out before its RAKP 1 arrives;
//   - clients that log in and never close (a killed ipmitool, a
//     misbehaving script) fill the table until the 60 s inactivity timeout.
//
// The table learns of logins from what the BMC itself sends (Open Session
// and RAKP 4 responses, which go-ipmi sends only for a request it accepted:
// nothing a client forges moves a session along) and of every command from
// a middleware that runs after go-ipmi has checked the packet's integrity.
// Before go-ipmi allocates a session in a full table it makes room itself:
// the address with the most unfinished logins loses its oldest one (a
// flood only ever recycles its own slots), else the established session
// idle longest is closed, never one with a command in flight or an active
// SOL payload. A command of a session closed that way that was already on
// its way is not executed.
type sessionTable struct {
	store     *gobmc.SessionStore
	sol       *gobmc.SOLStore
	evictIdle time.Duration
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	pending map[uint32]pendingLogin   // by BMC session ID
	active  map[uint32]*sessionActive // by BMC session ID
	closing map[uint32]bool           // chosen to make room; until the store lets go
	opening []time.Time               // Open Session requests not answered yet
}

type pendingLogin struct {
	addr      string // the client's address and port
	ip        string
	consoleID uint32
	at        time.Time
}

type sessionActive struct {
	last     time.Time
	inFlight int
}

func newSessionTable(store *gobmc.SessionStore, sol *gobmc.SOLStore, evictIdle time.Duration, log *slog.Logger) *sessionTable {
	return &sessionTable{store: store, sol: sol, evictIdle: evictIdle, log: log, now: time.Now}
}

// inbound looks at a datagram go-ipmi is about to handle: a well-formed
// Open Session request first gets room made for it (a shorter one go-ipmi
// refuses: it takes no slot, so it frees none).
func (t *sessionTable) inbound(h header, from net.Addr) {
	if h.completeOpenSessionRequest() {
		t.makeRoom(sourceIP(from))
	}
}

// outbound looks at a datagram go-ipmi sends: a successful Open Session
// response names a new pending session and the client it belongs to; a
// successful RAKP 4 (sent only once the client's RAKP 3 proved it knows
// the password) establishes it.
func (t *sessionTable) outbound(h header, to net.Addr) {
	if !h.is(types.PayloadTypeRmcpOpenSessionResponse) && !h.is(types.PayloadTypeRAKPMessage4) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if h.is(types.PayloadTypeRmcpOpenSessionResponse) {
		// Answered, successfully or not: no longer an opening.
		if len(t.opening) > 0 {
			t.opening = t.opening[1:]
		}
		console, id, ok := h.openedSession()
		if _, active := t.active[id]; ok && !active {
			put(&t.pending, id, pendingLogin{addr: to.String(), ip: sourceIP(to), consoleID: console, at: t.now()})
		}
		return
	}
	if console, ok := h.establishedSession(); ok {
		addr := to.String()
		for id, pl := range t.pending {
			if pl.addr == addr && pl.consoleID == console {
				del(&t.pending, id)
				put(&t.active, id, &sessionActive{last: t.now()})
			}
		}
	}
}

// middleware brackets every command of an RMCP+ session with begin and
// end; a command of a session closed to make room is not executed.
func (t *sessionTable) middleware(next handlers.Handler) handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		if hctx == nil || hctx.Session == nil {
			return next.Handle(ctx, hctx, req)
		}
		id := hctx.Session.BMCID
		if !t.begin(id) {
			return nil, types.CodeNodeBusy, nil
		}
		defer t.end(id)
		return next.Handle(ctx, hctx, req)
	})
}

// begin records a command of an established session; false means the
// session is being closed or is gone.
func (t *sessionTable) begin(id uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing[id] {
		return false
	}
	if _, err := t.store.Get(id); err != nil {
		return false
	}
	a, ok := t.active[id]
	if !ok {
		a = &sessionActive{}
		put(&t.active, id, a)
		del(&t.pending, id)
	}
	a.inFlight++
	a.last = t.now()
	return true
}

func (t *sessionTable) end(id uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a, ok := t.active[id]; ok {
		a.inFlight--
		a.last = t.now()
	}
}

// forget drops a session that left go-ipmi's store.
func (t *sessionTable) forget(id uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	del(&t.pending, id)
	del(&t.active, id)
	del(&t.closing, id)
}

// makeRoom frees a slot for a login from ip, if it needs one.
func (t *sessionTable) makeRoom(ip string) {
	t.store.EvictExpired() // sessions past their timeout free their slots first
	for range maxCloseTries {
		t.mu.Lock()
		victim, why := t.victimLocked(ip)
		if why != "" {
			put(&t.closing, victim, true)
		} else {
			t.opening = append(t.opening, t.now())
		}
		t.mu.Unlock()
		if why == "" {
			return
		}
		// Close fires the store's removal hook, which calls forget.
		err := t.store.Close(victim)
		switch {
		case err == nil:
			t.log.Info("session closed to admit a new login", "reason", why, "from", ip)
			t.mu.Lock()
			t.opening = append(t.opening, t.now())
			t.mu.Unlock()
			return
		case errors.Is(err, gobmc.ErrNoSession):
			t.forget(victim) // gone already (expired meanwhile): pick again
		default:
			t.forget(victim)
			t.log.Warn("closing a session to admit a new login failed", "from", ip, "err", err)
			return
		}
	}
}

// victimLocked picks the session to close before a login from ip, and
// says why; "" means none. t.mu must be held.
//
// Nothing is closed while the table has room: many clients logging in at
// once from one address (Ironic's conductor runs its power sync with a
// pool of workers, each an ipmitool of its own) is normal. When it is full
// (counting logins whose Open Session is being handled) and logins are
// unfinished, the address holding the most of them loses its oldest, so a
// flood of Open Session requests only ever recycles its own slots (go-ipmi
// alone would evict the oldest pending session of anyone: a real client's,
// between its Open Session and its RAKP 1).
func (t *sessionTable) victimLocked(ip string) (uint32, string) {
	now := t.now()
	for len(t.opening) > 0 && now.Sub(t.opening[0]) > openingTimeout {
		t.opening = t.opening[1:] // dropped by go-ipmi without an answer
	}
	if t.store.Count()+len(t.opening)-len(t.closing) < t.store.Cap() {
		return 0, ""
	}
	type holder struct {
		n      int
		oldest uint32
		at     time.Time
	}
	byIP := map[string]*holder{}
	for id, p := range t.pending {
		if t.closing[id] {
			continue
		}
		h := byIP[p.ip]
		if h == nil {
			h = &holder{oldest: id, at: p.at}
			byIP[p.ip] = h
		}
		h.n++
		if p.at.Before(h.at) {
			h.oldest, h.at = id, p.at
		}
	}
	var top *holder
	for _, h := range byIP {
		if top == nil || h.n > top.n || (h.n == top.n && h.at.Before(top.at)) {
			top = h
		}
	}
	if top != nil {
		return top.oldest, "session table full; closed the oldest unfinished login of the address holding the most"
	}
	var (
		idlest uint32
		found  bool
		since  time.Time
	)
	for id, a := range t.active {
		if t.closing[id] || a.inFlight > 0 || now.Sub(a.last) < t.evictIdle || t.sol.InstanceBySession(id) != nil {
			continue
		}
		if !found || a.last.Before(since) {
			idlest, since, found = id, a.last, true
		}
	}
	if !found {
		return 0, ""
	}
	return idlest, "session table full; closed the session idle longest"
}

package ipmi

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"sync"
	"time"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/protocol"
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
// The table watches the handshake in the transport (Open Session, RAKP 3)
// and every command in a middleware. Before go-ipmi allocates a session in
// a full table it makes room itself: the address with the most unfinished
// logins loses its oldest one (a flood only ever recycles its own slots),
// else the established session idle longest is closed, never one with a
// command in flight or an active SOL payload.
type sessionTable struct {
	store     *gobmc.SessionStore
	sol       *gobmc.SOLStore
	evictIdle time.Duration
	log       *slog.Logger
	now       func() time.Time

	mu      sync.Mutex
	pending map[uint32]pendingLogin   // by BMC session ID
	active  map[uint32]*sessionActive // by BMC session ID
}

type pendingLogin struct {
	ip string
	at time.Time
}

type sessionActive struct {
	last     time.Time
	inFlight int
}

func newSessionTable(store *gobmc.SessionStore, sol *gobmc.SOLStore, evictIdle time.Duration, log *slog.Logger) *sessionTable {
	return &sessionTable{store: store, sol: sol, evictIdle: evictIdle, log: log, now: time.Now,
		pending: map[uint32]pendingLogin{}, active: map[uint32]*sessionActive{}}
}

// Payload offsets (IPMI 2.0 Tables 13-10 and 13-13).
const (
	openSessionRespStatusOff = 1 // status code
	openSessionRespBMCIDOff  = 8 // managed system session ID
	rakp3BMCIDOff            = 4 // managed system session ID
)

// inbound looks at a datagram go-ipmi is about to handle: an Open Session
// request first gets room made for it; a RAKP 3 marks its session
// established.
func (t *sessionTable) inbound(pkt []byte, from net.Addr) {
	switch payloadType(pkt) {
	case uint8(types.PayloadTypeRmcpOpenSessionRequest):
		t.makeRoom(sourceIP(from))
	case uint8(types.PayloadTypeRAKPMessage3):
		if p := rmcppPayload(pkt); len(p) >= rakp3BMCIDOff+4 {
			t.established(binary.LittleEndian.Uint32(p[rakp3BMCIDOff:]))
		}
	}
}

// outbound looks at a datagram go-ipmi sends: a successful Open Session
// response names a new pending session and the address it belongs to.
func (t *sessionTable) outbound(pkt []byte, to net.Addr) {
	if payloadType(pkt) != uint8(types.PayloadTypeRmcpOpenSessionResponse) {
		return
	}
	p := rmcppPayload(pkt)
	if len(p) < openSessionRespBMCIDOff+4 || p[openSessionRespStatusOff] != 0 {
		return
	}
	id := binary.LittleEndian.Uint32(p[openSessionRespBMCIDOff:])
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.active[id]; !ok {
		t.pending[id] = pendingLogin{ip: sourceIP(to), at: t.now()}
	}
}

// rmcppPayload is the payload of an unauthenticated RMCP+ datagram, or nil.
func rmcppPayload(pkt []byte) []byte {
	_, _, _, _, payload, ok := protocol.ParseRMCPPlusHeader(pkt)
	if !ok {
		return nil
	}
	return payload
}

// established marks a session whose client sent RAKP 3.
func (t *sessionTable) established(id uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.pending[id]; !ok {
		return // not a login this table saw start
	}
	delete(t.pending, id)
	t.active[id] = &sessionActive{last: t.now()}
}

// begin and end bracket a command of an established session.
func (t *sessionTable) begin(id uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.active[id]
	if !ok {
		a = &sessionActive{}
		t.active[id] = a
		delete(t.pending, id)
	}
	a.inFlight++
	a.last = t.now()
}

func (t *sessionTable) end(id uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a, ok := t.active[id]; ok {
		a.inFlight--
		a.last = t.now()
	}
}

// middleware brackets every command of an RMCP+ session with begin and end.
func (t *sessionTable) middleware(next handlers.Handler) handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		if hctx == nil || hctx.Session == nil {
			return next.Handle(ctx, hctx, req)
		}
		id := hctx.Session.BMCID
		t.begin(id)
		defer t.end(id)
		return next.Handle(ctx, hctx, req)
	})
}

// forget drops a session that left go-ipmi's store.
func (t *sessionTable) forget(id uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pending, id)
	delete(t.active, id)
}

// makeRoom frees a slot for a login from ip, if it needs one.
func (t *sessionTable) makeRoom(ip string) {
	t.mu.Lock()
	victim, why := t.victimLocked(ip)
	t.mu.Unlock()
	if why == "" {
		return
	}
	// Close fires the store's removal hook, which calls forget.
	if err := t.store.Close(victim); err == nil {
		t.log.Info("session closed to admit a new login", "reason", why, "from", ip)
	}
}

// victimLocked picks the session to close before a login from ip, and
// says why; "" means none. t.mu must be held.
//
// Nothing is closed while the table has room: many clients logging in at
// once from one address (Ironic's conductor runs its power sync with a
// pool of workers, each an ipmitool of its own) is normal. When it is full
// and logins are unfinished, the address holding the most of them loses
// its oldest, so a flood of Open Session requests only ever recycles its
// own slots (go-ipmi alone would evict the oldest pending session of
// anyone: a real client's, between its Open Session and its RAKP 1).
func (t *sessionTable) victimLocked(ip string) (uint32, string) {
	if t.store.Count() < t.store.Cap() {
		return 0, ""
	}
	type holder struct {
		n      int
		oldest uint32
		at     time.Time
	}
	byIP := map[string]*holder{}
	var top *holder
	for id, p := range t.pending {
		h := byIP[p.ip]
		if h == nil {
			h = &holder{oldest: id, at: p.at}
			byIP[p.ip] = h
		}
		h.n++
		if p.at.Before(h.at) {
			h.oldest, h.at = id, p.at
		}
		if top == nil || h.n > top.n || (h.n == top.n && p.ip == ip) {
			top = h
		}
	}
	if top != nil {
		return top.oldest, "session table full; closed the oldest unfinished login of the address holding the most"
	}
	now := t.now()
	var (
		idlest uint32
		found  bool
		since  time.Time
	)
	for id, a := range t.active {
		if a.inFlight > 0 || now.Sub(a.last) < t.evictIdle || t.sol.InstanceBySession(id) != nil {
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

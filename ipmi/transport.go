package ipmi

import (
	"log/slog"
	"net"
	"time"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// conn is the node's UDP socket as go-ipmi's server sees it: go-ipmi's
// server has no hook before it parses a datagram or after it builds one, so
// the transport, its extension point, is where govbmc sees every datagram.
// Each is parsed once (parseDatagram) and then goes through five jobs, each
// a method of its own:
//
//  1. guardParsers (in): drop datagrams go-ipmi's parsers panic on.
//  2. throttle (in and out): refuse logins from an address whose logins
//     keep failing, learning of failures from the answers (authThrottle).
//  3. replay (in): drop RMCP+ requests whose sequence number their session
//     has already executed (replayGuard).
//  4. sessions (in and out): make room in a full session table before an
//     Open Session request, and follow logins from the answers
//     (sessionTable).
//  5. fixActivateSession (out): give the IPMI 1.5 Activate Session response
//     the header session ID real BMCs send.
//  6. peers (in): remember each session's client address, for the LAN
//     configuration's IP address of a wildcard listener.
//
// GOIPMI.md lists why each is needed and the canary test that notices
// when go-ipmi no longer needs it.
type conn struct {
	*net.UDPConn
	state    *gobmc.BMC
	log      *slog.Logger
	throttle *authThrottle
	replay   *replayGuard
	sessions *sessionTable
	// idleAfter is how long a node with no session stays awake (idle.go).
	idleAfter time.Duration
	peers     *peers
	obs       *observer
}

// ReadFrom passes go-ipmi the next datagram that jobs 1 to 3 let through,
// after job 4 has seen it.
func (c *conn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.readAwake(p)
		if err != nil {
			return n, addr, err
		}
		h := parseDatagram(p[:n])
		if why := c.drop(h, addr); why != "" {
			c.log.Debug(why, "from", addr.String(), "bytes", n)
			continue
		}
		c.throttleInbound(h, addr)
		c.obs.inbound(h, addr)
		c.sessions.inbound(h, addr)
		c.peers.inbound(h, addr)
		return n, addr, nil
	}
}

// drop says why a datagram must not reach go-ipmi; "" lets it through.
func (c *conn) drop(h header, addr net.Addr) string {
	switch {
	case guardParsers(h):
		return "dropped a malformed datagram"
	case c.throttleRefuses(h, addr):
		return "dropped a login from a throttled address"
	case c.replay.dropDatagram(h):
		return "dropped a replayed or stale request"
	}
	return ""
}

// WriteTo sends an answer of go-ipmi's, after job 5 has fixed it and jobs
// 2 and 4 have seen it.
func (c *conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	h := parseDatagram(p)
	c.fixActivateSession(p, h)
	c.sessions.outbound(h, addr)
	c.throttleOutbound(h, addr)
	c.obs.outbound(h, addr)
	return c.UDPConn.WriteTo(p, addr)
}

// guardParsers (job 1) reports a datagram that go-ipmi's parsers panic on.
// go-ipmi handles each datagram on a goroutine of its own, where a panic
// would end the whole daemon (every BMC in it), so such inputs are dropped
// before it sees them:
//
//   - RAKP Message 1 whose user name length overruns the payload: go-ipmi
//     checks 28+length in 8-bit arithmetic, which wraps, then slices out of
//     range (found by FuzzDatagram).
func guardParsers(h header) bool {
	return h.rakp1NameOverruns()
}

// throttleRefuses (job 2, in) reports a login the throttle does not let in.
func (c *conn) throttleRefuses(h header, addr net.Addr) bool {
	if !loginStart(h) {
		return false
	}
	blocked, newly := c.throttle.isBlocked(sourceIP(addr), time.Now())
	for _, ip := range newly {
		c.logBlocked(ip)
	}
	return blocked
}

// throttleInbound (job 2, in) records a RAKP 3: the client went on with its
// login after RAKP 2.
func (c *conn) throttleInbound(h header, addr net.Addr) {
	if h.is(types.PayloadTypeRAKPMessage3) {
		c.throttle.completed(addr.String())
	}
}

// throttleOutbound (job 2, out) records a login refused for its
// credentials, and a RAKP 2 sent (an RMCP+ login that must be answered).
func (c *conn) throttleOutbound(h header, addr net.Addr) {
	now := time.Now()
	switch {
	case loginFailed(h):
		if c.throttle.failed(sourceIP(addr), now) {
			c.logBlocked(sourceIP(addr))
		}
	case h.is(types.PayloadTypeRAKPMessage2):
		c.throttle.started(addr.String(), sourceIP(addr), now)
	}
}

func (c *conn) logBlocked(ip string) {
	c.log.Warn("logins from this address keep failing; new sessions refused for a while", "from", ip, "block", c.throttle.block)
}

// fixActivateSession (job 5) rewrites, in place, a successful authenticated
// IPMI 1.5 Activate Session response, h being its header, to carry the
// temporary session ID.
//
// go-ipmi sends that response with the new session ID in the session
// header. freeipmi (libfreeipmi: ipmi-chassis, ipmi-sensors, ipmiconsole…)
// only accepts a response whose header carries the temporary session ID its
// request used, as real BMCs send it, and retransmits until "password
// verification timeout" otherwise. go-ipmi's server has no hook between
// building and sending that packet, so the header's session ID is rewritten
// here and the authentication code signed again. ipmitool accepts both forms.
func (c *conn) fixActivateSession(p []byte, h header) {
	if h.authType == authTypeNone || !h.v15Response(types.CommandActivateSession) || h.msg.code != uint8(types.CodeOK) {
		return
	}
	sess, err := c.state.V15Sessions.Get(h.sessionID)
	if err != nil || sess.User == nil || sess.TempSessionID == 0 {
		return
	}
	code := handlers.GenV15AuthCode(sess.User.PasswordV15Padded(), sess.AuthType, sess.TempSessionID, h.payload, h.seq)
	setV15SessionID(p, h, sess.TempSessionID, code)
}

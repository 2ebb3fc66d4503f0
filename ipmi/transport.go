package ipmi

import (
	"encoding/binary"
	"log/slog"
	"net"
	"time"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/protocol"
	"github.com/bougou/go-ipmi/pkg/types"
)

// conn is the node's UDP socket as go-ipmi's server sees it. It passes
// everything through except one fix on the way out:
//
// go-ipmi sends the IPMI 1.5 Activate Session response with the new session
// ID in the session header. freeipmi (libfreeipmi: ipmi-chassis, ipmi-sensors,
// ipmiconsole…) only accepts a response whose header carries the temporary
// session ID its request used, as real BMCs send it, and retransmits until
// "password verification timeout" otherwise. go-ipmi's server has no hook
// between building and sending that packet, so the transport — its extension
// point — rewrites the header's session ID and re-signs the authentication
// code. ipmitool accepts both forms.
type conn struct {
	*net.UDPConn
	state    *gobmc.BMC
	log      *slog.Logger
	throttle *authThrottle
	replay   *replayGuard
	sessions *sessionTable
}

// IPMI 1.5 LAN packet layout (IPMI 2.0 §13.6): RMCP header, then the session
// header: auth type, sequence (4), session ID (4), auth code (16 unless auth
// type NONE), message length, message.
const (
	rmcpHeaderLen   = 4
	v15AuthTypeOff  = rmcpHeaderLen
	v15SeqOff       = v15AuthTypeOff + 1
	v15SessionIDOff = v15SeqOff + 4
	v15AuthCodeOff  = v15SessionIDOff + 4
	v15AuthCodeLen  = 16
	v15MsgLenOff    = v15AuthCodeOff + v15AuthCodeLen
	v15MsgOff       = v15MsgLenOff + 1
	authTypeRMCPP   = 0x06
	netFnAppResp    = 0x07
)

// ReadFrom passes go-ipmi the next datagram that its parsers survive.
// go-ipmi handles each datagram on a goroutine of its own, where a panic
// would end the whole daemon (every BMC in it), so inputs known to crash
// it are dropped here, where a panic can still be prevented:
//
//   - RAKP Message 1 whose user name length overruns the payload: go-ipmi
//     checks 28+length in 8-bit arithmetic, which wraps, then slices out
//     of range (found by FuzzDatagram).
//
// Logins from an address the throttle blocks are dropped here too, and so
// are RMCP+ requests whose sequence number their session has already
// executed (replays, see replayGuard).
func (c *conn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		switch {
		case crashesGoIPMI(p[:n]):
			c.log.Debug("dropped a malformed datagram", "from", addr.String(), "bytes", n)
		case c.throttle != nil && loginStart(p[:n]) && c.refused(addr):
			c.log.Debug("dropped a login from a throttled address", "from", addr.String())
		case c.replay != nil && c.replay.dropDatagram(p[:n]):
			c.log.Debug("dropped a replayed or stale request", "from", addr.String())
		default:
			if c.throttle != nil && payloadType(p[:n]) == uint8(types.PayloadTypeRAKPMessage3) {
				c.throttle.completed(addr.String())
			}
			if c.sessions != nil {
				c.sessions.inbound(p[:n], addr)
			}
			return n, addr, nil
		}
	}
}

// blockedNow logs an address the throttle has just blocked.
func (c *conn) blockedNow(blocked bool, addr net.Addr) {
	if blocked {
		c.logBlocked(sourceIP(addr))
	}
}

func (c *conn) logBlocked(ip string) {
	c.log.Warn("logins from this address keep failing; new sessions refused for a while", "from", ip, "block", c.throttle.block)
}

// refused reports a login the throttle does not let in.
func (c *conn) refused(addr net.Addr) bool {
	blocked, newly := c.throttle.isBlocked(sourceIP(addr), time.Now())
	for _, ip := range newly {
		c.logBlocked(ip)
	}
	return blocked
}

// payloadType is the RMCP+ payload type of a datagram, or 0xFF.
func payloadType(pkt []byte) uint8 {
	if len(pkt) < 6 || pkt[3]&0x1F != 0x07 || pkt[v15AuthTypeOff] != authTypeRMCPP {
		return 0xFF
	}
	return pkt[v15AuthTypeOff+1] & 0x3F
}

// crashesGoIPMI reports a datagram that go-ipmi's parsers panic on.
func crashesGoIPMI(pkt []byte) bool {
	if len(pkt) < 5 || pkt[3]&0x1F != 0x07 || pkt[v15AuthTypeOff] != authTypeRMCPP {
		return false
	}
	_, _, payloadType, _, payload, ok := protocol.ParseRMCPPlusHeader(pkt)
	if !ok {
		return false
	}
	if payloadType == uint8(types.PayloadTypeRAKPMessage1) {
		return len(payload) < rakp1UsernameOff || int(payload[rakp1UsernameOff-1]) > len(payload)-rakp1UsernameOff
	}
	return false
}

// rakp1UsernameOff is where the user name starts in RAKP Message 1 (IPMI
// 2.0 Table 13-11); the byte before it is its length.
const rakp1UsernameOff = 28

func (c *conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.fixActivateSession(p)
	if c.sessions != nil {
		c.sessions.outbound(p, addr)
	}
	if c.throttle != nil {
		now := time.Now()
		switch {
		case loginFailed(p):
			c.blockedNow(c.throttle.failed(sourceIP(addr), now), addr)
		case payloadType(p) == uint8(types.PayloadTypeRAKPMessage2):
			c.throttle.started(addr.String(), sourceIP(addr), now)
		}
	}
	return c.UDPConn.WriteTo(p, addr)
}

// fixActivateSession rewrites, in place, a successful authenticated IPMI 1.5
// Activate Session response to carry the temporary session ID.
func (c *conn) fixActivateSession(p []byte) {
	if len(p) < v15MsgOff+8 || p[3]&0x1F != 0x07 || p[v15AuthTypeOff] == 0 || p[v15AuthTypeOff] == authTypeRMCPP {
		return
	}
	msg := p[v15MsgOff:]
	if int(p[v15MsgLenOff]) != len(msg) || msg[1]>>2 != netFnAppResp || msg[5] != handlers.CmdActivateSession || msg[6] != 0 {
		return
	}
	sid := binary.LittleEndian.Uint32(p[v15SessionIDOff:])
	sess, err := c.state.V15Sessions.Get(sid)
	if err != nil || sess.User == nil || sess.TempSessionID == 0 {
		return
	}
	seq := binary.LittleEndian.Uint32(p[v15SeqOff:])
	code := handlers.GenV15AuthCode(sess.User.PasswordV15Padded(), sess.AuthType, sess.TempSessionID, msg, seq)
	if len(code) != v15AuthCodeLen {
		return
	}
	binary.LittleEndian.PutUint32(p[v15SessionIDOff:], sess.TempSessionID)
	copy(p[v15AuthCodeOff:], code)
}

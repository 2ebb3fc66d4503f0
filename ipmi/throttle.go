package ipmi

import (
	"net"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/protocol"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Defaults of the login throttle.
const (
	DefaultAuthFailureLimit = 10                // failed logins from one address…
	DefaultAuthWindow       = time.Minute       // …within this long…
	DefaultAuthBlock        = time.Minute       // …block its new logins this long
	maxThrottledSources     = 4096              // bound on the addresses remembered
	v15CmdGetSessionChall   = uint8(0x39)       // Get Session Challenge
	rmcppStatusOff          = 1                 // status byte of RAKP 2 and RAKP 4
	netFnAppRespShifted     = netFnAppResp << 2 // response NetFn/LUN byte, LUN 0
)

// authThrottle slows password guessing: an address whose logins keep
// failing (an RMCP+ handshake abandoned after RAKP 2, RAKP 2 or 4 with an
// error status, an IPMI 1.5 challenge or activation refused) may not start
// new sessions for a while. Sessions already open are not affected, nor
// are other addresses: a flood from one source cannot lock out a real user
// elsewhere.
type authThrottle struct {
	limit         int
	window, block time.Duration

	mu       sync.Mutex
	failures map[string][]time.Time
	blocked  map[string]time.Time
	// handshakes are RMCP+ logins that got their RAKP 2, by client
	// address: a client whose password does not match RAKP 2's code gives
	// up without RAKP 3 (go-ipmi answers unknown users the same way, so
	// as not to reveal them), which is how a failed RMCP+ login looks here.
	handshakes map[string]handshake
}

type handshake struct {
	ip string
	at time.Time
}

// handshakeTimeout is how long a client has to answer RAKP 2.
const handshakeTimeout = 3 * time.Second

// started records a RAKP 2 sent to a client address.
func (a *authThrottle) started(addr, ip string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.handshakes) >= maxThrottledSources {
		a.sweepLocked(now)
	}
	a.handshakes[addr] = handshake{ip: ip, at: now}
}

// completed records a RAKP 3 from a client address.
func (a *authThrottle) completed(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.handshakes, addr)
}

// sweepLocked counts abandoned handshakes as failures; it returns the
// addresses that became blocked. a.mu must be held.
func (a *authThrottle) sweepLocked(now time.Time) []string {
	var newly []string
	for addr, h := range a.handshakes {
		if now.Sub(h.at) >= handshakeTimeout {
			delete(a.handshakes, addr)
			if a.failedLocked(h.ip, h.at, now) {
				newly = append(newly, h.ip)
			}
		}
	}
	return newly
}

func newAuthThrottle(limit int, window, block time.Duration) *authThrottle {
	return &authThrottle{limit: limit, window: window, block: block,
		failures: map[string][]time.Time{}, blocked: map[string]time.Time{}, handshakes: map[string]handshake{}}
}

// failed records a failed login from ip; it reports whether ip is now
// blocked (for the first time).
func (a *authThrottle) failed(ip string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failedLocked(ip, now, now)
}

// failedLocked records a failure that happened at, noticed now.
func (a *authThrottle) failedLocked(ip string, at, now time.Time) bool {
	if len(a.failures) >= maxThrottledSources {
		a.pruneLocked(now)
	}
	recent := a.failures[ip][:0]
	for _, t := range a.failures[ip] {
		if now.Sub(t) < a.window {
			recent = append(recent, t)
		}
	}
	recent = append(recent, at)
	a.failures[ip] = recent
	if len(recent) >= a.limit {
		_, already := a.blocked[ip]
		a.blocked[ip] = now.Add(a.block)
		delete(a.failures, ip)
		return !already
	}
	return false
}

// isBlocked reports whether ip may not start a session now, and which
// addresses the abandoned handshakes counted just now have blocked.
func (a *authThrottle) isBlocked(ip string, now time.Time) (bool, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	newly := a.sweepLocked(now)
	until, ok := a.blocked[ip]
	if ok && now.After(until) {
		delete(a.blocked, ip)
		return false, newly
	}
	return ok, newly
}

func (a *authThrottle) pruneLocked(now time.Time) {
	for ip, ts := range a.failures {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= a.window {
			delete(a.failures, ip)
		}
	}
	for ip, until := range a.blocked {
		if now.After(until) {
			delete(a.blocked, ip)
		}
	}
}

func sourceIP(addr net.Addr) string {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return ua.IP.String()
	}
	return addr.String()
}

// loginStart reports a datagram that starts a session: an RMCP+ Open
// Session Request or RAKP 1, or an IPMI 1.5 Get Session Challenge.
func loginStart(pkt []byte) bool {
	if len(pkt) < v15SessionIDOff || pkt[3]&0x1F != 0x07 {
		return false
	}
	if pkt[v15AuthTypeOff] == authTypeRMCPP {
		_, _, pt, _, _, ok := protocol.ParseRMCPPlusHeader(pkt)
		return ok && (pt == uint8(types.PayloadTypeRmcpOpenSessionRequest) || pt == uint8(types.PayloadTypeRAKPMessage1))
	}
	// IPMI 1.5 before a session: auth type NONE, no auth code.
	if len(pkt) <= v15AuthCodeOff+7 {
		return false
	}
	msg := pkt[v15AuthCodeOff:]
	return pkt[v15AuthTypeOff] == 0 && msg[1+1]>>2 == 0x06 && msg[1+5] == v15CmdGetSessionChall
}

// RMCP+ status codes that mean the credentials were wrong (IPMI 2.0 Table
// 13-15); others (an unknown session ID, a malformed message) come from
// garbage or replays and prove nothing about a password.
const (
	rmcppUnauthorizedName   = 0x0D
	rmcppInvalidIntegrityCV = 0x0F
)

// loginFailed reports an answer that refuses a login for its credentials.
func loginFailed(pkt []byte) bool {
	if len(pkt) < v15SessionIDOff || pkt[3]&0x1F != 0x07 {
		return false
	}
	if pkt[v15AuthTypeOff] == authTypeRMCPP {
		_, _, pt, _, payload, ok := protocol.ParseRMCPPlusHeader(pkt)
		if !ok || len(payload) <= rmcppStatusOff {
			return false
		}
		status := payload[rmcppStatusOff]
		return (pt == uint8(types.PayloadTypeRAKPMessage2) || pt == uint8(types.PayloadTypeRAKPMessage4)) &&
			(status == rmcppUnauthorizedName || status == rmcppInvalidIntegrityCV)
	}
	// IPMI 1.5: the message follows the auth code when there is one.
	off := v15AuthCodeOff
	if pkt[v15AuthTypeOff] != 0 {
		off = v15MsgLenOff
	}
	if len(pkt) <= off+7 {
		return false
	}
	msg := pkt[off+1:]
	if msg[1] != netFnAppRespShifted {
		return false
	}
	cmd, cc := msg[5], msg[6]
	return cc != 0 && (cmd == v15CmdGetSessionChall || cmd == handlers.CmdActivateSession)
}

package ipmi

import (
	"net"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"
)

// Defaults of the login throttle.
const (
	DefaultAuthFailureLimit = 10          // failed logins from one address…
	DefaultAuthWindow       = time.Minute // …within this long…
	DefaultAuthBlock        = time.Minute // …block its new logins this long
	maxThrottledSources     = 4096        // bound on the addresses remembered
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
	// onFailure is told of every failed login (for the event log).
	onFailure func(ip string)
	blocked   map[string]time.Time
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
	put(&a.handshakes, addr, handshake{ip: ip, at: now})
}

// completed records a RAKP 3 from a client address.
func (a *authThrottle) completed(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	del(&a.handshakes, addr)
}

// sweepLocked counts abandoned handshakes as failures; it returns the
// addresses that became blocked. a.mu must be held.
func (a *authThrottle) sweepLocked(now time.Time) []string {
	var newly []string
	for addr, h := range a.handshakes {
		if now.Sub(h.at) >= handshakeTimeout {
			del(&a.handshakes, addr)
			if a.failedLocked(h.ip, h.at, now) {
				newly = append(newly, h.ip)
			}
		}
	}
	return newly
}

func newAuthThrottle(limit int, window, block time.Duration, onFailure func(ip string)) *authThrottle {
	return &authThrottle{limit: limit, window: window, block: block, onFailure: onFailure}
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
	if a.onFailure != nil {
		a.onFailure(ip)
	}
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
	put(&a.failures, ip, recent)
	if len(recent) >= a.limit {
		_, already := a.blocked[ip]
		put(&a.blocked, ip, now.Add(a.block))
		del(&a.failures, ip)
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
		del(&a.blocked, ip)
		return false, newly
	}
	return ok, newly
}

func (a *authThrottle) pruneLocked(now time.Time) {
	for ip, ts := range a.failures {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= a.window {
			del(&a.failures, ip)
		}
	}
	for ip, until := range a.blocked {
		if now.After(until) {
			del(&a.blocked, ip)
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
// Session Request or RAKP 1, or an IPMI 1.5 Get Session Challenge (sent
// before a session, with auth type NONE).
func loginStart(h header) bool {
	return h.is(types.PayloadTypeRmcpOpenSessionRequest) || h.is(types.PayloadTypeRAKPMessage1) ||
		(h.authType == authTypeNone && h.v15Request(types.CommandGetSessionChallenge))
}

// RMCP+ status codes that mean the credentials were wrong (IPMI 2.0 Table
// 13-15); others (an unknown session ID, a malformed message) come from
// garbage or replays and prove nothing about a password.
const (
	rmcppUnauthorizedName   = 0x0D
	rmcppInvalidIntegrityCV = 0x0F
)

// loginFailed reports an answer that refuses a login for its credentials:
// a RAKP 2 or 4 with one of those statuses, or an IPMI 1.5 Get Session
// Challenge or Activate Session answered with an error.
func loginFailed(h header) bool {
	if h.is(types.PayloadTypeRAKPMessage2) || h.is(types.PayloadTypeRAKPMessage4) {
		status, ok := h.loginStatus()
		return ok && (status == rmcppUnauthorizedName || status == rmcppInvalidIntegrityCV)
	}
	return (h.v15Response(types.CommandGetSessionChallenge) || h.v15Response(types.CommandActivateSession)) &&
		h.msg.code != uint8(types.CodeOK)
}

package redfish

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// Role is a Redfish role; a node user's IPMI privilege gives it.
type Role int

// Roles, weakest first.
const (
	RoleNone Role = iota
	RoleReadOnly
	RoleOperator
	RoleAdministrator
)

// String returns the role's Redfish name.
func (r Role) String() string {
	switch r {
	case RoleReadOnly:
		return "ReadOnly"
	case RoleOperator:
		return "Operator"
	case RoleAdministrator:
		return "Administrator"
	}
	return "None"
}

// RoleOf maps an IPMI privilege to a Redfish role: user → ReadOnly,
// operator → Operator, administrator → Administrator.
func RoleOf(p bmc.Privilege) Role {
	switch p {
	case bmc.PrivilegeUser:
		return RoleReadOnly
	case bmc.PrivilegeOperator:
		return RoleOperator
	case bmc.PrivilegeAdministrator:
		return RoleAdministrator
	}
	return RoleNone
}

// principal is who a request comes from: a user name and the SHA-256 of the
// password it gave (at login, for a session). The password itself is not kept.
type principal struct {
	user    string
	pwSum   [32]byte
	session *session // nil for HTTP Basic
}

// roleOn is the principal's role on a system: its user's, when the
// password matches, else RoleNone. Every user is compared, in constant
// time, so the answer's timing says nothing about which matched.
func (p *principal) roleOn(sys System) Role {
	role := RoleNone
	for _, u := range sys.Users {
		sum := sha256.Sum256([]byte(u.Password))
		nameOK := subtle.ConstantTimeCompare([]byte(u.Name), []byte(p.user))
		pwOK := subtle.ConstantTimeCompare(sum[:], p.pwSum[:])
		if nameOK&pwOK == 1 {
			role = RoleOf(u.Privilege)
		}
	}
	return role
}

// session is a SessionService session.
type session struct {
	id       string
	tokenSum [32]byte
	user     string
	pwSum    [32]byte
	created  time.Time
	lastUsed time.Time // guarded by sessionTable.mu
}

// sessionTable holds the sessions, by the SHA-256 of their token (so the
// token itself is never kept) and by ID. It is bounded: a login when full
// ends the least recently used session.
type sessionTable struct {
	max     int
	timeout time.Duration

	mu      sync.Mutex
	byToken map[[32]byte]*session
	byID    map[string]*session
}

func newSessionTable(max int, timeout time.Duration) *sessionTable {
	return &sessionTable{max: max, timeout: timeout, byToken: map[[32]byte]*session{}, byID: map[string]*session{}}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// create opens a session and returns it with its token.
func (t *sessionTable) create(user string, pwSum [32]byte, now time.Time) (*session, string) {
	token := randomHex(32)
	sess := &session{id: randomHex(16), tokenSum: sha256.Sum256([]byte(token)), user: user, pwSum: pwSum, created: now, lastUsed: now}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expireLocked(now)
	if len(t.byID) >= t.max {
		var lru *session
		for _, s := range t.byID {
			if lru == nil || s.lastUsed.Before(lru.lastUsed) {
				lru = s
			}
		}
		t.removeLocked(lru)
	}
	t.byToken[sess.tokenSum] = sess
	t.byID[sess.id] = sess
	return sess, token
}

// lookup finds the live session of a token and marks it used.
func (t *sessionTable) lookup(token string, now time.Time) (*session, bool) {
	sum := sha256.Sum256([]byte(token))
	t.mu.Lock()
	defer t.mu.Unlock()
	sess, ok := t.byToken[sum]
	if !ok || subtle.ConstantTimeCompare(sess.tokenSum[:], sum[:]) != 1 {
		return nil, false
	}
	if now.Sub(sess.lastUsed) > t.timeout {
		t.removeLocked(sess)
		return nil, false
	}
	sess.lastUsed = now
	return sess, true
}

func (t *sessionTable) get(id string, now time.Time) (*session, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sess, ok := t.byID[id]
	if ok && now.Sub(sess.lastUsed) > t.timeout {
		t.removeLocked(sess)
		return nil, false
	}
	return sess, ok
}

func (t *sessionTable) remove(sess *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(sess)
}

func (t *sessionTable) removeLocked(sess *session) {
	delete(t.byToken, sess.tokenSum)
	delete(t.byID, sess.id)
}

func (t *sessionTable) expireLocked(now time.Time) {
	for _, s := range t.byID {
		if now.Sub(s.lastUsed) > t.timeout {
			t.removeLocked(s)
		}
	}
}

// owned returns the IDs of the live sessions of a user with that password.
func (t *sessionTable) owned(user string, pwSum [32]byte, now time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []string
	for id, s := range t.byID {
		if now.Sub(s.lastUsed) <= t.timeout && s.user == user && s.pwSum == pwSum {
			ids = append(ids, id)
		}
	}
	return ids
}

func (t *sessionTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// maxThrottledSources bounds the addresses the throttle remembers.
const maxThrottledSources = 4096

// throttle slows password guessing: an address with limit failed logins
// within window may not log in (by password) for block. Sessions already
// open keep working, and other addresses are not affected.
type throttle struct {
	limit         int
	window, block time.Duration

	mu       sync.Mutex
	failures map[string][]time.Time
	blockedT map[string]time.Time
}

func newThrottle(limit int, window, block time.Duration) *throttle {
	return &throttle{limit: limit, window: window, block: block, failures: map[string][]time.Time{}, blockedT: map[string]time.Time{}}
}

// failed records a failure; it reports whether ip became blocked.
func (t *throttle) failed(ip string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.failures)+len(t.blockedT) >= maxThrottledSources {
		t.pruneLocked(now)
		if len(t.failures) >= maxThrottledSources {
			// Forget an arbitrary address rather than grow without bound.
			for k := range t.failures {
				delete(t.failures, k)
				break
			}
		}
	}
	recent := t.failures[ip][:0]
	for _, ts := range t.failures[ip] {
		if now.Sub(ts) < t.window {
			recent = append(recent, ts)
		}
	}
	recent = append(recent, now)
	if len(recent) >= t.limit {
		delete(t.failures, ip)
		_, already := t.blockedT[ip]
		t.blockedT[ip] = now.Add(t.block)
		return !already
	}
	t.failures[ip] = recent
	return false
}

// blocked reports whether ip may not log in now, and for how many seconds.
func (t *throttle) blocked(ip string, now time.Time) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	until, ok := t.blockedT[ip]
	if !ok {
		return false, 0
	}
	if !now.Before(until) {
		delete(t.blockedT, ip)
		return false, 0
	}
	return true, int(until.Sub(now)/time.Second) + 1
}

func (t *throttle) pruneLocked(now time.Time) {
	for ip, ts := range t.failures {
		if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= t.window {
			delete(t.failures, ip)
		}
	}
	for ip, until := range t.blockedT {
		if !now.Before(until) {
			delete(t.blockedT, ip)
		}
	}
}

// The SessionService.

const sessionsURI = "/redfish/v1/SessionService/Sessions"

// SessionService is the SessionService resource.
type SessionService struct {
	Resource
	ServiceEnabled bool   `json:"ServiceEnabled"`
	SessionTimeout int    `json:"SessionTimeout"`
	Sessions       Link   `json:"Sessions"`
	Status         Status `json:"Status"`
}

// Session is one session resource.
type Session struct {
	Resource
	UserName    string `json:"UserName"`
	CreatedTime string `json:"CreatedTime"`
}

func (s *Server) getSessionService(w http.ResponseWriter, r *http.Request, _ *principal) error {
	s.writeJSON(w, r, http.StatusOK, SessionService{
		Resource:       resource("/redfish/v1/SessionService", "#SessionService.v1_1_8.SessionService", "SessionService", "Session Service"),
		ServiceEnabled: true,
		SessionTimeout: int(s.opts.SessionTimeout / time.Second),
		Sessions:       Link{sessionsURI},
		Status:         okStatus(),
	}, "")
	return nil
}

func (s *Server) getSessions(w http.ResponseWriter, r *http.Request, p *principal) error {
	ids := s.sessions.owned(p.user, p.pwSum, s.opts.Now())
	links := make([]string, len(ids))
	for i, id := range ids {
		links[i] = sessionsURI + "/" + id
	}
	s.writeJSON(w, r, http.StatusOK, collection(sessionsURI, "SessionCollection", "Session Collection", links), "")
	return nil
}

func (s *Server) postSession(w http.ResponseWriter, r *http.Request) error {
	ip := clientIP(r)
	now := s.opts.Now()
	if blocked, retry := s.throttle.blocked(ip, now); blocked {
		return errThrottled(retry)
	}
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	var user, pass string
	for k, v := range body {
		str, isStr := v.(string)
		switch k {
		case "UserName":
			if !isStr {
				return errValueType(k, "(non-string)")
			}
			user = str
		case "Password":
			if !isStr {
				return errValueType(k, "(hidden)")
			}
			pass = str
		default:
			return errUnknownProperty(k)
		}
	}
	if user == "" {
		return propError("PropertyMissing", "UserName", "The property UserName is a required property and must be included in the request.", "UserName")
	}
	if _, ok := body["Password"]; !ok {
		return propError("PropertyMissing", "Password", "The property Password is a required property and must be included in the request.", "Password")
	}
	p := &principal{user: user, pwSum: sha256.Sum256([]byte(pass))}
	if !s.anySystem(p) {
		return s.loginFailed(r, p)
	}
	sess, token := s.sessions.create(user, p.pwSum, now)
	loc := sessionsURI + "/" + sess.id
	w.Header().Set("X-Auth-Token", token)
	w.Header().Set("Location", loc)
	s.log.Debug("redfish: session opened", "user", user, "from", ip, "session", sess.id)
	s.writeJSON(w, r, http.StatusCreated, s.sessionResource(sess), "")
	return nil
}

func (s *Server) sessionResource(sess *session) Session {
	return Session{
		Resource:    resource(sessionsURI+"/"+sess.id, "#Session.v1_3_0.Session", sess.id, "User Session"),
		UserName:    sess.user,
		CreatedTime: sess.created.UTC().Format(time.RFC3339),
	}
}

// ownSession finds a session the principal may see: its own (same user
// and password).
func (s *Server) ownSession(r *http.Request, p *principal) (*session, error) {
	sess, ok := s.sessions.get(r.PathValue("sid"), s.opts.Now())
	if !ok || sess.user != p.user || subtle.ConstantTimeCompare(sess.pwSum[:], p.pwSum[:]) != 1 {
		return nil, errNotFound(r.URL.Path)
	}
	return sess, nil
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, p *principal) error {
	sess, err := s.ownSession(r, p)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, s.sessionResource(sess), "")
	return nil
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, p *principal) error {
	sess, err := s.ownSession(r, p)
	if err != nil {
		return err
	}
	s.sessions.remove(sess)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

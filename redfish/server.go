package redfish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// Defaults of Options.
const (
	DefaultMaxSessions    = 1024
	DefaultSessionTimeout = 30 * time.Minute
	DefaultMaxBody        = 64 << 10
	DefaultMachineTimeout = 60 * time.Second
)

// Options configure a Server.
type Options struct {
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// FirmwareVersion is the Managers' FirmwareVersion (govbmc's version).
	FirmwareVersion string
	// Port and TLS describe the listener, for ManagerNetworkProtocol.
	Port int
	TLS  bool
	// MaxSessions bounds the session table (DefaultMaxSessions when 0).
	MaxSessions int
	// SessionTimeout is how long an unused session lives (DefaultSessionTimeout).
	SessionTimeout time.Duration
	// MaxBody caps request bodies (DefaultMaxBody).
	MaxBody int64
	// MachineTimeout bounds each request's calls into a machine.
	MachineTimeout time.Duration
	// MachinePatience is how long a GET waits for a busy machine before
	// it serves the machine's last answer (DefaultMachinePatience).
	MachinePatience time.Duration
	// AuthFailureLimit failed logins from one address within AuthWindow
	// block its logins for AuthBlock (10, a minute, a minute).
	AuthFailureLimit      int
	AuthWindow, AuthBlock time.Duration
	// ServiceUUID is the service root's UUID; derived from a fixed name when empty.
	ServiceUUID string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// MediaTimeout bounds a request that downloads a virtual media image
	// (InsertMedia, an HttpBootUri); when 0, the daemon's MediaFetcher
	// deadline plus MachineTimeout.
	MediaTimeout time.Duration
	// MediaVerifyCertificate is every virtual media device's
	// VerifyCertificate until a PATCH changes it: false, as sushy-tools
	// and most BMCs, accepts any https image server.
	MediaVerifyCertificate bool
}

// Server is the Redfish front end: an http.Handler for the whole fleet.
type Server struct {
	fleet    Fleet
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	sessions *sessionTable
	throttle *throttle
	reads    *readCache

	mu          sync.Mutex
	clocks      map[string]managerClock // Manager DateTime settings, by node name
	httpBoots   map[string]httpBoot     // overrides set as UefiHttp, by node name
	mediaVerify map[string]bool         // VerifyCertificate set by PATCH, by "node/slot"
}

type managerClock struct {
	offset time.Duration // DateTime set minus the real time
	zone   string        // DateTimeLocalOffset, "+00:00" form
}

// New returns a Server over a fleet.
func New(f Fleet, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MachineTimeout <= 0 {
		o.MachineTimeout = DefaultMachineTimeout
	}
	if o.MachinePatience <= 0 {
		o.MachinePatience = DefaultMachinePatience
	}
	if o.AuthFailureLimit <= 0 {
		o.AuthFailureLimit = 10
	}
	if o.AuthWindow <= 0 {
		o.AuthWindow = time.Minute
	}
	if o.AuthBlock <= 0 {
		o.AuthBlock = time.Minute
	}
	if o.ServiceUUID == "" {
		o.ServiceUUID = bmc.DeriveUUID("govbmc redfish service").String()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FirmwareVersion == "" {
		o.FirmwareVersion = "dev"
	}
	s := &Server{
		fleet:       f,
		opts:        o,
		log:         o.Logger,
		mux:         http.NewServeMux(),
		sessions:    newSessionTable(o.MaxSessions, o.SessionTimeout),
		throttle:    newThrottle(o.AuthFailureLimit, o.AuthWindow, o.AuthBlock),
		reads:       newReadCache(o.MachinePatience, o.MachineTimeout),
		clocks:      map[string]managerClock{},
		httpBoots:   map[string]httpBoot{},
		mediaVerify: map[string]bool{},
	}
	s.routes()
	return s
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// sysHandler handles a request about one system the caller may access.
type sysHandler func(w http.ResponseWriter, r *http.Request, c *sysCtx) error

// sysCtx is a request's system and the caller's role on it.
type sysCtx struct {
	sys  System
	role Role
	who  *principal
	// base is the request's context without the MachineTimeout bound, for
	// the requests that wait for a download (longRequest).
	base context.Context
	// cancels are the bounds renew made, released when the request ends.
	cancels []context.CancelFunc
}

// renew gives r a fresh MachineTimeout bound: for what a request does with
// the machine after a download, which may have taken longer than that.
func (s *Server) renew(r *http.Request, c *sysCtx) *http.Request {
	ctx, cancel := context.WithTimeout(c.base, s.opts.MachineTimeout)
	c.cancels = append(c.cancels, cancel)
	return r.WithContext(ctx)
}

func (s *Server) routes() {
	h := s.mux.Handle
	h("GET /redfish", s.public(s.getVersions))
	h("GET /redfish/v1", s.public(s.getRoot))
	h("GET /redfish/v1/odata", s.public(s.getODataService))

	h("GET /redfish/v1/SessionService", s.authed(s.getSessionService))
	h("GET /redfish/v1/SessionService/Sessions", s.authed(s.getSessions))
	h("POST /redfish/v1/SessionService/Sessions", s.public(s.postSession))
	h("GET /redfish/v1/SessionService/Sessions/{sid}", s.authed(s.getSession))
	h("DELETE /redfish/v1/SessionService/Sessions/{sid}", s.authed(s.deleteSession))

	h("GET /redfish/v1/Systems", s.authed(s.getSystems))
	h("GET /redfish/v1/Systems/{id}", s.system(RoleReadOnly, s.getSystem))
	h("PATCH /redfish/v1/Systems/{id}", s.system(RoleOperator, s.patchSystem))
	h("POST /redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset", s.system(RoleOperator, s.postReset))
	h("GET /redfish/v1/Systems/{id}/EthernetInterfaces", s.system(RoleReadOnly, s.getNICs))
	h("GET /redfish/v1/Systems/{id}/EthernetInterfaces/{nic}", s.system(RoleReadOnly, s.getNIC))
	h("GET /redfish/v1/Systems/{id}/Processors", s.system(RoleReadOnly, s.getProcessors))
	h("GET /redfish/v1/Systems/{id}/Processors/{cpu}", s.system(RoleReadOnly, s.getProcessor))
	h("GET /redfish/v1/Systems/{id}/Memory", s.system(RoleReadOnly, s.getMemories))
	h("GET /redfish/v1/Systems/{id}/Memory/{dimm}", s.system(RoleReadOnly, s.getMemory))
	h("GET /redfish/v1/Systems/{id}/SimpleStorage", s.system(RoleReadOnly, s.getStorages))
	h("GET /redfish/v1/Systems/{id}/SimpleStorage/{ctrl}", s.system(RoleReadOnly, s.getStorage))
	h("GET /redfish/v1/Systems/{id}/Bios", s.system(RoleReadOnly, s.getBios))
	h("GET /redfish/v1/Systems/{id}/Bios/Settings", s.system(RoleReadOnly, s.getBiosSettings))
	h("PATCH /redfish/v1/Systems/{id}/Bios/Settings", s.system(RoleOperator, s.patchBiosSettings))
	h("POST /redfish/v1/Systems/{id}/Bios/Actions/Bios.ResetBios", s.system(RoleOperator, s.postResetBios))
	h("GET /redfish/v1/Systems/{id}/SecureBoot", s.system(RoleReadOnly, s.getSecureBoot))
	h("PATCH /redfish/v1/Systems/{id}/SecureBoot", s.system(RoleOperator, s.patchSecureBoot))

	h("GET /redfish/v1/Managers", s.authed(s.getManagers))
	h("GET /redfish/v1/Managers/{id}", s.system(RoleReadOnly, s.getManager))
	h("PATCH /redfish/v1/Managers/{id}", s.system(RoleAdministrator, s.patchManager))
	h("GET /redfish/v1/Managers/{id}/NetworkProtocol", s.system(RoleReadOnly, s.getNetworkProtocol))

	s.mediaRoutes()

	h("GET /redfish/v1/Chassis", s.authed(s.getChassisCollection))
	h("GET /redfish/v1/Chassis/{id}", s.system(RoleReadOnly, s.getChassis))

	h("GET /redfish/v1/Registries", s.authed(s.getRegistries))
	h("GET /redfish/v1/Registries/BiosAttributeRegistry", s.authed(s.getRegistryFile))
	h("GET /redfish/v1/Registries/BiosAttributeRegistry/BiosAttributeRegistry", s.authed(s.getBiosRegistry))
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("OData-Version", "4.0")
	// "/redfish/v1/Systems/" is "/redfish/v1/Systems".
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path = strings.TrimRight(p, "/")
		u.RawPath = ""
		r2.URL = &u
		r = r2
	}
	if h, pattern := s.mux.Handler(r); pattern == "" {
		// Not a route of ours, or not with this method: ask the mux which
		// (it answers 404, or 405 with Allow) and say it Redfish's way.
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			s.writeError(w, r, errMethod(rec.header.Get("Allow")))
			return
		}
		s.writeError(w, r, errNotFound(r.URL.Path))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// statusRecorder captures the status and headers of the mux's own answer.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }
func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}
func (s *statusRecorder) Write(p []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(p), nil
}

func (s *Server) public(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// authed requires a caller who may log into at least one system.
func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, p *principal) error) http.Handler {
	return s.public(func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if p.session == nil && !s.anySystem(p) {
			return s.loginFailed(r, p)
		}
		return h(w, r, p)
	})
}

// system requires a caller whose role on the system {id} is at least min.
func (s *Server) system(min Role, h sysHandler) http.Handler {
	return s.public(func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.authenticate(r)
		if err != nil {
			return err
		}
		sys, ok := s.fleet.System(r.PathValue("id"))
		if !ok {
			if p.session == nil && !s.anySystem(p) {
				return s.loginFailed(r, p)
			}
			return errNotFound(r.URL.Path)
		}
		role := p.roleOn(sys)
		if role == RoleNone {
			if p.session == nil {
				return s.loginFailed(r, p)
			}
			// A session of another system's user: this one does not exist for it.
			return errNotFound(r.URL.Path)
		}
		if role < min {
			return errForbidden()
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.MachineTimeout)
		defer cancel()
		c := &sysCtx{sys: sys, role: role, who: p, base: r.Context()}
		defer func() {
			for _, cancel := range c.cancels {
				cancel()
			}
		}()
		return h(w, r.WithContext(ctx), c)
	})
}

// anySystem reports whether a principal may log into some system.
func (s *Server) anySystem(p *principal) bool {
	for _, sys := range s.fleet.Systems() {
		if p.roleOn(sys) != RoleNone {
			return true
		}
	}
	return false
}

func (s *Server) loginFailed(r *http.Request, p *principal) error {
	ip := clientIP(r)
	if s.throttle.failed(ip, s.opts.Now()) {
		s.log.Warn("redfish: blocking logins after repeated failures", "from", ip)
	}
	s.log.Debug("redfish: failed login", "from", ip, "user", p.user)
	return errUnauthorized()
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate reads the caller's X-Auth-Token or Basic credentials.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	now := s.opts.Now()
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		sess, ok := s.sessions.lookup(tok, now)
		if !ok {
			return nil, errUnauthorized()
		}
		return &principal{user: sess.user, pwSum: sess.pwSum, session: sess}, nil
	}
	user, pass, ok := basicAuth(r)
	if !ok {
		return nil, errUnauthorized()
	}
	if blocked, retry := s.throttle.blocked(clientIP(r), now); blocked {
		return nil, errThrottled(retry)
	}
	return &principal{user: user, pwSum: sha256.Sum256([]byte(pass))}, nil
}

func basicAuth(r *http.Request) (user, pass string, ok bool) {
	h := r.Header.Get("Authorization")
	const prefix = "basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	return user, pass, ok && user != ""
}

// writeJSON answers a resource. etag, when not empty, is sent as ETag.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any, etag string) {
	raw, err := marshalJSON(v)
	if err != nil {
		s.encodingFailed(w, err)
		return
	}
	jsonHeader(w, etag)
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(raw)
	}
}

// encodingFailed answers a response that could not be encoded.
func (s *Server) encodingFailed(w http.ResponseWriter, err error) {
	s.log.Error("redfish: encoding a response", "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// jsonHeader sets the headers of a JSON answer; etag, when not empty, is
// sent as ETag.
func jsonHeader(w http.ResponseWriter, etag string) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache")
	if etag != "" {
		hdr.Set("ETag", etag)
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			ae = errorf(http.StatusServiceUnavailable, "ServiceTemporarilyUnavailable", "The machine did not answer in time.").with("Retry-After", "5")
		default:
			s.log.Warn("redfish: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			ae = errUnavailable()
		}
	}
	for k, v := range ae.header {
		w.Header()[k] = v
	}
	s.writeJSON(w, r, ae.status, ae.body(), "")
}

// machineError turns an error of a machine into the client's answer.
func machineError(err error, property string) error {
	switch {
	case errors.Is(err, bmc.ErrNotSupported):
		if property != "" {
			return propError("PropertyValueNotInList", property, "This system cannot do that: "+reason(err), property)
		}
		return errorf(http.StatusBadRequest, "ActionNotSupported", "This system cannot do that: "+reason(err))
	case errors.Is(err, bmc.ErrInvalidArgument):
		if property != "" {
			return propError("PropertyValueNotInList", property, reason(err), property)
		}
		return errorf(http.StatusBadRequest, "GeneralError", reason(err))
	case errors.Is(err, bmc.ErrPoweredOff):
		return errorf(http.StatusConflict, "GeneralError", "The system is powered off.")
	}
	return err
}

// readJSON decodes a request body that must be one JSON object.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	raw, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	return decodeObject(raw)
}

// readOptionalJSON is readJSON where an empty body means no parameters.
func (s *Server) readOptionalJSON(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	raw, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	return decodeObject(raw)
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
	raw, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "GeneralError",
				fmt.Sprintf("The request body is larger than %d bytes.", s.opts.MaxBody))
		}
		return nil, errMalformed("the body could not be read")
	}
	return raw, nil
}

func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errMalformed(err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errMalformed("more than one JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errMalformed("the body is not a JSON object")
	}
	return obj, nil
}

// etagOf is a weak ETag over the writable state of a resource.
func etagOf(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return `W/"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
}

// checkIfMatch answers 412 when If-Match names none of the current ETag.
func checkIfMatch(r *http.Request, etag string) error {
	im := r.Header.Get("If-Match")
	if im == "" {
		return nil
	}
	for _, t := range strings.Split(im, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || t == etag || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
			return nil
		}
	}
	return errorf(http.StatusPreconditionFailed, "PreconditionFailed",
		"The ETag supplied did not match the ETag required to change this resource.")
}

package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// DomainLister names the machines backend settings reach (for libvirt, the
// domains of a hypervisor).
type DomainLister func(ctx context.Context, b bmc.Backend) ([]string, error)

// Server answers the control API over a manager.
type Server struct {
	mgr     *bmc.Manager
	domains DomainLister
	version string
	log     *slog.Logger
	mux     *http.ServeMux
}

// checkTimeout bounds the libvirt checks of an add.
const checkTimeout = 15 * time.Second

// NewServer returns the API handler for mgr.
func NewServer(mgr *bmc.Manager, domains DomainLister, version string, log *slog.Logger) *Server {
	s := &Server{mgr: mgr, domains: domains, version: version, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /v1/version", s.getVersion)
	s.mux.HandleFunc("GET /v1/nodes", s.list)
	s.mux.HandleFunc("POST /v1/nodes", s.add)
	s.mux.HandleFunc("GET /v1/nodes/{name}", s.show)
	s.mux.HandleFunc("DELETE /v1/nodes/{name}", s.delete)
	s.mux.HandleFunc("POST /v1/nodes/{name}/start", s.start)
	s.mux.HandleFunc("POST /v1/nodes/{name}/stop", s.stop)
	s.mux.HandleFunc("POST /v1/domains", s.listDomains)
	return s
}

// ServeHTTP dispatches an API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Listen opens the control socket with mode 0600, replacing a stale one
// but refusing to take over a live one.
func Listen(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another vbmcd is listening", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return l, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, errorResponse{Error: err.Error()})
}

// statusFor maps a manager error to an HTTP status.
func statusFor(err error) int {
	var fe *bmc.FieldError
	switch {
	case errors.Is(err, bmc.ErrUnknownNode):
		return http.StatusNotFound
	case errors.Is(err, bmc.ErrNodeExists), errors.Is(err, bmc.ErrReadOnly):
		return http.StatusConflict
	case errors.As(err, &fe):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func (s *Server) getVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, VersionResponse{Version: s.version})
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	all := s.mgr.List()
	out := make([]NodeInfo, len(all))
	for i, st := range all {
		out[i] = info(st)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) find(name string) (bmc.NodeStatus, bool) {
	for _, st := range s.mgr.List() {
		if st.Node.Name == name {
			return st, true
		}
	}
	return bmc.NodeStatus{}, false
}

func (s *Server) show(w http.ResponseWriter, r *http.Request) {
	st, ok := s.find(r.PathValue("name"))
	if !ok {
		s.fail(w, http.StatusNotFound, fmt.Errorf("%q: %w", r.PathValue("name"), bmc.ErrUnknownNode))
		return
	}
	writeJSON(w, http.StatusOK, info(st))
}

// add registers a BMC after checking what can be checked before it runs:
// the configuration, its port (against other BMCs and other processes),
// and for libvirt nodes that the domain exists.
func (s *Server) add(w http.ResponseWriter, r *http.Request) {
	var req AddRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("bad request: %w", err))
		return
	}
	n := req.Node
	n.ApplyDefaults()
	if err := n.Validate(); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	if st, ok := s.find(n.Name); ok {
		s.fail(w, http.StatusConflict, fmt.Errorf("a BMC for %q already exists (port %d)", n.Name, st.Node.Port))
		return
	}
	for _, st := range s.mgr.List() {
		if st.Node.Port == n.Port && bmc.ValidateFleet([]bmc.Node{st.Node, n}) != nil {
			s.fail(w, http.StatusConflict, fmt.Errorf("port %d on %s for %q is already used by the BMC of %q", n.Port, n.Address, n.Name, st.Node.Name))
			return
		}
	}
	if err := portFree(n); err != nil {
		s.fail(w, http.StatusConflict, fmt.Errorf("%q: %w", n.Name, err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
	defer cancel()
	if err := s.mgr.Check(ctx, n); err != nil {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("cannot add %q: %w", n.Name, err))
		return
	}
	if err := s.mgr.Add(n); err != nil {
		s.fail(w, statusFor(err), err)
		return
	}
	s.log.Info("node added", "node", n.Name, "listen", n.ListenAddr(), "backend", n.Backend.Type)
	st, _ := s.find(n.Name)
	writeJSON(w, http.StatusCreated, info(st))
}

// portFree reports a port another process holds, naming it.
func portFree(n bmc.Node) error {
	c, err := net.ListenPacket("udp", n.ListenAddr())
	if err != nil {
		return fmt.Errorf("port %d on %s is already in use by another process: %w", n.Port, n.Address, err)
	}
	return c.Close()
}

func (s *Server) changeable(w http.ResponseWriter, name string) bool {
	st, ok := s.find(name)
	switch {
	case !ok:
		s.fail(w, http.StatusNotFound, fmt.Errorf("%q: %w", name, bmc.ErrUnknownNode))
		return false
	case st.ReadOnly:
		s.fail(w, http.StatusConflict, fmt.Errorf("%q %w", name, bmc.ErrReadOnly))
		return false
	}
	return true
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.changeable(w, name) {
		return
	}
	if err := s.mgr.Delete(name); err != nil {
		s.fail(w, statusFor(err), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.changeable(w, name) {
		return
	}
	err := s.mgr.Start(context.WithoutCancel(r.Context()), name)
	st, _ := s.find(name)
	if err != nil {
		// The BMC stays registered, in error, with the reason.
		writeJSON(w, http.StatusBadGateway, struct {
			errorResponse
			NodeInfo
		}{errorResponse{Error: err.Error()}, info(st)})
		return
	}
	writeJSON(w, http.StatusOK, info(st))
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.changeable(w, name) {
		return
	}
	if err := s.mgr.Stop(name); err != nil {
		s.fail(w, statusFor(err), err)
		return
	}
	st, _ := s.find(name)
	writeJSON(w, http.StatusOK, info(st))
}

// listDomains names the machines of the backend settings in the body; the
// settings (and any password in them) travel in the body, never in the URL.
func (s *Server) listDomains(w http.ResponseWriter, r *http.Request) {
	var req DomainsRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.fail(w, http.StatusBadRequest, fmt.Errorf("bad request: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), checkTimeout)
	defer cancel()
	names, err := s.domains(ctx, req.Backend)
	if err != nil {
		s.fail(w, http.StatusBadGateway, err)
		return
	}
	writeJSON(w, http.StatusOK, DomainsResponse{Domains: names})
}

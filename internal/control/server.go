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
	// show is VirtualBMC's show_passwords: answers carry passwords.
	showPasswords bool
	// redfishURL gives a node's Redfish URL; nil when Redfish is off.
	redfishURL RedfishURLFunc
}

// RedfishURLFunc returns a node's ComputerSystem URL on the daemon's
// Redfish service.
type RedfishURLFunc func(ctx context.Context, name string) string

// RedfishURLs makes show answer each node's Redfish URL, as url gives it.
// It is meant for setup, before serving.
func (s *Server) RedfishURLs(url RedfishURLFunc) { s.redfishURL = url }

// ShowPasswords makes the API answer with passwords rather than masks, as
// VirtualBMC's show_passwords does. It is meant for setup, before serving.
func (s *Server) ShowPasswords(show bool) { s.showPasswords = show }

// listTimeout bounds listing a backend's machines.
const listTimeout = 15 * time.Second

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

// fail answers a manager error with its status and code. The log names
// the request and the code, never the message (it may quote settings).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, resp := encodeError(err)
	s.refuse(w, r, status, resp)
}

// refuse writes an error response.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, resp errorResponse) {
	s.log.Debug("control request refused", "method", r.Method, "path", r.URL.Path, "status", status, "code", resp.Code)
	writeJSON(w, status, resp)
}

// badRequest answers a request that did not decode.
func (s *Server) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	s.refuse(w, r, http.StatusBadRequest, errorResponse{Error: fmt.Sprintf("bad request: %v", err), Code: CodeBadRequest})
}

// reply answers with one node's state (after a change), with its Redfish
// URL when Redfish is on.
func (s *Server) reply(w http.ResponseWriter, r *http.Request, status int, name string) {
	st, err := s.mgr.Get(name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, status, s.detail(r.Context(), st))
}

// detail is info with the node's Redfish URL when Redfish is on.
func (s *Server) detail(ctx context.Context, st bmc.NodeStatus) NodeInfo {
	info := s.info(st)
	if s.redfishURL != nil {
		info.RedfishURL = s.redfishURL(ctx, st.Node.Name)
	}
	return info
}

func (s *Server) getVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, VersionResponse{Version: s.version})
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	all := s.mgr.List()
	out := make([]NodeInfo, len(all))
	for i, st := range all {
		out[i] = s.info(st)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) show(w http.ResponseWriter, r *http.Request) {
	s.reply(w, r, http.StatusOK, r.PathValue("name"))
}

// add registers a BMC; the manager checks it.
func (s *Server) add(w http.ResponseWriter, r *http.Request) {
	var req AddRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.badRequest(w, r, err)
		return
	}
	if err := s.mgr.Add(r.Context(), req.Node); err != nil {
		s.fail(w, r, err)
		return
	}
	s.reply(w, r, http.StatusCreated, req.Node.Name)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	if err := s.mgr.Delete(r.PathValue("name")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := s.mgr.Start(context.WithoutCancel(r.Context()), name)
	st, getErr := s.mgr.Get(name)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, s.detail(r.Context(), st))
	case getErr != nil || errors.Is(err, bmc.ErrReadOnly):
		s.fail(w, r, err)
	default:
		// The BMC stays registered, in error, with the reason.
		writeJSON(w, http.StatusBadGateway, struct {
			errorResponse
			NodeInfo
		}{errorResponse{Error: err.Error(), Code: CodeFailed}, s.info(st)})
	}
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.mgr.Stop(name); err != nil {
		s.fail(w, r, err)
		return
	}
	s.reply(w, r, http.StatusOK, name)
}

// listDomains names the machines of the backend settings in the body; the
// settings (and any password in them) travel in the body, never in the URL.
func (s *Server) listDomains(w http.ResponseWriter, r *http.Request) {
	var req DomainsRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		s.badRequest(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), listTimeout)
	defer cancel()
	names, err := s.domains(ctx, req.Backend)
	if err != nil {
		status, resp := encodeError(err)
		if resp.Code == CodeFailed {
			status = http.StatusBadGateway // the hypervisor's failure, not ours
		}
		s.refuse(w, r, status, resp)
		return
	}
	writeJSON(w, http.StatusOK, DomainsResponse{Domains: names})
}

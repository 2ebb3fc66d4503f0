package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/config"
	"github.com/govbmc/govbmc/internal/version"
	"github.com/govbmc/govbmc/redfish"
)

// redfishService is the daemon's running Redfish listener.
type redfishService struct {
	// base is the service's URL without a path: https://HOST:PORT.
	base  string
	fleet *managerFleet
	srv   *http.Server
}

// startRedfish starts the daemon's one Redfish listener over the fleet's
// nodes when rf has an address; it returns nil when Redfish is off.
// configDir keeps the self-signed certificate.
func startRedfish(rf config.Redfish, configDir string, fleet *managerFleet, log *slog.Logger) (*redfishService, error) {
	if rf.Address == "" {
		return nil, nil
	}
	host, port, err := config.SplitListenAddress(rf.Address)
	if err != nil {
		return nil, fmt.Errorf("redfish address %q: %w", rf.Address, err)
	}
	var cert *tls.Certificate
	if !rf.InsecureHTTP {
		certFile, keyFile := rf.Cert, rf.Key
		if certFile == "" {
			if certFile, keyFile, err = redfish.SelfSignedCertificate(configDir, host); err != nil {
				return nil, fmt.Errorf("redfish certificate: %w", err)
			}
		}
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("redfish certificate: %w", err)
		}
		cert = &c
	}
	l, err := net.Listen("tcp", rf.Address)
	if err != nil {
		return nil, fmt.Errorf("redfish: %w", err)
	}
	if port == 0 {
		port = l.Addr().(*net.TCPAddr).Port
	}
	h := redfish.New(fleet, redfish.Options{
		Logger:          log,
		FirmwareVersion: version.Version,
		Port:            port,
		TLS:             cert != nil,
	})
	srv := redfish.NewHTTPServer(h, cert)
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	scheme := "https"
	if cert == nil {
		scheme = "http"
		go func() { _ = srv.Serve(l) }()
	} else {
		go func() { _ = srv.ServeTLS(l, "", "") }()
	}
	s := &redfishService{base: scheme + "://" + net.JoinHostPort(urlHost(host), strconv.Itoa(port)), fleet: fleet, srv: srv}
	log.Info("redfish serving", "url", s.base+"/redfish/v1", "listen", l.Addr().String())
	return s, nil
}

// urlHost is the host a URL of a listener on host names: the host itself,
// or this machine's name for a wildcard address (which the self-signed
// certificate names too).
func urlHost(host string) string {
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return host
	}
	if name, err := os.Hostname(); err == nil && name != "" {
		return name
	}
	return "localhost"
}

// SystemURL is a node's ComputerSystem URL: by its machine's UUID, or by
// its name while the UUID is unknown (the service takes both).
func (s *redfishService) SystemURL(ctx context.Context, name string) string {
	return s.base + "/redfish/v1/Systems/" + s.fleet.ID(ctx, name)
}

// Stop shuts the listener down.
func (s *redfishService) Stop() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// managerFleet shows the manager's running nodes to the Redfish front end.
// System finds a node by name through the manager (a map lookup) and by
// machine UUID through an index of the UUIDs learnt so far; the manager
// tells it of every machine it starts (Started), and a UUID that is not in
// the index makes it ask only the machines it has not asked yet. Systems
// lists the manager's nodes, at most once per fleetTTL.
type managerFleet struct {
	mgr *bmc.Manager

	mu      sync.Mutex
	nodes   map[string]*fleetNode // by node name
	byUUID  map[string]string     // machine UUID → node name
	unasked map[string]bool       // nodes whose machine's UUID is not known
	taken   time.Time             // when systems was listed
	systems []redfish.System
}

// fleetNode is what the fleet knows of a node's current machine.
type fleetNode struct {
	machine bmc.Machine
	uuid    string    // "" until known
	failed  time.Time // when asking its UUID last failed
}

const (
	fleetTTL    = time.Second
	uuidTimeout = 2 * time.Second
	uuidBudget  = 3 * time.Second  // for the UUID lookups of one listing or miss
	uuidRetry   = 30 * time.Second // before asking a failed machine again
)

func newManagerFleet() *managerFleet {
	return &managerFleet{nodes: map[string]*fleetNode{}, byUUID: map[string]string{}, unasked: map[string]bool{}}
}

// Started records that a node runs machine m; its UUID is asked later,
// when needed, and its record made then (an idle fleet keeps none). It does
// no I/O (it is called as the node starts).
func (f *managerFleet) Started(name string, m bmc.Machine) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.nodes[name]; n == nil || n.machine != m {
		if n != nil {
			f.forgetLocked(name, n)
		}
		f.unasked[name] = true
	}
	f.systems = nil
}

// forgetLocked drops a node's record n. f.mu is held.
func (f *managerFleet) forgetLocked(name string, n *fleetNode) {
	if f.byUUID[n.uuid] == name {
		delete(f.byUUID, n.uuid)
	}
	delete(f.nodes, name)
}

// Deleted forgets a node.
func (f *managerFleet) Deleted(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.nodes[name]; n != nil {
		f.forgetLocked(name, n)
	}
	delete(f.unasked, name)
	f.systems = nil
}

// nodeLocked returns the node's record for machine m, a new one when m is
// not the machine it knew. f.mu is held.
func (f *managerFleet) nodeLocked(name string, m bmc.Machine) *fleetNode {
	n := f.nodes[name]
	if n != nil && n.machine == m {
		return n
	}
	if n != nil {
		f.forgetLocked(name, n)
	}
	n = &fleetNode{machine: m}
	f.nodes[name] = n
	f.unasked[name] = true
	return n
}

// running returns a node's machine and status when it is up.
func (f *managerFleet) running(name string) (bmc.NodeStatus, bmc.Machine, bool) {
	st, err := f.mgr.Get(name)
	if err != nil || st.Status == bmc.StatusDown {
		return st, nil, false
	}
	m := f.mgr.Machine(name)
	return st, m, m != nil
}

// uuidOf returns the UUID of a node's machine, asking it (within deadline)
// when it is not known and was not refused lately; "" when unknown.
func (f *managerFleet) uuidOf(ctx context.Context, name string, m bmc.Machine, deadline time.Time) string {
	f.mu.Lock()
	n := f.nodeLocked(name, m)
	known, failed := n.uuid, n.failed
	f.mu.Unlock()
	left := time.Until(deadline)
	if known != "" || time.Since(failed) < uuidRetry || left <= 0 {
		return known
	}
	ctx, cancel := context.WithTimeout(ctx, min(left, uuidTimeout))
	u, err := m.UUID(ctx)
	cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		// Still unasked: a miss asks it again once uuidRetry has passed.
		n.failed = time.Now()
		return ""
	}
	n.uuid = u.String()
	if f.nodes[name] == n {
		delete(f.unasked, name)
		f.byUUID[n.uuid] = name
	}
	return n.uuid
}

// system describes a running node.
func (f *managerFleet) system(ctx context.Context, st bmc.NodeStatus, m bmc.Machine, deadline time.Time) redfish.System {
	id := f.uuidOf(ctx, st.Node.Name, m, deadline)
	if id == "" {
		id = st.Node.Name
	}
	return redfish.System{
		ID:          id,
		Name:        st.Node.Name,
		Users:       st.Node.Users,
		IPMIAddress: st.Node.Address,
		IPMIPort:    st.Node.Port,
		Machine:     m,
	}
}

// Systems returns the running nodes, sorted by name.
func (f *managerFleet) Systems() []redfish.System {
	f.mu.Lock()
	if f.systems != nil && time.Since(f.taken) < fleetTTL {
		defer f.mu.Unlock()
		return f.systems
	}
	f.mu.Unlock()
	list := f.mgr.List()
	systems := make([]redfish.System, 0, len(list))
	deadline := time.Now().Add(uuidBudget)
	for _, st := range list {
		if st.Status == bmc.StatusDown {
			continue
		}
		if m := f.mgr.Machine(st.Node.Name); m != nil {
			systems = append(systems, f.system(context.Background(), st, m, deadline))
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.systems, f.taken = systems, time.Now()
	return systems
}

// System finds a running node by node name or machine UUID.
func (f *managerFleet) System(id string) (redfish.System, bool) {
	ctx := context.Background()
	deadline := time.Now().Add(uuidBudget)
	if st, m, ok := f.running(id); ok {
		return f.system(ctx, st, m, deadline), true
	}
	if s, ok := f.byID(ctx, id, deadline); ok {
		return s, true
	}
	// Perhaps a machine started since whose UUID was never asked.
	f.mu.Lock()
	var unasked []string
	for name := range f.unasked {
		unasked = append(unasked, name)
	}
	f.mu.Unlock()
	for _, name := range unasked {
		if _, m, ok := f.running(name); ok {
			f.uuidOf(ctx, name, m, deadline)
		} else {
			f.mu.Lock()
			delete(f.unasked, name)
			f.mu.Unlock()
		}
	}
	return f.byID(ctx, id, deadline)
}

// byID finds a running node by its machine's UUID in the index.
func (f *managerFleet) byID(ctx context.Context, id string, deadline time.Time) (redfish.System, bool) {
	f.mu.Lock()
	name, ok := f.byUUID[id]
	f.mu.Unlock()
	if !ok {
		return redfish.System{}, false
	}
	st, m, ok := f.running(name)
	if !ok {
		return redfish.System{}, false
	}
	s := f.system(ctx, st, m, deadline)
	return s, s.ID == id
}

// ID is a node's Redfish ID: its machine's UUID when known (asked now if
// need be), else its name.
func (f *managerFleet) ID(ctx context.Context, name string) string {
	if _, m, ok := f.running(name); ok {
		if u := f.uuidOf(ctx, name, m, time.Now().Add(uuidTimeout)); u != "" {
			return u
		}
		return name
	}
	// A stopped node keeps the UUID its machine had.
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.nodes[name]; n != nil && n.uuid != "" {
		return n.uuid
	}
	return name
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/version"
	"github.com/govbmc/govbmc/redfish"
)

// redfishOptions are vbmcd's Redfish flags.
type redfishOptions struct {
	address      string // ADDR:PORT; empty: Redfish is off
	certFile     string
	keyFile      string
	insecureHTTP bool
}

// startRedfish starts the daemon's one Redfish listener over the manager's
// nodes, when --redfish-address asks for it. The returned stop shuts it down.
func startRedfish(o options, mgr *bmc.Manager, log *slog.Logger) (stop func(), err error) {
	ro := o.redfish
	if ro.address == "" {
		return func() {}, nil
	}
	host, portText, err := net.SplitHostPort(ro.address)
	if err != nil {
		return nil, fmt.Errorf("--redfish-address %q: want ADDR:PORT", ro.address)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("--redfish-address %q: bad port", ro.address)
	}
	if (ro.certFile == "") != (ro.keyFile == "") {
		return nil, errors.New("--redfish-cert and --redfish-key go together")
	}
	if ro.insecureHTTP && ro.certFile != "" {
		return nil, errors.New("--redfish-insecure-http and --redfish-cert exclude each other")
	}
	var cert *tls.Certificate
	if !ro.insecureHTTP {
		certFile, keyFile := ro.certFile, ro.keyFile
		if certFile == "" {
			if certFile, keyFile, err = redfish.SelfSignedCertificate(o.configDir, host); err != nil {
				return nil, fmt.Errorf("redfish certificate: %w", err)
			}
		}
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("redfish certificate: %w", err)
		}
		cert = &c
	}
	l, err := net.Listen("tcp", ro.address)
	if err != nil {
		return nil, fmt.Errorf("redfish: %w", err)
	}
	if port == 0 {
		port = l.Addr().(*net.TCPAddr).Port
	}
	h := redfish.New(newManagerFleet(mgr), redfish.Options{
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
	log.Info("redfish serving", "url", scheme+"://"+l.Addr().String()+"/redfish/v1")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// managerFleet shows the manager's running nodes to the Redfish front end.
// It keeps a snapshot of the fleet, indexed by machine UUID and node name,
// taken at most once per fleetTTL (sooner when an ID is not found), so a
// request costs a map lookup, not a walk over the fleet; machine UUIDs are
// asked once per machine.
type managerFleet struct {
	mgr *bmc.Manager
	// now is the clock the snapshot's age and the UUID retries are read
	// on: time.Now, or a test's own.
	now func() time.Time

	mu      sync.Mutex
	taken   time.Time
	systems []redfish.System
	byKey   map[string]int            // machine UUID and node name → index in systems
	uuids   map[bmc.Machine]string    // UUID text of each machine seen
	failed  map[bmc.Machine]time.Time // when a machine's UUID could not be read
}

const (
	fleetTTL       = time.Second
	fleetMissRetry = 100 * time.Millisecond
	uuidTimeout    = 2 * time.Second
	uuidBudget     = 3 * time.Second  // for all UUID lookups of one refresh
	uuidRetry      = 30 * time.Second // before asking a failed machine again
)

func newManagerFleet(mgr *bmc.Manager) *managerFleet {
	return &managerFleet{mgr: mgr, now: time.Now, uuids: map[bmc.Machine]string{}}
}

// Systems returns the running nodes, sorted by name.
func (f *managerFleet) Systems() []redfish.System {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshLocked(fleetTTL)
	return f.systems
}

// System finds a running node by machine UUID or node name.
func (f *managerFleet) System(id string) (redfish.System, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshLocked(fleetTTL)
	i, ok := f.byKey[id]
	if !ok && f.refreshLocked(fleetMissRetry) {
		i, ok = f.byKey[id]
	}
	if !ok {
		return redfish.System{}, false
	}
	return f.systems[i], true
}

// refreshLocked retakes the snapshot when it is older than maxAge. A
// machine whose UUID cannot be read (its hypervisor is down) goes by its
// node name and is asked again after uuidRetry; UUID lookups share a time
// budget, so a refresh never stalls requests for long.
func (f *managerFleet) refreshLocked(maxAge time.Duration) bool {
	now := f.now()
	if f.byKey != nil && now.Sub(f.taken) < maxAge {
		return false
	}
	list := f.mgr.List()
	systems := make([]redfish.System, 0, len(list))
	byKey := make(map[string]int, 2*len(list))
	seen := make(map[bmc.Machine]string, len(list))
	failed := make(map[bmc.Machine]time.Time)
	deadline := now.Add(uuidBudget)
	for _, st := range list {
		if st.Status == bmc.StatusDown {
			continue
		}
		m := f.mgr.Machine(st.Node.Name)
		if m == nil {
			continue
		}
		id, ok := f.uuids[m]
		if !ok {
			id = st.Node.Name
			if at, bad := f.failed[m]; bad && now.Sub(at) < uuidRetry {
				failed[m] = at
			} else if left := deadline.Sub(f.now()); left > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), min(left, uuidTimeout))
				u, err := m.UUID(ctx)
				cancel()
				if err == nil {
					id, ok = u.String(), true
				} else {
					failed[m] = now
				}
			}
		}
		if ok {
			seen[m] = id
		}
		byKey[st.Node.Name] = len(systems)
		if _, dup := byKey[id]; !dup {
			byKey[id] = len(systems)
		}
		systems = append(systems, redfish.System{
			ID:          id,
			Name:        st.Node.Name,
			Users:       st.Node.Users,
			IPMIAddress: st.Node.Address,
			IPMIPort:    st.Node.Port,
			Machine:     m,
		})
	}
	f.systems, f.byKey, f.uuids, f.failed, f.taken = systems, byKey, seen, failed, f.now()
	return true
}

// args are the flags that give a detached vbmcd the same Redfish settings.
func (ro redfishOptions) args() []string {
	var a []string
	if ro.address != "" {
		a = append(a, "--redfish-address", ro.address)
	}
	if ro.certFile != "" {
		a = append(a, "--redfish-cert", ro.certFile, "--redfish-key", ro.keyFile)
	}
	if ro.insecureHTTP {
		a = append(a, "--redfish-insecure-http")
	}
	return a
}

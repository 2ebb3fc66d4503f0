package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/config"
	"github.com/govbmc/govbmc/internal/control"
	"github.com/govbmc/govbmc/internal/metrics"
	"github.com/govbmc/govbmc/internal/vbmcconf"
	"github.com/govbmc/govbmc/internal/version"
	"github.com/govbmc/govbmc/ipmi"
	_ "github.com/govbmc/govbmc/libvirtconn" // registers the libvirt backend
)

// newManager wires the registered backends and the IPMI front end into a
// manager. Every backend (libvirt through its import) registers itself; a
// backend's driver, such as libvirt's pool of shared connections, starts at
// its first node.
// Each node's System Event Log is kept in a file beside the node's in
// stateDir ("" keeps it in memory only), so that it survives a restart.
// started, when not nil, is told of every machine a node starts with.
func newManager(log *slog.Logger, backends *bmc.Backends, opts ipmi.Options, stateDir string, started func(name string, m bmc.Machine)) *bmc.Manager {
	opts.Logger = log
	frontends := func(n bmc.Node, m bmc.Machine) (bmc.Frontend, error) {
		o := opts
		kg, err := bmc.ParseKg(n.Kg)
		if err != nil {
			return nil, &bmc.FieldError{Node: n.Name, Field: "kg", Err: err}
		}
		o.Kg = kg
		if stateDir != "" {
			ev, err := bmc.NewEventLog(0, bmc.EventLogPath(stateDir, n.Name))
			if err != nil {
				log.Warn("system event log file unreadable; the node's log starts empty", "node", n.Name, "err", err)
			}
			o.EventLog = ev
		}
		fe, err := ipmi.New(n, m, o)
		if err == nil && started != nil {
			started(n.Name, m)
		}
		return fe, err
	}
	mgr := bmc.NewManager(backends.NewMachine, frontends, log)
	// vbmc add refuses a port another process holds and a machine that is
	// not there, as VirtualBMC does.
	mgr.UseAddChecks(bmc.AddChecks{Port: bmc.UDPPortFree, Machine: true})
	return mgr
}

// runDaemon serves until ctx ends: the stored BMCs, the fleet file's, and
// the control socket.
func runDaemon(ctx context.Context, o options, log *slog.Logger) error {
	var fleet config.Fleet
	if o.configFile != "" {
		var err error
		if fleet, err = config.LoadFleet(o.configFile); err != nil {
			return err
		}
		o.applyFleet(fleet)
	}
	if err := o.redfish.Check(o.keyName(redfishFlags, "redfish")); err != nil {
		return err
	}
	if err := o.useMediaLimits(log); err != nil {
		return err
	}
	store, err := bmc.OpenStore(o.configDir)
	if err != nil {
		return err
	}
	release, err := acquirePidFile(o.pidFile)
	if err != nil {
		return err
	}
	defer release()

	logVirtualBMCConfig(log, o)
	backends := bmc.NewBackends(log)
	defer backends.Close()
	var ipmiOpts ipmi.Options
	if o.vbmc.SessionTimeoutSet {
		ipmiOpts.SessionTimeout = o.vbmc.SessionTimeout
	}
	var met *metrics.Metrics
	if o.metricsAddress != "" {
		met = metrics.New()
		ipmiOpts.Observer = met
		backends.SetObserver(met)
	}
	fleetView := newManagerFleet()
	mgr := newManager(log, backends, ipmiOpts, store.Dir(), fleetView.Started)
	fleetView.mgr = mgr
	mgr.OnDelete(fleetView.Deleted)
	mgr.UseStore(store)
	mgr.OnDelete(func(name string) {
		if err := os.Remove(bmc.EventLogPath(store.Dir(), name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("deleted node's event log left behind", "node", name, "err", err)
		}
	})
	rf, err := startRedfish(o.redfish, o.configDir, fleetView, log)
	if err != nil {
		return err
	}
	defer rf.Stop()
	// A node VirtualBMC could serve is added as its VirtualBMC file, so
	// that VirtualBMC reads the same directory.
	mgr.PersistAddsWith(vbmcconf.NewStore(o.configDir, store))
	if met != nil {
		mgr.OnDelete(met.Forget)
		stopMetrics, err := serveMetrics(o.metricsAddress, met, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}

	started := 0
	for _, n := range fleet.Nodes {
		if err := mgr.AddReadOnly(ctx, n); err != nil {
			return err
		}
		if st, err := mgr.Get(n.Name); err == nil && st.Status == bmc.StatusRunning {
			started++
		}
	}
	if len(fleet.Nodes) > 0 && started == 0 {
		_ = mgr.Close()
		return fmt.Errorf("none of the %d nodes in %s could start (see the log)", len(fleet.Nodes), o.configFile)
	}
	for _, err := range mgr.Restore(ctx) {
		log.Error("restoring a stored BMC", "err", err)
	}
	// VirtualBMC's node folders, read now and followed while vbmcd runs.
	ctx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	syncer := vbmcconf.NewSyncer(o.configDir, mgr, log)
	syncer.Rescan(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		_ = vbmcconf.Watch(ctx, o.configDir, vbmcconf.RescanInterval, log, func() { syncer.Rescan(ctx) })
	}()
	defer func() { <-watchDone }()

	sock := filepath.Join(o.configDir, control.SocketName)
	l, err := control.Listen(sock)
	if err != nil {
		_ = mgr.Close()
		return err
	}
	api := control.NewServer(mgr, backends.ListMachines, version.Version, log)
	api.ShowPasswords(o.vbmc.ShowPasswords)
	if rf != nil {
		api.RedfishURLs(rf.SystemURL)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
	log.Info("vbmcd serving", "config_dir", o.configDir, "socket", sock, "nodes", len(mgr.List()), "version", version.Version)

	select {
	case <-ctx.Done():
		log.Info("vbmcd stopping", "reason", context.Cause(ctx))
	case err := <-serveErr:
		log.Error("control socket failed", "err", err)
		cancelWatch()
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	os.Remove(sock)
	if err := mgr.Close(); err != nil {
		return fmt.Errorf("stop nodes: %w", err)
	}
	log.Info("vbmcd stopped")
	return nil
}

// serveMetrics serves met at http://addr/metrics until stop is called.
func serveMetrics(addr string, met *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-address: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", met.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint failed", "err", err)
		}
	}()
	log.Info("serving metrics", "url", "http://"+l.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

// logVirtualBMCConfig says which virtualbmc.conf vbmcd read and what of it
// govbmc does not use.
func logVirtualBMCConfig(log *slog.Logger, o options) {
	c := o.vbmc
	if c.Path == "" {
		log.Info("no virtualbmc.conf found; VirtualBMC's defaults apply", "looked_in", "$"+vbmcconf.EnvConfig+", ~/.vbmc/virtualbmc.conf, /etc/virtualbmc/virtualbmc.conf")
		return
	}
	timeout := "unset (IPMI sessions idle out after 60s)"
	if c.SessionTimeoutSet {
		timeout = c.SessionTimeout.String()
	}
	log.Info("virtualbmc.conf read", "path", c.Path, "config_dir", o.configDir, "pid_file", o.pidFile,
		"show_passwords", c.ShowPasswords, "logfile", c.LogFile, "debug", c.Debug, "session_timeout", timeout)
	log.Info("virtualbmc.conf server_port is not used: vbmc talks to vbmcd over the control socket", "server_port", c.ServerPort,
		"socket", filepath.Join(o.configDir, control.SocketName))
}

// runningPid returns the pid in a pid file when that process lives.
func runningPid(path string) (int, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	var pid int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(raw)), "%d", &pid); err != nil || pid <= 0 || pid == os.Getpid() {
		return 0, false
	}
	if syscall.Kill(pid, 0) != nil {
		return 0, false
	}
	// A killed daemon nobody reaped is a zombie: dead for our purpose.
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return 0, false
		}
	}
	return pid, true
}

// acquirePidFile writes the pid file, refusing when another vbmcd lives.
func acquirePidFile(path string) (release func(), err error) {
	if pid, ok := runningPid(path); ok {
		return nil, fmt.Errorf("vbmcd is already running (pid %d, pid file %s)", pid, path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600); err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return func() { os.Remove(path) }, nil
}

// daemonize starts vbmcd again in the foreground, detached from the
// terminal and logging to CONFIG_DIR/vbmcd.log, and returns once its
// control socket answers.
func daemonize(o options) error {
	if pid, ok := runningPid(o.pidFile); ok {
		return fmt.Errorf("vbmcd is already running (pid %d, pid file %s)", pid, o.pidFile)
	}
	if err := os.MkdirAll(o.configDir, 0o700); err != nil {
		return fmt.Errorf("config directory: %w", err)
	}
	// With virtualbmc.conf's logfile, vbmcd writes it itself.
	logPath := filepath.Join(o.configDir, "vbmcd.log")
	if o.vbmc.LogFile != "" {
		logPath = os.DevNull
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	defer logFile.Close()
	if o.vbmc.LogFile != "" {
		logPath = o.vbmc.LogFile
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"--foreground", "--config-dir", o.configDir, "--pid-file", o.pidFile, "--log-level", o.logLevel, "--log-format", o.logFormat}
	args = append(args, o.settingArgs()...)
	child := exec.Command(self, args...)
	child.Stdout, child.Stderr = logFile, logFile
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return fmt.Errorf("start vbmcd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	client := control.NewClient(filepath.Join(o.configDir, control.SocketName))
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("vbmcd exited during start (%v); see %s", err, logPath)
		case <-time.After(100 * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.Version(ctx)
		cancel()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("vbmcd did not answer on its socket within 15s; see %s", logPath)
}

// Command vbmcd is govbmc's daemon: it runs one virtual BMC per node, keeps
// their configuration in a directory and takes orders from vbmc over a
// private unix socket.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/govbmc/govbmc/internal/config"
	"github.com/govbmc/govbmc/internal/vbmcconf"
	"github.com/govbmc/govbmc/internal/version"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "vbmcd:", err)
		os.Exit(1)
	}
}

type options struct {
	configDir      string
	configFile     string
	pidFile        string
	foreground     bool
	logLevel       string
	logFormat      string
	redfish        config.Redfish
	media          config.VirtualMedia
	metricsAddress string
	// changed reports whether a flag was given (flags win over the fleet file).
	changed func(flag string) bool

	// vbmc is virtualbmc.conf as VirtualBMC would read it (defaults when
	// there is none).
	vbmc vbmcconf.DaemonConfig
}

// resolve settles what the flags leave out from virtualbmc.conf (found as
// VirtualBMC finds it), flags first: the config directory, the pid file,
// the log file and the debug level.
func (o *options) resolve(changed func(flag string) bool) error {
	dir, conf, err := vbmcconf.Resolve(o.configDir)
	if err != nil {
		return err
	}
	o.configDir, o.vbmc, o.changed = dir, conf, changed
	if o.pidFile == "" {
		o.pidFile = filepath.Join(o.configDir, "vbmcd.pid")
		if conf.Path != "" {
			o.pidFile = conf.PIDFile
		}
	}
	if conf.Debug && !changed("log-level") {
		o.logLevel = "debug"
	}
	return nil
}

func newRootCommand() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "vbmcd",
		Short: "govbmc daemon: an IPMI BMC for every virtual machine",
		Long: `vbmcd runs every virtual BMC in one process. It keeps one file per BMC in
its config directory, brings back the BMCs that were started when it
restarts, and is managed with vbmc over a unix socket only its owner can use.

It reads OpenStack VirtualBMC's configuration in place: virtualbmc.conf
($VIRTUALBMC_CONFIG, ~/.vbmc/virtualbmc.conf, /etc/virtualbmc/virtualbmc.conf)
for config_dir, pid_file, show_passwords, [log] logfile and debug and [ipmi]
session_timeout, and every <config_dir>/<name>/config node file, followed
live (changes apply within 3 s). Flags win over the file.

Without --foreground it detaches and logs to vbmcd.log in the config
directory (or virtualbmc.conf's logfile). --config FILE adds the nodes of a
fleet file (read-only, always started) and keeps vbmcd in the foreground;
its redfish: and virtual_media: sections set what the --redfish-* and
--media-* flags do (address, cert, key, insecure_http; max_size,
idle_timeout, deadline, concurrent_inserts, pool), and a flag wins over its key.`,
		Version:       version.Version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.resolve(cmd.Flags().Changed); err != nil {
				return err
			}
			if !o.foreground && o.configFile == "" {
				return daemonize(o)
			}
			log, closeLog, err := newLogger(o.logLevel, o.logFormat, o.vbmc.LogFile)
			if err != nil {
				return err
			}
			defer closeLog()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runDaemon(ctx, o, log)
		},
	}
	cmd.SetVersionTemplate("{{.Version}}\n")
	addPprofFlag(cmd)
	o.bindFlags(cmd.Flags())
	return cmd
}

// bindFlags defines vbmcd's flags into o.
func (o *options) bindFlags(f *pflag.FlagSet) {
	f.StringVar(&o.configDir, "config-dir", "", "directory of the BMC files and the control socket (default $VBMC_CONFIG_DIR, else virtualbmc.conf's config_dir, else ~/.vbmc)")
	f.StringVar(&o.configFile, "config", "", "also serve the nodes of this YAML fleet file (read-only); implies --foreground")
	f.StringVar(&o.pidFile, "pid-file", "", "pid file (default virtualbmc.conf's pid_file when there is one, else CONFIG_DIR/vbmcd.pid)")
	f.BoolVar(&o.foreground, "foreground", false, "stay in the foreground")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error (debug when virtualbmc.conf says [log] debug = True)")
	f.StringVar(&o.metricsAddress, "metrics-address", "", "serve Prometheus metrics on this host:port at /metrics (off by default; also the fleet file's metrics_address)")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.redfish.Address, "redfish-address", "", "serve Redfish for every node on ADDR:PORT (HTTPS; off when empty; sushy-tools uses port 8000; also the fleet file's redfish: address)")
	f.StringVar(&o.redfish.Cert, "redfish-cert", "", "Redfish TLS certificate (default: a self-signed one generated in the config dir)")
	f.StringVar(&o.redfish.Key, "redfish-key", "", "Redfish TLS private key, with --redfish-cert")
	f.BoolVar(&o.redfish.InsecureHTTP, "redfish-insecure-http", false, "serve Redfish over plain HTTP instead of HTTPS")
	f.StringVar(&o.media.MaxSize, "media-max-size", "", "virtual media: the largest image accepted, such as 4GiB (default 8GiB; also the fleet file's virtual_media: max_size)")
	f.StringVar(&o.media.IdleTimeout, "media-idle-timeout", "", "virtual media: give up a download after this long without data (default 30s)")
	f.StringVar(&o.media.Deadline, "media-deadline", "", "virtual media: give up a download that takes longer than this (default 30m)")
	f.IntVar(&o.media.ConcurrentInserts, "media-concurrent-inserts", 0, "virtual media: downloads running at once across all nodes; the others queue (default 4)")
	f.StringVar(&o.media.Pool, "media-pool", "", "virtual media: the libvirt storage pool for images on every hypervisor (default: \"default\" where there is one, else govbmc's own)")
}

// newLogger logs to stderr and, when virtualbmc.conf names a logfile, to
// that file too; close closes the file.
func newLogger(level, format, logFile string) (log *slog.Logger, close func(), err error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	var w io.Writer = os.Stderr
	close = func() {}
	if logFile != "" {
		if err := os.MkdirAll(filepath.Dir(logFile), 0o750); err != nil {
			return nil, nil, fmt.Errorf("virtualbmc.conf [log] logfile: %w", err)
		}
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("virtualbmc.conf [log] logfile: %w", err)
		}
		w, close = io.MultiWriter(os.Stderr, f), func() { f.Close() }
	}
	hopts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), close, nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), close, nil
	}
	close()
	return nil, nil, errors.New("--log-format " + format + ": want text or json")
}

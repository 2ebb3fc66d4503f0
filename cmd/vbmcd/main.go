// Command vbmcd is govbmc's daemon: it runs one virtual BMC per node, keeps
// their configuration in a directory and takes orders from vbmc over a
// private unix socket.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/govbmc/govbmc/internal/control"
	"github.com/govbmc/govbmc/internal/version"
	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "vbmcd:", err)
		os.Exit(1)
	}
}

type options struct {
	configDir  string
	configFile string
	pidFile    string
	foreground bool
	logLevel   string
	logFormat  string
	redfish    redfishOptions
}

func newRootCommand() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "vbmcd",
		Short: "govbmc daemon: an IPMI BMC for every virtual machine",
		Long: `vbmcd runs every virtual BMC in one process. It keeps one file per BMC in
its config directory, brings back the BMCs that were started when it
restarts, and is managed with vbmc over a unix socket only its owner can use.

Without --foreground it detaches and logs to vbmcd.log in the config
directory. --config FILE adds the nodes of a fleet file (read-only, always
started) and keeps vbmcd in the foreground.`,
		Version:       version.Version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(o.logLevel, o.logFormat)
			if err != nil {
				return err
			}
			if o.pidFile == "" {
				o.pidFile = filepath.Join(o.configDir, "vbmcd.pid")
			}
			if !o.foreground && o.configFile == "" {
				return daemonize(o)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runDaemon(ctx, o, log)
		},
	}
	cmd.SetVersionTemplate("{{.Version}}\n")
	addPprofFlag(cmd)
	f := cmd.Flags()
	f.StringVar(&o.configDir, "config-dir", control.DefaultConfigDir(), "directory of the BMC files and the control socket ($VBMC_CONFIG_DIR)")
	f.StringVar(&o.configFile, "config", "", "also serve the nodes of this YAML fleet file (read-only); implies --foreground")
	f.StringVar(&o.pidFile, "pid-file", "", "pid file (default CONFIG_DIR/vbmcd.pid)")
	f.BoolVar(&o.foreground, "foreground", false, "stay in the foreground")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.redfish.address, "redfish-address", "", "serve Redfish for every node on ADDR:PORT (HTTPS; off when empty; sushy-tools uses port 8000)")
	f.StringVar(&o.redfish.certFile, "redfish-cert", "", "Redfish TLS certificate (default: a self-signed one generated in the config dir)")
	f.StringVar(&o.redfish.keyFile, "redfish-key", "", "Redfish TLS private key, with --redfish-cert")
	f.BoolVar(&o.redfish.insecureHTTP, "redfish-insecure-http", false, "serve Redfish over plain HTTP instead of HTTPS")
	return cmd
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	hopts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, hopts)), nil
	}
	return nil, errors.New("--log-format " + format + ": want text or json")
}

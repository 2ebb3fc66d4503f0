// Command vbmcd is govbmc's daemon: it runs one virtual BMC per node.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/config"
	"github.com/govbmc/govbmc/internal/version"
	"github.com/govbmc/govbmc/ipmi"
	"github.com/govbmc/govbmc/libvirtconn"
	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "vbmcd:", err)
		os.Exit(1)
	}
}

type options struct {
	configFile string
	foreground bool
	logLevel   string
	logFormat  string
}

func newRootCommand() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:           "vbmcd",
		Short:         "govbmc daemon: an IPMI BMC for every virtual machine",
		Version:       version.Version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.configFile == "" {
				return errors.New("--config FILE is required (the fleet to serve, e.g. configs/demo.yaml)")
			}
			log, err := newLogger(o.logLevel, o.logFormat)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runFleet(ctx, o.configFile, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configFile, "config", "", "serve the nodes of this YAML fleet file")
	f.BoolVar(&o.foreground, "foreground", true, "stay in the foreground (the fleet mode always does)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
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
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// newManager wires the backends and the IPMI front end into a manager.
// Nodes on the same hypervisor share one libvirt connection from pool.
func newManager(log *slog.Logger, pool *libvirtconn.Pool) *bmc.Manager {
	machines := func(_ context.Context, n bmc.Node) (bmc.Machine, error) {
		switch n.Backend.Type {
		case bmc.BackendSim:
			return bmc.NewSimMachine(n)
		case bmc.BackendLibvirt:
			uri, err := libvirtconn.EffectiveURI(n.Backend)
			if err != nil {
				return nil, err
			}
			conn, err := pool.Get(uri, libvirtconn.Credentials{SASLUsername: n.Backend.SASLUsername, SASLPassword: n.Backend.SASLPassword})
			if err != nil {
				return nil, err
			}
			return libvirtconn.NewDomain(conn, n.Backend.Domain, log.With("node", n.Name)), nil
		}
		return nil, fmt.Errorf("unknown backend %q", n.Backend.Type)
	}
	frontends := func(n bmc.Node, m bmc.Machine) (bmc.Frontend, error) {
		return ipmi.New(n, m, ipmi.Options{Logger: log})
	}
	return bmc.NewManager(machines, frontends, log)
}

// runFleet serves every node of a fleet file until ctx ends.
func runFleet(ctx context.Context, path string, log *slog.Logger) error {
	nodes, err := config.Load(path)
	if err != nil {
		return err
	}
	pool := libvirtconn.NewPool(log, 0)
	defer pool.Close()
	mgr := newManager(log, pool)
	started := 0
	for _, n := range nodes {
		if err := mgr.Add(n); err != nil {
			return err
		}
		if err := mgr.Start(ctx, n.Name); err == nil {
			started++
		}
	}
	if started == 0 {
		_ = mgr.Close()
		return fmt.Errorf("none of the %d nodes in %s could start (see the log)", len(nodes), path)
	}
	log.Info("vbmcd serving", "config", path, "nodes", len(nodes), "running", started, "version", version.Version)
	<-ctx.Done()
	log.Info("vbmcd stopping", "reason", context.Cause(ctx))
	if err := mgr.Close(); err != nil {
		return fmt.Errorf("stop nodes: %w", err)
	}
	log.Info("vbmcd stopped")
	return nil
}

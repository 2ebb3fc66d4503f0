// Command ipmiload measures IPMI BMCs the way ipmitool uses them: one full
// session (channel auth capabilities, cipher suites, Open Session, RAKP 1-4,
// Set Session Privilege Level, the command, Close Session) per command,
// against a list or range of targets with a concurrency limit. It works
// against any IPMI BMC.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/govbmc/govbmc/internal/load"
	"github.com/govbmc/govbmc/internal/version"
	"github.com/spf13/cobra"
)

func main() {
	var (
		targets, proto, format string
		cfg                    load.Config
	)
	cmd := &cobra.Command{
		Use:           "ipmiload --targets HOST:PORT[-LAST][,…]",
		Short:         "measure IPMI BMCs with ipmitool-like full sessions",
		Version:       version.Version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := load.ParseTargets(targets)
			if err != nil {
				return fmt.Errorf("--targets: %w", err)
			}
			cfg.Targets = ts
			switch proto {
			case "lanplus":
				cfg.Interface = client.InterfaceLanplus
			case "lan":
				cfg.Interface = client.InterfaceLan
			default:
				return fmt.Errorf("--interface %q: want lanplus or lan", proto)
			}
			if format != "text" && format != "json" {
				return fmt.Errorf("--format %q: want text or json", format)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			r := load.Run(ctx, cfg)
			if format == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(r)
			}
			fmt.Fprintln(cmd.OutOrStdout(), r)
			if r.Errors > 0 {
				return fmt.Errorf("%d of %d sessions failed", r.Errors, r.Sessions)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&targets, "targets", "", "BMCs: HOST:PORT, HOST:FIRST-LAST, comma-separated")
	f.StringVarP(&cfg.Username, "username", "U", "admin", "IPMI user")
	f.StringVarP(&cfg.Password, "password", "P", "password", "IPMI password")
	f.StringVarP(&proto, "interface", "I", "lanplus", "lanplus (IPMI 2.0) or lan (IPMI 1.5)")
	f.IntVarP(&cfg.CipherSuite, "cipher-suite", "C", 0, "cipher suite (0: negotiate as ipmitool does)")
	f.StringVar(&cfg.Command, "command", "power-status", "command per session: power-status or device-id")
	f.IntVarP(&cfg.Concurrency, "concurrency", "c", 16, "sessions in flight at once")
	f.IntVarP(&cfg.Sessions, "sessions", "n", 0, "sessions in all (default: one per target)")
	f.DurationVarP(&cfg.Duration, "duration", "d", 0, "stop after this long (0: no limit)")
	f.DurationVar(&cfg.Timeout, "timeout", 2*time.Second, "per-request timeout")
	f.StringVarP(&format, "format", "f", "text", "text or json")
	_ = cmd.MarkFlagRequired("targets")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ipmiload:", err)
		os.Exit(1)
	}
}

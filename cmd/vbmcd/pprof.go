package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/spf13/cobra"
)

// addPprofFlag gives cmd the hidden --pprof ADDR flag: Go's profiling
// endpoints (/debug/pprof/) served on a loopback address, for measuring
// start-up and memory on a large fleet.
func addPprofFlag(cmd *cobra.Command) {
	var addr string
	cmd.Flags().StringVar(&addr, "pprof", "", "serve /debug/pprof/ on this loopback address (for profiling)")
	_ = cmd.Flags().MarkHidden("pprof")
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if addr == "" {
			return nil
		}
		return servePprof(addr)
	}
}

// servePprof listens on a loopback addr and serves the profiles there
// until the process ends.
func servePprof(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--pprof %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--pprof %q: want a loopback address", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		srv := &http.Server{Handler: mux}
		if err := srv.Serve(l); err != nil {
			slog.Error("pprof server", "err", err)
		}
	}()
	return nil
}

package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// addCliffGlobalFlags gives vbmc the options every cliff application
// takes before its command, as VirtualBMC's vbmc has them: tenks runs
// `vbmc --no-daemon --log-file FILE <command>`. -v, -q and --debug are
// accepted and change nothing: vbmc prints only results and errors.
func addCliffGlobalFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.String("log-file", "", "Specify a file to log output. Disabled by default.")
	f.CountP("verbose", "v", "accepted for VirtualBMC compatibility (cliff's verbosity); no effect")
	f.BoolP("quiet", "q", false, "accepted for VirtualBMC compatibility (cliff's quiet mode); no effect")
	f.Bool("debug", false, "accepted for VirtualBMC compatibility (cliff's tracebacks); no effect")
	root.MarkFlagsMutuallyExclusive("verbose", "quiet")
}

// logToFile appends a failed command's error to --log-file in cliff's
// log file format; the file is created, as cliff creates it, even when
// there is nothing to log.
func logToFile(root *cobra.Command, err error) {
	name, _ := root.PersistentFlags().GetString("log-file")
	if name == "" {
		return
	}
	f, ferr := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if ferr != nil {
		fmt.Fprintf(os.Stderr, "--log-file %s: %v\n", name, ferr)
		return
	}
	defer f.Close()
	if err != nil {
		fmt.Fprintf(f, "[%s] %-8s %s %s\n", time.Now().Format("2006-01-02 15:04:05,000"), "ERROR", "cliff.app", err)
	}
}

// Command vbmc is govbmc's command line, compatible with OpenStack
// VirtualBMC's vbmc.
package main

import (
	"fmt"
	"os"

	"github.com/govbmc/govbmc/internal/version"
	"github.com/spf13/cobra"
)

func main() {
	cmd := &cobra.Command{
		Use:           "vbmc",
		Short:         "manage govbmc virtual BMCs",
		Long:          "vbmc manages the virtual BMCs of a running vbmcd.\nThe node management commands (add, delete, start, stop, list, show) are not in this release yet; serve a fleet file with `vbmcd --config FILE`.",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "vbmc:", err)
		os.Exit(1)
	}
}

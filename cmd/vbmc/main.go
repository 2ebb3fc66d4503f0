// Command vbmc manages the virtual BMCs of a running vbmcd, with the
// commands, arguments and defaults of OpenStack VirtualBMC's vbmc.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/govbmc/govbmc/internal/control"
	"github.com/govbmc/govbmc/internal/vbmcconf"
	"github.com/govbmc/govbmc/internal/version"
	"github.com/spf13/cobra"
)

// exitError carries the exit status a command wants.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	root := newRootCommand()
	err := root.Execute()
	logToFile(root, err)
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// app is what every command shares.
type app struct {
	configDir string
}

func (a *app) client() *control.Client {
	return control.NewClient(filepath.Join(a.configDir, control.SocketName))
}

// ctx bounds one CLI invocation's work.
func (a *app) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Minute)
}

// explain turns a client error into what the user should read.
func (a *app) explain(err error) error {
	if errors.Is(err, control.ErrNoDaemon) {
		return fmt.Errorf("Failed to connect to the vbmcd server on %s: %w.\nStart it with `vbmcd` (or `vbmcd --foreground`), using the same config directory (--config-dir, $VBMC_CONFIG_DIR or virtualbmc.conf's config_dir)",
			filepath.Join(a.configDir, control.SocketName), control.ErrNoDaemon)
	}
	return err
}

func newRootCommand() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:           "vbmc",
		Short:         "A virtual BMC for controlling virtual instances",
		Long:          "vbmc manages the virtual BMCs served by vbmcd (govbmc), with OpenStack VirtualBMC's commands.",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&a.configDir, "config-dir", "", "vbmcd's config directory, where its socket is (default $VBMC_CONFIG_DIR, else virtualbmc.conf's config_dir, else ~/.vbmc)")
	// The directory is found as vbmcd finds it, so that vbmc reaches its socket.
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		dir, _, err := vbmcconf.Resolve(a.configDir)
		if err != nil {
			return err
		}
		a.configDir = dir
		return nil
	}
	var noDaemon bool
	root.PersistentFlags().BoolVar(&noDaemon, "no-daemon", false, "accepted for VirtualBMC compatibility; vbmc never starts vbmcd itself")
	addCliffGlobalFlags(root)
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.AddCommand(a.addCommand(), a.deleteCommand(), a.startCommand(), a.stopCommand(), a.listCommand(), a.showCommand())
	return root
}

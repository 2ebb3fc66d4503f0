package libvirtconn

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
)

// seaBIOSBanner is what SeaBIOS prints at every boot.
const seaBIOSBanner = "SeaBIOS (version"

// heldLog is in what the BMC logs when it finds the console held by
// another client, the first time (info) and on each retry (debug).
const heldLog = "held by another client"

// TestResetAndCycleTakeTheConsoleBack: a SOL client stays attached while an
// operator's `virsh console --force` holds the console; the BMC keeps
// trying without taking it back, and virsh stays connected. A reset
// through the BMC takes the console back (virsh is disconnected) before
// the reboot, whose banner the SOL client sees; so does a power cycle's
// boot.
func TestResetAndCycleTakeTheConsoleBack(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	c := qemuConn(t)
	name := testtool.DefineTestDomain(t, c, testtool.ConsoleDomainXML, testtool.VirtType())
	logs := &testtool.Buffer{}
	d := openDomain(t, c, name, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := d.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	sol, err := d.OpenConsole(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sol.Close() })
	seen := &testtool.Buffer{}
	go func() { _, _ = io.Copy(seen, sol) }()
	testtool.Eventually(t, 60*time.Second, "the boot on the BMC's console", func() bool {
		return strings.Contains(seen.String(), seaBIOSBanner)
	})

	for _, op := range []struct {
		name string
		do   func(context.Context) error
	}{{"reset", d.Reset}, {"power cycle", d.PowerCycle}} {
		virsh := testtool.StartTerminal(t, "virsh", "-c", "qemu:///system", "console", name, "--force")
		testtool.Eventually(t, 30*time.Second, "virsh console --force connected", func() bool {
			return strings.Contains(virsh.Output(), "Escape character is")
		})
		// This guest is quiet ("No bootable device", then a 60 s wait):
		// libvirtd tells the BMC's old stream it lost the console only when
		// the guest next prints, so the BMC may still think it holds it.
		// The reset must take it back either way. (That an idle BMC leaves
		// an operator's console alone is TestOperatorKeepsVirshConsole's,
		// with a guest that prints all the time.)
		if !virsh.Running() {
			t.Fatalf("before the %s, the operator's virsh console ended:\n%s\nBMC log:\n%s", op.name, virsh.Output(), logs.String())
		}
		boots := strings.Count(seen.String(), seaBIOSBanner)
		if err := op.do(ctx); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		_ = virsh.Wait(t, 30*time.Second)
		testtool.Eventually(t, 60*time.Second, "the boot after the "+op.name+" on the BMC's console", func() bool {
			return strings.Count(seen.String(), seaBIOSBanner) > boots
		})
	}
	if err := d.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
}

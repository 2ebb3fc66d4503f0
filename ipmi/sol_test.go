package ipmi_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/ipmi"
)

// startSOL runs Ironic's `ipmitool … -f PWFILE sol activate` under a pty.
func (n *testNode) startSOL(t *testing.T) *testtool.SOL {
	t.Helper()
	return testtool.StartSOL(t, "-I", "lanplus", "-H", "127.0.0.1", "-p", n.port, "-L", "ADMINISTRATOR", "-U", admin.Name, "-f", passwordFile(t, admin.Password), "sol", "activate")
}

// TestSOLShowsBootMessagesAndEchoes: output from before the client attached
// is there, typed characters reach the machine (which echoes them), and
// "~." ends the session.
func TestSOLShowsBootMessagesAndEchoes(t *testing.T) {
	n := startNode(t, func(c *bmc.Node) {})
	n.lanplus("power", "on") // boot messages while nobody is attached
	s := n.startSOL(t)
	testtool.Eventually(t, 5*time.Second, "the boot banner", func() bool {
		return strings.Contains(s.Output(), "Booting from Hard Disk")
	})
	s.Type(t, "typed-through-sol\r")
	testtool.Eventually(t, 5*time.Second, "the echo", func() bool {
		return strings.Contains(s.Output(), "typed-through-sol")
	})
	n.lanplus("power", "reset")
	testtool.Eventually(t, 5*time.Second, "the reset's boot messages", func() bool {
		return strings.Count(s.Output(), "Booting from Hard Disk") >= 2
	})
	s.Type(t, "\r~.")
	if err := s.Wait(t, 10*time.Second); err != nil {
		t.Fatalf("~. : %v\n%s", err, s.Output())
	}
}

// TestSOLOneSessionAndDeactivateFromAnother: a second activation is refused
// as already active; `sol deactivate` from another process (Ironic's way)
// ends the first payload and frees the console for the next activation.
// (ipmitool ignores the BMC's "SOL deactivating" status and keeps running
// until killed, which is what Ironic does next.)
func TestSOLOneSessionAndDeactivateFromAnother(t *testing.T) {
	n := startNode(t)
	n.lanplus("power", "on")
	first := n.startSOL(t)

	out, err := n.ipmitool("-I", "lanplus", "-U", admin.Name, "-P", admin.Password, "sol", "activate")
	if err == nil {
		t.Fatalf("second activation accepted:\n%s", out)
	}
	mustContain(t, out, "SOL payload already active on another session")

	// Everything the BMC sent before the deactivation must have reached
	// the first console before its output is taken as the reference:
	// ipmitool may still be printing the boot banner the BMC sent earlier.
	// The simulated machine is quiet after its banner and echoes what is
	// typed, in order, so once a typed marker's echo is on the first
	// console, nothing sent before it is still on its way.
	const marker = "settled-before-deactivate"
	first.Type(t, marker)
	testtool.Eventually(t, 5*time.Second, "the marker echoed on the first console", func() bool {
		return strings.Contains(first.Output(), marker)
	})
	n.lanplus("sol", "deactivate")
	// The first console gets nothing more: not the reset's messages, which
	// the new console below shows once they exist. A BMC still streaming to
	// the first console would have sent them there at the reset, before the
	// new session's handshake even began.
	seen := first.Output()
	n.lanplus("power", "reset")
	// The console is free again.
	again := n.startSOL(t)
	testtool.Eventually(t, 5*time.Second, "the reset's messages on the new console", func() bool {
		return strings.Contains(again.Output(), "Hard reset")
	})
	if first.Output() != seen {
		t.Errorf("a deactivated console received the reset's messages too:\n%s", first.Output())
	}
	again.Type(t, "\r~.")
	_ = again.Wait(t, 10*time.Second)
}

// TestSOLActivationCyclesLeakNothing activates and deactivates SOL many
// times: goroutines and file descriptors come back to where they were, and
// the console is free at the end.
func TestSOLActivationCyclesLeakNothing(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	c, err := n.connect(admin, client.InterfaceLanplus, types.PrivilegeLevelAdministrator)
	if err != nil {
		t.Fatal(err)
	}
	activate := []byte{0x01, 0x01, 0x00, 0x00, 0x00, 0x00}
	deactivate := []byte{0x01, 0x01, 0x00, 0x00, 0x00, 0x00}
	cycle := func() {
		if _, err := c.RawCommand(ctx, types.NetFnAppRequest, 0x48, activate, "activate"); err != nil {
			t.Fatalf("activate: %v", err)
		}
		if _, err := c.RawCommand(ctx, types.NetFnAppRequest, 0x49, deactivate, "deactivate"); err != nil {
			t.Fatalf("deactivate: %v", err)
		}
	}
	for i := 0; i < 20; i++ { // warm up lazily created workers
		cycle()
	}
	runtime.GC()
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	for i := 0; i < 1000; i++ {
		cycle()
	}
	testtool.Eventually(t, 5*time.Second, "goroutines back to their count", func() bool {
		runtime.GC()
		return runtime.NumGoroutine() <= goroutines+2
	})
	if now := openFDs(t); now > fds+2 {
		t.Errorf("file descriptors grew from %d to %d over 1,000 cycles", fds, now)
	}
	con, err := n.sim.OpenConsole(ctx)
	if errors.Is(err, bmc.ErrConsoleBusy) {
		t.Fatal("console still held after the last deactivation")
	}
	if err == nil {
		con.Close()
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}

// TestSOLFreedWhenClientDisappears: a client that vanishes without
// deactivating holds the console only until its session times out.
func TestSOLFreedWhenClientDisappears(t *testing.T) {
	n := startNodeWith(t, ipmi.Options{SessionTimeout: time.Second})
	ctx := context.Background()
	payload := []byte{0x01, 0x01, 0x00, 0x00, 0x00, 0x00}
	gone, err := n.connect(admin, client.InterfaceLanplus, types.PrivilegeLevelAdministrator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gone.RawCommand(ctx, types.NetFnAppRequest, 0x48, payload, "activate"); err != nil {
		t.Fatal(err)
	}
	// The client goes silent. Another one is refused while its session lives…
	other, err := n.connect(admin, client.InterfaceLanplus, types.PrivilegeLevelAdministrator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.RawCommand(ctx, types.NetFnAppRequest, 0x48, payload, "activate"); err == nil {
		t.Fatal("a second activation succeeded while the first session lived")
	}
	// …and gets the console once it has timed out.
	testtool.Eventually(t, 40*time.Second, "the console freed by the session timeout", func() bool {
		_, err := other.RawCommand(ctx, types.NetFnAppRequest, 0x48, payload, "activate")
		return err == nil
	})
}

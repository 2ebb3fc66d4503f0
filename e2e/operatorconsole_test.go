package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
)

// rebootingConsoleDomain is testtool.ConsoleDomainXML that never stops
// printing on its console: SeaBIOS offers its boot menu for 3 s, finds
// nothing to boot and reboots at once (rebootTimeout 0), over and over.
var rebootingConsoleDomain = strings.NewReplacer(
	"<bootmenu enable='yes' timeout='10000'/>", "<bootmenu enable='yes' timeout='3000'/>",
	"<bios useserial='yes'/>", "<bios useserial='yes' rebootTimeout='0'/>",
).Replace(testtool.ConsoleDomainXML)

// banner is what SeaBIOS prints at every boot.
const banner = "SeaBIOS (version"

// virshConsole runs an operator's `virsh console` (args after the domain)
// on a terminal.
func virshConsole(t *testing.T, domain string, args ...string) *testtool.Terminal {
	t.Helper()
	return testtool.StartTerminal(t, "virsh", append([]string{"-c", "qemu:///system", "console", domain}, args...)...)
}

// TestOperatorKeepsVirshConsole: while a BMC that powered a VM on captures
// its console, a plain `virsh console` is refused, and an operator's
// `virsh console --force` takes the console and keeps it: it stays
// connected and receives the guest's output for 10 s and more, the BMC
// logging once that another client holds the console. A later `sol
// activate` takes the console back: an ESC typed in the SOL session opens
// the guest's boot menu, which the operator's virsh does not show.
func TestOperatorKeepsVirshConsole(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	if !strings.Contains(rebootingConsoleDomain, "timeout='3000'") || !strings.Contains(rebootingConsoleDomain, "rebootTimeout='0'") {
		t.Fatalf("testtool.ConsoleDomainXML changed: the VM would not reboot in a loop:\n%s", rebootingConsoleDomain)
	}
	c := get(t, pool(t), "qemu:///system")
	name := testtool.DomainName(t, "")
	testtool.DefineDomain(t, c, name, rebootingConsoleDomain, testtool.VirtType())
	n := serveDomain(t, c, name)
	n.must("power", "on")
	// ipmitool's power on returns once the BMC has acknowledged it (within
	// 400 ms), which may be before the power on is over: the domain is
	// started paused, and resumed once the BMC's console stream is open.
	// A plain virsh console opened meanwhile finds the console free, and
	// the power on takes it (a BMC user asked for the console). What says
	// the power on is over, its console open, is the last power event
	// chassis status reports: "command" only once it has succeeded. (Power
	// status says on from the paused start, before the stream opens.)
	testtool.Eventually(t, 60*time.Second, "the power on over (chassis status: last power event command)", func() bool {
		out, err := n.ipmitool("chassis", "status")
		return err == nil && strings.Contains(out, "Last Power Event     : command")
	})

	// The BMC holds the console: virsh without --force is refused.
	plain := virshConsole(t, name)
	if err := plain.Wait(t, 30*time.Second); err == nil {
		t.Fatalf("virsh console without --force succeeded while the BMC holds the console:\n%s", plain.Output())
	}
	mustContain(t, plain.Output(), "Active console session exists for this domain")

	// The operator forces it, and keeps it.
	op := virshConsole(t, name, "--force")
	testtool.Eventually(t, 30*time.Second, "virsh console --force connected", func() bool {
		return strings.Contains(op.Output(), "Escape character is")
	})
	connected := time.Now()
	testtool.Eventually(t, 90*time.Second, "the operator's console connected for 10 s, receiving the guest's boots all along", func() bool {
		if !op.Running() {
			t.Fatalf("the operator's virsh console ended after %v:\n%s", time.Since(connected).Round(time.Millisecond), op.Output())
		}
		return time.Since(connected) >= 10*time.Second && strings.Count(op.Output(), banner) >= 3
	})
	// Still connected, and still receiving: one more boot, seen by virsh.
	seen := strings.Count(op.Output(), banner)
	testtool.Eventually(t, 60*time.Second, "another boot on the operator's console", func() bool {
		if !op.Running() {
			t.Fatalf("the operator's virsh console ended:\n%s", op.Output())
		}
		return strings.Count(op.Output(), banner) > seen
	})
	if strings.Contains(op.Output(), "error:") {
		t.Fatalf("the operator's virsh console reports an error:\n%s", op.Output())
	}
	if held := strings.Count(n.logs.String(), "serial console held by another client"); held != 1 {
		t.Fatalf("the BMC logged %d times that another client holds the console, want once:\n%s", held, n.logs.String())
	}
	mustContain(t, n.logs.String(), "level=INFO msg=\"serial console held by another client")

	// A BMC user asks for the console: SOL takes it back, and the guest's
	// output goes to SOL, none to virsh (checked below: the boot menu
	// opened from SOL shows on SOL only). virsh is not always told:
	// libvirtd 9.0.0 tells a stream that a forced open took its console only
	// if it is waiting on that stream at that instant (virfdstream.c,
	// virFDStreamCloseInt); while it passes the guest's output on to virsh
	// it is not, and virsh then stays connected, silent.
	shown := len(op.Output())
	s := n.sol(t)
	// ESC at each boot menu prompt the SOL session shows, until the menu
	// opens: a keystroke typed in SOL reaches the guest.
	prompts := 0
	testtool.Eventually(t, 60*time.Second, "the boot menu an ESC typed in SOL opens", func() bool {
		out := s.Output()
		if strings.Contains(out, "Select boot device") {
			return true
		}
		if now := strings.Count(out, "Press ESC for boot menu"); now > prompts {
			prompts = now
			s.Type(t, "\x1b")
		}
		return false
	})
	if after := op.Output()[shown:]; strings.Contains(after, "Select boot device") {
		t.Fatalf("the operator's virsh console still gets the guest's output after sol activate:\n%q", after)
	}
	if after := op.Output()[shown:]; op.Running() && !strings.Contains(after, "error:") {
		t.Logf("libvirtd did not tell the operator's virsh that it lost the console (see above)")
	}
	s.Type(t, "\r~.")
	_ = s.Wait(t, 15*time.Second)
	n.must("power", "off")
}

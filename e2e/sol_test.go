package e2e

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/internal/testtool"
)

// sol runs Ironic's `ipmitool … -f PWFILE sol activate` under a pty.
func (n *node) sol(t *testing.T) *testtool.SOL {
	t.Helper()
	pw := testtool.WriteFile(t, "pw", admin.Password)
	return testtool.StartSOL(t, "-I", "lanplus", "-H", "127.0.0.1", "-p", n.port, "-L", "ADMINISTRATOR", "-U", admin.Name, "-f", pw, "sol", "activate")
}

// solBootMenu: power on, attach SOL, see SeaBIOS's banner (printed before
// the client attached), press ESC through SOL and see the boot menu the
// guest opens, then leave with "~.".
func solBootMenu(t *testing.T, uri string) {
	c := get(t, pool(t), uri)
	name := testtool.DomainName(t, "")
	testtool.DefineDomain(t, c, name, testtool.ConsoleDomainXML, testtool.VirtType())
	n := serveDomain(t, c, name)
	n.must("power", "on")
	time.Sleep(300 * time.Millisecond) // the boot starts with nobody attached
	s := n.sol(t)
	testtool.Eventually(t, 60*time.Second, "SeaBIOS on the console", func() bool {
		return strings.Contains(s.Output(), "SeaBIOS") && strings.Contains(s.Output(), "Press ESC for boot menu")
	})
	s.Type(t, "\x1b")
	testtool.Eventually(t, 30*time.Second, "the boot menu the ESC opened", func() bool {
		return strings.Contains(s.Output(), "Select boot device")
	})
	s.Type(t, "\r~.")
	_ = s.Wait(t, 15*time.Second)
	// The console is free for the next client, and the BMC still works.
	again := n.sol(t)
	again.Type(t, "\r~.")
	n.must("power", "off")
}

func TestSOLOnQemu(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	solBootMenu(t, "qemu:///system")
}

func TestSOLOnQemuOverSSH(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	sshd := testtool.StartSshd(t)
	solBootMenu(t, sshURI(sshd, "qemu", "/system", sshd.KnownHosts))
}

// TestSOLCyclesOnQemuLeakNothing: 1,000 activations and deactivations of
// SOL on a running VM leave goroutines and file descriptors as they were,
// and the console stream to libvirt as it was.
func TestSOLCyclesOnQemuLeakNothing(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	c := get(t, pool(t), "qemu:///system")
	name := testtool.DomainName(t, "")
	testtool.DefineDomain(t, c, name, testtool.ConsoleDomainXML, testtool.VirtType())
	n := serveDomain(t, c, name)
	n.must("power", "on")
	port, _ := strconv.Atoi(n.port)
	cl, err := client.NewClient("127.0.0.1", port, admin.Name, admin.Password)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	if err := cl.WithInterface(client.InterfaceLanplus).Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer cl.Close(ctx)
	payload := []byte{0x01, 0x01, 0x00, 0x00, 0x00, 0x00}
	cycle := func() {
		if _, err := cl.RawCommand(ctx, types.NetFnAppRequest, 0x48, payload, "activate"); err != nil {
			t.Fatalf("activate: %v", err)
		}
		if _, err := cl.RawCommand(ctx, types.NetFnAppRequest, 0x49, payload, "deactivate"); err != nil {
			t.Fatalf("deactivate: %v", err)
		}
	}
	for i := 0; i < 20; i++ {
		cycle()
	}
	goroutines, fds := runtime.NumGoroutine(), countFDs()
	for i := 0; i < 1000; i++ {
		cycle()
	}
	testtool.Eventually(t, 5*time.Second, "goroutines back to their count", func() bool {
		return runtime.NumGoroutine() <= goroutines+2
	})
	if now := countFDs(); now > fds+2 {
		t.Errorf("file descriptors grew from %d to %d", fds, now)
	}
	n.must("power", "off")
}

func countFDs() int {
	entries, _ := os.ReadDir("/proc/self/fd")
	return len(entries)
}

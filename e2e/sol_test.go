package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/internal/testtool"
)

// consoleDomain is a 64 MiB diskless VM whose SeaBIOS talks on a pty serial
// console and waits 10 s in its boot menu prompt.
const consoleDomain = `<domain type='%[2]s'>
  <name>%[1]s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
    <bootmenu enable='yes' timeout='10000'/>
    <bios useserial='yes'/>
  </os>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
  </devices>
</domain>`

// sol runs `ipmitool sol activate` under a pseudo-terminal, as Ironic does.
type sol struct {
	cmd  *exec.Cmd
	in   *os.File
	out  *testtool.Buffer
	done chan error
}

func (n *node) sol(t *testing.T) *sol {
	t.Helper()
	testtool.Require(t, "script")
	ipmitool := testtool.Require(t, "ipmitool")
	pw := testtool.WriteFile(t, "pw", admin.Password)
	line := fmt.Sprintf("%s -I lanplus -H 127.0.0.1 -p %s -L ADMINISTRATOR -U %s -f %s sol activate", ipmitool, n.port, admin.Name, pw)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &sol{in: w, out: &testtool.Buffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command("script", "-q", "-e", "-c", line, "/dev/null")
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = r, s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		w.Close()
		_ = s.cmd.Process.Kill()
		<-s.done
	})
	return s
}

// solBootMenu: power on, attach SOL, see SeaBIOS's banner (printed before
// the client attached), press ESC through SOL and see the boot menu the
// guest opens, then leave with "~.".
func solBootMenu(t *testing.T, uri string) {
	c := get(t, pool(t), uri)
	name := domainName(t, "")
	define(t, c, name, consoleDomain, virtType())
	n := serveDomain(t, c, name)
	n.must("power", "on")
	time.Sleep(300 * time.Millisecond) // the boot starts with nobody attached
	s := n.sol(t)
	testtool.Eventually(t, 60*time.Second, "SeaBIOS on the console", func() bool {
		return strings.Contains(s.out.String(), "SeaBIOS") && strings.Contains(s.out.String(), "Press ESC for boot menu")
	})
	if _, err := s.in.WriteString("\x1b"); err != nil {
		t.Fatal(err)
	}
	testtool.Eventually(t, 30*time.Second, "the boot menu the ESC opened", func() bool {
		return strings.Contains(s.out.String(), "Select boot device")
	})
	if _, err := s.in.WriteString("\r~."); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
		s.done <- nil
	case <-time.After(15 * time.Second):
		t.Fatalf("~. did not end the session:\n%s", s.out.String())
	}
	// The console is free for the next client, and the BMC still works.
	again := n.sol(t)
	testtool.Eventually(t, 15*time.Second, "a second SOL session", func() bool {
		return strings.Contains(again.out.String(), "SOL Session operational")
	})
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
	name := domainName(t, "")
	define(t, c, name, consoleDomain, virtType())
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

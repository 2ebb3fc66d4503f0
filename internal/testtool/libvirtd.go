package testtool

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// SystemLibvirtSocket is the system libvirtd's socket.
const SystemLibvirtSocket = "/var/run/libvirt/libvirt-sock"

// SystemLibvirtd returns the system libvirtd's socket once this user can
// open qemu:///system on it. The tests never start it themselves (that is
// a change to the machine): `make test` does, through
// scripts/prepare-test-host.sh. When it is not running, or this user may
// not use it, the test is skipped, or fails under CI=true.
func SystemLibvirtd(t testing.TB) string {
	t.Helper()
	if err := openSystemLibvirt(); err != nil {
		Missing(t, fmt.Sprintf("the system libvirtd cannot be used (%v): it must run (`make test-deps` as root starts it) and let this user open qemu:///system", err))
	}
	return SystemLibvirtSocket
}

// openSystemLibvirt opens and closes qemu:///system on the system socket
// within 10 s.
func openSystemLibvirt() error {
	nc, err := net.DialTimeout("unix", SystemLibvirtSocket, time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := nc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return fmt.Errorf("set deadline on %s: %w", SystemLibvirtSocket, err)
	}
	lv := libvirt.NewWithDialer(dialers.NewAlreadyConnected(nc))
	if err := lv.ConnectToURI(libvirt.QEMUSystem); err != nil {
		return fmt.Errorf("open %s on %s: %w", libvirt.QEMUSystem, SystemLibvirtSocket, err)
	}
	return lv.Disconnect()
}

// VirtType is the domain type for a test VM: kvm when libvirt's qemu user can open /dev/kvm (through the
// kvm group or everyone), else qemu (TCG).
func VirtType() string {
	fi, err := os.Stat("/dev/kvm")
	if err != nil {
		return "qemu"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	kvm, gerr := user.LookupGroup("kvm")
	switch {
	case fi.Mode().Perm()&0o006 == 0o006:
		return "kvm"
	case ok && gerr == nil && fmt.Sprint(st.Gid) == kvm.Gid && fi.Mode().Perm()&0o060 == 0o060:
		return "kvm"
	}
	return "qemu"
}

// ConsoleDomainXML is a domain template (%[1]s its name, %[2]s its type:
// VirtType) for tests: a 64 MiB diskless VM whose SeaBIOS talks on a pty serial
// console and waits 10 s in its boot menu prompt.
const ConsoleDomainXML = `<domain type='%[2]s'>
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

// SlowStartPrefix names the domains whose start the libvirt qemu hook that
// scripts/prepare-test-host.sh installs holds for 3 s.
const SlowStartPrefix = "govbmc-slow-"

// slowStartHook is that hook.
const slowStartHook = "/etc/libvirt/hooks/qemu"

// RequireSlowStartHook checks that the hook is installed (libvirtd only
// runs a hook that existed when it started; the script restarts it). Like
// a missing program, its absence skips the test, or fails it under CI=true.
func RequireSlowStartHook(t testing.TB) {
	t.Helper()
	raw, err := os.ReadFile(slowStartHook)
	if err == nil && strings.Contains(string(raw), SlowStartPrefix) {
		return
	}
	Missing(t, fmt.Sprintf("libvirt hook %s that slows %s* domains is not installed; scripts/prepare-test-host.sh installs it", slowStartHook, SlowStartPrefix))
}

// AwaitSlowStartHold waits until the slow-start hook holds the start of
// domain name (its "prepare begin" call runs): a start issued in the
// background is then inside its 3 s hold.
func AwaitSlowStartHold(t testing.TB, name string) {
	t.Helper()
	Eventually(t, 30*time.Second, "the slow-start hook holding the start of "+name, func() bool {
		procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range procs {
			raw, err := os.ReadFile(p)
			if err != nil {
				continue // the process has ended
			}
			args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
			if len(args) >= 5 && args[1] == slowStartHook && args[2] == name && args[3] == "prepare" && args[4] == "begin" {
				return true
			}
		}
		return false
	})
}

// PrivateLibvirtd is a libvirtd of the test's own, on its own socket, that
// the test may stop and restart without disturbing anyone else. Only the
// test driver (test:///default) is meaningful on it.
type PrivateLibvirtd struct {
	t      testing.TB
	dir    string
	Socket string
	cmd    *exec.Cmd
}

// StartPrivateLibvirtd starts a private libvirtd for the test. It runs
// unprivileged (as nobody, in session mode) so that it shares no driver
// state with the system daemon.
func StartPrivateLibvirtd(t testing.TB) *PrivateLibvirtd {
	t.Helper()
	RequireRoot(t, "a private libvirtd run as nobody")
	Require(t, "libvirtd")
	Require(t, "setpriv")
	dir, err := os.MkdirTemp("", "govbmc-libvirtd")
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"home", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "-R", "nobody:nogroup", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v: %s", dir, err, out)
	}
	p := &PrivateLibvirtd{t: t, dir: dir, Socket: filepath.Join(dir, "run", "libvirt", "libvirt-sock")}
	p.Start()
	t.Cleanup(func() {
		p.Stop()
		os.RemoveAll(dir)
	})
	return p
}

// Start starts (or restarts) the daemon and waits for its socket.
func (p *PrivateLibvirtd) Start() {
	p.t.Helper()
	home := filepath.Join(p.dir, "home")
	p.cmd = exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "libvirtd")
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_RUNTIME_DIR=" + filepath.Join(p.dir, "run"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_CACHE_HOME=" + filepath.Join(home, ".cache")}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start private libvirtd: %v", err)
	}
	if err := waitSocket(p.Socket, 20*time.Second); err != nil {
		p.t.Fatalf("private libvirtd: %v", err)
	}
}

// Stop kills the daemon (SIGKILL: an outage, not a clean shutdown).
func (p *PrivateLibvirtd) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
	os.Remove(p.Socket)
}

func socketUp(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func waitSocket(path string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for !socketUp(path) {
		if time.Now().After(deadline) {
			return fmt.Errorf("socket %s not up within %v", path, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

package testtool

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SystemLibvirtSocket is the system libvirtd's socket.
const SystemLibvirtSocket = "/var/run/libvirt/libvirt-sock"

var startSystemLibvirtd = sync.OnceValue(func() error {
	if socketUp(SystemLibvirtSocket) {
		return nil
	}
	if err := os.MkdirAll("/run/libvirt", 0o755); err != nil {
		return err
	}
	// The daemons must not inherit the descriptors this test process
	// inherited: started under `flock /tmp/govbmc-libvirt.lock` (without
	// -o), a libvirtd would hold the tests' lock for as long as it lives.
	closeInheritedOnExec()
	// virtlogd may already run; libvirtd needs it for qemu domains.
	_ = exec.Command("virtlogd", "-d").Run()
	if out, err := exec.Command("libvirtd", "-d").CombinedOutput(); err != nil {
		return fmt.Errorf("libvirtd -d: %v: %s", err, out)
	}
	return waitSocket(SystemLibvirtSocket, 20*time.Second)
})

// closeInheritedOnExec marks every descriptor above stderr close-on-exec
// (Go opens its own so; inherited ones are not), so that no program this
// process starts keeps them.
func closeInheritedOnExec() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// SystemLibvirtd makes sure the system libvirtd runs (starting it the way
// DESIGN.md says, without systemd) and returns its socket. Without
// libvirtd installed the test is skipped, or fails under CI=true.
func SystemLibvirtd(t testing.TB) string {
	t.Helper()
	Require(t, "libvirtd")
	Require(t, "virtlogd")
	if err := startSystemLibvirtd(); err != nil {
		t.Fatalf("start libvirtd: %v", err)
	}
	return SystemLibvirtSocket
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
	msg := fmt.Sprintf("libvirt hook %s that slows %s* domains is not installed; scripts/prepare-test-host.sh installs it", slowStartHook, SlowStartPrefix)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: real dependencies must be present)")
	}
	t.Skip(msg)
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

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/internal/testtool"
)

// pausedStartNS is libvirtconn's paused-start mark's namespace, as it
// stands in the running domain's XML.
const pausedStartNS = "https://github.com/govbmc/govbmc/xmlns/paused-start/1"

// buildHookedVbmcd builds vbmcd once with the test hooks
// (-tags govbmc_testhooks: GOVBMC_TEST_HOLD_PAUSED_START holds a power on's
// paused start open).
var buildHookedVbmcd = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "vbmcd-hooked")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vbmcd")
	out, err := exec.Command("go", "build", "-tags", "govbmc_testhooks", "-o", bin, "github.com/govbmc/govbmc/cmd/vbmcd").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// vbmcd is a running vbmcd process.
type vbmcd struct {
	cmd  *exec.Cmd
	logs *testtool.Buffer
	done chan struct{}
}

// startVbmcd runs the hooked vbmcd on a fleet file, with extra environment.
func startVbmcd(t *testing.T, configDir, fleet string, env ...string) *vbmcd {
	t.Helper()
	bin, err := buildHookedVbmcd()
	if err != nil {
		t.Fatal(err)
	}
	v := &vbmcd{logs: &testtool.Buffer{}, done: make(chan struct{})}
	v.cmd = exec.Command(bin, "--config-dir", configDir, "--config", fleet)
	v.cmd.Env = append(os.Environ(), env...)
	v.cmd.Stdout, v.cmd.Stderr = v.logs, v.logs
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = v.cmd.Wait()
		close(v.done)
	}()
	t.Cleanup(func() {
		v.kill()
		if t.Failed() {
			t.Logf("vbmcd (pid %d) output:\n%s", v.cmd.Process.Pid, v.logs.String())
		}
	})
	return v
}

// kill ends the process with SIGKILL and waits for it.
func (v *vbmcd) kill() {
	_ = v.cmd.Process.Kill()
	<-v.done
}

// waitLog waits for text in the output, failing when vbmcd exits first.
func (v *vbmcd) waitLog(t *testing.T, within time.Duration, text string) {
	t.Helper()
	testtool.Eventually(t, within, fmt.Sprintf("vbmcd logs %q", text), func() bool {
		select {
		case <-v.done:
			t.Fatalf("vbmcd exited before logging %q:\n%s", text, v.logs.String())
		default:
		}
		return strings.Contains(v.logs.String(), text)
	})
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestVbmcdKilledInsidePausedStart: a real vbmcd is killed with SIGKILL
// while an IPMI power on holds the domain in its paused start (started
// paused, console open, not resumed): the domain is left paused, carrying
// govbmc's mark. vbmcd started again on the same fleet resumes it as its
// node starts, with no IPMI command sent, logs that it did at info level,
// and the mark is gone.
func TestVbmcdKilledInsidePausedStart(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	testtool.Require(t, "ipmitool")
	c := get(t, pool(t), "qemu:///system")
	name := testtool.DomainName(t, "")
	testtool.DefineDomain(t, c, name, testtool.ConsoleDomainXML, testtool.VirtType())
	port := freeUDPPort(t)
	fleet := testtool.WriteFile(t, "fleet.yaml", fmt.Sprintf(`nodes:
  - name: bmc-%[1]s
    address: 127.0.0.1
    port: %[2]d
    users: [{name: admin, password: password, privilege: administrator}]
    backend: {type: libvirt, uri: "qemu:///system", domain: %[1]s}
`, name, port))
	configDir := t.TempDir()

	first := startVbmcd(t, configDir, fleet, "GOVBMC_TEST_HOLD_PAUSED_START=1")
	first.waitLog(t, 20*time.Second, "vbmcd serving")
	sent := make(chan struct{})
	t.Cleanup(func() { <-sent })
	go func() {
		defer close(sent)
		// It gets no answer: the power on is held until vbmcd dies. (One
		// try of 1 s: the request is in by then.)
		_, _ = testtool.Run(t, 30*time.Second, "ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", fmt.Sprint(port),
			"-U", "admin", "-P", "password", "-R", "1", "-N", "1", "power", "on")
	}()
	first.waitLog(t, 60*time.Second, "test hook: holding the paused start")
	// Inside the window, as libvirt holds it.
	if st := testtool.DomainState(t, c, name); st != libvirt.DomainPaused {
		t.Fatalf("inside the paused start the domain is in state %v, want paused", st)
	}
	if live := testtool.DomainXML(t, c, name, 0); !strings.Contains(live, pausedStartNS) {
		t.Fatalf("the paused domain carries no mark:\n%s", live)
	}
	first.kill()
	if st := testtool.DomainState(t, c, name); st != libvirt.DomainPaused {
		t.Fatalf("after kill -9 the domain is in state %v, want paused (what the killed vbmcd left)", st)
	}

	second := startVbmcd(t, configDir, fleet)
	testtool.Eventually(t, 30*time.Second, "the domain runs again, its mark gone", func() bool {
		return testtool.DomainState(t, c, name) == libvirt.DomainRunning &&
			!strings.Contains(testtool.DomainXML(t, c, name, 0), pausedStartNS)
	})
	const resumed = `msg="resumed the domain an interrupted power on left paused"`
	second.waitLog(t, 10*time.Second, resumed)
	for _, line := range strings.Split(second.logs.String(), "\n") {
		if strings.Contains(line, resumed) && (!strings.Contains(line, "level=INFO") || !strings.Contains(line, "domain="+name)) {
			t.Errorf("the resume is not logged at info level naming the domain: %s", line)
		}
	}
	if def := testtool.InactiveXML(t, c, name); strings.Contains(def, pausedStartNS) {
		t.Errorf("the definition carries the mark:\n%s", def)
	}
}

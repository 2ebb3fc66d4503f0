package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/libvirtconn"
)

// These tests run the built vbmc and vbmcd the way deployments that use
// OpenStack VirtualBMC run it, against real libvirt domains: metal3-dev-env
// (its own INI files, then vbmcd --foreground), devstack
// ($VIRTUALBMC_CONFIG elsewhere, vbmc add/start) and tenks' command lines.

// diskless is a 64 MiB VM with nothing to boot: it runs SeaBIOS until
// powered off, which is all a power test needs.
const diskless = `<domain type='%[2]s'>
  <name>%[1]s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices/>
</domain>`

// install is one deployment: the environment its programs run with.
type install struct {
	t   *testing.T
	bin string
	env []string
}

// newInstall runs the binaries with HOME and the given variables only
// (never the user's ~/.vbmc, nor a VBMC_CONFIG_DIR from outside).
func newInstall(t *testing.T, home string, vars ...string) *install {
	t.Helper()
	bin := testtool.Build(t, "github.com/govbmc/govbmc/cmd/vbmc", "github.com/govbmc/govbmc/cmd/vbmcd")
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	return &install{t: t, bin: bin, env: append(env, vars...)}
}

// vbmcd starts vbmcd --foreground and stops it (SIGTERM) at cleanup; the
// returned buffer holds what it writes to stderr.
func (in *install) vbmcd(args ...string) *testtool.Buffer {
	in.t.Helper()
	out := &testtool.Buffer{}
	cmd := exec.Command(filepath.Join(in.bin, "vbmcd"), append([]string{"--foreground"}, args...)...)
	cmd.Env, cmd.Stdout, cmd.Stderr = in.env, out, out
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	in.t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if in.t.Failed() {
			in.t.Logf("vbmcd output:\n%s", out)
		}
	})
	testtool.Eventually(in.t, 20*time.Second, "vbmcd serving", func() bool { return strings.Contains(out.String(), "vbmcd serving") })
	return out
}

// vbmc runs vbmc, failing the test when it fails.
func (in *install) vbmc(args ...string) string {
	in.t.Helper()
	out, err := in.vbmcErr(args...)
	if err != nil {
		in.t.Fatalf("vbmc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (in *install) vbmcErr(args ...string) (string, error) {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(in.bin, "vbmc"), args...)
	cmd.Env = in.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// status is a BMC's status in `vbmc list -f json`, read by key as tenks
// reads it ("" when not listed).
func (in *install) status(name string) string {
	in.t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal([]byte(in.vbmc("list", "-f", "json")), &rows); err != nil {
		in.t.Fatalf("vbmc list -f json: %v", err)
	}
	for _, r := range rows {
		if r["Domain name"] == name {
			s, _ := r["Status"].(string)
			return s
		}
	}
	return ""
}

// ironic runs ipmitool as Ironic's ipmitool driver does: one process per
// command, the password in a file, one try.
func ironic(t *testing.T, port int, user, pwFile string, args ...string) (string, error) {
	t.Helper()
	base := []string{"-I", "lanplus", "-H", "127.0.0.1", "-L", "ADMINISTRATOR", "-p", fmt.Sprint(port), "-U", user, "-R", "1", "-N", "5", "-f", pwFile}
	return testtool.Run(t, 30*time.Second, "ipmitool", append(base, args...)...)
}

func ironicMust(t *testing.T, port int, user, pwFile string, args ...string) string {
	t.Helper()
	out, err := ironic(t, port, user, pwFile, args...)
	if err != nil {
		t.Fatalf("ipmitool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// writeFile writes path (and its folder) as a template task would.
func writeFile(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
}

// metal3Config is the node file metal3-dev-env's virtbmc role writes
// (vm-setup/roles/virtbmc/templates), its libvirt URI included.
func metal3Config(domain, uri string, port int, active string) string {
	return fmt.Sprintf("[VirtualBMC]\nusername = admin\npassword = password\ndomain_name = %s\nlibvirt_uri = %s\naddress = 127.0.0.1\nactive = %s\nport = %d\n", domain, uri, active, port)
}

// waitState waits for a domain to reach a state, as libvirt reports it.
func waitState(t *testing.T, c *libvirtconn.Conn, name string, want libvirt.DomainState) {
	t.Helper()
	testtool.Eventually(t, 20*time.Second, fmt.Sprintf("%s in state %d", name, want), func() bool { return testtool.DomainState(t, c, name) == want })
}

// within checks that cond holds within d of now, polling.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	testtool.Eventually(t, d, what, cond)
	t.Logf("%s after %v", what, time.Since(start).Round(10*time.Millisecond))
}

// TestMetal3DevEnv writes what metal3-dev-env writes (conf/<node>/config
// for real libvirt domains reached over metal3's qemu+ssh URI, and a
// virtualbmc.conf whose config_dir points there, with metal3's misspelt
// session_timout), runs vbmcd --foreground with HOME pointing there and
// drives the VMs with Ironic's ipmitool command lines; then writes another
// node's file and flips one node's active to False while vbmcd runs.
func TestMetal3DevEnv(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	testtool.Require(t, "ipmitool")
	sshd := testtool.StartSshd(t)
	c := get(t, pool(t), "qemu:///system")
	// metal3's URI: an empty first parameter, no_verify=1 and no_tty=1.
	uri := fmt.Sprintf("qemu+ssh://root@127.0.0.1:%d/system?&keyfile=%s&no_verify=1&no_tty=1", sshd.Port, sshd.ClientKey)

	home := t.TempDir()
	vbmcDir := filepath.Join(home, ".vbmc")
	confDir := filepath.Join(vbmcDir, "conf")
	logFile := filepath.Join(vbmcDir, "log", "virtualbmc.log")
	writeFile(t, filepath.Join(vbmcDir, "virtualbmc.conf"),
		fmt.Sprintf("[default]\nconfig_dir=%s\n[log]\nlogfile=%s\ndebug=True\n[ipmi]\nsession_timout=20\n", confDir, logFile), 0o750)
	type vm struct {
		name string
		port int
	}
	vms := make([]vm, 3)
	for i := range vms {
		vms[i] = vm{name: testtool.DomainName(t, fmt.Sprint("-", i)), port: freeUDPPort(t)}
		testtool.DefineDomain(t, c, vms[i].name, diskless, testtool.VirtType())
	}
	for _, v := range vms[:2] {
		writeFile(t, filepath.Join(confDir, v.name, "config"), metal3Config(v.name, uri, v.port, "True"), 0o750)
	}
	pw := testtool.WriteFile(t, "pw", "password")

	in := newInstall(t, home)
	in.vbmcd()

	// Ironic drives the first VM.
	v0 := vms[0]
	if out := ironicMust(t, v0.port, "admin", pw, "power", "status"); !strings.Contains(out, "Chassis Power is off") {
		t.Fatalf("power status of a VM that is off:\n%s", out)
	}
	ironicMust(t, v0.port, "admin", pw, "chassis", "bootdev", "pxe")
	if x := testtool.InactiveXML(t, c, v0.name); !strings.Contains(x, "<boot dev='network'/>") {
		t.Errorf("chassis bootdev pxe left the definition:\n%s", x)
	}
	ironicMust(t, v0.port, "admin", pw, "power", "on")
	waitState(t, c, v0.name, libvirt.DomainRunning)
	if out := ironicMust(t, v0.port, "admin", pw, "power", "status"); !strings.Contains(out, "Chassis Power is on") {
		t.Errorf("power status of a running VM:\n%s", out)
	}
	ironicMust(t, v0.port, "admin", pw, "power", "off")
	waitState(t, c, v0.name, libvirt.DomainShutoff)
	if out := ironicMust(t, vms[1].port, "admin", pw, "power", "status"); !strings.Contains(out, "Chassis Power is off") {
		t.Errorf("the second VM's power status:\n%s", out)
	}

	// metal3 adds a node while vbmcd runs: served within 3 s.
	v2 := vms[2]
	writeFile(t, filepath.Join(confDir, v2.name, "config"), metal3Config(v2.name, uri, v2.port, "True"), 0o750)
	within(t, 3*time.Second, "a node file written while vbmcd runs served", func() bool {
		_, err := ironic(t, v2.port, "admin", pw, "-N", "1", "power", "status")
		return err == nil
	})
	// ...and stops one: down within 3 s.
	v1 := vms[1]
	writeFile(t, filepath.Join(confDir, v1.name, "config"), metal3Config(v1.name, uri, v1.port, "False"), 0o750)
	within(t, 3*time.Second, "a node whose active flipped to False stopped", func() bool { return in.status(v1.name) == "down" })
	if out, err := ironic(t, v1.port, "admin", pw, "power", "status"); err == nil {
		t.Errorf("the stopped node still answers:\n%s", out)
	}

	// vbmc finds the daemon through virtualbmc.conf and keeps metal3's
	// files as VirtualBMC would.
	in.vbmc("stop", v0.name)
	if raw, _ := os.ReadFile(filepath.Join(confDir, v0.name, "config")); !strings.Contains(string(raw), "active = False") || !strings.Contains(string(raw), "libvirt_uri = "+uri) {
		t.Errorf("vbmc stop left the file:\n%s", raw)
	}
	in.vbmc("start", v0.name)
	if raw, _ := os.ReadFile(filepath.Join(confDir, v0.name, "config")); !strings.Contains(string(raw), "active = True") {
		t.Errorf("vbmc start left the file:\n%s", raw)
	}
	ironicMust(t, v0.port, "admin", pw, "power", "status")
	in.vbmc("delete", v2.name)
	if _, err := os.Stat(filepath.Join(confDir, v2.name)); !os.IsNotExist(err) {
		t.Errorf("vbmc delete left the node's folder: %v", err)
	}
	for _, line := range strings.Split(in.vbmc("show", v0.name), "\n") {
		if strings.Contains(line, "| password ") && !strings.Contains(line, "***") {
			t.Errorf("vbmc show prints the password without show_passwords: %s", line)
		}
	}
	// [log] logfile and debug = True.
	logged, _ := os.ReadFile(logFile)
	for _, want := range []string{"virtualbmc.conf read", "level=DEBUG", "node started"} {
		if !strings.Contains(string(logged), want) {
			t.Errorf("the logfile lacks %q", want)
		}
	}
	if strings.Contains(string(logged), "password=password") {
		t.Error("the log holds a password")
	}
}

// oneDomain defines a diskless domain named after the test on the system
// libvirtd.
func oneDomain(t *testing.T) string {
	t.Helper()
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "ipmitool")
	return testtool.DefineTestDomain(t, get(t, pool(t), "qemu:///system"), diskless, testtool.VirtType())
}

// TestDevstackVirtualBMCConfig: devstack points $VIRTUALBMC_CONFIG at its
// own file, whose config_dir is elsewhere, and adds its VMs with vbmc add;
// show_passwords = True shows them. VirtualBMC reads the files vbmc wrote.
func TestDevstackVirtualBMCConfig(t *testing.T) {
	name := oneDomain(t)

	etc := t.TempDir()
	confDir := filepath.Join(t.TempDir(), "vbmc-nodes")
	conf := filepath.Join(etc, "virtualbmc.conf")
	writeFile(t, conf, fmt.Sprintf("[default]\nconfig_dir = %s\nshow_passwords = true\npid_file = %s\n", confDir, filepath.Join(etc, "vbmcd.pid")), 0o644)
	in := newInstall(t, t.TempDir(), "VIRTUALBMC_CONFIG="+conf)
	out := in.vbmcd()
	if !strings.Contains(out.String(), "server_port is not used") {
		t.Errorf("vbmcd does not say server_port is unused:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(etc, "vbmcd.pid")); err != nil {
		t.Errorf("virtualbmc.conf's pid_file not written: %v", err)
	}

	port := freeUDPPort(t)
	// devstack's lib/ironic.
	in.vbmc("--no-daemon", "add", name, "--port", fmt.Sprint(port), "--username", "admin", "--password", "s3cret", "--address", "127.0.0.1", "--libvirt-uri", "qemu:///system")
	in.vbmc("--no-daemon", "start", name)
	pw := testtool.WriteFile(t, "pw", "s3cret")
	if out := ironicMust(t, port, "admin", pw, "power", "status"); !strings.Contains(out, "Chassis Power is off") {
		t.Errorf("power status:\n%s", out)
	}
	want := fmt.Sprintf("[VirtualBMC]\nusername = admin\npassword = s3cret\naddress = 127.0.0.1\nport = %d\ndomain_name = %s\nlibvirt_uri = qemu:///system\nactive = True\n\n", port, name)
	if raw, err := os.ReadFile(filepath.Join(confDir, name, "config")); err != nil || string(raw) != want {
		t.Errorf("vbmc add and start wrote %q (%v), want VirtualBMC's own file %q", raw, err, want)
	}
	if show := in.vbmc("show", name); !strings.Contains(show, "s3cret") {
		t.Errorf("show_passwords = true, but vbmc show hides the password:\n%s", show)
	}
	// tenks' command lines: stop, list, show.
	in.vbmc("--no-daemon", "stop", name)
	if s := in.status(name); s != "down" {
		t.Errorf("after vbmc --no-daemon stop: %q", s)
	}
	if raw, _ := os.ReadFile(filepath.Join(confDir, name, "config")); !strings.Contains(string(raw), "active = False") {
		t.Errorf("vbmc stop left the file:\n%s", raw)
	}
	in.vbmc("--no-daemon", "delete", name)
	if _, err := os.Stat(filepath.Join(confDir, name)); !os.IsNotExist(err) {
		t.Errorf("vbmc delete left the folder: %v", err)
	}
}

// TestVirtualBMCDirectoryCopied: a config directory copied from a
// VirtualBMC installation (INI files only, one of them broken) is served
// by vbmcd --foreground with no change and no command run; the broken
// file is logged once with its path, the others keep running.
func TestVirtualBMCDirectoryCopied(t *testing.T) {
	name := oneDomain(t)
	home := t.TempDir()
	dir := filepath.Join(home, ".vbmc")
	port := freeUDPPort(t)
	// What VirtualBMC's own vbmc add and start write.
	writeFile(t, filepath.Join(dir, name, "config"), fmt.Sprintf("[VirtualBMC]\nusername = admin\npassword = pa%%%%ss\naddress = 127.0.0.1\nport = %d\ndomain_name = %s\nlibvirt_uri = qemu:///system\nlibvirt_sasl_username = None\nlibvirt_sasl_password = None\nactive = True\n\n", port, name), 0o600)
	broken := filepath.Join(dir, "broken", "config")
	writeFile(t, broken, "[VirtualBMC]\nport = 6230\n", 0o600)
	in := newInstall(t, home)
	out := in.vbmcd()
	pw := testtool.WriteFile(t, "pw", "pa%ss")
	if o := ironicMust(t, port, "admin", pw, "power", "status"); !strings.Contains(o, "Chassis Power is") {
		t.Errorf("power status:\n%s", o)
	}
	// Two more rescans, each seen: nodes added one after the other.
	for _, extra := range []string{"extra-1", "extra-2"} {
		p := freeUDPPort(t)
		writeFile(t, filepath.Join(dir, extra, "config"), fmt.Sprintf("[VirtualBMC]\nusername = admin\npassword = pa%%%%ss\naddress = 127.0.0.1\nport = %d\ndomain_name = %s\nactive = True\n", p, name), 0o600)
		within(t, 3*time.Second, extra+" served", func() bool {
			_, err := ironic(t, p, "admin", pw, "-N", "1", "power", "status")
			return err == nil
		})
	}
	lines := out.Lines(broken, "domain_name: missing")
	if lines != 1 {
		t.Errorf("%d log lines name the broken file, want 1:\n%s", lines, out)
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/libvirtconn"
	"go.yaml.in/yaml/v3"
)

// binaries builds vbmc and vbmcd once for this package's tests.
var binaries = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "vbmc-test")
	if err != nil {
		return "", err
	}
	out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/govbmc/govbmc/cmd/vbmc", "github.com/govbmc/govbmc/cmd/vbmcd").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
})

// env is one test's installation: a config directory and the binaries.
type env struct {
	t   *testing.T
	dir string
	bin string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	bin, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: t.TempDir(), bin: bin}
	t.Cleanup(func() {
		e.killDaemon(syscall.SIGTERM)
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(e.dir, "vbmcd.log"))
			t.Logf("vbmcd.log:\n%s", log)
		}
	})
	return e
}

// run runs one of the binaries with VBMC_CONFIG_DIR set, returning
// stdout, stderr and the exit status.
func (e *env) run(name string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	return e.runProgram(filepath.Join(e.bin, name), nil, args...)
}

// runProgram runs a program with VBMC_CONFIG_DIR and env set.
func (e *env) runProgram(name string, env []string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(os.Environ(), "VBMC_CONFIG_DIR="+e.dir), env...)
	var o, s strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &s
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("%s %v: %v", name, args, err)
	}
	return o.String(), s.String(), code
}

// vbmc runs a vbmc command that must succeed and returns its stdout.
func (e *env) vbmc(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run("vbmc", args...)
	if code != 0 {
		e.t.Fatalf("vbmc %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// refused runs a vbmc command that must fail and returns its stderr.
func (e *env) refused(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run("vbmc", args...)
	if code == 0 {
		e.t.Fatalf("vbmc %s succeeded:\n%s", strings.Join(args, " "), out)
	}
	return errOut
}

// startDaemon starts vbmcd the way a user does (it detaches).
func (e *env) startDaemon(args ...string) {
	e.t.Helper()
	out, errOut, code := e.run("vbmcd", args...)
	if code != 0 {
		e.t.Fatalf("vbmcd: exit %d\n%s%s", code, out, errOut)
	}
}

func (e *env) daemonPid() int {
	raw, err := os.ReadFile(filepath.Join(e.dir, "vbmcd.pid"))
	if err != nil {
		return 0
	}
	var pid int
	fmt.Sscanf(strings.TrimSpace(string(raw)), "%d", &pid)
	return pid
}

// killDaemon signals vbmcd and waits for it to be gone.
func (e *env) killDaemon(sig syscall.Signal) {
	pid := e.daemonPid()
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, sig)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil) // reap when we are its parent
		if syscall.Kill(pid, 0) != nil || isZombie(pid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("vbmcd (pid %d) did not stop", pid)
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

func ipmitool(t *testing.T, port int, args ...string) (string, error) {
	base := []string{"-I", "lanplus", "-H", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "admin", "-P", "password"}
	return testtool.Run(t, 30*time.Second, "ipmitool", append(base, args...)...)
}

func freePort(t *testing.T) int {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// defineDomains defines domains on a libvirt URI for the test.
func defineDomains(t *testing.T, uri, tmpl string, names ...string) {
	t.Helper()
	testtool.SystemLibvirtd(t)
	pool := libvirtconn.NewPool(nil, 0)
	t.Cleanup(func() { pool.Close() })
	c, err := pool.Get(uri, libvirtconn.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, name := range names {
		doc := fmt.Sprintf(tmpl, name)
		if err := c.Do(ctx, func(lv *libvirt.Libvirt) error { _, err := lv.DomainDefineXML(doc); return err }); err != nil {
			t.Fatalf("define %s: %v", name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = c.Do(ctx, func(lv *libvirt.Libvirt) error {
				d, err := lv.DomainLookupByName(name)
				if err != nil {
					return err
				}
				_ = lv.DomainDestroy(d)
				return lv.DomainUndefine(d)
			})
		})
	}
}

const qemuDomain = `<domain type='qemu'><name>%s</name><memory unit='MiB'>32</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os></domain>`

const testDomain = `<domain type='test'><name>%s</name><memory unit='MiB'>32</memory>
  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os></domain>`

// TestVirtualBMCReadmeVerbatim runs VirtualBMC's documented sequence (its
// README and devstack) unchanged.
func TestVirtualBMCReadmeVerbatim(t *testing.T) {
	defineDomains(t, "qemu:///system", qemuDomain, "node-0")
	e := newEnv(t)
	e.startDaemon()
	if out := e.vbmc("add", "node-0", "--port", "6230", "--username", "admin", "--password", "password", "--libvirt-uri", "qemu:///system"); out != "" {
		t.Errorf("add printed %q", out)
	}
	want := `+-------------+--------+---------+------+
| Domain name | Status | Address | Port |
+-------------+--------+---------+------+
| node-0      | down   | ::      | 6230 |
+-------------+--------+---------+------+
`
	if got := e.vbmc("list"); got != want {
		t.Errorf("list before start:\n%s\nwant:\n%s", got, want)
	}
	e.vbmc("start", "node-0")
	if got := e.vbmc("list"); !strings.Contains(got, "| node-0      | running | ::      | 6230 |") {
		t.Errorf("list after start:\n%s", got)
	}
	out, err := ipmitool(t, 6230, "power", "status")
	if err != nil || !strings.Contains(out, "Chassis Power is off") {
		t.Fatalf("ipmitool against the added BMC: %v\n%s", err, out)
	}
	show := e.vbmc("show", "node-0")
	for _, row := range []string{"| active ", "| True ", "| domain_name ", "| node-0 ", "| libvirt_uri ", "| qemu:///system ", "| password ", "| *** ", "| username ", "| admin ", "| status ", "| running ", "| libvirt_sasl_username | None"} {
		if !strings.Contains(show, row) {
			t.Errorf("show lacks %q:\n%s", row, show)
		}
	}
	if strings.Contains(show, "| password              | password") {
		t.Error("show printed the password")
	}
	e.vbmc("stop", "node-0")
	e.vbmc("delete", "node-0")
	if got := e.vbmc("list"); got != "\n" {
		t.Errorf("an empty list prints one empty line, as cliff does; got:\n%q", got)
	}
}

func TestAddFlagsAndFormats(t *testing.T) {
	e := newEnv(t)
	e.startDaemon()
	port := freePort(t)
	e.vbmc("add", "sim-a", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(port),
		"--user", "admin:password:administrator", "--user", "ops:op:pw:operator", "--user", "view:v:user", "--cipher-suites", "17")
	e.vbmc("start", "sim-a")
	if out, err := ipmitool(t, port, "-C", "17", "power", "on"); err != nil {
		t.Fatalf("suite 17: %v\n%s", err, out)
	}
	if out, err := testtool.Run(t, 30*time.Second, "ipmitool", "-I", "lanplus", "-C", "3", "-R", "1", "-N", "2", "-H", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "admin", "-P", "password", "power", "status"); err == nil {
		t.Fatalf("suite 3 accepted on a BMC offering only 17:\n%s", out)
	}
	out, err := testtool.Run(t, 30*time.Second, "ipmitool", "-I", "lanplus", "-L", "OPERATOR", "-H", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "ops", "-P", "op:pw", "power", "status")
	if err != nil || !strings.Contains(out, "Chassis Power is on") {
		t.Fatalf("operator account (password with a colon): %v\n%s", err, out)
	}

	var js []map[string]any
	if err := json.Unmarshal([]byte(e.vbmc("list", "-f", "json")), &js); err != nil || len(js) != 1 || js[0]["Domain name"] != "sim-a" || js[0]["Status"] != "running" {
		t.Fatalf("list -f json: %v %v", js, err)
	}
	var ys []map[string]any
	if err := yaml.Unmarshal([]byte(e.vbmc("list", "-f", "yaml")), &ys); err != nil || len(ys) != 1 || ys[0]["Port"] != port {
		t.Fatalf("list -f yaml: %v %v", ys, err)
	}
	var fields []map[string]any // VirtualBMC's show is a Property/Value list
	raw := e.vbmc("show", "sim-a", "-f", "json")
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		t.Fatalf("show -f json: %v\n%s", err, raw)
	}
	sj := map[string]any{}
	for _, f := range fields {
		sj[fmt.Sprint(f["Property"])] = f["Value"]
	}
	if sj["cipher_suites"] != "17" || sj["backend"] != "sim" {
		t.Fatalf("show -f json: %v", sj)
	}
	for k, v := range sj {
		if s, _ := v.(string); s == "password" || s == "v" || strings.Contains(s, "op:pw") {
			t.Errorf("show -f json leaks a password in %s: %q", k, s)
		}
	}
	if !strings.Contains(raw, "ops:***:operator") {
		t.Errorf("show lacks the users:\n%s", raw)
	}
	if strings.Contains(e.vbmc("show", "sim-a", "-f", "yaml"), "op:pw") {
		t.Error("show -f yaml leaks a password")
	}
}

// TestAddWithSSHKey adds a BMC for a domain reached through SSH with
// --libvirt-ssh-key, and drives it.
func TestAddWithSSHKey(t *testing.T) {
	testtool.SystemLibvirtd(t)
	sshd := testtool.StartSshd(t)
	e := newEnv(t)
	e.startDaemon()
	port := freePort(t)
	uri := fmt.Sprintf("test+ssh://root@127.0.0.1:%d/default?known_hosts=%s", sshd.Port, sshd.KnownHosts)
	e.vbmc("add", "test", "--libvirt-uri", uri, "--libvirt-ssh-key", sshd.ClientKey, "--address", "127.0.0.1", "--port", fmt.Sprint(port))
	if show := e.vbmc("show", "test"); !strings.Contains(show, sshd.ClientKey) {
		t.Errorf("show lacks the key file:\n%s", show)
	}
	e.vbmc("start", "test")
	if out, err := ipmitool(t, port, "power", "status"); err != nil || !strings.Contains(out, "Chassis Power is on") {
		t.Fatalf("through SSH: %v\n%s", err, out)
	}
}

// listed returns `vbmc list -f json` as name -> row.
func (e *env) listed() map[string]map[string]any {
	e.t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal([]byte(e.vbmc("list", "-f", "json")), &rows); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, r := range rows {
		out[r["Domain name"].(string)] = r
	}
	return out
}

func TestBadInput(t *testing.T) {
	testtool.SystemLibvirtd(t)
	e := newEnv(t)
	if msg := e.refused("list"); !strings.Contains(msg, "vbmcd is not running") || !strings.Contains(msg, "Start it with `vbmcd`") {
		t.Errorf("no daemon: %q", msg)
	}
	e.startDaemon()
	port := freePort(t)
	e.vbmc("add", "a", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(port))
	e.vbmc("start", "a")
	squat, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	taken := squat.LocalAddr().(*net.UDPAddr).Port
	before, _ := os.ReadDir(e.dir)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown domain", []string{"add", "no-such-domain", "--libvirt-uri", "test:///default", "--port", "7001"}, "No domain with matching name no-such-domain was found"},
		{"unreachable hypervisor", []string{"add", "x", "--libvirt-uri", "qemu+unix:///system?socket=/nonexistent/sock", "--port", "7001"}, "hypervisor unreachable"},
		{"port of another BMC", []string{"add", "b", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(port)}, `already used by the BMC of "a"`},
		{"port of another process", []string{"add", "b", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(taken)}, "already in use by another process"},
		{"port out of range", []string{"add", "b", "--backend", "sim", "--port", "70000"}, "--port 70000"},
		{"missing password", []string{"add", "b", "--backend", "sim", "--password", ""}, "--password"},
		{"malformed user", []string{"add", "b", "--backend", "sim", "--user", "alice:secret"}, `--user "alice"`},
		{"bad privilege", []string{"add", "b", "--backend", "sim", "--user", "alice:secret:root"}, "unknown privilege"},
		{"cipher suite 0", []string{"add", "b", "--backend", "sim", "--cipher-suites", "0"}, "suite 0"},
		{"sasl half", []string{"add", "b", "--libvirt-sasl-username", "u"}, "A password and username are required to use Libvirt's SASL authentication"},
		{"unknown flag", []string{"add", "b", "--colour", "blue"}, "--colour"},
		{"duplicate", []string{"add", "a", "--backend", "sim", "--port", "7002"}, `"a" already exists`},
		{"start unknown", []string{"start", "ghost"}, "(1): No domain with matching name ghost was found"},
		{"stop unknown", []string{"stop", "ghost"}, "(1): No domain with matching name ghost was found"},
		{"delete unknown", []string{"delete", "ghost"}, "(1): Command failed: No domain with matching name ghost was found"},
		{"show unknown", []string{"show", "ghost"}, "(1): Command failed: No domain with matching name ghost was found"},
		{"bad format", []string{"list", "-f", "xml"}, `-f "xml"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if msg := e.refused(c.args...); !strings.Contains(msg, c.want) {
				t.Errorf("stderr %q lacks %q", msg, c.want)
			}
		})
	}
	after, _ := os.ReadDir(e.dir)
	if len(after) != len(before) {
		t.Errorf("refused commands changed the config directory: %d entries, was %d", len(after), len(before))
	}
	if out, err := ipmitool(t, port, "power", "status"); err != nil {
		t.Errorf("the existing BMC suffered: %v\n%s", err, out)
	}
	// Like VirtualBMC, start and stop go through every name and fail at the end.
	if msg := e.refused("stop", "ghost", "a"); !strings.Contains(msg, "ghost") {
		t.Errorf("stop ghost a: %q", msg)
	}
	if e.listed()["a"]["Status"] != "down" {
		t.Error("stop did not go on to the next name after an unknown one")
	}
}

func TestRestartRestoresBMCs(t *testing.T) {
	e := newEnv(t)
	e.startDaemon()
	up, down := freePort(t), freePort(t)
	e.vbmc("add", "up", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(up))
	e.vbmc("add", "down", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(down))
	e.vbmc("start", "up")
	e.vbmc("start", "up") // idempotent
	e.vbmc("stop", "down")
	e.vbmc("stop", "down") // idempotent
	e.killDaemon(syscall.SIGTERM)
	if _, err := ipmitool(t, up, "-R", "1", "-N", "1", "power", "status"); err == nil {
		t.Fatal("a BMC still answers with vbmcd stopped")
	}
	e.startDaemon()
	l := e.listed()
	if l["up"]["Status"] != "running" || l["up"]["Port"] != float64(up) || l["down"]["Status"] != "down" {
		t.Fatalf("after restart: %v", l)
	}
	if out, err := ipmitool(t, up, "power", "status"); err != nil {
		t.Fatalf("restored BMC: %v\n%s", err, out)
	}
	// Files and socket are private.
	for _, f := range []string{"up.json", "down.json", "vbmcd.sock", "vbmcd.pid"} {
		fi, err := os.Stat(filepath.Join(e.dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", f, fi.Mode().Perm(), err)
		}
	}
	if fi, _ := os.Stat(e.dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("config directory mode %v, want 0700", fi.Mode().Perm())
	}
}

// TestKill9DuringConfigChanges kills vbmcd with SIGKILL while adds, starts,
// stops and deletes pour in: every file left must be readable, and the
// restarted daemon must list every file and run exactly the BMCs whose
// file says started, each answering on its port.
func TestKill9DuringConfigChanges(t *testing.T) {
	e := newEnv(t)
	e.startDaemon()
	countFiles := func() int {
		n := 0
		entries, _ := os.ReadDir(e.dir)
		for _, en := range entries {
			if strings.HasSuffix(en.Name(), ".json") {
				n++
			}
		}
		return n
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				name := fmt.Sprintf("burst-%d-%02d", w, i)
				if _, _, code := e.run("vbmc", "add", name, "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(20000+w*100+i)); code != 0 {
					return // the daemon is gone
				}
				e.run("vbmc", "start", name)
				switch i % 5 { // a mix of every kind of change
				case 1:
					e.run("vbmc", "stop", name)
				case 3:
					e.run("vbmc", "delete", name)
				}
			}
		}(w)
	}
	testtool.Eventually(t, 30*time.Second, "adds under way", func() bool { return countFiles() >= 8 })
	e.killDaemon(syscall.SIGKILL)
	wg.Wait()

	files := countFiles()
	active := map[string]bool{}
	entries, _ := os.ReadDir(e.dir)
	for _, en := range entries {
		if !strings.HasSuffix(en.Name(), ".json") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(e.dir, en.Name()))
		var v struct {
			Active bool `json:"active"`
		}
		if err != nil || json.Unmarshal(raw, &v) != nil {
			t.Errorf("%s unreadable after kill -9: %v\n%s", en.Name(), err, raw)
		}
		active[strings.TrimSuffix(en.Name(), ".json")] = v.Active
	}
	e.startDaemon()
	l := e.listed()
	if len(l) != files {
		t.Fatalf("restart lists %d BMCs, %d files", len(l), files)
	}
	running := 0
	for name, b := range l {
		if want := active[name]; (b["Status"] == "running") != want {
			t.Errorf("%s: status %v after the restart, but its file says active=%v", name, b["Status"], want)
		}
		if b["Status"] == "running" {
			running++
			if out, err := ipmitool(t, int(b["Port"].(float64)), "power", "status"); err != nil {
				t.Errorf("%s: %v\n%s", name, err, out)
			}
		}
	}
	if running == 0 {
		t.Error("no started BMC came back")
	}
}

func TestAddAllDomains(t *testing.T) {
	names := []string{"govbmc-all-a", "govbmc-all-b", "govbmc-all-c"}
	defineDomains(t, "test:///default", testDomain, names...)
	e := newEnv(t)
	e.startDaemon()
	first := 21000
	squat, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6zero, Port: first + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	out := e.vbmc("add", "--all", "--port-range", fmt.Sprintf("%d-%d", first, first+20), "--libvirt-uri", "test:///default")
	for _, n := range names {
		if !strings.Contains(out, n) {
			t.Errorf("--all did not add %s:\n%s", n, out)
		}
	}
	if strings.Contains(out, fmt.Sprint(first+1)) {
		t.Errorf("--all used a port another process holds:\n%s", out)
	}
	again := e.vbmc("add", "--all", "--port-range", fmt.Sprintf("%d-%d", first, first+20), "--libvirt-uri", "test:///default")
	for _, n := range names {
		if strings.Contains(again, n) {
			t.Errorf("second --all added %s again:\n%s", n, again)
		}
	}
	if msg := e.refused("add", "--all", "--libvirt-uri", "test:///default"); !strings.Contains(msg, "--port-range") {
		t.Errorf("--all without a range: %q", msg)
	}
}

func TestFleetFileNodesAreReadOnly(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	fleet := testtool.WriteFile(t, "fleet.yaml", fmt.Sprintf("nodes:\n  - {name: fixed, address: 127.0.0.1, port: %d, users: [{name: admin, password: password}]}\n", port))
	cmd := exec.Command(filepath.Join(e.bin, "vbmcd"), "--config", fleet)
	cmd.Env = append(os.Environ(), "VBMC_CONFIG_DIR="+e.dir)
	logs := &testtool.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	testtool.Eventually(t, 10*time.Second, "vbmcd up", func() bool { return strings.Contains(logs.String(), "vbmcd serving") })
	if l := e.listed(); l["fixed"]["Status"] != "running" {
		t.Fatalf("fleet node not listed as running: %v", l)
	}
	for _, args := range [][]string{{"stop", "fixed"}, {"delete", "fixed"}, {"start", "fixed"}} {
		if msg := e.refused(args...); !strings.Contains(msg, "read-only") {
			t.Errorf("%v: %q", args, msg)
		}
	}
	if out, err := ipmitool(t, port, "power", "status"); err != nil {
		t.Fatalf("fleet node: %v\n%s", err, out)
	}
}

func TestCompletionAndVersion(t *testing.T) {
	e := newEnv(t)
	out := e.vbmc("completion", "bash")
	if !strings.Contains(out, "__start_vbmc") {
		t.Errorf("no bash completion:\n%.200s", out)
	}
	if v := e.vbmc("--version"); !strings.HasPrefix(v, "vbmc ") || strings.Contains(v, "version") {
		t.Errorf("--version: %q", v)
	}
}

// TestUnreadableConfigFile: a damaged BMC file is reported and left alone;
// the others come back.
func TestUnreadableConfigFile(t *testing.T) {
	e := newEnv(t)
	e.startDaemon()
	port := freePort(t)
	e.vbmc("add", "good", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(port))
	e.vbmc("start", "good")
	e.killDaemon(syscall.SIGTERM)
	broken := filepath.Join(e.dir, "broken.json")
	if err := os.WriteFile(broken, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.startDaemon()
	if l := e.listed(); l["good"]["Status"] != "running" || len(l) != 1 {
		t.Fatalf("after restart with a damaged file: %v", l)
	}
	log, _ := os.ReadFile(filepath.Join(e.dir, "vbmcd.log"))
	if !strings.Contains(string(log), broken) {
		t.Errorf("the damaged file is not named in the log:\n%s", log)
	}
	if raw, _ := os.ReadFile(broken); string(raw) != "{not json" {
		t.Error("the damaged file was changed")
	}
}

// TestSecretsNeverLogged runs a full session of management and IPMI traffic
// with debug logging and greps everything vbmcd and vbmc printed for the
// passwords used.
func TestSecretsNeverLogged(t *testing.T) {
	testtool.SystemLibvirtd(t)
	e := newEnv(t)
	e.startDaemon("--log-level", "debug")
	secrets := []string{"Pw-admin-7f3a", "Pw-oper-91c2", "Pw-sasl-55d0"}
	port := freePort(t)
	var printed strings.Builder
	run := func(args ...string) {
		out, errOut, _ := e.run("vbmc", args...)
		printed.WriteString(out + errOut)
	}
	run("add", "sec", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(port),
		"--username", "admin", "--password", secrets[0], "--user", "ops:"+secrets[1]+":operator")
	run("add", "sasl", "--libvirt-uri", "qemu+tcp://127.0.0.1/system", "--libvirt-sasl-username", "u", "--libvirt-sasl-password", secrets[2], "--port", fmt.Sprint(freePort(t)))
	run("add", "bad", "--backend", "sim", "--user", "x:"+secrets[1]+":root")
	run("start", "sec")
	run("list")
	run("show", "sec")
	run("show", "sec", "-f", "json")
	for _, pw := range []string{secrets[0], "wrong-password"} {
		out, _ := testtool.Run(t, 30*time.Second, "ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "admin", "-P", pw, "power", "status")
		printed.WriteString(out)
	}
	_, _ = testtool.Run(t, 30*time.Second, "ipmitool", "-I", "lan", "-H", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "admin", "-P", secrets[0], "chassis", "bootdev", "pxe")
	run("stop", "sec")
	log, err := os.ReadFile(filepath.Join(e.dir, "vbmcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "level=DEBUG") {
		t.Fatal("the daemon did not log at debug level: the test would prove nothing")
	}
	for _, s := range secrets {
		if strings.Contains(string(log), s) {
			t.Errorf("vbmcd.log contains the secret %q", s)
		}
		if strings.Contains(printed.String(), s) {
			t.Errorf("vbmc or ipmitool output contains the secret %q", s)
		}
	}
}

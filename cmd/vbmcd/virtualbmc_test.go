package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
)

// These tests run vbmcd and vbmc on a VirtualBMC config directory whose
// nodes point at a hypervisor nobody listens on: their BMCs start and
// listen (status "error", the hypervisor unreachable), which is all that
// following the directory needs, and no libvirtd is touched. e2e's
// dropin tests drive real domains.

// nowhere is a libvirt URI nothing answers.
const nowhere = "qemu+tcp://127.0.0.1:1/system"

// vbmcHome is a home directory holding VirtualBMC's files, and the
// environment vbmcd and vbmc run with there.
type vbmcHome struct {
	t    *testing.T
	conf string // the node folders' directory
	env  []string
	logs *testtool.Buffer
}

// startVirtualBMCHome writes ~/.vbmc/virtualbmc.conf (config_dir in
// ~/.vbmc/conf, a logfile, debug) and starts vbmcd --foreground there.
func startVirtualBMCHome(t *testing.T, nodes map[string]string, confExtra string, args ...string) *vbmcHome {
	t.Helper()
	home := t.TempDir()
	h := &vbmcHome{t: t, conf: filepath.Join(home, ".vbmc", "conf"), logs: &testtool.Buffer{},
		env: []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}}
	for name, body := range nodes {
		h.write(name, body)
	}
	conf := fmt.Sprintf("[default]\nconfig_dir=%s\n%s[log]\nlogfile=%s\ndebug=True\n", h.conf, confExtra, filepath.Join(home, ".vbmc", "log", "virtualbmc.log"))
	if err := os.WriteFile(filepath.Join(home, ".vbmc", "virtualbmc.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := buildDaemon()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--foreground"}, args...)...)
	cmd.Env, cmd.Stdout, cmd.Stderr = h.env, h.logs, h.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("vbmcd output:\n%s", h.logs)
		}
	})
	testtool.Eventually(t, 10*time.Second, "vbmcd serving", func() bool { return strings.Contains(h.logs.String(), "vbmcd serving") })
	return h
}

// write writes a node's file as another tool would (not atomically).
func (h *vbmcHome) write(name, body string) {
	h.t.Helper()
	if err := os.MkdirAll(filepath.Join(h.conf, name), 0o750); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.conf, name, "config"), []byte(body), 0o640); err != nil {
		h.t.Fatal(err)
	}
}

func (h *vbmcHome) read(name string) string {
	raw, _ := os.ReadFile(filepath.Join(h.conf, name, "config"))
	return string(raw)
}

// vbmc runs vbmc with no --config-dir: it finds the daemon through
// virtualbmc.conf as vbmcd does.
func (h *vbmcHome) vbmc(args ...string) string {
	h.t.Helper()
	cmd := exec.Command(filepath.Join(testtool.Build(h.t, "github.com/govbmc/govbmc/cmd/vbmc"), "vbmc"), args...)
	cmd.Env = h.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		h.t.Fatalf("vbmc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// status is the node's Status in vbmc list -f json, "" when not listed.
func (h *vbmcHome) status(name string) string {
	var rows []map[string]any
	if err := json.Unmarshal([]byte(h.vbmc("list", "-f", "json")), &rows); err != nil {
		h.t.Fatal(err)
	}
	for _, r := range rows {
		if r["Domain name"] == name {
			return fmt.Sprint(r["Status"])
		}
	}
	return ""
}

func nodeFile(port int, active string) string {
	return fmt.Sprintf("[VirtualBMC]\nusername = admin\npassword = password\ndomain_name = vm\nlibvirt_uri = %s\naddress = 127.0.0.1\nactive = %s\nport = %d\n", nowhere, active, port)
}

// listening reports whether the BMC on port answers a login.
func listening(t *testing.T, port int) bool {
	out, _ := testtool.Run(t, 10*time.Second, "ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "admin", "-P", "password", "-R", "1", "-N", "1", "mc", "info")
	return strings.Contains(out, "Device ID")
}

func TestVirtualBMCDirectoryFollowedLive(t *testing.T) {
	testtool.Require(t, "ipmitool")
	ports := freeUDPPorts(t, 3)
	h := startVirtualBMCHome(t, map[string]string{"node-0": nodeFile(ports[0], "True"), "node-1": nodeFile(ports[1], "true")}, "")
	for i, name := range []string{"node-0", "node-1"} {
		if !listening(t, ports[i]) {
			t.Fatalf("%s's BMC does not answer", name)
		}
	}
	if got := h.logs.Lines("virtualbmc.conf read", "debug=true"); got != 1 {
		t.Errorf("vbmcd did not say which virtualbmc.conf it read:\n%s", h.logs)
	}
	if log, _ := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(h.conf)), ".vbmc", "log", "virtualbmc.log")); !strings.Contains(string(log), "level=DEBUG") {
		t.Errorf("[log] logfile and debug = True: the logfile holds no debug line:\n%s", log)
	}

	start := time.Now()
	h.write("node-2", nodeFile(ports[2], "1"))
	testtool.Eventually(t, 3*time.Second, "a node file added while vbmcd runs served", func() bool { return listening(t, ports[2]) })
	t.Logf("added node served after %v", time.Since(start))

	start = time.Now()
	h.write("node-1", nodeFile(ports[1], "False"))
	testtool.Eventually(t, 3*time.Second, "a node whose active flipped to False down", func() bool { return h.status("node-1") == "down" })
	t.Logf("flipped node down after %v", time.Since(start))

	// vbmc start/stop rewrite the active line, delete removes the folder.
	h.vbmc("start", "node-1")
	if !strings.Contains(h.read("node-1"), "active = True") || !listening(t, ports[1]) {
		t.Errorf("after vbmc start: %q", h.read("node-1"))
	}
	h.vbmc("stop", "node-0")
	if f := h.read("node-0"); !strings.Contains(f, "active = False") || !strings.Contains(f, "libvirt_uri = "+nowhere) {
		t.Errorf("after vbmc stop: %q", f)
	}
	h.vbmc("delete", "node-2")
	if _, err := os.Stat(filepath.Join(h.conf, "node-2")); !os.IsNotExist(err) {
		t.Errorf("vbmc delete left the folder: %v", err)
	}
	if h.status("node-2") != "" {
		t.Error("a deleted node is still listed")
	}

	// Another tool removes a folder.
	if err := os.RemoveAll(filepath.Join(h.conf, "node-1")); err != nil {
		t.Fatal(err)
	}
	testtool.Eventually(t, 3*time.Second, "a removed folder's node gone", func() bool { return h.status("node-1") == "" })
	if listening(t, ports[1]) {
		t.Error("the removed node still answers")
	}

	// A half-written file never stops a running node.
	h.vbmc("start", "node-0")
	h.write("node-0", "[VirtualBMC]\nusername = admin\npass")
	testtool.Eventually(t, 5*time.Second, "the half-written file logged", func() bool {
		return h.logs.Lines("level=WARN", filepath.Join(h.conf, "node-0", "config"), "keeps its last good configuration") == 1
	})
	if !listening(t, ports[0]) {
		t.Error("a half-written file stopped a running BMC")
	}
}

func TestVirtualBMCShowPasswords(t *testing.T) {
	ports := freeUDPPorts(t, 1)
	body := strings.Replace(nodeFile(ports[0], "False"), "password = password", "password = s3cret", 1) + "libvirt_sasl_username = lv\nlibvirt_sasl_password = lvsecret\n"
	h := startVirtualBMCHome(t, map[string]string{"quiet": body}, "")
	for _, format := range []string{"table", "json", "yaml", "value"} {
		if out := h.vbmc("show", "quiet", "-f", format); strings.Contains(out, "s3cret") || strings.Contains(out, "lvsecret") {
			t.Errorf("vbmc show -f %s prints a password without show_passwords:\n%s", format, out)
		}
	}
	if log, _ := os.ReadFile(filepath.Join(filepath.Dir(h.conf), "log", "virtualbmc.log")); strings.Contains(string(log), "s3cret") || strings.Contains(string(log), "lvsecret") {
		t.Error("the log holds a password")
	}

	shown := startVirtualBMCHome(t, map[string]string{"shown": body}, "show_passwords = True\n")
	out := shown.vbmc("show", "shown")
	if !strings.Contains(out, "s3cret") || !strings.Contains(out, "lvsecret") {
		t.Errorf("show_passwords = True, but vbmc show hides the passwords:\n%s", out)
	}
}

func TestVirtualBMCBadFilesLoggedOnce(t *testing.T) {
	ports := freeUDPPorts(t, 2)
	h := startVirtualBMCHome(t, map[string]string{
		"a-good":      nodeFile(ports[0], "True"),
		"b-same-port": nodeFile(ports[0], "True"),
		"no-section":  fmt.Sprintf("port = %d\n", ports[1]),
		"bad-port":    strings.Replace(nodeFile(ports[1], "True"), fmt.Sprint(ports[1]), "62x3", 1),
	}, "")
	if err := os.MkdirAll(filepath.Join(h.conf, "no-config"), 0o750); err != nil {
		t.Fatal(err)
	}
	// A rescan after the folder without config, seen as a node added.
	port := freeUDPPorts(t, 1)[0]
	h.write("z-later", nodeFile(port, "True"))
	testtool.Eventually(t, 3*time.Second, "a node added later served", func() bool { return h.status("z-later") != "" })
	for what, parts := range map[string][]string{
		"two files on one port": {filepath.Join(h.conf, "b-same-port", "config"), "a-good", filepath.Join(h.conf, "a-good", "config")},
		"missing section":       {filepath.Join(h.conf, "no-section", "config"), "no [VirtualBMC] section"},
		"bad port":              {filepath.Join(h.conf, "bad-port", "config"), "62x3"},
		"folder without config": {filepath.Join(h.conf, "no-config", "config"), "no config file"},
	} {
		if n := h.logs.Lines(append([]string{"level=WARN"}, parts...)...); n != 1 {
			t.Errorf("%s: %d log lines, want 1", what, n)
		}
	}
	if h.status("a-good") == "" || h.status("b-same-port") != "" {
		t.Errorf("a-good %q, b-same-port %q: want the first served and the second refused", h.status("a-good"), h.status("b-same-port"))
	}
}

// TestMetricsOfADeletedNodeGo: the series of a node whose folder another
// tool removed are gone from the next scrape.
func TestMetricsOfADeletedNodeGo(t *testing.T) {
	testtool.Require(t, "ipmitool")
	ports := freeUDPPorts(t, 2)
	h := startVirtualBMCHome(t, map[string]string{"keep": nodeFile(ports[0], "True"), "gone": nodeFile(ports[1], "True")}, "", "--metrics-address", "127.0.0.1:0")
	url := (&daemon{logs: h.logs}).metricsURL(t)
	for _, p := range ports {
		if !listening(t, p) {
			t.Fatalf("the BMC on %d does not answer", p)
		}
	}
	opened := func(node string) (float64, bool) {
		return testtool.Scrape(t, url).Value("govbmc_sessions_opened_total", map[string]string{"node": node})
	}
	for _, node := range []string{"keep", "gone"} {
		if n, ok := opened(node); !ok || n != 1 {
			t.Fatalf("sessions opened on %s: %v (present %v), want 1", node, n, ok)
		}
	}
	if err := os.RemoveAll(filepath.Join(h.conf, "gone")); err != nil {
		t.Fatal(err)
	}
	testtool.Eventually(t, 3*time.Second, "the removed node's series gone", func() bool {
		_, ok := opened("gone")
		return !ok
	})
	if n, ok := opened("keep"); !ok || n != 1 {
		t.Errorf("the other node's series: %v (present %v), want 1", n, ok)
	}
}

// TestVirtualBMCUnreadableFile runs vbmcd as nobody (root reads any file)
// on a directory where one node file is root's, mode 0600: that file is
// logged once, naming it, and the other node is served.
func TestVirtualBMCUnreadableFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run vbmcd as nobody")
	}
	setpriv := testtool.Require(t, "setpriv")
	ports := freeUDPPorts(t, 2)
	// Not t.TempDir(): nobody must reach it through its parents.
	root, err := os.MkdirTemp("", "vbmcd-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := buildDaemon()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(bin) // its folder is root's alone
	if err != nil {
		t.Fatal(err)
	}
	vbmcd := filepath.Join(root, "vbmcd")
	if err := os.WriteFile(vbmcd, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(root, "home")
	conf := filepath.Join(home, ".vbmc")
	for name, port := range map[string]int{"readable": ports[0], "private": ports[1]} {
		if err := os.MkdirAll(filepath.Join(conf, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(conf, name, "config"), []byte(nodeFile(port, "True")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("chown", "-R", "nobody:nogroup", home).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	private := filepath.Join(conf, "private", "config")
	if err := os.Chown(private, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(private, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testtool.Buffer{}
	cmd := exec.Command(setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", vbmcd, "--foreground")
	cmd.Env, cmd.Stdout, cmd.Stderr = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}, logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("vbmcd output:\n%s", logs)
		}
	})
	testtool.Eventually(t, 10*time.Second, "vbmcd serving", func() bool { return strings.Contains(logs.String(), "vbmcd serving") })
	if logs.Lines("node started", "node=readable") != 1 {
		t.Error("the readable node is not served")
	}
	// The next rescans, seen: a node added after them is served.
	port := freeUDPPorts(t, 1)[0]
	if err := os.MkdirAll(filepath.Join(conf, "later"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "later", "config"), []byte(nodeFile(port, "True")), 0o644); err != nil {
		t.Fatal(err)
	}
	testtool.Eventually(t, 3*time.Second, "a node added later served", func() bool { return logs.Lines("node started", "node=later") == 1 })
	if n := logs.Lines("level=WARN", private, "permission denied"); n != 1 {
		t.Errorf("%d log lines name the unreadable file with its reason, want 1", n)
	}
}

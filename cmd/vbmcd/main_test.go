package main

import (
	"context"
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

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/control"
	"github.com/govbmc/govbmc/internal/testtool"
)

// buildDaemon compiles vbmcd once for the tests of this package.
var buildDaemon = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "vbmcd-test")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "vbmcd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// freeUDPPorts returns n loopback UDP ports that were free a moment ago.
func freeUDPPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var conns []*net.UDPConn
	for i := 0; i < n; i++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	for _, c := range conns {
		c.Close()
	}
	return ports
}

// demoConfigOnPorts is configs/demo.yaml with its ports moved, so the test
// does not collide with a `make run` on the same machine.
func demoConfigOnPorts(t *testing.T, ports []int) string {
	t.Helper()
	raw, err := os.ReadFile("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for i, p := range ports {
		s = strings.Replace(s, fmt.Sprintf("port: %d", 6230+i), fmt.Sprintf("port: %d", p), 1)
	}
	// Its Redfish listener too, on any free port.
	if s = strings.Replace(s, "address: 127.0.0.1:8000", "address: 127.0.0.1:0", 1); !strings.Contains(s, "127.0.0.1:0") {
		t.Fatal("configs/demo.yaml has no Redfish address 127.0.0.1:8000 to move")
	}
	return writeConfig(t, s)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	return testtool.WriteFile(t, "fleet.yaml", body)
}

type daemon struct {
	cmd  *exec.Cmd
	logs *testtool.Buffer
	done chan error
}

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	bin, err := buildDaemon()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{logs: &testtool.Buffer{}, done: make(chan error, 1)}
	// Never the user's ~/.vbmc.
	d.cmd = exec.Command(bin, append([]string{"--config-dir", t.TempDir()}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("vbmcd output:\n%s", d.output())
		}
	})
	return d
}

func (d *daemon) output() string { return d.logs.String() }

func (d *daemon) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.output(), text) {
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("vbmcd exited (%v) before logging %q", err, text)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("vbmcd did not log %q", text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDaemonServesDemoFleetAndStopsOnSIGTERM(t *testing.T) {
	ports := freeUDPPorts(t, 4)
	d := startDaemon(t, "--config", demoConfigOnPorts(t, ports))
	d.waitFor(t, "vbmcd serving")
	for i, p := range ports {
		out, err := testtool.Run(t, 30*time.Second, "ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", fmt.Sprint(p), "-U", "admin", "-P", "password", "power", "status")
		if err != nil || !strings.Contains(out, "Chassis Power is off") {
			t.Fatalf("node-%d power status: %v\n%s", i, err, out)
		}
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			t.Fatalf("vbmcd exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("vbmcd did not stop on SIGTERM")
	}
	if !strings.Contains(d.output(), "vbmcd stopped") {
		t.Fatal("no clean stop logged")
	}
	if strings.Contains(d.output(), "password=") {
		t.Fatal("a password reached the log")
	}
}

func TestDaemonRefusesBadConfig(t *testing.T) {
	node := func(name string, port int, extra string) string {
		return fmt.Sprintf("  - name: %s\n    address: 127.0.0.1\n    port: %d\n    users:\n      - {name: admin, password: password}\n%s", name, port, extra)
	}
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown key", "nodes:\n" + node("n1", 7001, "    colour: blue\n"), []string{"colour", "not found"}},
		{"duplicate port", "nodes:\n" + node("n1", 7001, "") + node("n2", 7001, ""), []string{`node "n2"`, "port", `node "n1"`}},
		{"missing password", "nodes:\n  - name: n1\n    address: 127.0.0.1\n    port: 7001\n    users:\n      - {name: admin}\n", []string{`node "n1"`, "users[0].password", "missing"}},
		{"unknown cipher suite", "nodes:\n" + node("n1", 7001, "    cipher_suites: [3, 42]\n"), []string{`node "n1"`, "cipher_suites", "42"}},
		{"cipher suite 0", "nodes:\n" + node("n1", 7001, "    cipher_suites: [0]\n"), []string{`node "n1"`, "cipher_suites", "suite 0"}},
		{"BMC key not hex", "nodes:\n" + node("n1", 7001, "    kg: 12zz\n"), []string{`node "n1"`, "kg", "not hex"}},
		{"BMC key all zero", "nodes:\n" + node("n1", 7001, "    kg: \"0000\"\n"), []string{`node "n1"`, "kg"}},
		{"redfish cert without key", "redfish: {address: '127.0.0.1:0', cert: c.pem}\nnodes:\n" + node("n1", 7001, ""), []string{"redfish.cert and redfish.key go together"}},
		{"redfish address without port", "redfish: {address: 127.0.0.1}\nnodes:\n" + node("n1", 7001, ""), []string{`redfish.address "127.0.0.1"`, "host:port"}},
		{"media size unit", "virtual_media: {max_size: 2 gigs}\nnodes:\n" + node("n1", 7001, ""), []string{`virtual_media.max_size "2 gigs"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := startDaemon(t, "--config", writeConfig(t, c.yaml))
			select {
			case err := <-d.done:
				d.done <- err
				if err == nil {
					t.Fatal("vbmcd accepted a bad config")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("vbmcd kept running on a bad config")
			}
			for _, w := range c.want {
				if !strings.Contains(d.output(), w) {
					t.Errorf("error lacks %q:\n%s", w, d.output())
				}
			}
		})
	}
}

func TestDaemonKeepsOtherNodesWhenAPortIsTaken(t *testing.T) {
	ports := freeUDPPorts(t, 2)
	squatter, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	cfg := fmt.Sprintf(`nodes:
  - {name: taken, address: 127.0.0.1, port: %d, users: [{name: admin, password: password}]}
  - {name: free, address: 127.0.0.1, port: %d, users: [{name: admin, password: password}]}
`, ports[0], ports[1])
	d := startDaemon(t, "--config", writeConfig(t, cfg))
	d.waitFor(t, "vbmcd serving")
	mustLog := []string{`node=taken`, fmt.Sprintf("127.0.0.1:%d", ports[0]), "address already in use"}
	for _, w := range mustLog {
		if !strings.Contains(d.output(), w) {
			t.Errorf("log lacks %q", w)
		}
	}
	out, err := testtool.Run(t, 30*time.Second, "ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", fmt.Sprint(ports[1]), "-U", "admin", "-P", "password", "power", "on")
	if err != nil || !strings.Contains(out, "Up/On") {
		t.Fatalf("the other node: %v\n%s", err, out)
	}
}

func TestDaemonServesLibvirtNodes(t *testing.T) {
	testtool.SystemLibvirtd(t)
	ports := freeUDPPorts(t, 2)
	cfg := fmt.Sprintf(`nodes:
  - name: test
    address: 127.0.0.1
    port: %d
    users: [{name: admin, password: password}]
    backend: {type: libvirt, uri: "test:///default"}
  - name: ghost
    address: 127.0.0.1
    port: %d
    users: [{name: admin, password: password}]
    backend: {type: libvirt, uri: "test:///default", domain: no-such-domain}
`, ports[0], ports[1])
	d := startDaemon(t, "--config", writeConfig(t, cfg))
	d.waitFor(t, "vbmcd serving")
	ipmitool := func(port int, args ...string) (string, error) {
		base := []string{"-I", "lanplus", "-H", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "admin", "-P", "password"}
		return testtool.Run(t, 30*time.Second, "ipmitool", append(base, args...)...)
	}
	// The test driver's own domain "test" runs.
	if out, err := ipmitool(ports[0], "power", "status"); err != nil || !strings.Contains(out, "Chassis Power is on") {
		t.Fatalf("libvirt node: %v\n%s", err, out)
	}
	// A node whose domain does not exist answers "node busy" and says why.
	out, err := ipmitool(ports[1], "power", "status")
	if err == nil || !strings.Contains(out, "Node busy") {
		t.Fatalf("missing domain: %v\n%s", err, out)
	}
	for _, w := range []string{"node=ghost", "no-such-domain", "Domain not found"} {
		if !strings.Contains(d.output(), w) {
			t.Errorf("log lacks %q", w)
		}
	}
}

// TestStatusShowsUnreachableHypervisor: a running BMC whose libvirtd went
// away is listed in error with the reason, and recovers.
func TestStatusShowsUnreachableHypervisor(t *testing.T) {
	lvd := testtool.StartPrivateLibvirtd(t)
	port := freeUDPPorts(t, 1)[0]
	dir := t.TempDir()
	cfg := fmt.Sprintf("nodes:\n  - {name: t, address: 127.0.0.1, port: %d, users: [{name: admin, password: password}], backend: {type: libvirt, uri: \"test+unix:///default?socket=%s\", domain: test}}\n", port, lvd.Socket)
	bin, err := buildDaemon()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{logs: &testtool.Buffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(bin, "--config-dir", dir, "--config", writeConfig(t, cfg))
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	defer func() { _ = d.cmd.Process.Kill(); <-d.done }()
	d.waitFor(t, "vbmcd serving")
	client := control.NewClient(filepath.Join(dir, control.SocketName))
	status := func() (bmc.Status, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := client.Show(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		return n.Status, n.Reason
	}
	testtool.Eventually(t, 10*time.Second, "running", func() bool { s, _ := status(); return s == bmc.StatusRunning })
	lvd.Stop()
	testtool.Eventually(t, 10*time.Second, "error while libvirtd is down", func() bool {
		s, reason := status()
		return s == bmc.StatusError && strings.Contains(reason, "unreachable")
	})
	lvd.Start()
	testtool.Eventually(t, 20*time.Second, "running again", func() bool { s, _ := status(); return s == bmc.StatusRunning })
}

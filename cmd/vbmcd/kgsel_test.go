package main

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
)

// TestFleetNodeKgAndPersistentSEL: a fleet-file node with a BMC key takes
// ipmitool -y with that key and refuses a login without it; its System
// Event Log, kept in the config directory, survives a vbmcd restart.
func TestFleetNodeKgAndPersistentSEL(t *testing.T) {
	port := freeUDPPorts(t, 1)[0]
	const kg = "0123456789abcdef0123456789abcdef01234567"
	fleet := writeConfig(t, fmt.Sprintf("nodes:\n  - {name: keyed, address: 127.0.0.1, port: %d, kg: %q, users: [{name: admin, password: password}]}\n", port, kg))
	dir := t.TempDir()
	ipmitool := func(args ...string) (string, error) {
		base := []string{"-I", "lanplus", "-H", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "admin", "-P", "password", "-R", "1", "-N", "2"}
		return testtool.Run(t, 30*time.Second, "ipmitool", append(base, args...)...)
	}
	entries := func() int {
		t.Helper()
		out, err := ipmitool(append([]string{"-y", kg}, "sel", "info")...)
		m := regexp.MustCompile(`Entries\s*:\s*(\d+)`).FindStringSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("sel info: %v\n%s", err, out)
		}
		var n int
		fmt.Sscan(m[1], &n)
		return n
	}

	d := startDaemon(t, "--config-dir", dir, "--config", fleet)
	d.waitFor(t, "vbmcd serving")
	if out, err := ipmitool("-y", kg, "power", "on"); err != nil || !strings.Contains(out, "Chassis Power Control: Up/On") {
		t.Fatalf("power on with the BMC key: %v\n%s", err, out)
	}
	// ipmitool's exit status does not always say a login failed: what it
	// prints does.
	if out, _ := ipmitool("power", "status"); strings.Contains(out, "Chassis Power is") {
		t.Fatalf("a login without the BMC key was let in:\n%s", out)
	}
	if out, _ := ipmitool("-y", strings.Repeat("ab", 20), "power", "status"); strings.Contains(out, "Chassis Power is") {
		t.Fatalf("a login with a wrong BMC key was let in:\n%s", out)
	}
	before := entries()
	if before == 0 {
		t.Fatal("the power on left no event in the SEL")
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-d.done; err != nil {
		t.Fatalf("vbmcd exit after SIGTERM: %v", err)
	}
	d.done <- nil

	again := startDaemon(t, "--config-dir", dir, "--config", fleet)
	again.waitFor(t, "vbmcd serving")
	if after := entries(); after < before {
		t.Fatalf("SEL after a restart holds %d entries, %d before", after, before)
	}
	if strings.Contains(d.output()+again.output(), kg) {
		t.Fatal("the BMC key reached the log")
	}
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
)

// metricsURL is the URL vbmcd logged for its metrics endpoint.
func (d *daemon) metricsURL(t *testing.T) string {
	t.Helper()
	d.waitFor(t, "serving metrics")
	m := regexp.MustCompile(`url=(http://\S+/metrics)`).FindStringSubmatch(d.output())
	if m == nil {
		t.Fatalf("no metrics URL in the log:\n%s", d.output())
	}
	return m[1]
}

// TestMetricsCountRealIpmitoolTraffic drives ipmitool against a vbmcd with
// --metrics-address and checks that the scraped counters moved by exactly
// what was sent, labelled by node and never by client address.
func TestMetricsCountRealIpmitoolTraffic(t *testing.T) {
	testtool.Require(t, "ipmitool")
	ports := freeUDPPorts(t, 2)
	fleet := writeConfig(t, fmt.Sprintf(`nodes:
  - {name: metered, address: 127.0.0.1, port: %d, users: [{name: admin, password: password}], backend: {type: sim}}
  - {name: quiet, address: 127.0.0.1, port: %d, users: [{name: admin, password: password}], backend: {type: sim}}
`, ports[0], ports[1]))
	d := startDaemon(t, "--config", fleet, "--metrics-address", "127.0.0.1:0")
	url := d.metricsURL(t)
	d.waitFor(t, "vbmcd serving")

	pw := testtool.WriteFile(t, "pw", "password")
	bad := filepath.Join(filepath.Dir(pw), "bad")
	if err := os.WriteFile(bad, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Ironic's command line, one process per command.
	ironic := func(pwFile string, args ...string) (string, error) {
		base := []string{"-I", "lanplus", "-H", "127.0.0.1", "-L", "ADMINISTRATOR", "-p", fmt.Sprint(ports[0]), "-U", "admin", "-R", "1", "-N", "5", "-f", pwFile}
		return testtool.Run(t, 30*time.Second, "ipmitool", append(base, args...)...)
	}
	const statuses = 3
	for range statuses {
		if out, err := ironic(pw, "power", "status"); err != nil || !strings.Contains(out, "Chassis Power is") {
			t.Fatalf("power status: %v\n%s", err, out)
		}
	}
	if out, err := ironic(pw, "power", "on"); err != nil {
		t.Fatalf("power on: %v\n%s", err, out)
	}
	if out, err := ironic(bad, "power", "status"); err == nil {
		t.Fatalf("a wrong password was let in:\n%s", out)
	}

	node := map[string]string{"node": "metered"}
	// ipmitool gives up after RAKP 2 when the password is wrong: the BMC
	// counts the failure when no RAKP 3 has come within 3 s.
	var ms testtool.Metrics
	testtool.Eventually(t, 10*time.Second, "the failed login counted", func() bool {
		ms = testtool.Scrape(t, url)
		n, _ := ms.Value("govbmc_logins_failed_total", node)
		return n >= 1
	})
	cmd := func(name, code string) map[string]string {
		return map[string]string{"node": "metered", "command": name, "code": code}
	}
	op := func(name string) map[string]string {
		return map[string]string{"operation": name, "backend": "sim", "outcome": "ok"}
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"govbmc_sessions_opened_total", node, statuses + 1},
		{"govbmc_logins_failed_total", node, 1},
		{"govbmc_ipmi_commands_total", cmd("Get Chassis Status", "0x00"), statuses},
		{"govbmc_ipmi_commands_total", cmd("Chassis Control", "0x00"), 1},
		{"govbmc_machine_operation_seconds", op("power_on"), 1},
		{"govbmc_sol_sessions_active", node, 0},
	} {
		if got, ok := ms.Value(tc.name, tc.labels); !ok || got != tc.want {
			t.Errorf("%s%v = %v (present: %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	// power status reads the power state once per command; power on reads
	// it for ipmitool's own check.
	if got, _ := ms.Value("govbmc_machine_operation_seconds", op("power_state")); got < statuses {
		t.Errorf("power_state operations = %v, want at least %d", got, statuses)
	}
	if got, ok := ms.Value("govbmc_session_table_used", node); !ok || got > 1 {
		t.Errorf("session table of metered = %v (present %v): ipmitool closes its sessions", got, ok)
	}
	if _, ok := ms.Value("govbmc_sessions_opened_total", map[string]string{"node": "quiet"}); ok {
		t.Error("the node nobody talked to has a sessions series")
	}
	for _, label := range []string{"node", "command", "uri", "operation"} {
		for v := range ms.LabelValues(label) {
			if strings.Contains(v, "127.0.0.1") {
				t.Errorf("label %s=%q holds a client address", label, v)
			}
		}
	}
	for _, std := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := ms[std]; !ok {
			t.Errorf("standard metric %s missing", std)
		}
	}
}

func TestMetricsOffByDefault(t *testing.T) {
	ports := freeUDPPorts(t, 1)
	d := startDaemon(t, "--config", writeConfig(t, fmt.Sprintf(`nodes:
  - {name: n, address: 127.0.0.1, port: %d, users: [{name: admin, password: password}], backend: {type: sim}}
`, ports[0])))
	d.waitFor(t, "vbmcd serving")
	if strings.Contains(d.output(), "serving metrics") {
		t.Errorf("metrics served without --metrics-address:\n%s", d.output())
	}
}

func TestMetricsAddressFromTheFleetFile(t *testing.T) {
	ports := freeUDPPorts(t, 1)
	d := startDaemon(t, "--config", writeConfig(t, fmt.Sprintf(`metrics_address: 127.0.0.1:0
nodes:
  - {name: n, address: 127.0.0.1, port: %d, users: [{name: admin, password: password}], backend: {type: sim}}
`, ports[0])))
	if ms := testtool.Scrape(t, d.metricsURL(t)); ms["go_goroutines"] == nil {
		t.Error("the fleet file's metrics_address serves no Go metrics")
	}
}

package metrics

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/govbmc/govbmc/bmc"
)

// scrape fetches the handler's text exposition and parses it with
// Prometheus' own parser, as a Prometheus server would.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: HTTP %d", rec.Code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("scrape does not parse: %v", err)
	}
	return fams
}

// value returns the sample of family name whose labels are exactly labels.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, mt := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range mt.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if fmt.Sprint(got) != fmt.Sprint(labels) {
			continue
		}
		switch {
		case mt.Counter != nil:
			return mt.Counter.GetValue(), true
		case mt.Gauge != nil:
			return mt.Gauge.GetValue(), true
		case mt.Histogram != nil:
			return float64(mt.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestObserverSeries(t *testing.T) {
	m := New()
	m.SessionOpened("node-0")
	m.SessionOpened("node-0")
	m.LoginFailed("node-1")
	m.Command("node-0", "Get Chassis Status", 0)
	m.Command("node-0", "Get Chassis Status", 0)
	m.Command("node-0", "Chassis Control", 0xc0)
	m.Operation("power_on", "libvirt", 3*time.Millisecond, nil)
	m.Operation("reset", "libvirt", time.Millisecond, fmt.Errorf("reset: %w", bmc.ErrPoweredOff))
	m.Operation("power_off", "sim", time.Millisecond, errors.New("boom"))
	m.SOLSessions("node-0", 1)
	m.SessionTable("node-0", 3)
	m.Connection("qemu+ssh://root@hv1/system", true)
	m.Reconnected("qemu+ssh://root@hv1/system")

	fams := scrape(t, m)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"govbmc_sessions_opened_total", map[string]string{"node": "node-0"}, 2},
		{"govbmc_logins_failed_total", map[string]string{"node": "node-1"}, 1},
		{"govbmc_ipmi_commands_total", map[string]string{"node": "node-0", "command": "Get Chassis Status", "code": "0x00"}, 2},
		{"govbmc_ipmi_commands_total", map[string]string{"node": "node-0", "command": "Chassis Control", "code": "0xc0"}, 1},
		{"govbmc_machine_operation_seconds", map[string]string{"operation": "power_on", "backend": "libvirt", "outcome": "ok"}, 1},
		{"govbmc_machine_operation_seconds", map[string]string{"operation": "reset", "backend": "libvirt", "outcome": "powered_off"}, 1},
		{"govbmc_machine_operation_seconds", map[string]string{"operation": "power_off", "backend": "sim", "outcome": "error"}, 1},
		{"govbmc_sol_sessions_active", map[string]string{"node": "node-0"}, 1},
		{"govbmc_session_table_used", map[string]string{"node": "node-0"}, 3},
		{"govbmc_libvirt_connection_up", map[string]string{"uri": "qemu+ssh://root@hv1/system"}, 1},
		{"govbmc_libvirt_reconnects_total", map[string]string{"uri": "qemu+ssh://root@hv1/system"}, 1},
	}
	for _, tc := range tests {
		if got, ok := value(fams, tc.name, tc.labels); !ok || got != tc.want {
			t.Errorf("%s%v = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	for _, std := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := fams[std]; !ok {
			t.Errorf("standard metric %s missing", std)
		}
	}

	m.Forget("node-0")
	fams = scrape(t, m)
	if _, ok := value(fams, "govbmc_sessions_opened_total", map[string]string{"node": "node-0"}); ok {
		t.Error("a forgotten node's sessions are still served")
	}
	if _, ok := value(fams, "govbmc_ipmi_commands_total", map[string]string{"node": "node-0", "command": "Get Chassis Status", "code": "0x00"}); ok {
		t.Error("a forgotten node's commands are still served")
	}
}

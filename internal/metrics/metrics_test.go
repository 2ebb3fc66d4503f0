package metrics

import (
	"compress/gzip"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
)

// scrape parses the handler's text exposition as a Prometheus server would.
func scrape(t *testing.T, m *Metrics) testtool.Metrics {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: HTTP %d", rec.Code)
	}
	return testtool.ParseMetrics(t, rec.Body)
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
		if got, ok := fams.Value(tc.name, tc.labels); !ok || got != tc.want {
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
	if _, ok := fams.Value("govbmc_sessions_opened_total", map[string]string{"node": "node-0"}); ok {
		t.Error("a forgotten node's sessions are still served")
	}
	if _, ok := fams.Value("govbmc_ipmi_commands_total", map[string]string{"node": "node-0", "command": "Get Chassis Status", "code": "0x00"}); ok {
		t.Error("a forgotten node's commands are still served")
	}
}

// BenchmarkScrape1000Nodes measures a scrape of a fleet of 1,000 nodes that
// each answered Ironic's usual commands, and reports its size.
func BenchmarkScrape1000Nodes(b *testing.B) {
	m := New()
	commands := []string{"Get Channel Authentication Capabilities", "Get Channel Cipher Suites", "Set Session Privilege Level",
		"Get Chassis Status", "Chassis Control", "Set System Boot Options", "Get System Boot Options", "Close Session"}
	for i := range 1000 {
		node := fmt.Sprintf("node-%04d", i)
		m.SessionOpened(node)
		m.LoginFailed(node)
		m.SessionTable(node, 1)
		m.SOLSessions(node, 0)
		for _, c := range commands {
			m.Command(node, c, 0)
		}
	}
	m.Operation("power_state", "libvirt", time.Millisecond, nil)
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}

// TestNodeSeriesText: the per-node series parse back with Prometheus' own
// parser whatever the node is called (quotes, backslashes, line feeds in a
// name are escaped), every known node has every single-series family from
// 0, and a gzip-accepting scraper gets the same exposition compressed.
func TestNodeSeriesText(t *testing.T) {
	m := New()
	odd := "rack \"7\"\\slot\n3"
	m.LoginFailed(odd)
	m.Command(odd, `Get "Device" ID`, 0xc1)
	m.SessionOpened("plain")

	fams := scrape(t, m)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"govbmc_logins_failed_total", map[string]string{"node": odd}, 1},
		{"govbmc_sessions_opened_total", map[string]string{"node": odd}, 0},
		{"govbmc_sol_sessions_active", map[string]string{"node": odd}, 0},
		{"govbmc_ipmi_commands_total", map[string]string{"node": odd, "command": `Get "Device" ID`, "code": "0xc1"}, 1},
		{"govbmc_sessions_opened_total", map[string]string{"node": "plain"}, 1},
		{"govbmc_logins_failed_total", map[string]string{"node": "plain"}, 0},
	} {
		if got, ok := fams.Value(tc.name, tc.labels); !ok || got != tc.want {
			t.Errorf("%s%q = %v (present %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	if got := fams["govbmc_ipmi_commands_total"].GetType().String(); got != "COUNTER" {
		t.Errorf("commands family type %s, want COUNTER", got)
	}
	if got := fams["govbmc_session_table_used"].GetType().String(); got != "GAUGE" {
		t.Errorf("session table family type %s, want GAUGE", got)
	}

	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept-Encoding", "deflate, gzip;q=0.8")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q for a gzip-accepting scraper", rec.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	zipped := testtool.ParseMetrics(t, zr)
	if got, ok := zipped.Value("govbmc_logins_failed_total", map[string]string{"node": odd}); !ok || got != 1 {
		t.Errorf("gzipped scrape: logins failed %v (present %v), want 1", got, ok)
	}
}

// TestScrapeWhileObserving: scrapes running beside the observations and a
// node's deletion always parse (go test -race checks the counters).
func TestScrapeWhileObserving(t *testing.T) {
	m := New()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				node := fmt.Sprintf("node-%d", (w*500+i)%50)
				m.SessionOpened(node)
				m.Command(node, "Get Chassis Status", uint8(i%3))
				m.SessionTable(node, i%5)
				if i%97 == 0 {
					m.Forget(node)
				}
			}
		})
	}
	for range 20 {
		scrape(t, m)
	}
	wg.Wait()
	if got := len(scrape(t, m)["govbmc_sessions_opened_total"].GetMetric()); got == 0 || got > 50 {
		t.Errorf("%d nodes with sessions, want 1..50", got)
	}
}

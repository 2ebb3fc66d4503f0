// Package metrics serves govbmc's Prometheus metrics: it implements
// bmc.Observer with prometheus/client_golang collectors and gives the HTTP
// handler vbmcd mounts on --metrics-address.
package metrics

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/govbmc/govbmc/bmc"
)

// Metrics holds govbmc's collectors in a registry of its own (never the
// global one, so tests and several daemons in one process do not collide).
type Metrics struct {
	reg   *prometheus.Registry
	nodes nodeSeries // the per-node series, written by the scrape itself

	operations *prometheus.HistogramVec
	connUp     *prometheus.GaugeVec
	reconnects *prometheus.CounterVec
}

var _ bmc.Observer = (*Metrics)(nil)

// New builds the collectors, with the standard Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		operations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "govbmc", Name: "machine_operation_seconds",
			Help:    "Time a machine operation took, by operation, backend and outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation", "backend", "outcome"}),
		connUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "govbmc", Name: "libvirt_connection_up",
			Help: "1 when the connection to a hypervisor is up, per URI (without credentials).",
		}, []string{"uri"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "govbmc", Name: "libvirt_reconnects_total",
			Help: "Connections to a hypervisor made again after they were lost, per URI.",
		}, []string{"uri"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.operations, m.connUp, m.reconnects,
	)
	return m
}

// textFormat is what the handler serves: Prometheus' text format 0.0.4,
// which every Prometheus-compatible scraper accepts.
var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// Handler serves the metrics in Prometheus' text format, gzipped when the
// client accepts it: the registry's families, then the per-node ones.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mfs, err := m.reg.Gather()
		if err != nil {
			http.Error(w, "gather metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", string(textFormat))
		var out io.Writer = w
		if acceptsGzip(r) {
			w.Header().Set("Content-Encoding", "gzip")
			zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // a valid level: no error
			defer zw.Close()
			out = zw
		}
		// A failed write is a scraper gone away: nothing is left to tell it.
		_ = m.write(bufio.NewWriterSize(out, 64<<10), mfs)
	})
}

// write writes the gathered families and the per-node ones, then flushes.
func (m *Metrics) write(w *bufio.Writer, mfs []*dto.MetricFamily) error {
	enc := expfmt.NewEncoder(w, textFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("write %s: %w", mf.GetName(), err)
		}
	}
	if err := m.nodes.write(w); err != nil {
		return fmt.Errorf("write the per-node series: %w", err)
	}
	return w.Flush()
}

// acceptsGzip reports whether r's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// SessionOpened counts a session a client logged into.
func (m *Metrics) SessionOpened(node string) { m.nodes.node(node).sessions.Add(1) }

// LoginFailed counts a refused login.
func (m *Metrics) LoginFailed(node string) { m.nodes.node(node).loginsFailed.Add(1) }

// Command counts a command answered with its completion code.
func (m *Metrics) Command(node, command string, code uint8) {
	m.nodes.node(node).command(command, code)
}

// Operation records a machine operation's duration and outcome ("ok",
// "powered_off", "not_supported", "invalid" or "error").
func (m *Metrics) Operation(op, backend string, d time.Duration, err error) {
	m.operations.WithLabelValues(op, backend, outcome(err)).Observe(d.Seconds())
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, bmc.ErrPoweredOff):
		return "powered_off"
	case errors.Is(err, bmc.ErrNotSupported):
		return "not_supported"
	case errors.Is(err, bmc.ErrInvalidArgument):
		return "invalid"
	}
	return "error"
}

// SOLSessions sets a node's active Serial-over-LAN sessions.
func (m *Metrics) SOLSessions(node string, n int) { m.nodes.node(node).sol.Store(int64(n)) }

// SessionTable sets how many of a node's session slots are taken.
func (m *Metrics) SessionTable(node string, used int) { m.nodes.node(node).slots.Store(int64(used)) }

// Connection sets whether a hypervisor connection is up.
func (m *Metrics) Connection(uri string, up bool) {
	m.connUp.WithLabelValues(uri).Set(float64(btoi(up)))
}

// Reconnected counts a reconnection to a hypervisor.
func (m *Metrics) Reconnected(uri string) { m.reconnects.WithLabelValues(uri).Inc() }

// Forget drops a deleted node's series, so the label set stays bounded by
// the nodes that exist.
func (m *Metrics) Forget(node string) { m.nodes.forget(node) }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Package metrics serves govbmc's Prometheus metrics: it implements
// bmc.Observer with prometheus/client_golang collectors and gives the HTTP
// handler vbmcd mounts on --metrics-address.
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/govbmc/govbmc/bmc"
)

// Metrics holds govbmc's collectors in a registry of its own (never the
// global one, so tests and several daemons in one process do not collide).
type Metrics struct {
	reg *prometheus.Registry

	sessions     *prometheus.CounterVec
	loginsFailed *prometheus.CounterVec
	commands     *prometheus.CounterVec
	operations   *prometheus.HistogramVec
	sol          *prometheus.GaugeVec
	sessionTable *prometheus.GaugeVec
	connUp       *prometheus.GaugeVec
	reconnects   *prometheus.CounterVec
}

var _ bmc.Observer = (*Metrics)(nil)

// New builds the collectors, with the standard Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "govbmc", Name: "sessions_opened_total",
			Help: "Sessions clients logged into, per node.",
		}, []string{"node"}),
		loginsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "govbmc", Name: "logins_failed_total",
			Help: "Logins refused (unknown user, wrong password or key), per node.",
		}, []string{"node"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "govbmc", Name: "ipmi_commands_total",
			Help: "IPMI commands answered, by node, command and completion code.",
		}, []string{"node", "command", "code"}),
		operations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "govbmc", Name: "machine_operation_seconds",
			Help:    "Time a machine operation took, by operation, backend and outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation", "backend", "outcome"}),
		sol: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "govbmc", Name: "sol_sessions_active",
			Help: "Serial-over-LAN sessions active, per node.",
		}, []string{"node"}),
		sessionTable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "govbmc", Name: "session_table_used",
			Help: "Session slots taken, per node.",
		}, []string{"node"}),
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
		m.sessions, m.loginsFailed, m.commands, m.operations, m.sol, m.sessionTable, m.connUp, m.reconnects,
	)
	return m
}

// Registry is the registry the collectors live in (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' text or protobuf format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// SessionOpened counts a session a client logged into.
func (m *Metrics) SessionOpened(node string) { m.sessions.WithLabelValues(node).Inc() }

// LoginFailed counts a refused login.
func (m *Metrics) LoginFailed(node string) { m.loginsFailed.WithLabelValues(node).Inc() }

// Command counts a command answered with its completion code.
func (m *Metrics) Command(node, command string, code uint8) {
	m.commands.WithLabelValues(node, command, fmt.Sprintf("0x%02x", code)).Inc()
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
func (m *Metrics) SOLSessions(node string, n int) { m.sol.WithLabelValues(node).Set(float64(n)) }

// SessionTable sets how many of a node's session slots are taken.
func (m *Metrics) SessionTable(node string, used int) {
	m.sessionTable.WithLabelValues(node).Set(float64(used))
}

// Connection sets whether a hypervisor connection is up.
func (m *Metrics) Connection(uri string, up bool) {
	m.connUp.WithLabelValues(uri).Set(float64(btoi(up)))
}

// Reconnected counts a reconnection to a hypervisor.
func (m *Metrics) Reconnected(uri string) { m.reconnects.WithLabelValues(uri).Inc() }

// Forget drops a deleted node's series, so the label set stays bounded by
// the nodes that exist.
func (m *Metrics) Forget(node string) {
	for _, v := range []*prometheus.MetricVec{m.sessions.MetricVec, m.loginsFailed.MetricVec, m.sol.MetricVec, m.sessionTable.MetricVec} {
		v.DeleteLabelValues(node)
	}
	m.commands.DeletePartialMatch(prometheus.Labels{"node": node})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

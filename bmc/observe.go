package bmc

import "time"

// Observer receives what the front ends and backends do, for metrics. Every
// label it is given is bounded (node names, command names, operation names,
// hypervisor URIs without credentials), never a client address. Methods must
// be cheap and safe for concurrent use.
type Observer interface {
	// SessionOpened counts a session a client logged into.
	SessionOpened(node string)
	// LoginFailed counts a refused login (bad user, password or key).
	LoginFailed(node string)
	// Command counts a command answered, by its name and completion code.
	Command(node, command string, code uint8)
	// Operation records how long a machine operation took on a backend.
	Operation(op, backend string, d time.Duration, err error)
	// SOLSessions sets how many Serial-over-LAN sessions a node has active.
	SOLSessions(node string, n int)
	// SessionTable sets how many of a node's session slots are taken.
	SessionTable(node string, used int)
	// Connection sets whether the connection to a hypervisor is up.
	Connection(uri string, up bool)
	// Reconnected counts a connection to a hypervisor made again after it was lost.
	Reconnected(uri string)
}

// NopObserver is an Observer that records nothing: the default when
// metrics are off.
type NopObserver struct{}

// SessionOpened does nothing.
func (NopObserver) SessionOpened(string) {}

// LoginFailed does nothing.
func (NopObserver) LoginFailed(string) {}

// Command does nothing.
func (NopObserver) Command(string, string, uint8) {}

// Operation does nothing.
func (NopObserver) Operation(string, string, time.Duration, error) {}

// SOLSessions does nothing.
func (NopObserver) SOLSessions(string, int) {}

// SessionTable does nothing.
func (NopObserver) SessionTable(string, int) {}

// Connection does nothing.
func (NopObserver) Connection(string, bool) {}

// Reconnected does nothing.
func (NopObserver) Reconnected(string) {}

// ObservedDriver is a backend driver that reports what it does (the state
// of its hypervisor connections) to an Observer.
type ObservedDriver interface {
	// SetObserver makes the driver report to o.
	SetObserver(o Observer)
}

// SetObserver hands o to every driver that is an ObservedDriver, as it
// starts. It is meant for setup, before the first node.
func (bs *Backends) SetObserver(o Observer) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.obs = o
}

// observeDriver gives a starting driver the observer; bs.mu must be held.
func (bs *Backends) observeDriver(d Driver) {
	if od, ok := d.(ObservedDriver); ok && bs.obs != nil {
		od.SetObserver(bs.obs)
	}
}

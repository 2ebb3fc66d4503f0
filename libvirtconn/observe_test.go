package libvirtconn

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
)

// connEvents records what a pool reports.
type connEvents struct {
	bmc.NopObserver
	mu     sync.Mutex
	events []string
}

func (o *connEvents) Connection(uri string, up bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, map[bool]string{true: "up ", false: "down "}[up]+uri)
}

func (o *connEvents) Reconnected(uri string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, "reconnected "+uri)
}

func (o *connEvents) seen() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.events)
}

// TestPoolReportsConnections: a hypervisor nobody answers is reported down
// under its URI, and the report ends with the connection.
func TestPoolReportsConnections(t *testing.T) {
	obs := &connEvents{}
	p := NewPool(nil, 0)
	defer p.Close()
	p.SetObserver(obs)
	c, err := p.Get("qemu+tcp://alice@127.0.0.1:1/system", Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	const want = "down qemu+tcp://alice@127.0.0.1:1/system"
	testtool.Eventually(t, 10*time.Second, "the connection reported down", func() bool { return slices.Contains(obs.seen(), want) })
	c.Release()
	<-c.loopDone
	for _, e := range obs.seen() {
		if e != want {
			t.Errorf("reported %q: only %q expected of a hypervisor that never answered", e, want)
		}
	}
	if got := metricURI("qemu+tcp://alice:s3cret@hv/system"); got != "qemu+tcp://alice:xxxxx@hv/system" {
		t.Errorf("metricURI kept a password: %s", got)
	}
}

package libvirtconn

import (
	"net/url"

	"github.com/govbmc/govbmc/bmc"
)

// SetObserver makes the pool report, for every connection it hands out,
// whether it is up and each reconnection, by URI without credentials. It
// is meant for setup, before the first Get.
func (p *Pool) SetObserver(o bmc.Observer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.obs = o
}

// observe follows a new connection's state changes until it closes,
// reporting them to the pool's observer; p.mu must be held.
func (p *Pool) observe(c *Conn) {
	if p.obs == nil {
		return
	}
	obs, uri := p.obs, metricURI(c.uri.Raw)
	go func() {
		var reported int64 // connections established and reported
		for {
			c.mu.Lock()
			changed, up := c.changed, c.lv != nil
			c.mu.Unlock()
			// Connects is counted just after the change is announced; a
			// reconnection seen late is reported at the next change.
			if n := c.Connects.Load(); n > reported {
				for range n - max(reported, 1) {
					obs.Reconnected(uri)
				}
				reported = n
			}
			obs.Connection(uri, up)
			select {
			case <-changed:
			case <-c.stop:
				obs.Connection(uri, false)
				return
			}
		}
	}()
}

// metricURI is a URI as metrics label it: without a password.
func metricURI(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}

var _ bmc.ObservedDriver = (*driver)(nil)

// SetObserver makes the driver's pool report its connections to o.
func (d *driver) SetObserver(o bmc.Observer) { d.pool.SetObserver(o) }

package redfish

import (
	"context"
	"sync"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// DefaultMachinePatience is how long a GET waits for a machine's answer
// before it serves the last one, while the query goes on in the background.
// A libvirt read of a domain nobody holds answers in a few milliseconds,
// even over SSH; one that libvirtd holds (a start takes seconds) does not,
// and a GET then answers within this, as a BMC's web server answers from
// what it last read (issue 14's target: 20 ms during a slow power on).
const DefaultMachinePatience = 15 * time.Millisecond

// readCache keeps the last answer of each machine query a GET makes
// (boot override, firmware, inventory), so that a GET answers at once
// while the machine is busy — libvirtd holds a domain for the seconds a
// start takes — instead of waiting behind it. One query per machine and
// kind runs at a time; a GET waits for it up to the patience, and for as
// long as it takes when there is no earlier answer. Requests that change
// something read the machine directly.
type readCache struct {
	patience time.Duration
	timeout  time.Duration
	now      func() time.Time // time.Now; tests move it

	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
	sweepAt int // the size at which the next new entry first drops unused ones
}

// cacheIdle is how long an answer no request has used is kept. A node
// that restarts gets a new machine, and a deleted one none: their old
// answers (and the machines they hold) go once unused this long, swept
// when the cache has doubled since its last sweep (amortised: the cache
// stays within twice the machines read lately).
const cacheIdle = 10 * time.Minute

// minSweepAt is the smallest cache that is swept.
const minSweepAt = 64

type cacheKey struct {
	m    bmc.Machine
	kind string
}

type cacheEntry struct {
	val      any
	err      error
	have     bool          // val/err hold an answer
	inflight chan struct{} // closed when the running query ends; nil when none runs
	gen      uint64        // bumped by put: a query begun before is older than it
	used     time.Time     // when a request last read or wrote it
}

func newReadCache(patience, timeout time.Duration) *readCache {
	return &readCache{patience: patience, timeout: timeout, now: time.Now, entries: map[cacheKey]*cacheEntry{}, sweepAt: minSweepAt}
}

// entry returns key's entry, made (after a sweep, when due) if there is
// none, and marks it used. c.mu is held.
func (c *readCache) entry(key cacheKey) *cacheEntry {
	now := c.now()
	e, ok := c.entries[key]
	if !ok {
		if len(c.entries) >= c.sweepAt {
			for k, old := range c.entries {
				if old.inflight == nil && now.Sub(old.used) > cacheIdle {
					delete(c.entries, k)
				}
			}
			c.sweepAt = max(2*len(c.entries), minSweepAt)
		}
		e = &cacheEntry{}
		c.entries[key] = e
	}
	e.used = now
	return e
}

// get answers a query of machine m, from the machine when it answers in
// time, else from its last answer.
func (c *readCache) get(ctx context.Context, m bmc.Machine, kind string, fetch func(context.Context) (any, error)) (any, error) {
	c.mu.Lock()
	e := c.entry(cacheKey{m, kind})
	done := e.inflight
	if done == nil {
		done = make(chan struct{})
		e.inflight = done
		gen := e.gen
		go func() {
			qctx, cancel := context.WithTimeout(context.Background(), c.timeout)
			v, err := fetch(qctx)
			cancel()
			c.mu.Lock()
			if e.gen == gen { // else a direct read after it is newer
				e.val, e.err, e.have = v, err, true
			}
			e.inflight = nil
			c.mu.Unlock()
			close(done)
		}()
	}
	have := e.have
	c.mu.Unlock()

	var wait <-chan time.Time
	if have {
		t := time.NewTimer(c.patience)
		defer t.Stop()
		wait = t.C
	}
	select {
	case <-done:
	case <-wait:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return e.val, e.err
}

// put records an answer read directly, for later GETs.
func (c *readCache) put(m bmc.Machine, kind string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(cacheKey{m, kind})
	e.val, e.err, e.have = v, nil, true
	e.gen++
}

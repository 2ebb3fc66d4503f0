package libvirtconn

import (
	"context"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// stateCache keeps the power state of the domains a connection has looked
// at current from libvirt's lifecycle events, so that a power status (what
// Ironic's periodic sync asks of every node) costs no RPC. A domain not in
// the cache, or any time the event stream is not flowing, falls back to
// asking libvirt.
type stateCache struct {
	mu      sync.Mutex
	live    bool // an event stream is flowing on the current connection
	domains map[string]cachedDomain
	// versions counts events per domain name, so that an answer fetched by
	// RPC is not stored over a newer event.
	versions map[string]uint64
	// settling holds the domains a power operation of this BMC has just
	// left on or off (see powerChanged).
	settling map[string]settle
	// watchers want the power changes (watch.go).
	watchers powerWatchers
}

// settleTime is how long after a power operation of this BMC the cache
// answers with the state that operation left, folding in no event about
// the domain. The operation's own lifecycle events come after its reply
// (libvirtd queues them and sends them from its event loop, and go-libvirt
// passes them on from a goroutine of its own): folding one in before the
// next (a power cycle's STOPPED before its STARTED) had the cache tell the
// state in between, a power status right after a power cycle saying off.
// An event that came meanwhile may also be someone else's change (virsh),
// so then the cache forgets the domain once settleTime is over, and the
// next power status asks libvirtd.
const settleTime = 2 * time.Second

// settle is a domain's state, left by a power operation of this BMC, that
// the cache answers until the time until.
type settle struct {
	until time.Time
	// events: an event about the domain came in meanwhile.
	events bool
}

type cachedDomain struct {
	dom libvirt.Domain
	on  bool
}

// get returns a domain's cached state.
func (s *stateCache) get(name string) (cachedDomain, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live {
		return cachedDomain{}, false
	}
	s.settlingLocked(name)
	d, ok := s.domains[name]
	return d, ok
}

// settlingLocked reports whether the domain's cached state is the one a
// power operation of this BMC left less than settleTime ago. Once that
// time is over, it forgets the domain if an event came meanwhile. s.mu must
// be held.
func (s *stateCache) settlingLocked(name string) bool {
	st, ok := s.settling[name]
	if !ok {
		return false
	}
	if time.Now().Before(st.until) {
		return true
	}
	delete(s.settling, name)
	if st.events {
		delete(s.domains, name)
	}
	return false
}

// powerChanging records that a power operation of this BMC on the domain
// begins: the cache answers and folds in events as usual while it runs, so
// that a power status during a start answers from it (see startLocked).
func (s *stateCache) powerChanging(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.settling[name]; ok && st.events {
		delete(s.domains, name) // the events folded in none: ask
	}
	delete(s.settling, name)
}

// powerChanged records that a power operation of this BMC has left the
// domain on (or off), for settleTime; after a failed operation (err) the
// state is not known, and the cache forgets the domain.
func (s *stateCache) powerChanged(name string, on bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || !s.live {
		s.forgetLocked(name)
		return
	}
	if s.settling == nil {
		s.settling = map[string]settle{}
	}
	s.domains[name] = cachedDomain{dom: libvirt.Domain{Name: name}, on: on}
	s.settling[name] = settle{until: time.Now().Add(settleTime)}
}

// forget drops what the cache holds about the domain: the next power status
// asks libvirtd.
func (s *stateCache) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(name)
}

func (s *stateCache) forgetLocked(name string) {
	delete(s.domains, name)
	delete(s.settling, name)
}

// version is the event count of a domain, taken before an RPC.
func (s *stateCache) version(name string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.versions[name]
}

// put stores what an RPC found, unless an event came in meanwhile.
func (s *stateCache) put(name string, d cachedDomain, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live || s.versions[name] != version || s.settlingLocked(name) {
		return
	}
	s.domains[name] = d
}

// apply folds one lifecycle event into the cache.
func (s *stateCache) apply(ev libvirt.DomainEventLifecycleMsg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := ev.Dom.Name
	s.versions[name]++
	if s.settlingLocked(name) {
		st := s.settling[name]
		st.events = true
		s.settling[name] = st
		return
	}
	switch libvirt.DomainEventType(ev.Event) {
	case libvirt.DomainEventStarted, libvirt.DomainEventSuspended, libvirt.DomainEventResumed,
		libvirt.DomainEventShutdown, libvirt.DomainEventPmsuspended:
		if d, ok := s.domains[name]; ok {
			d.on = true
			if ev.Dom.ID > 0 {
				d.dom.ID = ev.Dom.ID
			}
			s.domains[name] = d
		}
	case libvirt.DomainEventStopped, libvirt.DomainEventCrashed:
		if d, ok := s.domains[name]; ok {
			d.on, d.dom.ID = false, -1
			s.domains[name] = d
		}
	default: // defined, undefined: the next query looks the domain up again
		delete(s.domains, name)
	}
}

// reset empties the cache and marks whether events flow.
func (s *stateCache) reset(live bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = live
	s.domains = map[string]cachedDomain{}
	s.settling = nil
	if s.versions == nil {
		s.versions = map[string]uint64{}
	}
}

// follow subscribes to lifecycle events on a fresh connection and applies
// them until the stream ends (the connection died or ctx was cancelled).
func (s *stateCache) follow(ctx context.Context, lv *libvirt.Libvirt) error {
	ch, err := lv.LifecycleEvents(ctx)
	if err != nil {
		s.reset(false)
		return err
	}
	s.reset(true)
	go func() {
		for ev := range ch {
			s.apply(ev)
			s.watchers.notify(ev)
		}
		s.reset(false)
	}()
	return nil
}

// powerState answers whether the domain called name is on. With cached set
// it answers from the lifecycle events when they have told; otherwise (or
// when they have not) ask looks the domain up and reads its state with one
// libvirt round trip, and that answer is kept for the next question unless
// an event about the domain came in meanwhile. Only an answer about a
// domain of that name is kept: events name their domain.
func (c *Conn) powerState(name string, cached bool, ask func() (libvirt.Domain, bool, error)) (bool, error) {
	if cached {
		if cd, ok := c.states.get(name); ok {
			return cd.on, nil
		}
	}
	version := c.states.version(name)
	dom, on, err := ask()
	if err == nil && dom.Name == name {
		c.states.put(name, cachedDomain{dom: dom, on: on}, version)
	}
	return on, err
}

// changingPower runs a power operation of this BMC that leaves the domain
// called name on (or off), telling the state cache when it begins and ends
// (see stateCache.powerChanging, powerChanged).
func (c *Conn) changingPower(name string, on bool, op func() error) error {
	c.states.powerChanging(name)
	err := op()
	c.states.powerChanged(name, on, err)
	return err
}

// forgetPower has the state cache forget the domain called name: a change
// asked of its guest (an ACPI shutdown) comes later, on the guest's time.
func (c *Conn) forgetPower(name string) {
	c.states.forget(name)
}

package libvirtconn

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// lifecycle is libvirt's lifecycle event of type typ for the domain name.
func lifecycle(name string, typ libvirt.DomainEventType) libvirt.DomainEventLifecycleMsg {
	return libvirt.DomainEventLifecycleMsg{Dom: libvirt.Domain{Name: name, ID: -1}, Event: int32(typ)}
}

// TestStateCacheAsksRightAfterAPowerOperation runs on synctest's clock: a
// power cycle's events come after it returned, so for settleTime after it
// the cache answers nothing and keeps no answer (a power status asks
// libvirtd); during an operation, and once settleTime is over, it answers
// and folds in events again.
func TestStateCacheAsksRightAfterAPowerOperation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s stateCache
		s.reset(true)
		state := func() (on, cached bool) {
			d, ok := s.get("vm")
			return d.on, ok
		}
		s.put("vm", cachedDomain{on: true}, s.version("vm"))

		s.powerChanging("vm") // a power cycle begins
		s.apply(lifecycle("vm", libvirt.DomainEventStopped))
		s.put("vm", cachedDomain{on: false}, s.version("vm")) // the start's look first
		if on, cached := state(); !cached || on {
			t.Fatalf("while the power cycle starts the domain: cached %v, on %v; want off from the cache", cached, on)
		}
		s.powerChanged("vm") // the cycle has returned; its STARTED is on its way
		if on, cached := state(); cached {
			t.Fatalf("right after a power cycle the cache answers on=%v: its own events are not all in", on)
		}
		s.put("vm", cachedDomain{on: true}, s.version("vm")) // a power status asked libvirtd
		s.apply(lifecycle("vm", libvirt.DomainEventStarted))
		if on, cached := state(); cached {
			t.Fatalf("an answer was kept (on=%v) while the power cycle's events may still come", on)
		}

		time.Sleep(settleTime)
		s.put("vm", cachedDomain{on: true}, s.version("vm"))
		if on, cached := state(); !cached || !on {
			t.Fatalf("settleTime after the power cycle: cached %v, on %v; want on from the cache", cached, on)
		}
		s.apply(lifecycle("vm", libvirt.DomainEventStopped))
		if on, cached := state(); !cached || on {
			t.Fatalf("a STOPPED event after settleTime: cached %v, on %v; want off", cached, on)
		}

		s.powerChanged("vm")
		s.powerChanging("vm") // the next operation begins at once
		s.put("vm", cachedDomain{on: false}, s.version("vm"))
		if _, cached := state(); !cached {
			t.Fatal("during a power operation the cache keeps no answer: a status while a start is under way would wait for libvirtd")
		}
	})
}

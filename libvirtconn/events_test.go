package libvirtconn

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// lifecycle is libvirt's lifecycle event of type typ for the domain name.
func lifecycle(name string, typ libvirt.DomainEventType) libvirt.DomainEventLifecycleMsg {
	return libvirt.DomainEventLifecycleMsg{Dom: libvirt.Domain{Name: name, ID: -1}, Event: int32(typ)}
}

// TestStateCacheKeepsWhatAPowerOperationLeft runs on synctest's clock: a
// power cycle's events come after it returned, and a power status between
// its STOPPED and its STARTED still says on; once settleTime is over the
// domain is asked again and events count again; a failed operation leaves
// nothing cached.
func TestStateCacheKeepsWhatAPowerOperationLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s stateCache
		s.reset(true)
		state := func() (on, cached bool) {
			d, ok := s.get("vm")
			return d.on, ok
		}
		s.put("vm", cachedDomain{on: true}, s.version("vm"))

		s.powerChanged("vm", true, nil) // a power cycle has returned
		s.apply(lifecycle("vm", libvirt.DomainEventStopped))
		if on, cached := state(); !cached || !on {
			t.Fatalf("between a power cycle's STOPPED and STARTED: cached %v, on %v; want on", cached, on)
		}
		s.apply(lifecycle("vm", libvirt.DomainEventStarted))
		s.put("vm", cachedDomain{on: false}, s.version("vm")) // an RPC answer from before the cycle
		if on, _ := state(); !on {
			t.Fatal("an RPC answer replaced the state the power cycle left")
		}

		time.Sleep(settleTime)
		if _, cached := state(); cached {
			t.Fatal("settleTime after the power cycle, the cache still answers: the domain is never asked again")
		}
		s.put("vm", cachedDomain{on: true}, s.version("vm"))
		s.apply(lifecycle("vm", libvirt.DomainEventStopped))
		if on, cached := state(); !cached || on {
			t.Fatalf("a STOPPED event after settleTime: cached %v, on %v; want off", cached, on)
		}

		s.powerChanged("vm", true, errors.New("libvirt call exceeded 30s"))
		if _, cached := state(); cached {
			t.Fatal("after a failed power operation the cache still answers")
		}
	})
}

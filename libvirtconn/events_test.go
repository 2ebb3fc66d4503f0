package libvirtconn

import (
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/digitalocean/go-libvirt"

	"github.com/govbmc/govbmc/internal/testtool"
)

// lifecycle is libvirt's lifecycle event of type typ for the domain name.
func lifecycle(name string, typ libvirt.DomainEventType) libvirt.DomainEventLifecycleMsg {
	return libvirt.DomainEventLifecycleMsg{Dom: libvirt.Domain{Name: name, ID: -1}, Event: int32(typ)}
}

// TestStateCacheAnswersWhatAPowerOperationLeft runs on synctest's clock:
// a power cycle's events come after it returned, and a power status between
// its STOPPED and its STARTED still says on. Once settleTime is over, a
// domain that had events meanwhile is asked again, and events count again.
// A failed operation, or a soft off, leaves nothing cached.
func TestStateCacheAnswersWhatAPowerOperationLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s stateCache
		s.reset(true)
		state := func() (on, cached bool) {
			d, ok := s.get("vm")
			return d.on, ok
		}
		s.put("vm", cachedDomain{on: true}, s.version("vm"))

		s.powerChanging("vm")                                 // a power cycle begins
		s.put("vm", cachedDomain{on: false}, s.version("vm")) // the start's look first
		if on, cached := state(); !cached || on {
			t.Fatalf("while the power cycle starts the domain: cached %v, on %v; want off from the cache", cached, on)
		}
		s.powerChanged("vm", true, nil) // it has returned; its events are on their way
		s.apply(lifecycle("vm", libvirt.DomainEventStopped))
		if on, cached := state(); !cached || !on {
			t.Fatalf("between a power cycle's STOPPED and STARTED: cached %v, on %v; want on", cached, on)
		}
		s.put("vm", cachedDomain{on: false}, s.version("vm")) // an answer from before the cycle's end
		s.apply(lifecycle("vm", libvirt.DomainEventStarted))
		if on, _ := state(); !on {
			t.Fatal("the state the power cycle left was replaced")
		}

		time.Sleep(settleTime)
		if _, cached := state(); cached {
			t.Fatal("settleTime after the power cycle, whose events came meanwhile, the cache still answers: a change by someone else then would never be seen")
		}
		s.put("vm", cachedDomain{on: true}, s.version("vm"))
		s.apply(lifecycle("vm", libvirt.DomainEventStopped))
		if on, cached := state(); !cached || on {
			t.Fatalf("a STOPPED event after settleTime: cached %v, on %v; want off", cached, on)
		}

		s.powerChanged("vm", false, nil) // a power off of a domain already off: no event
		time.Sleep(settleTime)
		if on, cached := state(); !cached || on {
			t.Fatalf("settleTime after a power off with no event: cached %v, on %v; want off from the cache", cached, on)
		}

		s.powerChanged("vm", true, nil)
		s.apply(lifecycle("vm", libvirt.DomainEventStopped)) // virsh destroy, meanwhile
		s.powerChanging("vm")                                // the next operation begins
		if on, cached := state(); cached {
			t.Fatalf("an operation begun while an event was left unfolded: the cache answers on=%v", on)
		}
		s.powerChanged("vm", true, nil)
		s.reset(true) // a new connection
		s.put("vm", cachedDomain{on: false}, s.version("vm"))
		if on, cached := state(); !cached || on {
			t.Fatalf("on a new connection, an answer asked of libvirtd: cached %v, on %v; want off", cached, on)
		}

		s.powerChanged("vm", true, errors.New("libvirt call exceeded 30s"))
		if _, cached := state(); cached {
			t.Fatal("after a failed power operation the cache still answers")
		}
		s.powerChanged("vm", true, nil)
		s.forget("vm") // a soft off
		if _, cached := state(); cached {
			t.Fatal("after a soft off the cache still answers the power on before it")
		}
	})
}

// TestCloseLeavesTheEventsToTheDisconnect: closing a connection sends
// libvirtd no deregistration of its lifecycle events (one racing the close
// crashed libvirtd 9.0.0 once); the disconnect ends them.
func TestCloseLeavesTheEventsToTheDisconnect(t *testing.T) {
	const (
		procRegister   = 316 // REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY
		procDeregister = 317 // REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY
	)
	sock := filepath.Join(t.TempDir(), "libvirt-sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var (
		mu    sync.Mutex
		calls []uint32
	)
	served := make(chan struct{})
	go func() {
		defer close(served)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		fakeLibvirtd(nc, consoleScript{called: func(proc uint32) {
			mu.Lock()
			calls = append(calls, proc)
			mu.Unlock()
		}})
	}()
	called := func(proc uint32) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(calls, proc)
	}
	pool := NewPool(slog.New(slog.DiscardHandler), 0)
	if _, err := pool.Get("test+unix:///default?socket="+sock, Credentials{}); err != nil {
		t.Fatal(err)
	}
	testtool.Eventually(t, 10*time.Second, "the lifecycle events registered", func() bool { return called(procRegister) })
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection to the fake libvirtd still open 10 s after the close")
	}
	if called(procDeregister) {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the close deregistered the lifecycle events by RPC (calls %v)", calls)
	}
}

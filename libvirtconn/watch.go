package libvirtconn

import (
	"sync"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

// powerWatchers are the callbacks that want a connection's domains' power
// changes (bmc.PowerWatcher), by domain name or UUID.
type powerWatchers struct {
	mu   sync.Mutex
	next int
	fns  map[string]map[int]func(bmc.PowerState)
}

// notify passes a lifecycle event that changes power to the domain's
// watchers.
func (w *powerWatchers) notify(ev libvirt.DomainEventLifecycleMsg) {
	var s bmc.PowerState
	switch libvirt.DomainEventType(ev.Event) {
	case libvirt.DomainEventStarted:
		s = bmc.PowerOn
	case libvirt.DomainEventStopped, libvirt.DomainEventCrashed:
		s = bmc.PowerOff
	default:
		return
	}
	w.mu.Lock()
	var fns []func(bmc.PowerState)
	for _, key := range []string{ev.Dom.Name, bmc.UUID(ev.Dom.UUID).String()} {
		for _, fn := range w.fns[key] {
			fns = append(fns, fn)
		}
	}
	w.mu.Unlock()
	for _, fn := range fns {
		fn(s)
	}
}

var _ bmc.PowerWatcher = (*Domain)(nil)

// WatchPower calls fn with the domain's power changes as libvirt's
// lifecycle events report them (bmc.PowerWatcher); none are reported while
// the connection is down.
func (d *Domain) WatchPower(fn func(bmc.PowerState)) (stop func()) {
	key := d.ref
	if u, err := bmc.ParseUUID(d.ref); err == nil {
		key = u.String()
	}
	w := &d.conn.states.watchers
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = map[string]map[int]func(bmc.PowerState){}
	}
	if w.fns[key] == nil {
		w.fns[key] = map[int]func(bmc.PowerState){}
	}
	id := w.next
	w.next++
	w.fns[key][id] = fn
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.fns[key], id)
		if len(w.fns[key]) == 0 {
			delete(w.fns, key)
		}
	}
}

package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

// Domain is a bmc.Machine over a libvirt domain, found by name or UUID on a
// shared connection. Its power and state are in power.go, its boot
// override bookkeeping in nextboot.go, its serial console in console.go.
type Domain struct {
	conn *Conn
	ref  string // domain name, or UUID text
	log  *slog.Logger

	closeOnce sync.Once
	console   *console
	// started is closed once the first look at the domain, made when the
	// Domain is created, is over (stopStartUp cuts it short); operations
	// wait for it, so that the BMC acts on a domain it has looked at.
	started     chan struct{}
	stopStartUp context.CancelFunc

	// mu serialises this machine's state changes and its boot bookkeeping.
	mu sync.Mutex
	// looked is set once a pending next-boot override an earlier vbmcd
	// marked in the definition has been looked for, recovered once a paused
	// start it was killed inside has been (see firstUseLocked).
	looked, recovered bool
	boot              nextBoot
}

var _ bmc.Machine = (*Domain)(nil)

// NewDomain returns the machine for domain ref (a name or a UUID) on conn.
func NewDomain(conn *Conn, ref string, log *slog.Logger) *Domain {
	if log == nil {
		log = slog.Default()
	}
	d := &Domain{conn: conn, ref: ref, log: log.With("domain", ref), started: make(chan struct{})}
	d.boot.init(d.log)
	d.console = newConsole(conn, d.lookup, func(ctx context.Context) bool {
		s, err := d.PowerState(ctx)
		return err == nil && s == bmc.PowerOn
	}, d.log)
	d.startUp()
	return d
}

// startUpTimeout bounds the first look at a domain when its BMC starts.
const startUpTimeout = 30 * time.Second

// startUp looks at the domain at once, in the background, for what an
// earlier vbmcd left in it (see firstUseLocked): a domain a vbmcd killed
// mid power on left paused runs again when its BMC starts, not when a
// client first asks. When the hypervisor cannot be reached yet, the first
// operation that reaches it looks instead.
func (d *Domain) startUp() {
	ctx, cancel := context.WithTimeout(context.Background(), startUpTimeout)
	d.stopStartUp = cancel
	go func() {
		defer close(d.started)
		defer cancel()
		err := d.call(ctx, "start up", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.firstUseLocked(lv, dom)
		})
		if err != nil {
			d.log.Debug("first look at the domain failed; its first use looks again", "err", err)
		}
	}()
}

// firstUseLocked looks at what an earlier vbmcd left in the domain: a
// next-boot override marked in its definition (adopted once: a failure to
// read the definition fails the operation, which looks again next time),
// and a paused start it was killed inside (finished once it succeeds; a
// failure is logged and tried again at the next use, never failing the
// operation that looks). d.mu must be held.
func (d *Domain) firstUseLocked(lv *libvirt.Libvirt, dom libvirt.Domain) error {
	if d.looked && d.recovered {
		return nil
	}
	s, err := scanInactive(lv, dom)
	if err != nil {
		return err
	}
	if !d.looked {
		d.boot.adopt(s, dom.ID)
		d.looked = true
	}
	if err := d.recoverStartLocked(lv, dom, s.startMarked); err != nil {
		d.log.Warn("could not finish the paused start of an interrupted power on; trying again at the next use", "err", err)
		return nil
	}
	d.recovered = true
	return nil
}

// do runs op against the domain on the shared connection, naming the
// domain and the operation in any error, once the first look at the domain
// is over.
func (d *Domain) do(ctx context.Context, op string, fn func(lv *libvirt.Libvirt, dom libvirt.Domain) error) error {
	select {
	case <-d.started:
	case <-ctx.Done():
		return fmt.Errorf("domain %q on %s: %s: %w", d.ref, d.conn.URI().Raw, op, ctx.Err())
	}
	return d.call(ctx, op, fn)
}

// call is do without waiting for the first look.
func (d *Domain) call(ctx context.Context, op string, fn func(lv *libvirt.Libvirt, dom libvirt.Domain) error) error {
	err := d.conn.Do(ctx, func(lv *libvirt.Libvirt) error {
		dom, err := d.lookup(lv)
		if err != nil {
			return err
		}
		return fn(lv, dom)
	})
	if err != nil && !errors.Is(err, bmc.ErrPoweredOff) && !errors.Is(err, bmc.ErrInvalidArgument) {
		return fmt.Errorf("domain %q on %s: %s: %w", d.ref, d.conn.URI().Raw, op, err)
	}
	return err
}

// exclusive is do holding the machine lock: state changes and boot
// bookkeeping of one machine never interleave.
func (d *Domain) exclusive(ctx context.Context, op string, fn func(lv *libvirt.Libvirt, dom libvirt.Domain) error) error {
	return d.do(ctx, op, func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		return fn(lv, dom)
	})
}

func (d *Domain) lookup(lv *libvirt.Libvirt) (libvirt.Domain, error) {
	if u, err := bmc.ParseUUID(d.ref); err == nil {
		return lv.DomainLookupByUUID(libvirt.UUID(u))
	}
	return lv.DomainLookupByName(d.ref)
}

// Exists reports whether the domain is defined; `vbmc add` checks it. A
// missing domain gets VirtualBMC's message.
func (d *Domain) Exists(ctx context.Context) error {
	err := d.do(ctx, "look up", func(*libvirt.Libvirt, libvirt.Domain) error { return nil })
	if libvirt.IsNotFound(err) {
		return fmt.Errorf("No domain with matching name %s was found (libvirt URI %s)", d.ref, d.conn.URI().Raw)
	}
	return err
}

// Health reports an unreachable hypervisor, for the BMC's status.
func (d *Domain) Health() error {
	if err := d.conn.Health(); err != nil {
		return fmt.Errorf("libvirt %s: %w", d.conn.URI().Raw, err)
	}
	return nil
}

// UUID returns the domain's UUID.
func (d *Domain) UUID(ctx context.Context) (bmc.UUID, error) {
	var u bmc.UUID
	err := d.do(ctx, "get uuid", func(_ *libvirt.Libvirt, dom libvirt.Domain) error {
		u = bmc.UUID(dom.UUID)
		return nil
	})
	return u, err
}

// OpenConsole attaches to the domain's serial console (its first
// <console>): bytes typed go to the guest, its output comes back, and what
// it printed since the BMC powered it on is there first.
func (d *Domain) OpenConsole(context.Context) (io.ReadWriteCloser, error) {
	return d.console.attach()
}

// Close stops the console stream and gives the domain's use of the shared
// connection back to the pool.
func (d *Domain) Close() error {
	d.closeOnce.Do(func() {
		d.stopStartUp()
		<-d.started
		d.console.close()
		d.conn.Release()
	})
	return nil
}

package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

// Domain is a bmc.Machine over a libvirt domain, found by name or UUID on a
// shared connection.
type Domain struct {
	conn *Conn
	ref  string // domain name, or UUID text
	log  *slog.Logger

	closeOnce sync.Once
	console   *console
	// loaded is set once a pending override marked in the definition (by a
	// previous vbmcd) has been looked for.
	loaded bool

	// mu serialises this machine's state changes and its boot bookkeeping.
	mu sync.Mutex
	// oneShot is a next-boot-only override written into the inactive XML
	// and not yet consumed by a boot; pendingOverride mirrors oneShot != nil
	// for readers that must not take mu.
	oneShot         *oneShot
	pendingOverride atomic.Bool
	// dirtyID is the domain ID of the run during which the boot
	// configuration was last changed (-1: not while running). A hard reset
	// during that run restarts the domain so the new configuration applies,
	// as it would on a physical server.
	dirtyID int32
}

type oneShot struct {
	saved   string   // the inactive XML before the override ("" after a vbmcd restart)
	restore []string // its <os><boot> devices, also recorded in the definition's metadata
	setID   int32    // the domain ID when it was set (-1 when off)
}

var _ bmc.Machine = (*Domain)(nil)

// NewDomain returns the machine for domain ref (a name or a UUID) on conn.
func NewDomain(conn *Conn, ref string, log *slog.Logger) *Domain {
	if log == nil {
		log = slog.Default()
	}
	d := &Domain{conn: conn, ref: ref, log: log.With("domain", ref), dirtyID: -1}
	d.console = newConsole(d)
	return d
}

// do runs op against the domain on the shared connection, naming the
// domain and the operation in any error.
func (d *Domain) do(ctx context.Context, op string, fn func(lv *libvirt.Libvirt, dom libvirt.Domain) error) error {
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

func isOn(state int32) bool {
	switch libvirt.DomainState(state) {
	case libvirt.DomainRunning, libvirt.DomainBlocked, libvirt.DomainPaused, libvirt.DomainShutdown, libvirt.DomainPmsuspended:
		return true
	}
	return false
}

func domainOn(lv *libvirt.Libvirt, dom libvirt.Domain) (bool, error) {
	state, _, err := lv.DomainGetState(dom, 0)
	return isOn(state), err
}

// PowerState reports whether the domain runs: from the connection's
// lifecycle events when it has seen the domain, else by asking libvirt. It
// also notices a domain started behind the BMC's back and consumes a
// pending next-boot override.
func (d *Domain) PowerState(ctx context.Context) (bmc.PowerState, error) {
	if !d.pendingOverride.Load() {
		if cd, ok := d.conn.states.get(d.ref); ok {
			return powerOf(cd.on), nil
		}
	}
	version := d.conn.states.version(d.ref)
	on := false
	err := d.do(ctx, "power status", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		var err error
		if on, err = domainOn(lv, dom); err != nil {
			return err
		}
		if dom.Name == d.ref {
			d.conn.states.put(d.ref, cachedDomain{dom: dom, on: on}, version)
		}
		// Never wait behind a slow operation of this machine (a power on
		// holding mu): the status answer must come at once; the override
		// is consumed by that operation or by a later status.
		if !d.mu.TryLock() {
			return nil
		}
		defer d.mu.Unlock()
		if err := d.loadLocked(lv, dom); err != nil {
			return err
		}
		if on && d.oneShot != nil && dom.ID != d.oneShot.setID {
			return d.consumeLocked(lv, dom)
		}
		return nil
	})
	return powerOf(on), err
}

func powerOf(on bool) bmc.PowerState {
	if on {
		return bmc.PowerOn
	}
	return bmc.PowerOff
}

// PowerOn starts the domain (nothing when it runs).
func (d *Domain) PowerOn(ctx context.Context) error {
	return d.exclusive(ctx, "power on", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		return d.startLocked(ctx, lv, dom)
	})
}

// startLocked starts a domain that is off, then consumes a pending
// next-boot override: the domain has booted with it.
func (d *Domain) startLocked(ctx context.Context, lv *libvirt.Libvirt, dom libvirt.Domain) error {
	version := d.conn.states.version(d.ref)
	on, err := domainOn(lv, dom)
	if err != nil || on {
		return err
	}
	// Known to be off until the start's own event says otherwise: a power
	// status meanwhile answers from the cache. Asking libvirtd would wait
	// for the whole start (it holds the domain's lock while its hooks run
	// and QEMU starts: seconds).
	if dom.Name == d.ref {
		d.conn.states.put(d.ref, cachedDomain{dom: dom, on: false}, version)
	}
	if err := d.loadLocked(lv, dom); err != nil {
		return err
	}
	// Capture the boot from its first line, for a SOL client to come.
	if err := d.console.boot(ctx, lv, dom); err != nil {
		if on, _ := domainOn(lv, dom); on && !errors.Is(err, errResume) {
			return nil // started meanwhile by someone else
		}
		return err
	}
	d.dirtyID = -1
	if d.oneShot != nil {
		return d.consumeLocked(lv, dom)
	}
	return nil
}

// PowerOff destroys (hard powers off) the domain (nothing when it is off).
func (d *Domain) PowerOff(ctx context.Context) error {
	return d.exclusive(ctx, "power off", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		return stopDomain(lv, dom)
	})
}

func stopDomain(lv *libvirt.Libvirt, dom libvirt.Domain) error {
	on, err := domainOn(lv, dom)
	if err != nil || !on {
		return err
	}
	if err := lv.DomainDestroy(dom); err != nil {
		if on, _ := domainOn(lv, dom); !on {
			return nil
		}
		return err
	}
	return nil
}

// SoftOff asks the guest to shut down (ACPI).
func (d *Domain) SoftOff(ctx context.Context) error {
	return d.do(ctx, "soft off", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		on, err := domainOn(lv, dom)
		if err != nil || !on {
			return err
		}
		return lv.DomainShutdown(dom)
	})
}

// Reset hard-resets a running domain. When the boot configuration changed
// during this run, the domain is restarted instead, so the new boot device
// applies (a libvirt reset keeps the running configuration).
func (d *Domain) Reset(ctx context.Context) error {
	return d.exclusive(ctx, "hard reset", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		on, err := domainOn(lv, dom)
		if err != nil {
			return err
		}
		if !on {
			return bmc.ErrPoweredOff
		}
		if d.dirtyID == dom.ID || (d.oneShot != nil && d.oneShot.setID == dom.ID) {
			return d.restartLocked(ctx, lv, dom)
		}
		return lv.DomainReset(dom, 0)
	})
}

// PowerCycle turns the domain off (when on) and on again.
func (d *Domain) PowerCycle(ctx context.Context) error {
	return d.exclusive(ctx, "power cycle", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		return d.restartLocked(ctx, lv, dom)
	})
}

func (d *Domain) restartLocked(ctx context.Context, lv *libvirt.Libvirt, dom libvirt.Domain) error {
	if err := stopDomain(lv, dom); err != nil {
		return err
	}
	return d.startLocked(ctx, lv, dom)
}

// DiagnosticInterrupt injects an NMI into a running domain.
func (d *Domain) DiagnosticInterrupt(ctx context.Context) error {
	return d.do(ctx, "diagnostic interrupt", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		on, err := domainOn(lv, dom)
		if err != nil {
			return err
		}
		if !on {
			return bmc.ErrPoweredOff
		}
		return lv.DomainInjectNmi(dom, 0)
	})
}

// libvirt's <os><boot dev=…> names for the devices it can boot.
var bootDevNames = map[bmc.BootDevice]string{
	bmc.BootPXE:          "network",
	bmc.BootDisk:         "hd",
	bmc.BootDiskSafe:     "hd",
	bmc.BootRemoteDisk:   "hd",
	bmc.BootCDROM:        "cdrom",
	bmc.BootRemoteCDROM:  "cdrom",
	bmc.BootFloppy:       "fd",
	bmc.BootRemoteFloppy: "fd",
}

var bootDevOf = map[string]bmc.BootDevice{
	"network": bmc.BootPXE,
	"hd":      bmc.BootDisk,
	"cdrom":   bmc.BootCDROM,
	"fd":      bmc.BootFloppy,
}

// inactiveXML fetches the persistent definition with its secure fields, so
// that writing it back loses no password.
func inactiveXML(lv *libvirt.Libvirt, dom libvirt.Domain) (string, error) {
	return lv.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive|libvirt.DomainXMLSecure)
}

// loadLocked picks up a next-boot override a previous vbmcd marked in the
// domain's definition, once. d.mu must be held.
func (d *Domain) loadLocked(lv *libvirt.Libvirt, dom libvirt.Domain) error {
	if d.loaded {
		return nil
	}
	doc, err := inactiveXML(lv, dom)
	if err != nil {
		return err
	}
	s, err := scanDomainXML(doc)
	if err != nil {
		return err
	}
	if s.Restore != nil && d.oneShot == nil {
		d.oneShot = &oneShot{restore: *s.Restore, setID: dom.ID}
		d.pendingOverride.Store(true)
	}
	d.loaded = true
	return nil
}

// BootOverride reads the boot device from the inactive definition, so the
// answer is right while the domain runs. The EFI bit is the domain's real
// firmware.
func (d *Domain) BootOverride(ctx context.Context) (bmc.BootOverride, error) {
	var o bmc.BootOverride
	err := d.do(ctx, "get boot device", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		doc, err := inactiveXML(lv, dom)
		if err != nil {
			return err
		}
		s, err := scanDomainXML(doc)
		if err != nil {
			return err
		}
		o.EFI = s.EFI
		if len(s.Devices) > 0 {
			o.Device = bootDevOf[s.Devices[0]]
		}
		// A marked override is pending, whoever set it.
		o.Persistent = o.Device != bmc.BootNone && s.Restore == nil
		return nil
	})
	return o, err
}

// SetBootOverride writes the boot device into the inactive definition. A
// next-boot-only override remembers the definition it replaced, restored
// once the domain has booted with the override.
func (d *Domain) SetBootOverride(ctx context.Context, o bmc.BootOverride) error {
	dev, ok := bootDevNames[o.Device]
	if o.Device != bmc.BootNone && !ok {
		return fmt.Errorf("libvirt cannot force boot device %s: %w", o.Device, bmc.ErrInvalidArgument)
	}
	return d.exclusive(ctx, "set boot device", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		if o.Device == bmc.BootNone {
			// "No override": drop a pending next-boot override.
			if d.oneShot != nil {
				return d.consumeLocked(lv, dom)
			}
			return nil
		}
		if err := d.loadLocked(lv, dom); err != nil {
			return err
		}
		cur, err := inactiveXML(lv, dom)
		if err != nil {
			return err
		}
		next, err := withBootDevices(cur, []string{dev})
		if err != nil {
			return err
		}
		pending := d.oneShot
		switch {
		case o.Persistent:
			pending = nil
		case pending == nil:
			s, err := scanDomainXML(cur)
			if err != nil {
				return err
			}
			pending = &oneShot{saved: cur, restore: s.Devices, setID: dom.ID}
		default:
			// Keep what the first override replaced; only the run changes.
			pending = &oneShot{saved: pending.saved, restore: pending.restore, setID: dom.ID}
		}
		if pending != nil {
			next, err = withNextBootMark(next, pending.restore)
		} else {
			next, err = withoutNextBootMark(next)
		}
		if err != nil {
			return err
		}
		if _, err := lv.DomainDefineXML(next); err != nil {
			return err
		}
		d.oneShot = pending
		d.pendingOverride.Store(d.oneShot != nil)
		d.dirtyID = dom.ID
		d.log.Info("boot device written", "dev", dev, "persistent", o.Persistent)
		return nil
	})
}

// consumeLocked restores the definition a next-boot override replaced. When
// nothing but the boot configuration changed since, the saved definition
// is written back whole (per-device boot order included); otherwise only
// its <os><boot> list is, keeping the other changes.
func (d *Domain) consumeLocked(lv *libvirt.Libvirt, dom libvirt.Domain) error {
	saved := d.oneShot.saved
	cur, err := inactiveXML(lv, dom)
	if err != nil {
		return err
	}
	restore := saved
	if same, _ := sameApartFromBoot(cur, saved); !same {
		if restore, err = withBootDevices(cur, d.oneShot.restore); err == nil {
			restore, err = withoutNextBootMark(restore)
		}
		if err != nil {
			return err
		}
		if saved != "" {
			d.log.Warn("domain definition changed since the next-boot override; restoring only its <os><boot> list")
		}
	}
	if _, err := lv.DomainDefineXML(restore); err != nil {
		return err
	}
	d.oneShot = nil
	d.pendingOverride.Store(false)
	d.log.Info("next-boot override consumed; previous boot configuration restored")
	return nil
}

// Health reports an unreachable hypervisor, for the BMC's status.
func (d *Domain) Health() error {
	if err := d.conn.Health(); err != nil {
		return fmt.Errorf("libvirt %s: %w", d.conn.URI().Raw, err)
	}
	return nil
}

// sameApartFromBoot reports whether two definitions differ only in their
// boot configuration (false when b is unknown).
func sameApartFromBoot(a, b string) (bool, error) {
	if b == "" {
		return false, nil
	}
	x, err := withoutBoot(a)
	if err != nil {
		return false, err
	}
	y, err := withoutBoot(b)
	return err == nil && x == y, err
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
		d.console.close()
		d.conn.Release()
	})
	return nil
}

package libvirtconn

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

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

// nextBoot is a machine's boot-override bookkeeping: a next-boot-only
// override written into the inactive definition and not yet consumed by a
// boot, and the run during which the boot configuration last changed.
// Everything but pendingFlag is guarded by the Domain's mu.
type nextBoot struct {
	log *slog.Logger
	// oneShot is the pending next-boot-only override; pendingFlag mirrors
	// oneShot != nil for readers that must not take the lock.
	oneShot     *oneShot
	pendingFlag atomic.Bool
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

// init readies the bookkeeping of a machine whose boot configuration has
// not changed.
func (b *nextBoot) init(log *slog.Logger) {
	b.log, b.dirtyID = log, -1
}

// pending reports, without the lock, whether a next-boot override waits
// for a boot.
func (b *nextBoot) pending() bool { return b.pendingFlag.Load() }

func (b *nextBoot) setPending(o *oneShot) {
	b.oneShot = o
	b.pendingFlag.Store(o != nil)
}

// adopt picks up a next-boot override a previous vbmcd marked in the
// domain's definition (s, its scanned inactive XML).
func (b *nextBoot) adopt(s *scanned, id int32) {
	if s.Restore != nil && b.oneShot == nil {
		b.setPending(&oneShot{restore: *s.Restore, setID: id})
	}
}

// booted records a boot the BMC made: the boot configuration is as the
// domain runs it, and a pending override has been used.
func (b *nextBoot) booted(lv *libvirt.Libvirt, dom libvirt.Domain) error {
	b.dirtyID = -1
	if b.oneShot != nil {
		return b.consume(lv, dom)
	}
	return nil
}

// seenRunning consumes a pending override once the domain runs in another
// run than the one it was set in: started behind the BMC's back, it has
// booted with the override.
func (b *nextBoot) seenRunning(lv *libvirt.Libvirt, dom libvirt.Domain) error {
	if b.oneShot != nil && dom.ID != b.oneShot.setID {
		return b.consume(lv, dom)
	}
	return nil
}

// changedDuring reports whether the boot configuration changed during the
// run with domain ID id, so that a reset must restart the domain for it to
// apply (a libvirt reset keeps the running configuration).
func (b *nextBoot) changedDuring(id int32) bool {
	return b.dirtyID == id || (b.oneShot != nil && b.oneShot.setID == id)
}

// inactiveXML fetches the persistent definition with its secure fields, so
// that writing it back loses no password.
func inactiveXML(lv *libvirt.Libvirt, dom libvirt.Domain) (string, error) {
	return lv.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive|libvirt.DomainXMLSecure)
}

// scanInactive fetches and scans the persistent definition.
func scanInactive(lv *libvirt.Libvirt, dom libvirt.Domain) (*scanned, error) {
	doc, err := inactiveXML(lv, dom)
	if err != nil {
		return nil, err
	}
	return scanDomainXML(doc)
}

// BootOverride reads the boot device from the inactive definition, so the
// answer is right while the domain runs. The EFI bit is the domain's real
// firmware.
func (d *Domain) BootOverride(ctx context.Context) (bmc.BootOverride, error) {
	var o bmc.BootOverride
	err := d.do(ctx, "get boot device", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		s, err := scanInactive(lv, dom)
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
			if d.boot.oneShot != nil {
				return d.boot.consume(lv, dom)
			}
			return nil
		}
		if err := d.firstUseLocked(lv, dom); err != nil {
			return err
		}
		return d.boot.set(lv, dom, dev, o.Persistent)
	})
}

// set writes boot device dev into the inactive definition, for every boot
// or (persistent false) for the next one only.
func (b *nextBoot) set(lv *libvirt.Libvirt, dom libvirt.Domain, dev string, persistent bool) error {
	cur, err := inactiveXML(lv, dom)
	if err != nil {
		return err
	}
	next, err := withBootDevices(cur, []string{dev})
	if err != nil {
		return err
	}
	pending := b.oneShot
	switch {
	case persistent:
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
	b.setPending(pending)
	b.dirtyID = dom.ID
	b.log.Info("boot device written", "dev", dev, "persistent", persistent)
	return nil
}

// consume restores the definition a next-boot override replaced. When
// nothing but the boot configuration changed since, the saved definition
// is written back whole (per-device boot order included); otherwise only
// its <os><boot> list is, keeping the other changes.
func (b *nextBoot) consume(lv *libvirt.Libvirt, dom libvirt.Domain) error {
	saved := b.oneShot.saved
	cur, err := inactiveXML(lv, dom)
	if err != nil {
		return err
	}
	restore := saved
	if same, _ := sameApartFromBoot(cur, saved); !same {
		if restore, err = withBootDevices(cur, b.oneShot.restore); err == nil {
			restore, err = withoutNextBootMark(restore)
		}
		if err != nil {
			return err
		}
		if saved != "" {
			b.log.Warn("domain definition changed since the next-boot override; restoring only its <os><boot> list")
		}
	}
	if _, err := lv.DomainDefineXML(restore); err != nil {
		return err
	}
	b.setPending(nil)
	b.log.Info("next-boot override consumed; previous boot configuration restored")
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

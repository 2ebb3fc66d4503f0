package libvirtconn

import (
	"context"
	"errors"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

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

// requireOn fails with bmc.ErrPoweredOff when the domain is off.
func requireOn(lv *libvirt.Libvirt, dom libvirt.Domain) error {
	on, err := domainOn(lv, dom)
	if err != nil {
		return err
	}
	if !on {
		return bmc.ErrPoweredOff
	}
	return nil
}

func powerOf(on bool) bmc.PowerState {
	if on {
		return bmc.PowerOn
	}
	return bmc.PowerOff
}

// PowerState reports whether the domain runs: from the connection's
// lifecycle events when it has seen the domain, else by asking libvirt. It
// also notices a domain started behind the BMC's back and consumes a
// pending next-boot override.
func (d *Domain) PowerState(ctx context.Context) (bmc.PowerState, error) {
	on, err := d.conn.powerState(d.ref, !d.boot.pending(), func() (libvirt.Domain, bool, error) {
		var (
			seen libvirt.Domain
			on   bool
		)
		err := d.do(ctx, "power status", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
			var err error
			if on, err = domainOn(lv, dom); err != nil {
				return err
			}
			seen = dom
			// Never wait behind a slow operation of this machine (a power on
			// holding mu): the status answer must come at once; the override
			// is consumed by that operation or by a later status.
			if !d.mu.TryLock() {
				return nil
			}
			defer d.mu.Unlock()
			if err := d.firstUseLocked(lv, dom); err != nil {
				return err
			}
			if on {
				return d.boot.seenRunning(lv, dom)
			}
			return nil
		})
		return seen, on, err
	})
	return powerOf(on), err
}

// changePower is exclusive for an operation that leaves the domain on (or
// off): the connection's state cache answers that until the operation's
// own events are in (see Conn.changingPower).
func (d *Domain) changePower(ctx context.Context, op string, on bool, fn func(lv *libvirt.Libvirt, dom libvirt.Domain) error) error {
	return d.exclusive(ctx, op, func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		// The cache is keyed by the domain's name (events name it), the
		// BMC's ref being a name or a UUID.
		return d.conn.changingPower(dom.Name, on, func() error { return fn(lv, dom) })
	})
}

// PowerOn starts the domain (nothing when it runs).
func (d *Domain) PowerOn(ctx context.Context) error {
	return d.changePower(ctx, "power on", true, func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		return d.startLocked(ctx, lv, dom)
	})
}

// startLocked starts a domain that is off, its console capturing the boot,
// then consumes a pending next-boot override: the domain has booted with
// it. d.mu must be held.
func (d *Domain) startLocked(ctx context.Context, lv *libvirt.Libvirt, dom libvirt.Domain) error {
	// Known to be off until the start's own event says otherwise: a power
	// status meanwhile answers from the cache. Asking libvirtd would wait
	// for the whole start (it holds the domain's lock while its hooks run
	// and QEMU starts: seconds).
	on, err := d.conn.powerState(d.ref, false, func() (libvirt.Domain, bool, error) {
		on, err := domainOn(lv, dom)
		return dom, on, err
	})
	if err != nil || on {
		return err
	}
	if err := d.firstUseLocked(lv, dom); err != nil {
		return err
	}
	// Capture the boot from its first line, for a SOL client to come.
	ms := &markedStart{lv: lv, dom: dom, log: d.log}
	err = d.console.captureBoot(ctx, lv, dom, ms.start)
	ms.finish()
	if err != nil {
		if on, _ := domainOn(lv, dom); on && !errors.Is(err, errResume) {
			return nil // started meanwhile by someone else
		}
		return err
	}
	return d.boot.booted(lv, dom)
}

// PowerOff destroys (hard powers off) the domain (nothing when it is off).
func (d *Domain) PowerOff(ctx context.Context) error {
	return d.changePower(ctx, "power off", false, func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
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

// SoftOff asks the guest to shut down (ACPI). The state cache forgets the
// domain: what it held may be a power operation's, which folds in no event
// for a while (see settleTime), and the guest may be off at once.
func (d *Domain) SoftOff(ctx context.Context) error {
	return d.do(ctx, "soft off", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		defer d.conn.forgetPower(dom.Name)
		on, err := domainOn(lv, dom)
		if err != nil || !on {
			return err
		}
		return lv.DomainShutdown(dom)
	})
}

// Reset hard-resets a running domain, its console capturing the reboot
// (taken back from another holder first). When the boot configuration
// changed during this run, the domain is restarted instead, so the new
// boot device applies (a libvirt reset keeps the running configuration).
func (d *Domain) Reset(ctx context.Context) error {
	return d.changePower(ctx, "hard reset", true, func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		if err := requireOn(lv, dom); err != nil {
			return err
		}
		if d.boot.changedDuring(dom.ID) {
			return d.restartLocked(ctx, lv, dom)
		}
		d.console.takeForReset(ctx)
		return lv.DomainReset(dom, 0)
	})
}

// PowerCycle turns the domain off (when on) and on again.
func (d *Domain) PowerCycle(ctx context.Context) error {
	return d.changePower(ctx, "power cycle", true, func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
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
		if err := requireOn(lv, dom); err != nil {
			return err
		}
		return lv.DomainInjectNmi(dom, 0)
	})
}

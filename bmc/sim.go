package bmc

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// BootRecord describes one boot of a simulated machine.
type BootRecord struct {
	// Device is what the machine booted from (its default disk when no override was set).
	Device BootDevice
	// EFI is whether it booted in EFI mode.
	EFI bool
	// Override is whether the device came from a BMC boot override.
	Override bool
}

// SimMachine is a simulated server: it powers on and off, honours a soft off
// after a delay like a guest OS would, consumes a next-boot-only override on
// the boot that uses it, and prints what it boots from on its serial console.
// It is the default backend, so that govbmc works without libvirt.
type SimMachine struct {
	name         string
	uuid         UUID
	softOffDelay time.Duration
	console      *ConsoleBuffer

	logMu      sync.Mutex
	transcript []byte // the newest DefaultConsoleBacklog bytes of console output

	mu       sync.Mutex
	state    PowerState
	epoch    uint64 // bumped on every power transition; stale soft-off timers check it
	override BootOverride
	boots    []BootRecord
	fault    error
	latency  time.Duration
	timer    *time.Timer
	load     SimLoad  // what the guest is doing (simstats.go)
	media    simMedia // virtual media (simmedia.go)
	firmware Firmware
	bios     map[string]string // setup attributes in effect (BootMode excepted); nil while the defaults
	pending  map[string]string // attributes applied at the next boot
	// rebooting is set while m.timer is a graceful reboot, not a soft off.
	rebooting bool
}

// NewSimMachine returns a powered-off simulated machine for a node.
func NewSimMachine(n Node) (*SimMachine, error) {
	u := DeriveUUID(n.Name)
	if n.Identity.UUID != "" {
		var err error
		if u, err = ParseUUID(n.Identity.UUID); err != nil {
			return nil, fmt.Errorf("node %q: %w", n.Name, err)
		}
	}
	cfg, _ := n.Backend.Config.(SimConfig)
	delay := cfg.SoftOffDelay
	if delay == 0 {
		delay = DefaultSoftOffDelay
	}
	m := &SimMachine{name: n.Name, uuid: u, softOffDelay: delay}
	// The simulated guest echoes what is typed on its console.
	m.console = NewConsoleBuffer(DefaultConsoleBacklog, func(p []byte) { m.output(p) })
	return m, nil
}

// SetFault makes every later operation fail with err (nil clears it), the way
// an unreachable hypervisor would; it exists to exercise error paths.
func (m *SimMachine) SetFault(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fault = err
}

// SetLatency makes every later operation take d longer, the way a slow
// hypervisor would; it exists to exercise timeouts and retransmissions.
func (m *SimMachine) SetLatency(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.latency = d
}

// Boots returns every boot the machine has made, oldest first.
func (m *SimMachine) Boots() []BootRecord {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]BootRecord(nil), m.boots...)
}

// begin locks the machine for an operation and returns the injected fault, if any.
func (m *SimMachine) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if d := m.latency; d > 0 {
		m.mu.Unlock()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		m.mu.Lock()
	}
	if m.fault != nil {
		err := m.fault
		m.mu.Unlock()
		return fmt.Errorf("simulated machine %q: %w", m.name, err)
	}
	return nil
}

// locked runs fn holding the machine's lock, once begin lets it.
func (m *SimMachine) locked(ctx context.Context, fn func() error) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	return fn()
}

// lockedRead returns what get reads under the machine's lock.
func lockedRead[T any](ctx context.Context, m *SimMachine, get func() T) (T, error) {
	var v T
	err := m.locked(ctx, func() error { v = get(); return nil })
	return v, err
}

// PowerState reports whether the machine is on.
func (m *SimMachine) PowerState(ctx context.Context) (PowerState, error) {
	return lockedRead(ctx, m, func() PowerState { return m.state })
}

// PowerOn powers the machine on and boots it.
func (m *SimMachine) PowerOn(ctx context.Context) error {
	return m.locked(ctx, func() error {
		if m.state == PowerOn {
			return nil
		}
		m.setStateLocked(PowerOn)
		m.bootLocked()
		return nil
	})
}

// PowerOff cuts power at once.
func (m *SimMachine) PowerOff(ctx context.Context) error {
	return m.locked(ctx, func() error {
		m.powerOffLocked("Power off")
		return nil
	})
}

// SoftOff starts a guest shutdown that completes after the configured delay.
func (m *SimMachine) SoftOff(ctx context.Context) error {
	return m.locked(ctx, func() error {
		if m.state == PowerOff || (m.timer != nil && !m.rebooting) {
			return nil
		}
		// A shutdown asked for during a reboot wins over it.
		m.stopTimerLocked()
		m.consolef("ACPI power button pressed: the system is going down for power off\r\n")
		epoch := m.epoch
		m.timer = time.AfterFunc(m.softOffDelay, func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.epoch == epoch {
				m.powerOffLocked("Reached target Power-Off")
			}
		})
		return nil
	})
}

// Reset reboots a running machine.
func (m *SimMachine) Reset(ctx context.Context) error {
	return m.locked(ctx, func() error {
		if m.state != PowerOn {
			return ErrPoweredOff
		}
		m.setStateLocked(PowerOn)
		m.consolef("\r\nHard reset\r\n")
		m.bootLocked()
		return nil
	})
}

// PowerCycle powers the machine off (when on) and on again.
func (m *SimMachine) PowerCycle(ctx context.Context) error {
	return m.locked(ctx, func() error {
		m.powerOffLocked("Power cycle")
		m.setStateLocked(PowerOn)
		m.bootLocked()
		return nil
	})
}

// DiagnosticInterrupt delivers an NMI to a running machine.
func (m *SimMachine) DiagnosticInterrupt(ctx context.Context) error {
	return m.locked(ctx, func() error {
		if m.state != PowerOn {
			return ErrPoweredOff
		}
		m.consolef("Uhhuh. NMI received for unknown reason 3d on CPU 0.\r\n")
		return nil
	})
}

// BootOverride returns the override the next boot will use.
func (m *SimMachine) BootOverride(ctx context.Context) (BootOverride, error) {
	return lockedRead(ctx, m, func() BootOverride { return m.override })
}

// SetBootOverride stores the override for the next (or every) boot.
func (m *SimMachine) SetBootOverride(ctx context.Context, o BootOverride) error {
	if _, ok := bootDeviceNames[o.Device]; !ok {
		return fmt.Errorf("boot device %d: %w", int(o.Device), ErrInvalidArgument)
	}
	return m.locked(ctx, func() error {
		m.override = o
		return nil
	})
}

// UUID returns the machine's UUID.
func (m *SimMachine) UUID(ctx context.Context) (UUID, error) {
	return lockedRead(ctx, m, func() UUID { return m.uuid })
}

// OpenConsole attaches to the simulated serial console.
func (m *SimMachine) OpenConsole(ctx context.Context) (io.ReadWriteCloser, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	m.mu.Unlock()
	return m.console.Attach()
}

// Close stops a pending soft off.
func (m *SimMachine) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopTimerLocked()
	return nil
}

func (m *SimMachine) setStateLocked(s PowerState) {
	m.state = s
	m.epoch++
	m.stopTimerLocked()
}

func (m *SimMachine) stopTimerLocked() {
	m.rebooting = false
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}

func (m *SimMachine) powerOffLocked(why string) {
	if m.state == PowerOff {
		return
	}
	m.consolef("\r\n%s\r\n", why)
	m.setStateLocked(PowerOff)
}

// bootLocked performs a boot: the override chooses the device, and a
// next-boot-only override is consumed by it.
func (m *SimMachine) bootLocked() {
	m.applyBIOSLocked()
	rec := BootRecord{Device: BootDisk, EFI: m.override.EFI}
	if m.override.Active() {
		rec.Device = m.override.Device
		rec.Override = true
	}
	if !m.override.Persistent {
		m.override = BootOverride{}
	}
	m.boots = append(m.boots, rec)
	mode := "Legacy BIOS"
	if rec.EFI {
		mode = "UEFI"
	}
	m.consolef("\r\ngovbmc simulated firmware (%s), system %s\r\n", mode, m.uuid)
	m.consolef("Booting from %s...\r\n", bootBanner[rec.Device])
	m.mediaBootLocked(rec.Device)
}

var bootBanner = map[BootDevice]string{
	BootPXE:          "PXE (network)",
	BootDisk:         "Hard Disk",
	BootDiskSafe:     "Hard Disk (safe mode)",
	BootDiagnostic:   "Diagnostic Partition",
	BootCDROM:        "CD/DVD",
	BootBIOSSetup:    "BIOS Setup",
	BootRemoteFloppy: "Remote Floppy",
	BootRemoteCDROM:  "Remote CD/DVD",
	BootRemoteMedia:  "Remote Media",
	BootRemoteDisk:   "Remote Hard Disk",
	BootFloppy:       "Floppy",
}

func (m *SimMachine) consolef(format string, args ...any) {
	m.output([]byte(fmt.Sprintf(format, args...)))
}

// output is what the machine writes on its serial port.
func (m *SimMachine) output(p []byte) {
	_, _ = m.console.Write(p)
	m.logMu.Lock()
	defer m.logMu.Unlock()
	m.transcript = append(m.transcript, p...)
	if over := len(m.transcript) - DefaultConsoleBacklog; over > 0 {
		m.transcript = append(m.transcript[:0], m.transcript[over:]...)
	}
}

// Transcript returns the console output so far (the newest 64 KiB), like
// a serial log file: reading it takes nothing from an attached client.
func (m *SimMachine) Transcript() string {
	m.logMu.Lock()
	defer m.logMu.Unlock()
	return string(m.transcript)
}

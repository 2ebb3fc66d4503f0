package bmc

import (
	"context"
	"fmt"
	"maps"
	"time"
)

// The simulated machine's hardware.
const (
	simCPUs      = 2
	simMemoryMiB = 2048
	simDiskBytes = 20 << 30
)

// Inventory describes the simulated hardware: two CPUs, 2 GiB, one NIC
// whose MAC is derived from the machine's UUID, a disk and a CD-ROM drive.
func (m *SimMachine) Inventory(ctx context.Context) (Inventory, error) {
	if err := m.begin(ctx); err != nil {
		return Inventory{}, err
	}
	defer m.mu.Unlock()
	u := m.uuid
	return Inventory{
		Manufacturer: "govbmc",
		Model:        "Simulated Machine",
		CPUs:         simCPUs,
		CPUModel:     "govbmc virtual CPU",
		MemoryMiB:    simMemoryMiB,
		NICs:         []NIC{{MAC: fmt.Sprintf("52:54:00:%02x:%02x:%02x", u[13], u[14], u[15]), Model: "virtio"}},
		Disks: []Disk{
			{Name: "vda", Device: "disk", Bus: "virtio", CapacityBytes: simDiskBytes},
			{Name: "sda", Device: "cdrom", Bus: "sata"},
		},
	}, nil
}

// Firmware reports the simulated firmware.
func (m *SimMachine) Firmware(ctx context.Context) (Firmware, error) {
	if err := m.begin(ctx); err != nil {
		return Firmware{}, err
	}
	defer m.mu.Unlock()
	return m.firmware, nil
}

// SetFirmware switches the simulated firmware; it boots with it next time.
func (m *SimMachine) SetFirmware(ctx context.Context, f Firmware) error {
	if f.SecureBoot && !f.EFI {
		return fmt.Errorf("secure boot needs UEFI firmware: %w", ErrInvalidArgument)
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.firmware = f
	return nil
}

// BIOSAttributes returns the setup attributes in effect and those pending.
func (m *SimMachine) BIOSAttributes(ctx context.Context) (current, pending map[string]string, err error) {
	if err := m.begin(ctx); err != nil {
		return nil, nil, err
	}
	defer m.mu.Unlock()
	if current = maps.Clone(m.bios); current == nil {
		current = DefaultBIOSAttributes()
	}
	current[BootModeAttribute] = BootModeValue(m.firmware.EFI)
	return current, maps.Clone(m.pending), nil
}

// SetBIOSAttributes records attributes for the next boot, on top of those
// already pending.
func (m *SimMachine) SetBIOSAttributes(ctx context.Context, attrs map[string]string) error {
	if err := CheckBIOSAttributes(attrs); err != nil {
		return err
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if m.pending == nil {
		m.pending = make(map[string]string, len(attrs))
	}
	maps.Copy(m.pending, attrs)
	return nil
}

// ResetBIOS makes the next boot restore the default attributes.
func (m *SimMachine) ResetBIOS(ctx context.Context) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.pending = DefaultBIOSAttributes()
	return nil
}

// applyBIOSLocked makes the pending attributes current, as firmware does
// when it starts.
func (m *SimMachine) applyBIOSLocked() {
	if m.bios == nil && len(m.pending) > 0 {
		m.bios = DefaultBIOSAttributes() // a machine keeps none until they change
	}
	for k, v := range m.pending {
		if k == BootModeAttribute {
			m.firmware.EFI = v == "Uefi"
			if !m.firmware.EFI {
				m.firmware.SecureBoot = false
			}
			continue
		}
		m.bios[k] = v
	}
	m.pending = nil
}

// GracefulReboot asks the simulated guest to restart: it goes down and
// boots again after the soft-off delay.
func (m *SimMachine) GracefulReboot(ctx context.Context) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if m.state != PowerOn {
		return ErrPoweredOff
	}
	if m.timer != nil {
		return nil
	}
	m.consolef("ACPI reboot requested: the system is going down for reboot\r\n")
	epoch := m.epoch
	m.rebooting = true
	m.timer = time.AfterFunc(m.softOffDelay, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.epoch == epoch && m.rebooting {
			m.timer, m.rebooting = nil, false
			m.consolef("\r\nReached target Reboot\r\n")
			m.setStateLocked(PowerOn)
			m.bootLocked()
		}
	})
	return nil
}

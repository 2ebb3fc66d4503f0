package bmc

import "context"

// This file names the optional capabilities a backend may bring beyond
// Machine. A front end checks for them with a type assertion and answers
// "not supported" (IPMI 0xC1/0xD5, Redfish 400/501) when a machine lacks one.

// Inventory is the hardware a machine presents: what Redfish serves as the
// ComputerSystem's summaries, Processors, Memory, EthernetInterfaces and
// Storage, read from the machine's definition (a domain's XML for libvirt).
type Inventory struct {
	// Manufacturer is the system's maker ("QEMU" for a libvirt domain).
	Manufacturer string
	// Model is the system's model (the domain's machine type, e.g. "pc-q35-7.2").
	Model string
	// CPUs is the number of logical processors.
	CPUs int
	// CPUModel names the processor model, when the definition says.
	CPUModel string
	// MemoryMiB is the memory size in MiB.
	MemoryMiB uint64
	// NICs are the network interfaces, in definition order.
	NICs []NIC
	// Disks are the block devices (disks, CD-ROMs, floppies), in definition order.
	Disks []Disk
}

// NIC is one network interface of a machine.
type NIC struct {
	// MAC is the hardware address, lower case, colon-separated.
	MAC string
	// Model is the emulated device model (virtio, e1000…), when known.
	Model string
}

// Disk is one block device of a machine.
type Disk struct {
	// Name is the guest-visible target name (vda, sda, hdc…).
	Name string
	// Device is "disk", "cdrom" or "floppy".
	Device string
	// Bus is the bus the device sits on (virtio, sata, ide, scsi, usb, fdc).
	Bus string
	// CapacityBytes is the size of the backing image, 0 when unknown or empty.
	CapacityBytes uint64
}

// Inventoried is a machine that can describe its hardware.
type Inventoried interface {
	// Inventory reads the machine's hardware from its definition.
	Inventory(ctx context.Context) (Inventory, error)
}

// Firmware is how a machine boots: UEFI or legacy BIOS, and whether UEFI
// Secure Boot is enforced.
type Firmware struct {
	// EFI is true for UEFI firmware, false for legacy BIOS.
	EFI bool
	// SecureBoot is true when UEFI Secure Boot is enabled (never with !EFI).
	SecureBoot bool
}

// FirmwareController is a machine whose firmware can be read and, where the
// hypervisor allows, switched.
type FirmwareController interface {
	// Firmware reports the machine's current firmware.
	Firmware(ctx context.Context) (Firmware, error)
	// SetFirmware switches firmware for the next boot; an error wrapping
	// ErrNotSupported, saying why, when the hypervisor cannot.
	SetFirmware(ctx context.Context, f Firmware) error
}

// BIOSSettings is a machine that keeps firmware setup attributes with
// itself (for libvirt, in the domain's metadata). Pending attributes take
// effect at the machine's next power on or reset.
type BIOSSettings interface {
	// BIOSAttributes returns the attributes in effect and those pending for
	// the next boot (nil or empty when none are pending).
	BIOSAttributes(ctx context.Context) (current, pending map[string]string, err error)
	// SetBIOSAttributes records attributes to apply at the next boot.
	SetBIOSAttributes(ctx context.Context, pending map[string]string) error
	// ResetBIOS restores the default attributes at the next boot.
	ResetBIOS(ctx context.Context) error
}

// GracefulRebooter is a machine whose guest can be asked to restart (an
// ACPI reboot, libvirt's DomainReboot). A guest that ignores the request
// keeps running, as a real server would.
type GracefulRebooter interface {
	// GracefulReboot asks the guest to restart and returns without
	// waiting; ErrPoweredOff when the machine is off.
	GracefulReboot(ctx context.Context) error
}

// Unwrapper is a Machine that wraps another (to time or observe it); As
// looks through it for the wrapped machine's capabilities.
type Unwrapper interface {
	// Unwrap returns the wrapped machine.
	Unwrap() Machine
}

// As returns m as capability T, looking through wrappers (Unwrapper), so
// that a front end finds what the backend's machine can do even when the
// machine it holds is wrapped.
func As[T any](m Machine) (T, bool) {
	for m != nil {
		if c, ok := m.(T); ok {
			return c, true
		}
		u, ok := m.(Unwrapper)
		if !ok {
			break
		}
		m = u.Unwrap()
	}
	var zero T
	return zero, false
}

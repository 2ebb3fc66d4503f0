// Package bmc is govbmc's domain model: the configuration of a virtual BMC
// (Node), the Machine interface every backend implements, the simulated
// machine, and the Manager that runs a fleet of nodes. It knows nothing about
// IPMI bytes or libvirt RPC and imports only the standard library.
package bmc

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// PowerState is whether a machine is powered.
type PowerState int

// The power states a machine reports.
const (
	PowerOff PowerState = iota
	PowerOn
)

// String returns "on" or "off".
func (s PowerState) String() string {
	if s == PowerOn {
		return "on"
	}
	return "off"
}

// BootDevice is a boot device a BMC can force for the next or every boot.
type BootDevice int

// Boot devices, in the terms of IPMI's boot flags (IPMI 2.0 Table 28-14).
const (
	BootNone         BootDevice = iota // no override: the firmware's own order
	BootPXE                            // network (PXE)
	BootDisk                           // default hard disk
	BootDiskSafe                       // default hard disk, safe mode
	BootDiagnostic                     // diagnostic partition
	BootCDROM                          // CD/DVD
	BootBIOSSetup                      // firmware setup
	BootRemoteFloppy                   // remotely connected floppy or primary removable media
	BootRemoteCDROM                    // remotely connected CD/DVD
	BootRemoteMedia                    // primary remote media
	BootRemoteDisk                     // remotely connected hard disk
	BootFloppy                         // floppy or primary removable media
)

var bootDeviceNames = map[BootDevice]string{
	BootNone:         "none",
	BootPXE:          "pxe",
	BootDisk:         "disk",
	BootDiskSafe:     "safe",
	BootDiagnostic:   "diag",
	BootCDROM:        "cdrom",
	BootBIOSSetup:    "bios",
	BootRemoteFloppy: "remote-floppy",
	BootRemoteCDROM:  "remote-cdrom",
	BootRemoteMedia:  "remote-media",
	BootRemoteDisk:   "remote-disk",
	BootFloppy:       "floppy",
}

// String returns the device's short name (the word ipmitool's bootdev takes).
func (d BootDevice) String() string {
	if s, ok := bootDeviceNames[d]; ok {
		return s
	}
	return fmt.Sprintf("BootDevice(%d)", int(d))
}

// BootOverride is the boot device selection a BMC holds for its machine.
type BootOverride struct {
	// Device is the forced device; BootNone means no override.
	Device BootDevice
	// Persistent applies the override to every future boot; otherwise it is
	// consumed by the next boot.
	Persistent bool
	// EFI requests (on set) or reports (on get) an EFI boot rather than legacy BIOS.
	EFI bool
}

// Active reports whether the override changes how the machine boots.
func (o BootOverride) Active() bool { return o.Device != BootNone }

// Machine is the managed system behind a BMC. Every backend (the simulated
// machine, libvirt domains) implements it; the IPMI front end drives it.
// Methods must be safe for concurrent use and honour ctx's deadline.
type Machine interface {
	// PowerState reports whether the machine is on.
	PowerState(ctx context.Context) (PowerState, error)
	// PowerOn powers the machine on; it succeeds when it is already on.
	PowerOn(ctx context.Context) error
	// PowerOff cuts power at once; it succeeds when it is already off.
	PowerOff(ctx context.Context) error
	// SoftOff asks the guest to shut down (ACPI power button) and returns
	// without waiting; it succeeds when the machine is already off.
	SoftOff(ctx context.Context) error
	// Reset hard-resets a running machine; ErrPoweredOff when it is off.
	Reset(ctx context.Context) error
	// PowerCycle turns the machine off and on again (just on when it is off).
	PowerCycle(ctx context.Context) error
	// DiagnosticInterrupt injects an NMI; ErrPoweredOff when it is off.
	DiagnosticInterrupt(ctx context.Context) error
	// BootOverride returns the boot device override the next boot will use.
	BootOverride(ctx context.Context) (BootOverride, error)
	// SetBootOverride stores the boot device override.
	SetBootOverride(ctx context.Context, o BootOverride) error
	// UUID returns the system's UUID in RFC 4122 byte order.
	UUID(ctx context.Context) (UUID, error)
	// OpenConsole attaches to the machine's serial console; ErrConsoleBusy
	// when someone else is attached.
	OpenConsole(ctx context.Context) (io.ReadWriteCloser, error)
	// Close releases the machine's resources.
	Close() error
}

// Errors a Machine returns that the front end answers specifically; any
// other error is a backend failure, reported to the client as retryable.
var (
	// ErrPoweredOff: the operation needs a running machine.
	ErrPoweredOff = errors.New("machine is powered off")
	// ErrInvalidArgument: the request asks for something the machine cannot take.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotSupported: the backend cannot do this at all.
	ErrNotSupported = errors.New("not supported by this machine")
	// ErrConsoleBusy: another client holds the serial console.
	ErrConsoleBusy = errors.New("console already attached")
)

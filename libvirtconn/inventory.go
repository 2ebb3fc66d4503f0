package libvirtconn

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

// The optional capabilities a libvirt domain brings.
var (
	_ bmc.Inventoried        = (*Domain)(nil)
	_ bmc.FirmwareController = (*Domain)(nil)
	_ bmc.BIOSSettings       = (*Domain)(nil)
	_ bmc.GracefulRebooter   = (*Domain)(nil)
)

// hardwareXML is the part of a domain's XML that describes its hardware.
type hardwareXML struct {
	Memory struct {
		Value uint64 `xml:",chardata"`
		Unit  string `xml:"unit,attr"`
	} `xml:"memory"`
	VCPU struct {
		Value int `xml:",chardata"`
	} `xml:"vcpu"`
	OS struct {
		Type struct {
			Machine string `xml:"machine,attr"`
		} `xml:"type"`
		Firmware string `xml:"firmware,attr"`
		Loader   struct {
			Type   string `xml:"type,attr"`
			Secure string `xml:"secure,attr"`
		} `xml:"loader"`
		FirmwareInfo struct {
			Features []struct {
				Name    string `xml:"name,attr"`
				Enabled string `xml:"enabled,attr"`
			} `xml:"feature"`
		} `xml:"firmware"`
	} `xml:"os"`
	CPU struct {
		Mode  string `xml:"mode,attr"`
		Model struct {
			Value string `xml:",chardata"`
		} `xml:"model"`
	} `xml:"cpu"`
	Devices struct {
		Interfaces []struct {
			MAC struct {
				Address string `xml:"address,attr"`
			} `xml:"mac"`
			Model struct {
				Type string `xml:"type,attr"`
			} `xml:"model"`
		} `xml:"interface"`
		Disks []struct {
			Device string `xml:"device,attr"`
			Target struct {
				Dev string `xml:"dev,attr"`
				Bus string `xml:"bus,attr"`
			} `xml:"target"`
		} `xml:"disk"`
	} `xml:"devices"`
}

func parseHardware(doc string) (*hardwareXML, error) {
	var h hardwareXML
	if err := xml.Unmarshal([]byte(doc), &h); err != nil {
		return nil, fmt.Errorf("domain XML: %w", err)
	}
	return &h, nil
}

// memoryMiB converts a libvirt memory size (KiB by default) to MiB.
func memoryMiB(v uint64, unit string) uint64 {
	switch strings.ToLower(unit) {
	case "b", "bytes":
		return v >> 20
	case "", "k", "kib":
		return v >> 10
	case "kb":
		return v * 1000 >> 20
	case "m", "mib":
		return v
	case "mb":
		return v * 1000 * 1000 >> 20
	case "g", "gib":
		return v << 10
	case "gb":
		return v * 1000 * 1000 * 1000 >> 20
	case "t", "tib":
		return v << 20
	}
	return v >> 10
}

// Inventory reads the domain's hardware from its definition: vCPUs,
// memory, NICs with their MAC addresses, and disks with the capacity of
// their images where libvirt can tell.
func (d *Domain) Inventory(ctx context.Context) (bmc.Inventory, error) {
	var inv bmc.Inventory
	err := d.do(ctx, "read inventory", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		doc, err := lv.DomainGetXMLDesc(dom, 0)
		if err != nil {
			return err
		}
		h, err := parseHardware(doc)
		if err != nil {
			return err
		}
		inv = bmc.Inventory{
			Manufacturer: "QEMU",
			Model:        h.OS.Type.Machine,
			CPUs:         h.VCPU.Value,
			CPUModel:     h.CPU.Model.Value,
			MemoryMiB:    memoryMiB(h.Memory.Value, h.Memory.Unit),
		}
		if inv.Model == "" {
			inv.Model = "Virtual Machine"
		}
		if inv.CPUs == 0 {
			inv.CPUs = 1
		}
		if inv.CPUModel == "" && h.CPU.Mode != "" {
			inv.CPUModel = h.CPU.Mode
		}
		for _, n := range h.Devices.Interfaces {
			if n.MAC.Address != "" {
				inv.NICs = append(inv.NICs, bmc.NIC{MAC: strings.ToLower(n.MAC.Address), Model: n.Model.Type})
			}
		}
		for _, disk := range h.Devices.Disks {
			dev := disk.Device
			if dev == "" {
				dev = "disk"
			}
			bd := bmc.Disk{Name: disk.Target.Dev, Device: dev, Bus: disk.Target.Bus}
			if dev == "disk" && disk.Target.Dev != "" {
				// Best effort: an image libvirt cannot size is left at 0.
				if _, capacity, _, err := lv.DomainGetBlockInfo(dom, disk.Target.Dev, 0); err == nil {
					bd.CapacityBytes = capacity
				}
			}
			inv.Disks = append(inv.Disks, bd)
		}
		return nil
	})
	return inv, err
}

// firmwareOf reads UEFI and Secure Boot from a domain's XML: firmware
// auto-selection (<os firmware='efi'> with the secure-boot feature) or an
// explicit pflash loader (secure='yes').
func firmwareOf(h *hardwareXML) bmc.Firmware {
	var f bmc.Firmware
	f.EFI = h.OS.Firmware == "efi" || h.OS.Loader.Type == "pflash"
	if !f.EFI {
		return f
	}
	if h.OS.Loader.Secure == "yes" {
		f.SecureBoot = true
	}
	for _, ft := range h.OS.FirmwareInfo.Features {
		if ft.Name == "secure-boot" {
			f.SecureBoot = ft.Enabled == "yes"
		}
	}
	return f
}

// Firmware reports the firmware of the domain's definition (what its next
// boot uses).
func (d *Domain) Firmware(ctx context.Context) (bmc.Firmware, error) {
	var f bmc.Firmware
	err := d.do(ctx, "read firmware", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		var err error
		f, _, err = inactiveFirmware(lv, dom)
		return err
	})
	return f, err
}

func describeFirmware(f bmc.Firmware) string {
	switch {
	case f.SecureBoot:
		return "UEFI with Secure Boot"
	case f.EFI:
		return "UEFI"
	}
	return "legacy BIOS"
}

// GracefulReboot asks the guest to restart (ACPI), as a real server's
// power button handling would; a guest that ignores it keeps running.
func (d *Domain) GracefulReboot(ctx context.Context) error {
	return d.do(ctx, "graceful reboot", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		on, err := domainOn(lv, dom)
		if err != nil {
			return err
		}
		if !on {
			return bmc.ErrPoweredOff
		}
		return lv.DomainReboot(dom, libvirt.DomainRebootAcpiPowerBtn)
	})
}

package ipmi

import (
	"github.com/govbmc/govbmc/bmc"
)

// Boot flags (System Boot Options parameter 5, IPMI 2.0 Table 28-14).
const (
	bootFlagValid      = 0x80 // data 1 bit 7: boot flags valid
	bootFlagPersistent = 0x40 // data 1 bit 6: all future boots, not only the next
	bootFlagEFI        = 0x20 // data 1 bit 5: EFI boot rather than PC-compatible
	bootFlagsLen       = 5
)

// bootSelectors maps the 4-bit boot device selector (data 2 bits 5:2) to a
// device. Selectors 0Ah and 0Ch-0Eh are reserved.
var bootSelectors = map[uint8]bmc.BootDevice{
	0x00: bmc.BootNone,
	0x01: bmc.BootPXE,
	0x02: bmc.BootDisk,
	0x03: bmc.BootDiskSafe,
	0x04: bmc.BootDiagnostic,
	0x05: bmc.BootCDROM,
	0x06: bmc.BootBIOSSetup,
	0x07: bmc.BootRemoteFloppy,
	0x08: bmc.BootRemoteCDROM,
	0x09: bmc.BootRemoteMedia,
	0x0B: bmc.BootRemoteDisk,
	0x0F: bmc.BootFloppy,
}

var bootSelectorOf = func() map[bmc.BootDevice]uint8 {
	m := make(map[bmc.BootDevice]uint8, len(bootSelectors))
	for sel, dev := range bootSelectors {
		m[dev] = sel
	}
	return m
}()

// overrideFromFlags decodes the 5 boot flag bytes into the override they ask
// for. Flags without the valid bit mean "no override". ok is false for a
// reserved device selector.
func overrideFromFlags(f [bootFlagsLen]byte) (o bmc.BootOverride, ok bool) {
	dev, ok := bootSelectors[(f[1]>>2)&0x0F]
	if !ok {
		return o, false
	}
	if f[0]&bootFlagValid == 0 {
		return bmc.BootOverride{}, true
	}
	return bmc.BootOverride{
		Device:     dev,
		Persistent: f[0]&bootFlagPersistent != 0,
		EFI:        f[0]&bootFlagEFI != 0,
	}, true
}

// flagsFromOverride encodes an override as the 5 boot flag bytes. The valid
// bit is set while an override is in force (a device, or a persistent
// setting); a consumed next-boot override reads back as no override.
func flagsFromOverride(o bmc.BootOverride) [bootFlagsLen]byte {
	var f [bootFlagsLen]byte
	if o.Active() || o.Persistent {
		f[0] |= bootFlagValid
	}
	if o.Persistent {
		f[0] |= bootFlagPersistent
	}
	if o.EFI {
		f[0] |= bootFlagEFI
	}
	f[1] = bootSelectorOf[o.Device] << 2
	return f
}

package ipmi

import (
	"testing"

	"github.com/govbmc/govbmc/bmc"
)

func TestBootFlagsRoundTrip(t *testing.T) {
	for sel, dev := range bootSelectors {
		for _, persistent := range []bool{false, true} {
			for _, efi := range []bool{false, true} {
				o := bmc.BootOverride{Device: dev, Persistent: persistent, EFI: efi}
				f := flagsFromOverride(o)
				if got := (f[1] >> 2) & 0x0F; got != sel {
					t.Errorf("%+v encodes selector %#x, want %#x", o, got, sel)
				}
				back, ok := overrideFromFlags(f)
				if !ok {
					t.Fatalf("%+v: flags % x do not decode", o, f)
				}
				// No device and not persistent is "no override": the EFI bit
				// alone does not make the flags valid.
				want := o
				if dev == bmc.BootNone && !persistent {
					want = bmc.BootOverride{}
				}
				if back != want {
					t.Errorf("%+v -> % x -> %+v", o, f, back)
				}
			}
		}
	}
}

func TestBootFlagsDecode(t *testing.T) {
	cases := []struct {
		flags [5]byte
		want  bmc.BootOverride
		ok    bool
	}{
		{[5]byte{0xE0, 0x04}, bmc.BootOverride{Device: bmc.BootPXE, Persistent: true, EFI: true}, true},
		{[5]byte{0xA0, 0x08}, bmc.BootOverride{Device: bmc.BootDisk, EFI: true}, true},
		{[5]byte{0x80, 0x14}, bmc.BootOverride{Device: bmc.BootCDROM}, true},
		{[5]byte{0xC0, 0x3C}, bmc.BootOverride{Device: bmc.BootFloppy, Persistent: true}, true},
		// CMOS clear and lock keyboard bits beside the selector do not change the device.
		{[5]byte{0x80, 0x04 | 0x80 | 0x40}, bmc.BootOverride{Device: bmc.BootPXE}, true},
		// Valid bit clear: no override, whatever else is set.
		{[5]byte{0x60, 0x04}, bmc.BootOverride{}, true},
		// Reserved selectors 0Ah, 0Ch-0Eh.
		{[5]byte{0x80, 0x0A << 2}, bmc.BootOverride{}, false},
		{[5]byte{0x80, 0x0D << 2}, bmc.BootOverride{}, false},
	}
	for _, c := range cases {
		got, ok := overrideFromFlags(c.flags)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("% x: got %+v ok=%v, want %+v ok=%v", c.flags, got, ok, c.want, c.ok)
		}
	}
}

// FuzzBootFlags: every 5-byte parameter decodes or is refused, and an
// override in force encodes back to flags that decode the same (one not in
// force reads back as no override).
func FuzzBootFlags(f *testing.F) {
	f.Add([]byte{0xe0, 0x04, 0, 0, 0})
	f.Add([]byte{0x80, 0x3c, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var flags [bootFlagsLen]byte
		copy(flags[:], b)
		o, ok := overrideFromFlags(flags)
		if !ok {
			return
		}
		back, ok := overrideFromFlags(flagsFromOverride(o))
		inForce := o.Active() || o.Persistent
		if !ok || (inForce && back != o) || (!inForce && back.Active()) {
			t.Fatalf("% x -> %+v -> %+v", flags, o, back)
		}
	})
}

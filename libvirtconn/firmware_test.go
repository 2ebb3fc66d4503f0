package libvirtconn

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
)

const legacyXML = `<domain type='kvm'>
  <name>x</name>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <graphics type='vnc' passwd='s3cret'/>
  </devices>
</domain>`

func TestWithFirmwareRoundTrips(t *testing.T) {
	efi, err := withFirmware(legacyXML, bmc.Firmware{EFI: true})
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHardware(efi)
	if err != nil || firmwareOf(h) != (bmc.Firmware{EFI: true}) {
		t.Fatalf("UEFI: %+v %v\n%s", firmwareOf(h), err, efi)
	}
	sb, err := withFirmware(efi, bmc.Firmware{EFI: true, SecureBoot: true})
	if err != nil {
		t.Fatal(err)
	}
	h, _ = parseHardware(sb)
	if firmwareOf(h) != (bmc.Firmware{EFI: true, SecureBoot: true}) || !strings.Contains(sb, "<smm state='on'/>") || strings.Count(sb, "<firmware>") != 1 {
		t.Fatalf("secure boot:\n%s", sb)
	}
	// A pflash loader and NVRAM of an explicit setup go too.
	explicit := strings.Replace(sb, "<boot dev='hd'/>", "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>\n    <nvram>/var/lib/libvirt/qemu/nvram/x_VARS.fd</nvram>\n    <boot dev='hd'/>", 1)
	back, err := withFirmware(explicit, bmc.Firmware{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ = parseHardware(back)
	if firmwareOf(h) != (bmc.Firmware{}) || strings.Contains(back, "loader") || strings.Contains(back, "nvram") || strings.Contains(back, "firmware") {
		t.Fatalf("back to BIOS:\n%s", back)
	}
	for _, keep := range []string{"passwd='s3cret'", "<boot dev='hd'/>", "<smm state='on'/>"} {
		if !strings.Contains(back, keep) {
			t.Fatalf("%s lost:\n%s", keep, back)
		}
	}
	if _, err := withFirmware(strings.Replace(legacyXML, "pc-q35-7.2", "pc", 1), bmc.Firmware{EFI: true, SecureBoot: true}); !errors.Is(err, bmc.ErrNotSupported) {
		t.Fatalf("secure boot on i440fx: %v", err)
	}
}

// TestFirmwareSwitchOnQemu switches a real domain to UEFI, which then
// starts with OVMF, and back to SeaBIOS.
func TestFirmwareSwitchOnQemu(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	if _, err := os.Stat("/usr/share/qemu/firmware"); err != nil {
		t.Skip("no firmware descriptors (ovmf) installed")
	}
	pool := NewPool(nil, 0)
	t.Cleanup(func() { pool.Close() })
	c, err := pool.Get("qemu:///system", Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	name := testtool.DefineTestDomain(t, c, strings.ReplaceAll(testtool.ConsoleDomainXML, "%[2]s", testtool.VirtType()))
	d := NewDomain(c, name, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := d.SetFirmware(ctx, bmc.Firmware{EFI: true}); err != nil {
		t.Fatal(err)
	}
	if f, err := d.Firmware(ctx); err != nil || !f.EFI || f.SecureBoot {
		t.Fatalf("after switching to UEFI: %+v %v", f, err)
	}
	if err := d.SetFirmware(ctx, bmc.Firmware{EFI: true, SecureBoot: true}); !errors.Is(err, bmc.ErrNotSupported) {
		t.Fatalf("secure boot on a pc machine: %v", err)
	}
	if err := d.PowerOn(ctx); err != nil {
		t.Fatalf("start with UEFI: %v", err)
	}
	if live := testtool.DomainXML(t, c, name, 0); !strings.Contains(live, "pflash") {
		t.Fatalf("running without a UEFI loader:\n%s", live)
	}
	if err := d.SetFirmware(ctx, bmc.Firmware{}); err != nil {
		t.Fatal(err)
	}
	// A hard reset in this run restarts the domain with SeaBIOS.
	if err := d.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if live := testtool.DomainXML(t, c, name, 0); strings.Contains(live, "pflash") {
		t.Fatalf("still UEFI after switching back and a reset:\n%s", live)
	}
	if st := testtool.DomainState(t, c, name); st != libvirt.DomainRunning {
		t.Fatalf("state %v", st)
	}
	_ = d.PowerOff(ctx)
}

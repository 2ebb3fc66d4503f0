package libvirtconn

import (
	"errors"
	"strings"
	"testing"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
)

func TestInventoryFromTheDefinition(t *testing.T) {
	_, c := testConn(t)
	doc := strings.Replace(testDomainXML, "<memory unit='MiB'>64</memory>", "<memory unit='GiB'>3</memory><vcpu>4</vcpu>", 1)
	doc = strings.Replace(doc, "</devices>", `<interface type='user'><mac address='52:54:00:AB:CD:EF'/><model type='virtio'/></interface>
    <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk></devices>`, 1)
	d := NewDomain(c, testtool.DefineTestDomain(t, c, doc), nil)
	inv, err := d.Inventory(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if inv.CPUs != 4 || inv.MemoryMiB != 3072 || inv.Manufacturer != "QEMU" {
		t.Fatalf("inventory %+v", inv)
	}
	if len(inv.NICs) != 2 || inv.NICs[0].MAC != "52:54:00:00:00:01" || inv.NICs[1].MAC != "52:54:00:ab:cd:ef" || inv.NICs[1].Model != "virtio" {
		t.Fatalf("NICs %+v", inv.NICs)
	}
	if len(inv.Disks) != 2 || inv.Disks[0].Device != "disk" || inv.Disks[1].Device != "cdrom" || inv.Disks[1].Name != "hdc" {
		t.Fatalf("disks %+v", inv.Disks)
	}
}

func TestFirmwareFromTheDefinition(t *testing.T) {
	for _, tc := range []struct {
		os   string
		want bmc.Firmware
	}{
		{"<type arch='x86_64'>hvm</type>", bmc.Firmware{}},
		{"<type arch='x86_64'>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>", bmc.Firmware{EFI: true}},
		{"<type arch='x86_64'>hvm</type><loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.secboot.fd</loader>", bmc.Firmware{EFI: true, SecureBoot: true}},
	} {
		h, err := parseHardware(strings.Replace(testDomainXML, "<type arch='x86_64'>hvm</type>", tc.os, 1))
		if err != nil {
			t.Fatal(err)
		}
		if got := firmwareOf(h); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.os, got, tc.want)
		}
	}
	h, _ := parseHardware(`<domain><os firmware='efi'><firmware><feature enabled='yes' name='secure-boot'/></firmware></os></domain>`)
	if got := firmwareOf(h); !got.EFI || !got.SecureBoot {
		t.Errorf("auto-selected secure boot: %+v", got)
	}

	_, c := testConn(t)
	d := NewDomain(c, testtool.DefineTestDomain(t, c, testDomainXML), nil)
	ctx := testCtx(t)
	if f, err := d.Firmware(ctx); err != nil || f.EFI {
		t.Fatalf("firmware %+v %v", f, err)
	}
	if err := d.SetFirmware(ctx, bmc.Firmware{}); err != nil {
		t.Fatalf("setting the current firmware: %v", err)
	}
	if err := d.SetFirmware(ctx, bmc.Firmware{EFI: true}); err != nil {
		t.Fatalf("switching firmware: %v", err)
	}
	if f, err := d.Firmware(ctx); err != nil || !f.EFI {
		t.Fatalf("firmware after switching to UEFI: %+v %v", f, err)
	}
	if err := d.SetFirmware(ctx, bmc.Firmware{SecureBoot: true}); !errors.Is(err, bmc.ErrInvalidArgument) {
		t.Fatalf("secure boot without UEFI: %v", err)
	}
}

func TestBIOSSettingsLiveInTheDomainAndApplyAtTheNextStart(t *testing.T) {
	c, name, d, ctx := testDomain(t)
	cur, pending, err := d.BIOSAttributes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cur["ProcTurboMode"] != "Enabled" || cur[bmc.BootModeAttribute] != "Bios" || len(pending) != 0 {
		t.Fatalf("defaults: %v %v", cur, pending)
	}
	if err := d.SetBIOSAttributes(ctx, map[string]string{"ProcTurboMode": "Disabled", "BootMode": "Bios"}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetBIOSAttributes(ctx, map[string]string{"BootMode": "Uefi"}); !errors.Is(err, bmc.ErrNotSupported) {
		t.Fatalf("BootMode switch: %v", err)
	}
	if err := d.SetBIOSAttributes(ctx, map[string]string{"ProcTurboMode": "Sometimes"}); !errors.Is(err, bmc.ErrInvalidArgument) {
		t.Fatalf("bad value: %v", err)
	}
	// Kept in the definition: another machine on the same domain sees them.
	d2 := NewDomain(c, name, nil)
	if _, pending, _ = d2.BIOSAttributes(ctx); pending["ProcTurboMode"] != "Disabled" {
		t.Fatalf("pending seen by another BMC: %v", pending)
	}
	if !strings.Contains(testtool.DomainXML(t, c, name, 0), biosNS) {
		t.Fatal("no BIOS metadata in the domain's definition")
	}
	if err := d.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	cur, pending, _ = d.BIOSAttributes(ctx)
	if cur["ProcTurboMode"] != "Disabled" || len(pending) != 0 {
		t.Fatalf("after the start: %v %v", cur, pending)
	}
	// Set while running: a hard reset restarts the domain so they apply.
	if err := d.ResetBIOS(ctx); err != nil {
		t.Fatal(err)
	}
	if cur, _, _ = d.BIOSAttributes(ctx); cur["ProcTurboMode"] != "Disabled" {
		t.Fatal("applied before a reset")
	}
	if err := d.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if cur, pending, _ = d.BIOSAttributes(ctx); cur["ProcTurboMode"] != "Enabled" || len(pending) != 0 {
		t.Fatalf("after the reset: %v %v", cur, pending)
	}
	_ = d.PowerOff(ctx)
}

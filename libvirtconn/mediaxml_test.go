package libvirtconn

import (
	"strings"
	"testing"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

func TestMediaDeviceChoice(t *testing.T) {
	for _, tc := range []struct {
		machine, devices string
		slot             bmc.MediaSlot
		want             []string
	}{
		{"pc-i440fx-8.2", "", bmc.SlotCD, []string{"device='cdrom'", "dev='hdc' bus='ide'", "<readonly/>", "ua-govbmc-cd"}},
		{"pc-i440fx-8.2", "<disk device='cdrom'><target dev='hdc' bus='ide'/></disk>", bmc.SlotCD, []string{"dev='hdd' bus='ide'"}},
		{"pc-q35-8.2", "<disk device='disk'><target dev='sda' bus='sata'/></disk>", bmc.SlotCD, []string{"device='cdrom'", "dev='sdb' bus='sata'"}},
		{"pc-q35-8.2", "", bmc.SlotUSB, []string{"device='disk'", "dev='sda' bus='usb'", "ua-govbmc-usbstick"}},
	} {
		doc := "<domain><os><type machine='" + tc.machine + "'>hvm</type></os><devices>" + tc.devices + "</devices></domain>"
		disks, err := parseDisks(doc)
		if err != nil {
			t.Fatal(err)
		}
		x, err := disks.newDiskXML(tc.slot, "/pool/v'1.iso", true)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range append(tc.want, "file='/pool/v&#39;1.iso'") {
			if !strings.Contains(x, w) {
				t.Errorf("%s %s: %s lacks %s", tc.machine, tc.slot, x, w)
			}
		}
	}
}

func TestVolumeNames(t *testing.T) {
	u := libvirt.UUID{0xde, 0xad, 0xbe, 0xef, 1}
	p := volumePrefix("node/1 x", u)
	if p != "govbmc-node_1_x-deadbeef-" {
		t.Fatalf("prefix %q", p)
	}
	for _, slot := range []bmc.MediaSlot{bmc.SlotCD, bmc.SlotUSB} {
		v := volumeName(p, slot, 42)
		if got := slotOfVolume(p, v); got != slot {
			t.Errorf("%s: slot of %s is %q", slot, v, got)
		}
		if got := slotOfVolume(volumePrefix("node", u), v); got != "" {
			t.Errorf("%s counted as another domain's", v)
		}
	}
	if slotOfVolume(p, p+"tape-1.img") != "" {
		t.Error("an unknown slot matched")
	}
}

func TestMediaMetadata(t *testing.T) {
	m, err := parseMediaMeta("")
	if err != nil || len(m.Slots) != 0 {
		t.Fatal(m, err)
	}
	m = m.with(bmc.SlotCD, &mediaRecord{Slot: "Cd", URL: "http://h/a.iso?x=1&y=2", Volume: "v", Size: 3})
	m = m.with(bmc.SlotUSB, &mediaRecord{Slot: "USBStick", URL: "http://h/b.img"})
	back, err := parseMediaMeta(m.String())
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := back.get(bmc.SlotCD); !ok || r.URL != "http://h/a.iso?x=1&y=2" || r.Size != 3 {
		t.Fatalf("round trip: %+v", back)
	}
	if _, ok := back.with(bmc.SlotCD, nil).get(bmc.SlotCD); ok {
		t.Fatal("record not removed")
	}
}

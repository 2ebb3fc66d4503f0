package libvirtconn

import (
	"strings"
	"testing"
)

const domainWithSecrets = `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>vm1</name>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
    <boot dev='cdrom'/>
    <bootmenu enable='yes'/>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/var/lib/libvirt/images/vm1.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <graphics type='vnc' port='-1' passwd='s3cret'/>
  </devices>
  <qemu:commandline><qemu:arg value='-no-hpet'/></qemu:commandline>
</domain>`

const domainWithDeviceOrder = `<domain type='kvm'>
  <name>vm2</name>
  <os firmware='efi'>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <target dev='vda' bus='virtio'/>
      <boot order='1'/>
    </disk>
    <interface type='network'>
      <source network='default'/>
      <boot order="2"></boot>
    </interface>
  </devices>
</domain>`

func TestScanDomainXML(t *testing.T) {
	s, err := scanDomainXML(domainWithSecrets)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.Devices, ",") != "hd,cdrom" || s.EFI || s.DeviceOrder {
		t.Errorf("scan = %+v", s.bootConfig)
	}
	s, err = scanDomainXML(domainWithDeviceOrder)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Devices) != 0 || !s.EFI || !s.DeviceOrder || len(s.devBoots) != 2 {
		t.Errorf("scan = %+v, device boots %d", s.bootConfig, len(s.devBoots))
	}
	for _, loader := range []string{
		`<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>`,
		`<loader readonly='yes'>/usr/share/qemu/edk2-x86_64-code.fd</loader>`,
	} {
		doc := strings.Replace(domainWithSecrets, "<bootmenu enable='yes'/>", loader, 1)
		if s, err := scanDomainXML(doc); err != nil || !s.EFI {
			t.Errorf("loader %s: efi=%v err=%v", loader, s != nil && s.EFI, err)
		}
	}
}

func TestWithBootDevices(t *testing.T) {
	out, err := withBootDevices(domainWithSecrets, []string{"network"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scanDomainXML(out)
	if err != nil {
		t.Fatalf("result does not parse: %v\n%s", err, out)
	}
	if strings.Join(s.Devices, ",") != "network" {
		t.Errorf("devices = %v\n%s", s.Devices, out)
	}
	// Everything else survives byte for byte: secrets, namespaces, the rest of <os>.
	for _, keep := range []string{"passwd='s3cret'", "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'", "<qemu:arg value='-no-hpet'/>", "<bootmenu enable='yes'/>", "<type arch='x86_64' machine='pc'>hvm</type>"} {
		if !strings.Contains(out, keep) {
			t.Errorf("lost %q:\n%s", keep, out)
		}
	}

	out, err = withBootDevices(domainWithDeviceOrder, []string{"cdrom"})
	if err != nil {
		t.Fatal(err)
	}
	s, err = scanDomainXML(out)
	if err != nil {
		t.Fatal(err)
	}
	if s.DeviceOrder || strings.Join(s.Devices, ",") != "cdrom" || !s.EFI {
		t.Errorf("per-device order not replaced: %+v\n%s", s.bootConfig, out)
	}
	if strings.Contains(out, "order=") {
		t.Errorf("a <boot order> survived:\n%s", out)
	}
}

func TestWithoutBootIgnoresOnlyBoot(t *testing.T) {
	a, _ := withoutBoot(domainWithSecrets)
	pxe, _ := withBootDevices(domainWithSecrets, []string{"network"})
	b, _ := withoutBoot(pxe)
	if a != b {
		t.Errorf("boot-less forms differ:\n%s\n---\n%s", a, b)
	}
	changed := strings.Replace(pxe, "s3cret", "other", 1)
	c, _ := withoutBoot(changed)
	if a == c {
		t.Error("a change outside boot went unnoticed")
	}
}

func TestScanRejectsBrokenXML(t *testing.T) {
	for _, doc := range []string{"", "<domain><name>x</name></domain>", "<domain><os>"} {
		if _, err := scanDomainXML(doc); err == nil {
			t.Errorf("accepted %q", doc)
		}
	}
}

// FuzzBootXML: any document either fails to scan or can be given a boot
// device and still scans, with exactly that device and nothing lost before
// <os>'s end.
func FuzzBootXML(f *testing.F) {
	f.Add(domainWithSecrets)
	f.Add(domainWithDeviceOrder)
	f.Add("<domain><os></os></domain>")
	f.Fuzz(func(t *testing.T, doc string) {
		if _, err := scanDomainXML(doc); err != nil {
			return
		}
		out, err := withBootDevices(doc, []string{"network"})
		if err != nil {
			t.Fatalf("scanned but could not be edited: %v", err)
		}
		s, err := scanDomainXML(out)
		if err != nil {
			t.Fatalf("edited document does not scan: %v\n%s", err, out)
		}
		if len(s.Devices) != 1 || s.Devices[0] != "network" || s.DeviceOrder {
			t.Fatalf("edited boot config %+v\n%s", s.bootConfig, out)
		}
	})
}

func TestNextBootMarkRoundTrip(t *testing.T) {
	for _, doc := range []string{domainWithSecrets, domainWithDeviceOrder, "<domain><name>x</name><metadata><app:x xmlns:app='urn:a'/></metadata><os></os></domain>"} {
		marked, err := withNextBootMark(doc, []string{"hd", "cdrom"})
		if err != nil {
			t.Fatal(err)
		}
		s, err := scanDomainXML(marked)
		if err != nil || s.Restore == nil || strings.Join(*s.Restore, ",") != "hd,cdrom" {
			t.Fatalf("mark not found (%v): %+v\n%s", err, s, marked)
		}
		again, _ := withNextBootMark(marked, []string{"network"})
		if s, _ := scanDomainXML(again); s == nil || strings.Join(*s.Restore, ",") != "network" || strings.Count(again, "<govbmc:next-boot ") != 1 {
			t.Fatalf("re-marking did not replace the mark:\n%s", again)
		}
		clean, err := withoutNextBootMark(marked)
		if err != nil {
			t.Fatal(err)
		}
		if interTagSpace.ReplaceAllString(clean, "><") != interTagSpace.ReplaceAllString(doc, "><") {
			t.Errorf("unmarking did not give the document back:\n%s\n---\n%s", doc, clean)
		}
	}
}

// TestNextBootMarkInEmptiedMetadata: libvirt writes a <metadata> emptied of
// other marks as <metadata/>; the mark goes inside it, not after it (where
// libvirt drops it, and a next-boot override read back as persistent).
func TestNextBootMarkInEmptiedMetadata(t *testing.T) {
	doc := "<domain><name>x</name>\n  <metadata/>\n  <os><boot dev='cdrom'/></os></domain>"
	marked, err := withNextBootMark(doc, []string{"hd"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scanDomainXML(marked)
	if err != nil || s.Restore == nil || strings.Join(*s.Restore, ",") != "hd" {
		t.Fatalf("mark not found (%v):\n%s", err, marked)
	}
	if !strings.Contains(marked, "<metadata><govbmc:next-boot ") || strings.Contains(marked, "<metadata/>") {
		t.Fatalf("mark not inside <metadata>:\n%s", marked)
	}
}

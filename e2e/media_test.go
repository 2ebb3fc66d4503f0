package e2e

import (
	"context"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/libvirtconn"
)

// TestRedfishVirtualMediaOnQemu is Ironic's redfish-virtual-media flow
// through sushy against a real VM: eject everything found under the
// System and the Manager (the domain's own CD included), insert a bootable
// ISO served over HTTPS into the Cd, set a Once Cd override and reset; the
// ISO's line appears on the serial console. After the eject the next Cd
// boot does not boot it and no volume or device is left. A USBStick is
// attached read-only.
func TestRedfishVirtualMediaOnQemu(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	redfishVirtualMedia(t, "qemu:///system", "https")
}

// TestRedfishVirtualMediaOnQemuOverSSH is the same through qemu+ssh, the
// image over plain HTTP.
func TestRedfishVirtualMediaOnQemuOverSSH(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	sshd := testtool.StartSshd(t)
	redfishVirtualMedia(t, sshURI(sshd, "qemu", "/system", sshd.KnownHosts), "http")
}

// mediaVolumes lists the virtual media volumes named with prefix in every
// pool ("govbmc-<domain>-<first 8 hex digits of its UUID>-").
func mediaVolumes(t *testing.T, c *libvirtconn.Conn, prefix string) []libvirt.StorageVol {
	t.Helper()
	var out []libvirt.StorageVol
	err := c.Do(ctxFor(t), func(lv *libvirt.Libvirt) error {
		pools, _, err := lv.ConnectListAllStoragePools(1, 0)
		if err != nil {
			return err
		}
		for _, p := range pools {
			_ = lv.StoragePoolRefresh(p, 0)
			vols, _, err := lv.StoragePoolListAllVolumes(p, 1, 0)
			if err != nil {
				continue // an inactive pool
			}
			for _, v := range vols {
				if strings.HasPrefix(v.Name, prefix) {
					out = append(out, v)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertNoMedia checks that no volume of the domain is left and that its
// definitions hold no image govbmc attached: only its one (empty) CD-ROM.
func assertNoMedia(t *testing.T, c *libvirtconn.Conn, domain, prefix string) {
	t.Helper()
	if vols := mediaVolumes(t, c, prefix); len(vols) > 0 {
		t.Fatalf("volumes left: %v", vols)
	}
	for _, flags := range []libvirt.DomainXMLFlags{libvirt.DomainXMLInactive, 0} {
		doc := testtool.DomainXML(t, c, domain, flags)
		if strings.Count(doc, "<disk") != 1 || strings.Contains(doc, prefix) || strings.Contains(doc, "bus='usb'") {
			t.Fatalf("virtual media left in the definition (flags %d):\n%s", flags, doc)
		}
	}
}

func redfishVirtualMedia(t *testing.T, uri, scheme string) {
	py := testtool.SushyPython(t)
	c := get(t, pool(t), uri)
	name := testtool.DomainName(t, "")
	// After the domain is gone: what a failed run left is deleted.
	t.Cleanup(func() {
		for _, v := range mediaVolumes(t, c, "govbmc-"+name+"-") {
			_ = c.Do(context.Background(), func(lv *libvirt.Libvirt) error { return lv.StorageVolDelete(v, 0) })
		}
	})
	logPath, _ := defineQemuDomain(t, c, name)
	n := serveBoth(t, c, name, time.Minute)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: n.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	line := "govbmc redfish virtual media " + rand.Text()[:10]
	iso, err := os.ReadFile(testtool.BootISO(t, line))
	if err != nil {
		t.Fatal(err)
	}
	images := testtool.NewMediaServer(t, iso)
	image := images.HTTP.URL + "/image"
	if scheme == "https" {
		image = images.HTTPS.URL + "/image"
	}
	sysID := strings.TrimPrefix(n.path, "/redfish/v1/Systems/")
	prefix := "govbmc-" + name + "-" + strings.ReplaceAll(sysID, "-", "")[:8] + "-"
	sushy := func(step string, args ...string) {
		t.Helper()
		out, err := testtool.RunEnv(t, 5*time.Minute, testtool.ClientEnv(ca), py,
			append([]string{"testdata/sushy_vmedia.py", n.srv.URL, sysID, admin.Name, admin.Password, ca, step}, args...)...)
		if err != nil || !strings.Contains(out, "sushy-vmedia: OK") {
			t.Fatalf("sushy %s: %v\n%s", step, err, out)
		}
	}

	// 1. Eject everything: the domain's own CD holds blank.iso.
	sushy("eject-all")
	if doc := testtool.InactiveXML(t, c, name); strings.Contains(doc, "blank.iso") {
		t.Fatalf("eject left the domain's CD full:\n%s", doc)
	}
	// 2. Insert, Once Cd, reset: the ISO boots.
	sushy("boot-cd", image)
	testtool.Eventually(t, 90*time.Second, "the ISO's line on the serial console", func() bool {
		return strings.Contains(readLog(logPath), line)
	})
	// Consumed: what is left is the domain's own boot order.
	if e, tg := n.boot(); e == "Once" || tg == "Cd" {
		t.Fatalf("the Once Cd override reads %s %s after the boot", e, tg)
	}
	// 3. Eject: nothing left, and the next Cd boot finds no ISO.
	sushy("eject-all")
	n.reset("ForceOff")
	assertNoMedia(t, c, name, prefix)
	if err := os.Truncate(logPath, 0); err != nil {
		t.Fatal(err)
	}
	n.setBoot("Once", "Cd")
	n.reset("On")
	testtool.Eventually(t, 90*time.Second, "SeaBIOS fails to boot the empty CD", func() bool {
		log := readLog(logPath)
		return strings.Contains(log, "Boot failed") || strings.Contains(log, "No bootable device")
	})
	if log := readLog(logPath); strings.Contains(log, line) || firstBoot(log) != "DVD/CD" {
		t.Fatalf("after the eject, first boot device %q; the log:\n%s", firstBoot(log), log)
	}
	n.reset("ForceOff")
	// 4. A USBStick, read-only.
	sushy("usb", image)
	for _, flags := range []libvirt.DomainXMLFlags{libvirt.DomainXMLInactive} {
		doc := testtool.DomainXML(t, c, name, flags)
		if !strings.Contains(doc, "bus='usb'") || !strings.Contains(doc, "<readonly/>") || !strings.Contains(doc, prefix) {
			t.Fatalf("no read-only USB disk:\n%s", doc)
		}
	}
	if vols := mediaVolumes(t, c, prefix); len(vols) != 1 {
		t.Fatalf("volumes after the USB insert: %v", vols)
	}
	sushy("eject-all")
	assertNoMedia(t, c, name, prefix)
}

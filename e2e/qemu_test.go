package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/internal/testtool"
)

// qemuDomain is a 64 MiB diskless VM (a CD/DVD with a blank, unbootable medium) whose firmware writes to a serial log
// file: SeaBIOS with its boot menu, and iPXE on a user-mode virtio NIC.
const qemuDomain = `<domain type='%[2]s'>
  <name>%[1]s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
    <bootmenu enable='yes' timeout='1000'/>
    <bios useserial='yes'/>
  </os>
  <devices>
    <disk type='file' device='cdrom'><source file='%[4]s'/><target dev='hdc' bus='ide'/><readonly/></disk>
    <interface type='user'><mac address='52:54:00:12:34:56'/><model type='virtio'/></interface>
    <serial type='file'><source path='%[3]s'/><target port='0'/></serial>
    <graphics type='vnc' port='-1' listen='127.0.0.1' passwd='vncsecr8'/>
  </devices>
</domain>`

// serialLog is a file qemu may write, in a directory the test removes.
func serialLog(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "govbmc-serial")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "serial.log")
}

// defineQemuDomain defines the test's qemuDomain (serial console to a file,
// an IDE CD-ROM holding a blank 1 MiB image) and returns the console's log
// and the blank image's paths.
func defineQemuDomain(t *testing.T, c testtool.LibvirtCaller, name string) (logPath, blank string) {
	t.Helper()
	logPath = serialLog(t)
	blank = filepath.Join(filepath.Dir(logPath), "blank.iso")
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	testtool.DefineDomain(t, c, name, qemuDomain, testtool.VirtType(), logPath, blank)
	return logPath, blank
}

func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// firstBoot is the first device SeaBIOS tried ("ROM" is the NIC's iPXE
// option ROM), or "" before it tried any.
func firstBoot(log string) string {
	_, rest, ok := strings.Cut(log, "Booting from ")
	if !ok {
		return ""
	}
	dev, _, ok := strings.Cut(rest, "...")
	if !ok {
		return "" // the line is still being written
	}
	return dev
}

// TestQemuPowerAndPXEBoot drives a real VM: the power matrix confirmed by
// libvirt, a next-boot PXE override that really PXE-boots once, a disk boot
// that does not, and a next-boot CD/DVD override gone after one boot.
func TestQemuPowerAndPXEBoot(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	c := get(t, pool(t), "qemu:///system")
	name := testtool.DomainName(t, "")
	logPath := serialLog(t)
	blank := filepath.Join(filepath.Dir(logPath), "blank.iso")
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	testtool.DefineDomain(t, c, name, qemuDomain, testtool.VirtType(), logPath, blank)
	n := serveDomain(t, c, name)

	// PXE, next boot only.
	n.must("chassis", "bootdev", "pxe")
	mustContain(t, n.must("chassis", "bootparam", "get", "5"), "Force PXE", "Options apply to only next boot")
	mustContain(t, n.must("power", "on"), "Up/On")
	testtool.WaitDomainState(t, c, name, libvirt.DomainRunning, "the VM runs after the power on")
	testtool.Eventually(t, 90*time.Second, "the VM PXE-boots (iPXE runs on its serial console)", func() bool {
		return strings.Contains(readLog(logPath), "iPXE (PCI 00:03.0) starting execution")
	})
	if dev := firstBoot(readLog(logPath)); dev != "ROM" {
		t.Fatalf("first boot device %q, want the NIC's ROM (PXE):\n%s", dev, readLog(logPath))
	}
	// The override was for one boot: the definition is back to the disk.
	if doc := testtool.InactiveXML(t, c, name); !strings.Contains(doc, "<boot dev='hd'/>") || strings.Contains(doc, "network") {
		t.Fatalf("definition after the PXE boot:\n%s", doc)
	}
	if !strings.Contains(testtool.InactiveXML(t, c, name), "passwd='vncsecr8'") {
		t.Fatal("the VNC password was lost")
	}

	mustContain(t, n.must("power", "diag"), "Diag")
	mustContain(t, n.must("power", "soft"), "Soft") // no guest OS: ACPI is ignored
	mustContain(t, n.must("power", "off"), "Down/Off")
	testtool.WaitDomainState(t, c, name, libvirt.DomainShutoff, "the VM is off after the power off")

	// Disk, persistent: SeaBIOS boots the (absent) disk first, not PXE.
	n.must("chassis", "bootdev", "disk", "options=persistent")
	if err := os.Truncate(logPath, 0); err != nil {
		t.Fatal(err)
	}
	n.must("power", "on")
	testtool.Eventually(t, 60*time.Second, "SeaBIOS picks a boot device", func() bool {
		return firstBoot(readLog(logPath)) != ""
	})
	if dev := firstBoot(readLog(logPath)); dev != "Hard Disk" {
		t.Fatalf("first boot device %q, want the hard disk:\n%s", dev, readLog(logPath))
	}

	// CD/DVD for the next boot only, consumed by a power cycle.
	n.must("chassis", "bootdev", "cdrom")
	if !strings.Contains(testtool.InactiveXML(t, c, name), "<boot dev='cdrom'/>") {
		t.Fatal("cdrom override not written")
	}
	if err := os.Truncate(logPath, 0); err != nil {
		t.Fatal(err)
	}
	mustContain(t, n.must("power", "cycle"), "Cycle")
	testtool.Eventually(t, 60*time.Second, "SeaBIOS picks a boot device", func() bool {
		return firstBoot(readLog(logPath)) != ""
	})
	if dev := firstBoot(readLog(logPath)); dev != "DVD/CD" {
		t.Fatalf("first boot device %q, want the CD/DVD:\n%s", dev, readLog(logPath))
	}
	// The power cycle was acknowledged and goes on: it restores the
	// definition once the domain has started with the override.
	testtool.Eventually(t, 30*time.Second, "the cdrom override gone after one boot", func() bool {
		doc := testtool.InactiveXML(t, c, name)
		return !strings.Contains(doc, "<boot dev='cdrom'/>") && strings.Contains(doc, "<boot dev='hd'/>")
	})
	mustContain(t, n.must("chassis", "bootparam", "get", "5"), "Force Boot from default Hard-Drive", "Options apply to all future boots")
	n.must("power", "off")
}

// TestPowerStatusDuringSlowStart: a power on whose start libvirtd takes
// seconds over (the test's qemu hook holds it 3 s, as a slow storage
// backend or a busy host would) is in flight on a BMC that has never asked
// for the domain's state. libvirtd holds the domain's lock for the whole
// start, so asking it would wait; the BMC answers power status at once from
// what the power on found, and "on" once the domain runs.
func TestPowerStatusDuringSlowStart(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	testtool.RequireSlowStartHook(t)
	c := get(t, pool(t), "qemu:///system")
	name := testtool.SlowStartPrefix + testtool.DomainName(t, "")
	testtool.DefineDomain(t, c, name, testtool.ConsoleDomainXML, testtool.VirtType())
	n := serveDomain(t, c, name)

	powered := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := n.ipmitool("-N", "10", "-R", "1", "power", "on")
		powered <- err
	}()
	testtool.AwaitSlowStartHold(t, name)
	var answers []time.Duration
	for time.Since(start) < 2500*time.Millisecond {
		t0 := time.Now()
		// Ironic's timing: one try of at most 5 s, but here 1 s.
		out, err := n.ipmitool("-N", "1", "-R", "1", "power", "status")
		answers = append(answers, time.Since(t0).Round(time.Millisecond))
		if err != nil || !strings.Contains(out, "Chassis Power is off") {
			t.Fatalf("power status %v after a power on that takes seconds: %v\n%s", time.Since(start).Round(time.Millisecond), err, out)
		}
	}
	if err := <-powered; err != nil && time.Since(start) < 3*time.Second {
		t.Fatalf("the power on failed early: %v", err)
	}
	// The BMC acknowledged the power on within its bound and went on with
	// it: the domain runs once libvirt's start (hook included) is done.
	testtool.WaitDomainState(t, c, name, libvirt.DomainRunning, "the domain runs after the slow power on")
	if took := time.Since(start); took < 3*time.Second {
		t.Fatalf("the power on took %v: the hook did not slow it, so the test proves nothing", took)
	}
	testtool.Eventually(t, 30*time.Second, "power status on once the domain runs", func() bool {
		out, err := n.ipmitool("power", "status")
		return err == nil && strings.Contains(out, "Chassis Power is on")
	})
	t.Logf("status answers (each a whole ipmitool run) during the start: %v", answers)
}

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/libvirtconn"
)

// testDomain is a domain of libvirt's test driver, with a secret.
const testDomain = `<domain type='test'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
  <devices>
    <interface type='user'><mac address='52:54:00:00:00:02'/></interface>
    <graphics type='vnc' port='-1' passwd='vnc-secret'/>
  </devices>
</domain>`

// testDriverNode defines a test-driver domain through the system libvirtd
// and serves its BMC.
func testDriverNode(t *testing.T) (*libvirtconn.Conn, string, *node) {
	t.Helper()
	testtool.SystemLibvirtd(t)
	c := get(t, pool(t), "test:///default")
	name := testtool.DomainName(t, "")
	testtool.DefineDomain(t, c, name, testDomain)
	return c, name, serveDomain(t, c, name)
}

// TestIpmitoolOnTestDriver is the wide matrix on test:///default through
// libvirtd: every power command, confirmed by libvirt, and boot devices.
func TestIpmitoolOnTestDriver(t *testing.T) {
	c, name, n := testDriverNode(t)

	steps := []struct {
		args []string
		out  string
		want libvirt.DomainState
	}{
		{[]string{"power", "status"}, "Chassis Power is off", libvirt.DomainShutoff},
		{[]string{"power", "on"}, "Up/On", libvirt.DomainRunning},
		{[]string{"power", "status"}, "Chassis Power is on", libvirt.DomainRunning},
		{[]string{"power", "on"}, "Up/On", libvirt.DomainRunning},
		{[]string{"power", "reset"}, "Reset", libvirt.DomainRunning},
		{[]string{"power", "cycle"}, "Cycle", libvirt.DomainRunning},
		{[]string{"power", "soft"}, "Soft", libvirt.DomainShutoff},
		{[]string{"power", "off"}, "Down/Off", libvirt.DomainShutoff},
		{[]string{"power", "cycle"}, "Cycle", libvirt.DomainRunning},
		{[]string{"power", "off"}, "Down/Off", libvirt.DomainShutoff},
	}
	for _, s := range steps {
		mustContain(t, n.must(s.args...), s.out)
		if got := testtool.DomainState(t, c, name); got != s.want {
			t.Fatalf("after %v libvirt says state %d, want %d", s.args, got, s.want)
		}
	}

	for _, d := range []struct{ arg, xml, text string }{
		{"pxe", "network", "Force PXE"},
		{"disk", "hd", "Force Boot from default Hard-Drive"},
		{"cdrom", "cdrom", "Force Boot from CD/DVD"},
		{"floppy", "fd", "Force Boot from Floppy/primary removable media"},
	} {
		n.must("chassis", "bootdev", d.arg, "options=persistent")
		doc := testtool.InactiveXML(t, c, name)
		if !strings.Contains(doc, fmt.Sprintf("<boot dev='%s'/>", d.xml)) || !strings.Contains(doc, "passwd='vnc-secret'") {
			t.Fatalf("bootdev %s: definition:\n%s", d.arg, doc)
		}
		mustContain(t, n.must("chassis", "bootparam", "get", "5"), "Boot Device Selector : "+d.text, "Options apply to all future boots")
	}
	// Asking for something libvirt cannot do is refused, not faked.
	// (ipmitool exits 0 even so; what it prints tells.)
	out, _ := n.ipmitool("chassis", "bootdev", "bios")
	mustContain(t, out, "Set Chassis Boot Parameter 5 failed: Invalid data field in request")

	// Right while the domain runs: the inactive definition is what counts.
	n.must("power", "on")
	n.must("chassis", "bootdev", "pxe", "options=persistent")
	mustContain(t, n.must("chassis", "bootparam", "get", "5"), "Force PXE")
}

// TestMissingDomainIsRetryable: a domain that is not there answers 0xC0 and
// logs node, domain and cause; once defined, the same BMC works.
func TestMissingDomainIsRetryable(t *testing.T) {
	testtool.SystemLibvirtd(t)
	c := get(t, pool(t), "test:///default")
	name := testtool.DomainName(t, "")
	n := serveDomain(t, c, name)
	out, err := n.ipmitool("power", "status")
	if err == nil {
		t.Fatalf("power status of a missing domain succeeded:\n%s", out)
	}
	mustContain(t, out, "Node busy")
	mustContain(t, n.logs.String(), "node="+n.name, name, "Domain not found")
	testtool.DefineDomain(t, c, name, testDomain)
	mustContain(t, n.must("power", "status"), "Chassis Power is off")
}

// TestDomainUndefinedAndRedefined: a running domain is destroyed and
// undefined under its BMC: power and boot commands answer 0xC0 and the log
// names the cause; once a domain of that name is defined again (a new UUID,
// another boot device), the same BMC drives the new definition, with no
// trace of the old one's state.
func TestDomainUndefinedAndRedefined(t *testing.T) {
	c, name, n := testDriverNode(t)
	mustContain(t, n.must("power", "on"), "Up/On")
	mustContain(t, n.must("power", "status"), "Chassis Power is on")

	err := c.Do(ctxFor(t), func(lv *libvirt.Libvirt) error {
		dom, err := lv.DomainLookupByName(name)
		if err != nil {
			return err
		}
		if err := lv.DomainDestroy(dom); err != nil {
			return err
		}
		return lv.DomainUndefine(dom)
	})
	if err != nil {
		t.Fatalf("destroy and undefine: %v", err)
	}
	for _, args := range [][]string{{"power", "status"}, {"power", "on"}, {"chassis", "bootparam", "get", "5"}} {
		testtool.Eventually(t, 5*time.Second, fmt.Sprintf("%v answered with 0xC0", args), func() bool {
			out, err := n.ipmitool(append([]string{"-R", "1"}, args...)...)
			return (err != nil || strings.Contains(out, "failed")) && strings.Contains(out, "Node busy")
		})
	}
	mustContain(t, n.logs.String(), "Domain not found", name)

	testtool.DefineDomain(t, c, name, strings.Replace(testDomain, "<boot dev='hd'/>", "<boot dev='cdrom'/>", 1))
	mustContain(t, n.must("power", "status"), "Chassis Power is off")
	mustContain(t, n.must("chassis", "bootparam", "get", "5"), "Force Boot from CD/DVD")
	n.must("chassis", "bootdev", "pxe", "options=persistent")
	if doc := testtool.InactiveXML(t, c, name); !strings.Contains(doc, "<boot dev='network'/>") {
		t.Fatalf("bootdev pxe on the new definition:\n%s", doc)
	}
	mustContain(t, n.must("power", "on"), "Up/On")
	if got := testtool.DomainState(t, c, name); got != libvirt.DomainRunning {
		t.Fatalf("the new definition is in state %d after power on", got)
	}
}

// TestStoppedLibvirtdIsRetryableAndRecovers uses a libvirtd of the test's
// own, killed and restarted under the BMC.
func TestStoppedLibvirtdIsRetryableAndRecovers(t *testing.T) {
	lvd := testtool.StartPrivateLibvirtd(t)
	c := get(t, pool(t), "test+unix:///default?socket="+lvd.Socket)
	n := serveDomain(t, c, "test") // the test driver's own domain, running
	mustContain(t, n.must("power", "status"), "Chassis Power is on")
	lvd.Stop()
	testtool.Eventually(t, 10e9, "outage answered with 0xC0", func() bool {
		out, err := n.ipmitool("power", "status")
		return err != nil && strings.Contains(out, "Node busy")
	})
	mustContain(t, n.logs.String(), "hypervisor unreachable")
	lvd.Start()
	testtool.Eventually(t, 20e9, "recovery", func() bool {
		out, err := n.ipmitool("power", "status")
		return err == nil && strings.Contains(out, "Chassis Power is on")
	})
}

package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
)

// testDomainXML is a test-driver domain with a secret (the VNC password) and
// per-device boot order.
const testDomainXML = `<domain type='test'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <os>
    <type arch='x86_64'>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/guest/disk.img'/>
      <target dev='hda'/>
      <boot order='1'/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:00:00:01'/>
      <boot order='2'/>
    </interface>
    <graphics type='vnc' port='-1' passwd='s3cret-vnc'/>
  </devices>
</domain>`

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testDomain defines a domain of testDomainXML on test:///default and
// returns the connection, the domain's name, its Domain and a context.
func testDomain(t *testing.T) (*Conn, string, *Domain, context.Context) {
	t.Helper()
	_, c := testConn(t)
	name := testtool.DefineTestDomain(t, c, testDomainXML)
	return c, name, NewDomain(c, name, nil), testCtx(t)
}

// testConn returns a shared connection to test:///default on the system libvirtd.
func testConn(t *testing.T) (*Pool, *Conn) {
	t.Helper()
	testtool.SystemLibvirtd(t)
	pool := NewPool(nil, 0)
	t.Cleanup(func() { pool.Close() })
	c, err := pool.Get("test:///default", Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	return pool, c
}

func TestDomainPowerMatrix(t *testing.T) {
	c, name, d, ctx := testDomain(t)

	steps := []struct {
		op      string
		do      func(context.Context) error
		want    libvirt.DomainState
		wantErr error
	}{
		{"power on", d.PowerOn, libvirt.DomainRunning, nil},
		{"power on again", d.PowerOn, libvirt.DomainRunning, nil},
		{"hard reset", d.Reset, libvirt.DomainRunning, nil},
		{"power cycle", d.PowerCycle, libvirt.DomainRunning, nil},
		{"soft off", d.SoftOff, libvirt.DomainShutoff, nil},
		{"soft off again", d.SoftOff, libvirt.DomainShutoff, nil},
		{"power off when off", d.PowerOff, libvirt.DomainShutoff, nil},
		{"reset when off", d.Reset, libvirt.DomainShutoff, bmc.ErrPoweredOff},
		{"nmi when off", d.DiagnosticInterrupt, libvirt.DomainShutoff, bmc.ErrPoweredOff},
		{"power cycle from off", d.PowerCycle, libvirt.DomainRunning, nil},
		{"power off", d.PowerOff, libvirt.DomainShutoff, nil},
	}
	for _, s := range steps {
		err := s.do(ctx)
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Fatalf("%s: err=%v, want %v", s.op, err, s.wantErr)
		}
		if got := testtool.DomainState(t, c, name); got != s.want {
			t.Fatalf("%s: libvirt state %d, want %d", s.op, got, s.want)
		}
		ps, err := d.PowerState(ctx)
		if err != nil || (ps == bmc.PowerOn) != (s.want == libvirt.DomainRunning) {
			t.Fatalf("%s: PowerState=%v err=%v", s.op, ps, err)
		}
	}
}

func TestDomainFoundByUUID(t *testing.T) {
	_, c := testConn(t)
	name := testtool.DefineTestDomain(t, c, testDomainXML)
	u, err := NewDomain(c, name, nil).UUID(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	byUUID := NewDomain(c, u.String(), nil)
	if err := byUUID.PowerOn(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if testtool.DomainState(t, c, name) != libvirt.DomainRunning {
		t.Fatal("domain addressed by UUID did not start")
	}
	// Stopped behind the BMC's back (virsh destroy): its power status says
	// so (the state cache, keyed by name, holds nothing under the UUID).
	testtool.OnDomain(t, c, name, func(lv *libvirt.Libvirt, dom libvirt.Domain) error { return lv.DomainDestroy(dom) })
	testtool.Eventually(t, 3*settleTime, "the outside destroy seen by the BMC addressing the domain by UUID", func() bool {
		s, err := byUUID.PowerState(testCtx(t))
		return err == nil && s == bmc.PowerOff
	})
}

func TestBootDeviceKeepsSecretsAndDropsDeviceOrder(t *testing.T) {
	c, name, d, ctx := testDomain(t)

	if err := d.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootPXE, Persistent: true}); err != nil {
		t.Fatal(err)
	}
	doc := testtool.DomainXML(t, c, name, libvirt.DomainXMLInactive|libvirt.DomainXMLSecure)
	for _, want := range []string{"<boot dev='network'/>", "passwd='s3cret-vnc'"} {
		if !strings.Contains(doc, want) {
			t.Errorf("inactive XML lacks %s:\n%s", want, doc)
		}
	}
	if strings.Contains(doc, "order=") {
		t.Errorf("per-device boot order left in place:\n%s", doc)
	}
	o, err := d.BootOverride(ctx)
	if err != nil || o != (bmc.BootOverride{Device: bmc.BootPXE, Persistent: true}) {
		t.Fatalf("BootOverride = %+v, %v", o, err)
	}

	for _, tc := range []struct {
		dev  bmc.BootDevice
		xml  string
		back bmc.BootDevice
	}{
		{bmc.BootDisk, "hd", bmc.BootDisk},
		{bmc.BootDiskSafe, "hd", bmc.BootDisk},
		{bmc.BootCDROM, "cdrom", bmc.BootCDROM},
		{bmc.BootFloppy, "fd", bmc.BootFloppy},
		{bmc.BootPXE, "network", bmc.BootPXE},
	} {
		if err := d.SetBootOverride(ctx, bmc.BootOverride{Device: tc.dev, Persistent: true}); err != nil {
			t.Fatal(err)
		}
		if doc := testtool.DomainXML(t, c, name, libvirt.DomainXMLInactive); strings.Count(doc, "<boot dev=") != 1 || !strings.Contains(doc, "<boot dev='"+tc.xml+"'/>") {
			t.Errorf("%v: inactive XML:\n%s", tc.dev, doc)
		}
		if o, _ := d.BootOverride(ctx); o.Device != tc.back {
			t.Errorf("%v reads back as %v", tc.dev, o.Device)
		}
	}
	for _, dev := range []bmc.BootDevice{bmc.BootBIOSSetup, bmc.BootDiagnostic} {
		if err := d.SetBootOverride(ctx, bmc.BootOverride{Device: dev}); !errors.Is(err, bmc.ErrInvalidArgument) {
			t.Errorf("%v: err=%v, want ErrInvalidArgument", dev, err)
		}
	}
}

func TestBootDeviceReadFromInactiveWhileRunning(t *testing.T) {
	c, name, d, ctx := testDomain(t)
	if err := d.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootCDROM, Persistent: true}); err != nil {
		t.Fatal(err)
	}
	if live := testtool.DomainXML(t, c, name, 0); strings.Contains(live, "dev='cdrom'") {
		t.Fatalf("the running definition changed:\n%s", live)
	}
	o, err := d.BootOverride(ctx)
	if err != nil || o.Device != bmc.BootCDROM || !o.Persistent {
		t.Fatalf("BootOverride while running = %+v, %v", o, err)
	}
}

func TestNextBootOverrideAppliesToOneBoot(t *testing.T) {
	c, name, d, ctx := testDomain(t)
	before := testtool.DomainXML(t, c, name, libvirt.DomainXMLInactive|libvirt.DomainXMLSecure)

	if err := d.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootPXE}); err != nil {
		t.Fatal(err)
	}
	if o, _ := d.BootOverride(ctx); o != (bmc.BootOverride{Device: bmc.BootPXE}) {
		t.Fatalf("pending next-boot override reads %+v", o)
	}
	if err := d.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	// The domain booted with the override: the running definition has it,
	// the persistent one is back to what it was, per-device order included.
	if live := testtool.DomainXML(t, c, name, 0); !strings.Contains(live, "<boot dev='network'/>") {
		t.Errorf("the domain did not boot with the override:\n%s", live)
	}
	if after := testtool.DomainXML(t, c, name, libvirt.DomainXMLInactive|libvirt.DomainXMLSecure); after != before {
		t.Errorf("definition not restored:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if o, _ := d.BootOverride(ctx); o.Device != bmc.BootNone {
		t.Errorf("after the boot the override reads %+v, want none", o)
	}
}

func TestNextBootOverrideConsumedByOutsideStart(t *testing.T) {
	c, name, d, ctx := testDomain(t)
	if err := d.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootCDROM}); err != nil {
		t.Fatal(err)
	}
	// Started behind the BMC's back (virsh start).
	testtool.OnDomain(t, c, name, func(lv *libvirt.Libvirt, dom libvirt.Domain) error { return lv.DomainCreate(dom) })
	if s, err := d.PowerState(ctx); err != nil || s != bmc.PowerOn {
		t.Fatalf("PowerState = %v, %v", s, err)
	}
	if o, _ := d.BootOverride(ctx); o.Device != bmc.BootNone {
		t.Errorf("override still pending after an outside start: %+v", o)
	}
}

func TestMissingDomainThenDefined(t *testing.T) {
	_, c := testConn(t)
	name := testtool.DomainName(t, "")
	d := NewDomain(c, name, nil)
	_, err := d.PowerState(testCtx(t))
	if err == nil || !libvirt.IsNotFound(err) || !strings.Contains(err.Error(), name) {
		t.Fatalf("missing domain: err=%v", err)
	}
	testtool.DefineTestDomain(t, c, testDomainXML)
	if _, err := d.PowerState(testCtx(t)); err != nil {
		t.Fatalf("after definition: %v", err)
	}
}

func TestUnreachableHypervisor(t *testing.T) {
	pool := NewPool(nil, 0)
	defer pool.Close()
	c, err := pool.Get("qemu+unix:///system?socket=/nonexistent/libvirt-sock", Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = NewDomain(c, "vm", nil).PowerState(testCtx(t))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "/nonexistent/libvirt-sock") {
		t.Fatalf("err=%v, want ErrUnavailable naming the socket", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %v to report an unreachable hypervisor", time.Since(start))
	}
}

func TestOneSharedConnection(t *testing.T) {
	pool, c := testConn(t)
	ctx := testCtx(t)
	var doms []*Domain
	for i := 0; i < 10; i++ {
		again, err := pool.Get("test:///default", Credentials{})
		if err != nil || again != c {
			t.Fatalf("second Get returned another connection (%v)", err)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			doms = append(doms, NewDomain(c, testtool.DefineTestDomain(t, c, testDomainXML), nil))
		})
	}
	_ = doms
	for i := 0; i < 10; i++ {
		for _, d := range doms {
			if _, err := d.PowerState(ctx); err != nil && !libvirt.IsNotFound(err) {
				t.Fatal(err)
			}
		}
	}
	if n := c.Dials.Load(); n != 1 {
		t.Fatalf("%d connections dialled, want 1", n)
	}
}

func TestReconnectsAfterLibvirtdRestart(t *testing.T) {
	lvd := testtool.StartPrivateLibvirtd(t)
	pool := NewPool(nil, 0)
	defer pool.Close()
	c, err := pool.Get("test+unix:///default?socket="+lvd.Socket, Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDomain(c, "test", nil) // the test driver's built-in domain
	if _, err := d.PowerState(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	lvd.Stop()
	testtool.Eventually(t, 10*time.Second, "outage reported as unavailable", func() bool {
		_, err := d.PowerState(testCtx(t))
		return errors.Is(err, ErrUnavailable)
	})
	lvd.Start()
	testtool.Eventually(t, 15*time.Second, "recovery without a new pool", func() bool {
		_, err := d.PowerState(testCtx(t))
		return err == nil
	})
	if n := c.Dials.Load(); n < 2 {
		t.Fatalf("dials=%d: no reconnection happened", n)
	}
}

func TestEFIReportsTheDomainFirmware(t *testing.T) {
	_, c := testConn(t)
	efi := strings.Replace(testDomainXML, "<type arch='x86_64'>hvm</type>",
		"<type arch='x86_64'>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>", 1)
	for _, tc := range []struct {
		name string
		doc  string
		efi  bool
	}{{"uefi", efi, true}, {"legacy", testDomainXML, false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			d := NewDomain(c, testtool.DefineTestDomain(t, c, tc.doc), nil)
			// Whatever the request says, the answer is the firmware's.
			if err := d.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootPXE, Persistent: true, EFI: !tc.efi}); err != nil {
				t.Fatal(err)
			}
			if o, err := d.BootOverride(ctx); err != nil || o.EFI != tc.efi {
				t.Fatalf("EFI=%v (err %v), want %v", o.EFI, err, tc.efi)
			}
		})
	}
}

func TestPoolReleasesUnusedConnections(t *testing.T) {
	pool := NewPool(nil, 0)
	defer pool.Close()
	uri := "qemu+unix:///system?socket=/nonexistent/sock"
	a, _ := pool.Get(uri, Credentials{})
	b, _ := pool.Get(uri, Credentials{})
	if a != b {
		t.Fatal("two Gets, two connections")
	}
	NewDomain(a, "x", nil).Close()
	if c, _ := pool.Get(uri, Credentials{}); c != a {
		t.Fatal("connection closed while still in use")
	} else {
		c.Release()
	}
	NewDomain(b, "y", nil).Close()
	select {
	case <-a.loopDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the last release did not stop the reconnect loop")
	}
	if c, _ := pool.Get(uri, Credentials{}); c == a {
		t.Fatal("a closed connection was handed out again")
	}
}

// TestPowerStateFromLifecycleEvents: once a domain has been looked at, its
// power status costs no libvirt call, and follows starts and stops made by
// anyone (here straight through libvirt) from the events.
func TestPowerStateFromLifecycleEvents(t *testing.T) {
	c, name, d, ctx := testDomain(t)
	if s, err := d.PowerState(ctx); err != nil || s != bmc.PowerOff {
		t.Fatalf("first status %v %v", s, err)
	}
	// The definition's own event may land after that first answer and
	// void it; once events are quiet, one more query warms the cache.
	time.Sleep(200 * time.Millisecond)
	_, _ = d.PowerState(ctx)
	before := c.Calls.Load()
	for i := 0; i < 100; i++ {
		if s, _ := d.PowerState(ctx); s != bmc.PowerOff {
			t.Fatal("cached status wrong")
		}
	}
	if n := c.Calls.Load() - before; n != 0 {
		t.Fatalf("100 power status queries made %d libvirt calls, want 0", n)
	}
	testtool.OnDomain(t, c, name, func(lv *libvirt.Libvirt, dom libvirt.Domain) error { return lv.DomainCreate(dom) })
	testtool.Eventually(t, 5*time.Second, "the start seen through events", func() bool {
		s, _ := d.PowerState(ctx)
		return s == bmc.PowerOn
	})
	testtool.OnDomain(t, c, name, func(lv *libvirt.Libvirt, dom libvirt.Domain) error { return lv.DomainDestroy(dom) })
	testtool.Eventually(t, 5*time.Second, "the stop seen through events", func() bool {
		s, _ := d.PowerState(ctx)
		return s == bmc.PowerOff
	})
}

// TestNextBootOverrideSurvivesRestart: a next-boot override set by one
// vbmcd is still one-shot for the next one (the definition carries it).
func TestNextBootOverrideSurvivesRestart(t *testing.T) {
	_, c := testConn(t)
	doc := strings.Replace(testDomainXML, "<type arch='x86_64'>hvm</type>", "<type arch='x86_64'>hvm</type><boot dev='hd'/>", 1)
	doc = strings.ReplaceAll(doc, "<boot order='1'/>", "")
	doc = strings.ReplaceAll(doc, "<boot order='2'/>", "")
	name := testtool.DefineTestDomain(t, c, doc)
	ctx := testCtx(t)
	if err := NewDomain(c, name, nil).SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootPXE}); err != nil {
		t.Fatal(err)
	}
	// A new vbmcd: a new Domain with nothing in memory.
	d := NewDomain(c, name, nil)
	if o, err := d.BootOverride(ctx); err != nil || o != (bmc.BootOverride{Device: bmc.BootPXE}) {
		t.Fatalf("after the restart the override reads %+v (%v), want PXE for the next boot only", o, err)
	}
	if err := d.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	if live := testtool.DomainXML(t, c, name, 0); !strings.Contains(live, "<boot dev='network'/>") {
		t.Errorf("the domain did not boot with the override:\n%s", live)
	}
	after := testtool.DomainXML(t, c, name, libvirt.DomainXMLInactive)
	if !strings.Contains(after, "<boot dev='hd'/>") || strings.Contains(after, "network") || strings.Contains(after, "next-boot") {
		t.Errorf("definition after the boot:\n%s", after)
	}
	if o, _ := d.BootOverride(ctx); o != (bmc.BootOverride{Device: bmc.BootDisk, Persistent: true}) {
		t.Errorf("after the boot: %+v", o)
	}
}

package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/libvirtconn"
)

// TestIronicPowerControlSlowLibvirt: Ironic's command line with -R 1 -N 1 (one
// try, a one-second timeout) against a libvirt node whose start and destroy
// the hook of scripts/prepare-test-host.sh hold for 3 s each. Every power
// off, on and cycle succeeds on the first try and the domain reaches the
// target, as libvirt itself reports it.
func TestIronicPowerControlSlowLibvirt(t *testing.T) {
	requireQemuAndIpmitool(t)
	testtool.RequireSlowStartHook(t)
	if raw, _ := os.ReadFile("/etc/libvirt/hooks/qemu"); !strings.Contains(string(raw), "stopped") {
		t.Skip("the libvirt hook does not slow destroy yet; run scripts/prepare-test-host.sh")
	}
	name := fmt.Sprintf("%sbench-%d", testtool.SlowStartPrefix, os.Getpid())
	conn, quiet, _ := libvirtDomain(t, name, false)
	port := serve(t, "slow-control", libvirtconn.NewDomain(conn, name, quiet))
	ironic := ipmitoolFor(t, port, "-R", "1", "-N", "1")
	reaches := func(want libvirt.DomainState, what string) {
		t.Helper()
		testtool.Eventually(t, 30*time.Second, what, func() bool {
			s, err := libvirtState(conn, name)
			return err == nil && s == want
		})
	}
	ironic("power", "on")
	reaches(libvirt.DomainRunning, "the domain runs after power on")
	if !strings.Contains(ironic("power", "status"), "Chassis Power is on") {
		t.Fatal("power status is not on")
	}
	ironic("power", "off")
	testtool.Eventually(t, 30*time.Second, "power status reads off", func() bool {
		return strings.Contains(ironic("power", "status"), "Chassis Power is off")
	})
	reaches(libvirt.DomainShutoff, "the domain is off after power off")
	ironic("power", "on")
	reaches(libvirt.DomainRunning, "the domain runs after the second power on")
	ironic("power", "cycle")
	reaches(libvirt.DomainRunning, "the domain runs after power cycle")
	ironic("power", "off")
	reaches(libvirt.DomainShutoff, "the domain is off at the end")
	testtool.Eventually(t, 30*time.Second, "the event log has every control", func() bool {
		out := ironic("sel", "list")
		return strings.Count(out, "Initiated by power up") == 2 && strings.Count(out, "Power off/down") == 2 && strings.Contains(out, "Power cycle")
	})
}

// libvirtDomain defines (and with start, starts) a test domain on the
// system libvirtd, on a connection of a pool of the test's own, removed
// when the test ends.
func libvirtDomain(t *testing.T, name string, start bool) (*libvirtconn.Conn, *slog.Logger, libvirt.Domain) {
	t.Helper()
	conn, quiet := benchConn(t, "qemu:///system")
	return conn, quiet, defineBenchDomain(t, conn, name, start)
}

// benchConn is a connection to uri of a pool of the test's own, closed
// when the test ends; on the system libvirtd, the domains interrupted
// benchmark runs left are removed first.
func benchConn(t *testing.T, uri string) (*libvirtconn.Conn, *slog.Logger) {
	t.Helper()
	quiet := quietLog()
	pool := libvirtconn.NewPool(quiet, 0)
	t.Cleanup(func() { pool.Close() })
	conn, err := pool.Get(uri, libvirtconn.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	if uri == "qemu:///system" {
		removeStale(t, conn)
	}
	return conn, quiet
}

// defineBenchDomain defines (and with start, starts) a test domain on
// conn, removed when the test ends.
func defineBenchDomain(t *testing.T, conn *libvirtconn.Conn, name string, start bool) libvirt.Domain {
	t.Helper()
	doc := fmt.Sprintf(testtool.ConsoleDomainXML, name, testtool.VirtType())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var dom libvirt.Domain
	if err := conn.Do(ctx, func(lv *libvirt.Libvirt) error {
		var err error
		if dom, err = lv.DomainDefineXML(doc); err != nil || !start {
			return err
		}
		return lv.DomainCreate(dom)
	}); err != nil {
		t.Fatalf("define %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := removeDomain(conn, name); err != nil {
			t.Errorf("remove %s: %v", name, err)
		}
	})
	return dom
}

// ipmitoolFor runs ipmitool as Ironic does (lanplus, ADMINISTRATOR, a
// password file) against a BMC on port, with extra options such as -R/-N.
func ipmitoolFor(t *testing.T, port int, opts ...string) func(args ...string) string {
	pw := testtool.WriteFile(t, "pw", "password")
	base := append([]string{"-I", "lanplus", "-H", "127.0.0.1", "-L", "ADMINISTRATOR", "-p", fmt.Sprint(port), "-U", "admin", "-f", pw}, opts...)
	return func(args ...string) string {
		t.Helper()
		out, err := testtool.Run(t, 30*time.Second, "ipmitool", append(base, args...)...)
		if err != nil {
			t.Fatalf("ipmitool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
}

// requireQemuAndIpmitool: the system libvirtd with qemu, and ipmitool.
func requireQemuAndIpmitool(t *testing.T) {
	t.Helper()
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	testtool.Require(t, "ipmitool")
}

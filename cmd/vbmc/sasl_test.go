package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
)

// TestAddWithSASL: VirtualBMC's --libvirt-sasl-username and
// --libvirt-sasl-password against libvirtds that demand SASL, over TCP
// (DIGEST-MD5 with its encryption layer) and over TLS (SCRAM-SHA-256 with a
// client certificate). Wrong credentials are refused at add, naming the node
// and the URI; right ones serve ipmitool; a password changed on the
// hypervisor while vbmcd was down shows as an error with its reason in
// show after vbmcd starts, and the BMC recovers on its own once the
// password is right again.
func TestAddWithSASL(t *testing.T) {
	const user, pass = "govbmc", "Sasl-pw-7c1e"
	users := map[string]string{user: pass}
	tcp := testtool.StartRemoteLibvirtd(t, testtool.RemoteLibvirtdOptions{MechList: "digest-md5", Users: users})
	tls := testtool.StartRemoteLibvirtd(t, testtool.RemoteLibvirtdOptions{MechList: "scram-sha-256", TLS: true, NoTCP: true, Users: users})
	e := newEnv(t)
	e.startDaemon()
	for _, c := range []struct{ name, uri, mech string }{
		{"tcp", "test+tcp://" + tcp.TCPAddr + "/default", "DIGEST-MD5"},
		{"tls", "test+tls://" + tls.TLSAddr + "/default?pkipath=" + tls.PKIDir, "SCRAM-SHA-256"},
	} {
		p := freePort(t)
		add := func(password string) []string {
			return []string{"add", "test", "--libvirt-uri", c.uri, "--libvirt-sasl-username", user,
				"--libvirt-sasl-password", password, "--address", "127.0.0.1", "--port", fmt.Sprint(p)}
		}
		start := time.Now()
		errOut := e.refused(add("not-the-password")...)
		for _, want := range []string{`"test"`, c.uri, "authentication failed", c.mech} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%s: add with a wrong password: %q lacks %q", c.name, errOut, want)
			}
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("%s: the refusal took %v", c.name, took)
		}
		if l := e.listed(); len(l) != 0 {
			t.Fatalf("%s: a refused add left %v", c.name, l)
		}
		e.vbmc(add(pass)...)
		e.vbmc("start", "test")
		if out, err := ipmitool(t, p, "power", "status"); err != nil || !strings.Contains(out, "Chassis Power is on") {
			t.Fatalf("%s: power status: %v\n%s", c.name, err, out)
		}
		if out, err := ipmitool(t, p, "chassis", "bootdev", "pxe"); err != nil {
			t.Fatalf("%s: bootdev: %v\n%s", c.name, err, out)
		}
		if out, err := ipmitool(t, p, "chassis", "bootparam", "get", "5"); err != nil || !strings.Contains(out, "Force PXE") {
			t.Fatalf("%s: bootparam: %v\n%s", c.name, err, out)
		}
		if show := e.vbmc("show", "test"); strings.Contains(show, pass) || !strings.Contains(show, "| status                | running") {
			t.Errorf("%s: show:\n%s", c.name, show)
		}
		if c.name == "tcp" {
			passwordChangedWhileDown(t, e, tcp, user, pass, c.uri, p)
		}
		e.vbmc("delete", "test")
	}
	log, err := os.ReadFile(filepath.Join(e.dir, "vbmcd.log"))
	if err != nil || strings.Contains(string(log), pass) || strings.Contains(string(log), "not-the-password") {
		t.Errorf("vbmcd.log unreadable (%v) or holds a SASL password", err)
	}
}

// passwordChangedWhileDown: vbmcd is stopped, the hypervisor's SASL
// password changes, vbmcd starts: the BMC comes back in error with the
// reason in show, and recovers once the password is right again.
func passwordChangedWhileDown(t *testing.T, e *env, r *testtool.RemoteLibvirtd, user, pass, uri string, port int) {
	t.Helper()
	e.killDaemon(syscall.SIGTERM)
	r.SetPassword(t, user, "changed-on-the-hypervisor")
	e.startDaemon()
	testtool.Eventually(t, 10*time.Second, "error status naming the URI and the failed login", func() bool {
		show := e.vbmc("show", "test")
		return strings.Contains(show, "| status                | error") &&
			strings.Contains(show, uri) && strings.Contains(show, "authentication failed")
	})
	if out, err := ipmitool(t, port, "power", "status"); err == nil || !strings.Contains(out, "Node busy") {
		t.Errorf("power status with the wrong password: %v\n%s", err, out)
	}
	r.SetPassword(t, user, pass)
	testtool.Eventually(t, 15*time.Second, "running again with the right password", func() bool {
		out, err := ipmitool(t, port, "power", "status")
		return err == nil && strings.Contains(out, "Chassis Power is on")
	})
}

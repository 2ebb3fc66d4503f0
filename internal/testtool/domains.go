package testtool

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// LibvirtCaller runs libvirt calls on a connection: libvirtconn.Conn's Do.
// (testtool does not import libvirtconn, whose own tests use it.)
type LibvirtCaller interface {
	Do(ctx context.Context, fn func(*libvirt.Libvirt) error) error
}

// libvirtCallTimeout bounds each helper's libvirt calls.
const libvirtCallTimeout = 30 * time.Second

// DomainName is a libvirt domain name for the test: "govbmc-", the test
// binary's package (tests of two packages run at once on one libvirtd),
// the test's name and suffix, lower case, separators as dashes. It is the
// same on every run, so a domain a killed run left behind is found and
// replaced by DefineDomain.
func DomainName(t testing.TB, suffix string) string {
	pkg := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	return strings.ToLower(strings.NewReplacer("/", "-", " ", "-", "_", "-").Replace("govbmc-" + pkg + "-" + t.Name() + suffix))
}

// DefineDomain defines domain name from tmpl, a template whose first
// argument is the name (args are the others), replacing a leftover of that
// name, and removes it at the end of the test (see UndefineDomain).
func DefineDomain(t testing.TB, c LibvirtCaller, name, tmpl string, args ...any) {
	t.Helper()
	if err := UndefineDomain(c, name); err != nil {
		t.Fatalf("remove a leftover domain %s: %v", name, err)
	}
	doc := fmt.Sprintf(tmpl, append([]any{name}, args...)...)
	err := call(c, func(lv *libvirt.Libvirt) error {
		_, err := lv.DomainDefineXML(doc)
		return err
	})
	if err != nil {
		t.Fatalf("define %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := UndefineDomain(c, name); err != nil {
			t.Errorf("remove domain %s: %v", name, err)
		}
	})
}

// DefineTestDomain defines the test's own domain, named DomainName(t, ""),
// from tmpl (see DefineDomain), and returns its name.
func DefineTestDomain(t testing.TB, c LibvirtCaller, tmpl string, args ...any) string {
	t.Helper()
	name := DomainName(t, "")
	DefineDomain(t, c, name, tmpl, args...)
	return name
}

// UndefineDomain destroys domain name when it runs and undefines it with
// its NVRAM (a driver without NVRAM, such as test:///default, refuses the
// flag: then without it). A domain that is not there is no error.
func UndefineDomain(c LibvirtCaller, name string) error {
	return call(c, func(lv *libvirt.Libvirt) error {
		dom, err := lv.DomainLookupByName(name)
		if libvirt.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if state, _, err := lv.DomainGetState(dom, 0); err == nil && libvirt.DomainState(state) != libvirt.DomainShutoff {
			// It may stop between the look and the destroy (a power off
			// the test's BMC acknowledged and is finishing): that is fine.
			if err := lv.DomainDestroy(dom); err != nil && !isNotRunning(lv, dom) {
				return fmt.Errorf("destroy: %w", err)
			}
		}
		if err := lv.DomainUndefineFlags(dom, libvirt.DomainUndefineNvram); err != nil {
			if err := lv.DomainUndefine(dom); err != nil && !libvirt.IsNotFound(err) {
				return fmt.Errorf("undefine: %w", err)
			}
		}
		return nil
	})
}

// isNotRunning reports whether dom is shut off now.
func isNotRunning(lv *libvirt.Libvirt, dom libvirt.Domain) bool {
	state, _, err := lv.DomainGetState(dom, 0)
	return err == nil && libvirt.DomainState(state) == libvirt.DomainShutoff
}

// OnDomain runs fn on domain name, failing the test when it fails.
func OnDomain(t testing.TB, c LibvirtCaller, name string, fn func(*libvirt.Libvirt, libvirt.Domain) error) {
	t.Helper()
	err := call(c, func(lv *libvirt.Libvirt) error {
		dom, err := lv.DomainLookupByName(name)
		if err != nil {
			return err
		}
		return fn(lv, dom)
	})
	if err != nil {
		t.Fatalf("domain %s: %v", name, err)
	}
}

// DomainState is a domain's state as libvirt holds it (`virsh domstate`).
func DomainState(t testing.TB, c LibvirtCaller, name string) libvirt.DomainState {
	t.Helper()
	var st int32
	OnDomain(t, c, name, func(lv *libvirt.Libvirt, dom libvirt.Domain) (err error) {
		st, _, err = lv.DomainGetState(dom, 0)
		return err
	})
	return libvirt.DomainState(st)
}

// DomainXML is a domain's XML as libvirt holds it (`virsh dumpxml` with
// flags).
func DomainXML(t testing.TB, c LibvirtCaller, name string, flags libvirt.DomainXMLFlags) string {
	t.Helper()
	var doc string
	OnDomain(t, c, name, func(lv *libvirt.Libvirt, dom libvirt.Domain) (err error) {
		doc, err = lv.DomainGetXMLDesc(dom, flags)
		return err
	})
	return doc
}

// InactiveXML is a domain's persistent definition with its secrets, as
// libvirt holds it (`virsh dumpxml --inactive --security-info`).
func InactiveXML(t testing.TB, c LibvirtCaller, name string) string {
	t.Helper()
	return DomainXML(t, c, name, libvirt.DomainXMLInactive|libvirt.DomainXMLSecure)
}

func call(c LibvirtCaller, fn func(*libvirt.Libvirt) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), libvirtCallTimeout)
	defer cancel()
	return c.Do(ctx, fn)
}

// WaitDomainState waits until libvirt reports domain name in state want:
// a BMC acknowledges a Chassis Control that takes longer than its bound
// and goes on with it, as real BMCs do, so a client (Ironic) polls for the
// state it asked for rather than reading it once.
func WaitDomainState(t testing.TB, c LibvirtCaller, name string, want libvirt.DomainState, what string) {
	t.Helper()
	Eventually(t, 60*time.Second, what, func() bool { return DomainState(t, c, name) == want })
}

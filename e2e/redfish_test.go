package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/ipmi"
	"github.com/govbmc/govbmc/libvirtconn"
	"github.com/govbmc/govbmc/redfish"
)

// oneSystem is a redfish.Fleet of one node.
type oneSystem struct{ sys redfish.System }

func (f oneSystem) Systems() []redfish.System { return []redfish.System{f.sys} }
func (f oneSystem) System(id string) (redfish.System, bool) {
	return f.sys, id == f.sys.ID || id == f.sys.Name
}

// rfNode is a domain served over IPMI and Redfish by one shared machine.
type rfNode struct {
	*node
	t    *testing.T
	srv  *httptest.Server
	path string // the System's URI
}

// patience is the server's MachinePatience: how long a GET waits for a busy
// machine before it answers with its last answer.
func serveBoth(t *testing.T, conn *libvirtconn.Conn, domain string, patience time.Duration) *rfNode {
	t.Helper()
	logs := &testtool.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	name := "bmc-" + domain
	cfg := bmc.Node{Name: name, Address: "127.0.0.1", Users: []bmc.User{admin}}
	m := libvirtconn.NewDomain(conn, domain, log.With("node", name))
	srv, err := ipmi.New(cfg, m, ipmi.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	u, err := m.UUID(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	sys := redfish.System{ID: u.String(), Name: name, Users: cfg.Users, IPMIAddress: "127.0.0.1", IPMIPort: srv.Addr().Port, Machine: m}
	web := httptest.NewTLSServer(redfish.New(oneSystem{sys}, redfish.Options{Logger: log, MachinePatience: patience}))
	t.Cleanup(func() {
		web.Close()
		cancel()
		<-done
		if t.Failed() {
			t.Logf("BMC %s log:\n%s", name, logs.String())
		}
	})
	n := &node{t: t, name: name, port: fmt.Sprint(srv.Addr().Port), logs: logs}
	return &rfNode{node: n, t: t, srv: web, path: "/redfish/v1/Systems/" + sys.ID}
}

func (n *rfNode) call(method, path string, body any) (int, map[string]any) {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, n.srv.URL+path, rd)
	req.SetBasicAuth(admin.Name, admin.Password)
	res, err := n.srv.Client().Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var v map[string]any
	_ = json.Unmarshal(raw, &v)
	if res.StatusCode >= 300 {
		n.t.Logf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	return res.StatusCode, v
}

func (n *rfNode) reset(rt string) {
	n.t.Helper()
	if code, _ := n.call("POST", n.path+"/Actions/ComputerSystem.Reset", map[string]string{"ResetType": rt}); code != 204 {
		n.t.Fatalf("reset %s: %d", rt, code)
	}
}

func (n *rfNode) boot() (enabled, target string) {
	n.t.Helper()
	_, sys := n.call("GET", n.path, nil)
	b, _ := sys["Boot"].(map[string]any)
	enabled, _ = b["BootSourceOverrideEnabled"].(string)
	target, _ = b["BootSourceOverrideTarget"].(string)
	return
}

func (n *rfNode) setBoot(enabled, target string) {
	n.t.Helper()
	body := map[string]any{"Boot": map[string]string{"BootSourceOverrideEnabled": enabled, "BootSourceOverrideTarget": target}}
	if code, _ := n.call("PATCH", n.path, body); code != 200 {
		n.t.Fatalf("PATCH Boot %s %s: %d", enabled, target, code)
	}
}

// TestRedfishOnQemu drives a real VM over Redfish, with IPMI on the same
// machine: a Once Pxe override really PXE-boots once (read back over IPMI
// before), Continuous Hdd survives a power cycle, what IPMI sets reads back
// over Redfish, every reset type acts on the domain, and the NIC's MAC is
// the domain's.
func TestRedfishOnQemu(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	redfishOnQemu(t, "qemu:///system")
}

// TestRedfishOnQemuOverSSH is the same through a qemu+ssh connection.
func TestRedfishOnQemuOverSSH(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	sshd := testtool.StartSshd(t)
	redfishOnQemu(t, sshURI(sshd, "qemu", "/system", sshd.KnownHosts))
}

func redfishOnQemu(t *testing.T, uri string) {
	c := get(t, pool(t), uri)
	name := testtool.DomainName(t, "")
	logPath, _ := defineQemuDomain(t, c, name)
	n := serveBoth(t, c, name, time.Minute) // what IPMI just set is what the test checks

	// Once Pxe over Redfish reads back over IPMI, then really PXE-boots.
	n.setBoot("Once", "Pxe")
	if e, tg := n.boot(); e != "Once" || tg != "Pxe" {
		t.Fatalf("after PATCH Once Pxe: %s %s", e, tg)
	}
	mustContain(t, n.must("chassis", "bootparam", "get", "5"), "Force PXE", "Options apply to only next boot")
	n.reset("On")
	testtool.Eventually(t, 90*time.Second, "the VM PXE-boots (iPXE on its serial console)", func() bool {
		return strings.Contains(readLog(logPath), "iPXE (PCI 00:03.0) starting execution")
	})
	if dev := firstBoot(readLog(logPath)); dev != "ROM" {
		t.Fatalf("first boot device %q, want the NIC's ROM (PXE)", dev)
	}
	// Consumed: no longer a Pxe override; what is left is the domain's own
	// boot order, which IPMI reports the same way.
	if e, tg := n.boot(); e == "Once" || tg == "Pxe" {
		t.Fatalf("the Once override was not consumed by the boot: %s %s", e, tg)
	}
	mustContain(t, n.must("chassis", "bootparam", "get", "5"), "Force Boot from default Hard-Drive")

	// Reset types on the real domain. SeaBIOS ignores ACPI: a graceful
	// shutdown leaves it on, as a real server without an OS would. The
	// BMC's part is to press the ACPI button, not to cut the power: a
	// GracefulShutdown done as a hard off shows when its request returns
	// (a destroy is done then). Whether the guest acts on the button later
	// is the guest's business, which no wait of any length would settle.
	n.reset("Nmi")
	n.reset("GracefulShutdown")
	if testtool.DomainState(t, c, name) != libvirt.DomainRunning {
		t.Fatal("GracefulShutdown powered off a guest that ignores ACPI")
	}
	n.reset("ForceRestart")
	n.reset("ForceOff")
	if testtool.DomainState(t, c, name) != libvirt.DomainShutoff {
		t.Fatal("ForceOff left the domain running")
	}
	if _, sys := n.call("GET", n.path, nil); sys["PowerState"] != "Off" {
		t.Fatalf("PowerState %v after ForceOff", sys["PowerState"])
	}

	// Continuous Hdd survives a power cycle and a reset.
	n.setBoot("Continuous", "Hdd")
	if err := os.Truncate(logPath, 0); err != nil {
		t.Fatal(err)
	}
	n.reset("ForceOn")
	n.reset("PowerCycle")
	testtool.Eventually(t, 60*time.Second, "SeaBIOS picks a boot device", func() bool {
		return firstBoot(readLog(logPath)) != ""
	})
	if dev := firstBoot(readLog(logPath)); dev != "Hard Disk" {
		t.Fatalf("first boot device %q, want the hard disk", dev)
	}
	if e, tg := n.boot(); e != "Continuous" || tg != "Hdd" {
		t.Fatalf("Continuous Hdd after a power cycle: %s %s", e, tg)
	}
	mustContain(t, n.must("chassis", "bootparam", "get", "5"), "Force Boot from default Hard-Drive", "Options apply to all future boots")

	// What IPMI sets, Redfish reads.
	n.must("chassis", "bootdev", "cdrom")
	if e, tg := n.boot(); e != "Once" || tg != "Cd" {
		t.Fatalf("IPMI bootdev cdrom reads over Redfish as %s %s\n%s", e, tg, testtool.InactiveXML(t, c, name))
	}
	n.setBoot("Disabled", "None")

	// The MAC is the domain's.
	_, nics := n.call("GET", n.path+"/EthernetInterfaces", nil)
	members, _ := nics["Members"].([]any)
	if len(members) != 1 {
		t.Fatalf("NICs %v", nics)
	}
	_, nic := n.call("GET", members[0].(map[string]any)["@odata.id"].(string), nil)
	if nic["MACAddress"] != "52:54:00:12:34:56" {
		t.Fatalf("NIC %v", nic)
	}
	// The boot mode switches the domain's firmware (auto-selected OVMF).
	if code, _ := n.call("PATCH", n.path, map[string]any{"Boot": map[string]string{"BootSourceOverrideMode": "UEFI"}}); code != 200 {
		t.Fatalf("switching to UEFI: %d", code)
	}
	if !strings.Contains(testtool.InactiveXML(t, c, name), "firmware='efi'") {
		t.Fatalf("not UEFI:\n%s", testtool.InactiveXML(t, c, name))
	}
	if _, sys := n.call("GET", n.path, nil); sys["Boot"].(map[string]any)["BootSourceOverrideMode"] != "UEFI" {
		t.Fatalf("mode %v", sys["Boot"])
	}
	// Secure Boot needs a q35 machine: a 400 naming the property.
	code, body := n.call("PATCH", n.path+"/SecureBoot", map[string]any{"SecureBootEnable": true})
	if code != 400 || !strings.Contains(fmt.Sprint(body), "SecureBootEnable") {
		t.Fatalf("secure boot on a pc machine: %d %v", code, body)
	}
	if code, _ := n.call("PATCH", n.path, map[string]any{"Boot": map[string]string{"BootSourceOverrideMode": "Legacy"}}); code != 200 {
		t.Fatalf("switching back to Legacy: %d", code)
	}
	n.reset("ForceOff")
}

// TestRedfishGetDuringSlowStart: while a power on that libvirtd takes
// seconds over (the test's qemu hook holds it 3 s) is in flight on a node,
// a GET of that System answers without waiting for it, and shows the
// domain still off.
func TestRedfishGetDuringSlowStart(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	testtool.RequireSlowStartHook(t)
	c := get(t, pool(t), "qemu:///system")
	name := testtool.SlowStartPrefix + testtool.DomainName(t, "")
	testtool.DefineDomain(t, c, name, testtool.ConsoleDomainXML, testtool.VirtType())
	n := serveBoth(t, c, name, redfish.DefaultMachinePatience)
	// A client looks at the System before it powers it on (Ironic does).
	if code, _ := n.call("GET", n.path, nil); code != 200 {
		t.Fatalf("GET: %d", code)
	}

	powered := make(chan int, 1)
	start := time.Now()
	go func() {
		code, _ := n.call("POST", n.path+"/Actions/ComputerSystem.Reset", map[string]string{"ResetType": "On"})
		powered <- code
	}()
	testtool.AwaitSlowStartHold(t, name)
	var answers []time.Duration
	for time.Since(start) < 2500*time.Millisecond {
		t0 := time.Now()
		code, sys := n.call("GET", n.path, nil)
		took := time.Since(t0)
		answers = append(answers, took.Round(100*time.Microsecond))
		if code != 200 || sys["PowerState"] != "Off" {
			t.Fatalf("GET %v into a slow power on: %d %v", time.Since(start).Round(time.Millisecond), code, sys["PowerState"])
		}
		if time.Since(start) >= 3*time.Second {
			t.Fatalf("a GET waited for the power on (%v)", took)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := <-powered; code != 204 {
		t.Fatalf("power on: %d", code)
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Fatalf("the power on took %v: the hook did not slow it, so the test proves nothing", took)
	}
	t.Logf("GET System answers during the start: %v", answers)
	n.reset("ForceOff")
}

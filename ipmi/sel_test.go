package ipmi_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/ipmi"
)

// TestSEL: power controls, a boot device change and a failed login are
// recorded; ipmitool's sel info, list, elist and clear and freeipmi's
// ipmi-sel read them; the log survives a restart of the BMC (a new server
// on the same file) and its ring reports overflow.
func TestSEL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.sel")
	log, err := bmc.NewEventLog(4, path)
	if err != nil {
		t.Fatal(err)
	}
	n := startNodeWith(t, ipmi.Options{EventLog: log})
	mustContain(t, n.lanplus("sel", "info"), "Entries          : 0", "Overflow         : false")
	n.lanplus("power", "on")
	n.lanplus("chassis", "bootdev", "pxe")
	n.lanplus("power", "off")
	if out, err := n.ipmitool("-I", "lan", "-R", "1", "-U", admin.Name, "-P", "wrong", "power", "status"); err == nil {
		t.Fatalf("a wrong password was accepted:\n%s", out)
	}
	eventually(t, toolTimeoutShort, "four events", func() bool { return len(log.Events()) == 4 })
	out := n.lanplus("sel", "list")
	mustContain(t, out, "System Boot Initiated", "Initiated by power up", "System Event", "System Reconfigured",
		"Power Unit", "Power off/down", "Platform Security", "Out-of-band access password violation", "Asserted")
	mustContain(t, n.lanplus("sel", "elist"), "Initiated by power up", "Power off/down")
	out, err = n.freeipmi("ipmi-sel", "LAN_2_0", admin, "admin", "--ignore-sdr-cache")
	if err != nil {
		t.Fatalf("ipmi-sel: %v\n%s", err, out)
	}
	mustContain(t, out, "Initiated by power up", "Power Off/Power Down", "System Reconfigured", "Out-of-band Access Password Violation")

	// A second BMC on the same file, as after a daemon restart.
	log2, err := bmc.NewEventLog(4, path)
	if err != nil {
		t.Fatal(err)
	}
	n2 := startNodeWith(t, ipmi.Options{EventLog: log2})
	mustContain(t, n2.lanplus("sel", "list"), "Initiated by power up", "Power off/down")
	n2.lanplus("power", "cycle") // a fifth event: the oldest goes
	mustContain(t, n2.lanplus("sel", "info"), "Entries          : 4", "Overflow         : true")
	if strings.Contains(n2.lanplus("sel", "list"), "Initiated by power up") {
		t.Fatal("the oldest event was not dropped")
	}
	// USER may read the log but not clear it.
	if out, err := n2.ipmitool("-I", "lanplus", "-L", "USER", "-U", viewer.Name, "-P", viewer.Password, "sel", "clear"); err == nil && !strings.Contains(out, "Insufficient privilege") {
		t.Fatalf("USER cleared the SEL:\n%s", out)
	}
	mustContain(t, n2.lanplus("sel", "clear"), "Clearing SEL")
	mustContain(t, n2.lanplus("sel", "info"), "Entries          : 0", "Overflow         : false")
	mustContain(t, n2.lanplus("sel", "list"), "SEL has no entries")
}

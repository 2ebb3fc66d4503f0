package ipmi_test

import (
	"strings"
	"testing"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/ipmi"
)

// TestKg: a node with a BMC key logs in ipmitool -y with that key (and
// Ironic's command line with it), and refuses the wrong key or none.
func TestKg(t *testing.T) {
	const hexKey = "0102030405060708090a0b0c0d0e0f1011121314"
	kg, err := bmc.ParseKg(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	n := startNodeWith(t, ipmi.Options{Kg: kg})
	for _, suite := range []string{"3", "17"} {
		mustContain(t, n.lanplus("-C", suite, "-y", hexKey, "power", "status"), "Chassis Power is off")
	}
	pw := passwordFile(t, admin.Password)
	out, err := n.ipmitool("-I", "lanplus", "-L", "ADMINISTRATOR", "-U", admin.Name, "-R", "1", "-N", "1", "-f", pw, "-y", hexKey, "power", "on")
	if err != nil {
		t.Fatalf("Ironic's power on with ipmi_hex_kg_key: %v\n%s", err, out)
	}
	if out, err := n.freeipmi("ipmipower", "LAN_2_0", admin, "admin", "-k", "0x"+hexKey, "--stat"); err != nil || !strings.Contains(out, ": on") {
		t.Fatalf("ipmipower with the key: %v\n%s", err, out)
	}
	for name, args := range map[string][]string{
		"wrong key": {"-y", "0102030405060708090a0b0c0d0e0f1011121315"},
		"no key":    nil,
	} {
		out, err := n.ipmitool(append(append([]string{"-I", "lanplus", "-R", "1", "-N", "1", "-U", admin.Name, "-P", admin.Password}, args...), "power", "status")...)
		// ipmitool may exit 0 after "Unable to establish IPMI v2 / RMCP+
		// session": the status line is what tells.
		if err == nil && strings.Contains(out, "Chassis Power is") {
			t.Errorf("%s: login succeeded:\n%s", name, out)
		}
	}
	if _, err := bmc.ParseKg("00"); err == nil {
		t.Error("an all-zero key was accepted")
	}
	if _, err := bmc.ParseKg("zz"); err == nil {
		t.Error("a key that is not hex was accepted")
	}
}

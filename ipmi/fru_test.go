package ipmi_test

import (
	"context"
	"testing"
)

// TestFRU: ipmitool fru print and freeipmi's ipmi-fru show the product,
// its manufacturer, the chassis and board areas, and the machine's UUID as
// serial number.
func TestFRU(t *testing.T) {
	n := startNode(t)
	u, err := n.sim.UUID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := n.lanplus("fru", "print")
	mustContain(t, out, "FRU Device Description : Builtin FRU Device (ID 0)",
		"Chassis Type          : Other", "Chassis Serial        : "+u.String(),
		"Board Mfg             : govbmc", "Board Product         : Simulated Machine", "Board Serial          : "+u.String(),
		"Product Manufacturer  : govbmc", "Product Name          : Simulated Machine", "Product Serial        : "+u.String())
	out, err = n.freeipmi("ipmi-fru", "LAN_2_0", admin, "user", "--sdr-cache-directory", t.TempDir())
	if err != nil {
		t.Fatalf("ipmi-fru: %v\n%s", err, out)
	}
	mustContain(t, out, "Product Manufacturer Name: govbmc", "Product Name: Simulated Machine", "Product Serial Number: "+u.String(),
		"Board Serial Number: "+u.String(), "Chassis Serial Number: "+u.String())
}

package ipmi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/govbmc/govbmc/bmc"
)

// TestLANPrint: lan print 1 tells the BMC's address (the client's view of a
// wildcard listener), subnet, a MAC stable per node, the RMCP port and the
// cipher suites and authentication types offered; changes it cannot honour
// are refused.
func TestLANPrint(t *testing.T) {
	for _, listen := range []string{"127.0.0.1", "0.0.0.0"} {
		t.Run(listen, func(t *testing.T) {
			n := startNode(t, func(c *bmc.Node) { c.Address = listen; c.CipherSuites = []int{3, 17} })
			out := n.lanplus("lan", "print", "1")
			mustContain(t, out, "IP Address              : 127.0.0.1", "Subnet Mask             : 255.0.0.0",
				"IP Address Source       : Static Address", "RMCP+ Cipher Suites     : 3,17", "Cipher Suite Priv Max   : aa",
				"802.1q VLAN ID          : Disabled", "Auth Type Support       : MD5")
			mac := macLine(t, out)
			if mac[1] != '2' && mac[1] != '6' && mac[1] != 'a' && mac[1] != 'e' {
				t.Errorf("MAC %s is not locally administered", mac)
			}
			if again := macLine(t, n.lanplus("lan", "print", "1")); again != mac {
				t.Errorf("MAC changed from %s to %s", mac, again)
			}
			port := n.lanplus("raw", "0x0c", "0x02", "0x01", "0x08", "0x00", "0x00")
			if p := atoi(n.port); !strings.Contains(port, fmt.Sprintf("11 %02x %02x", p&0xff, p>>8)) {
				t.Errorf("primary RMCP port reads %q, want %d", port, p)
			}
			// ipmitool's lan set fails without saying why: ask raw.
			out, err := n.ipmitool("-I", "lanplus", "-U", admin.Name, "-P", admin.Password, "raw", "0x0c", "0x01", "0x01", "0x03", "10", "0", "0", "5")
			if err == nil {
				t.Fatalf("setting the IP address succeeded:\n%s", out)
			}
			mustContain(t, out, "rsp=0x82")
			if out, err := n.ipmitool("-I", "lanplus", "-U", admin.Name, "-P", admin.Password, "lan", "set", "1", "ipaddr", "10.0.0.5"); err == nil {
				t.Fatalf("lan set ipaddr succeeded:\n%s", out)
			}
			if !strings.Contains(n.lanplus("lan", "print", "1"), "IP Address              : 127.0.0.1") {
				t.Error("the IP address changed")
			}
			out, _ = n.ipmitool("-I", "lanplus", "-L", "OPERATOR", "-U", operator.Name, "-P", operator.Password, "raw", "0x0c", "0x01", "0x01", "0x03", "10", "0", "0", "5")
			mustContain(t, out, "rsp=0xd4")
		})
	}
}

func macLine(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok && strings.TrimSpace(k) == "MAC Address" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no MAC address:\n%s", out)
	return ""
}

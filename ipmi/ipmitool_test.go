package ipmi_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/ipmi"
)

// interfaces are the ways ipmitool reaches a BMC that the suite covers.
var interfaces = []struct {
	name string
	args []string
}{
	{"lanplus-auto-suite", []string{"-I", "lanplus"}},
	{"lanplus-C3", []string{"-I", "lanplus", "-C", "3"}},
	{"lanplus-C17", []string{"-I", "lanplus", "-C", "17"}},
	{"lan-md5", []string{"-I", "lan"}},
}

func TestIpmitoolPowerMatrix(t *testing.T) {
	for _, itf := range interfaces {
		t.Run(itf.name, func(t *testing.T) {
			n := startNode(t)
			run := func(args ...string) string {
				t.Helper()
				full := append(append(append([]string{}, itf.args...), "-U", admin.Name, "-P", admin.Password), args...)
				out, err := n.ipmitool(full...)
				if err != nil {
					t.Fatalf("ipmitool %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return out
			}
			mustContain(t, run("power", "status"), "Chassis Power is off")

			mustContain(t, run("power", "on"), "Chassis Power Control: Up/On")
			if n.power() != bmc.PowerOn {
				t.Fatal("machine not on after power on")
			}
			mustContain(t, run("power", "status"), "Chassis Power is on")
			// Powering on a running machine is not an error.
			mustContain(t, run("power", "on"), "Chassis Power Control: Up/On")

			boots := len(n.sim.Boots())
			mustContain(t, run("power", "cycle"), "Chassis Power Control: Cycle")
			mustContain(t, run("power", "reset"), "Chassis Power Control: Reset")
			if got := len(n.sim.Boots()) - boots; got != 2 {
				t.Errorf("cycle and reset made %d boots, want 2", got)
			}

			mustContain(t, run("power", "diag"), "Chassis Power Control: Diag")
			eventually(t, toolTimeoutShort, "NMI reaches the console", func() bool {
				return strings.Contains(n.sim.Transcript(), "NMI received")
			})

			mustContain(t, run("power", "soft"), "Chassis Power Control: Soft")
			eventually(t, toolTimeoutShort, "soft off completes", func() bool { return n.power() == bmc.PowerOff })
			mustContain(t, run("power", "status"), "Chassis Power is off")

			run("power", "on")
			mustContain(t, run("power", "off"), "Chassis Power Control: Down/Off")
			if n.power() != bmc.PowerOff {
				t.Fatal("machine not off after power off")
			}
			// A hard reset needs a running machine.
			out, err := n.ipmitool(append(append([]string{}, itf.args...), "-U", admin.Name, "-P", admin.Password, "power", "reset")...)
			if err == nil || !strings.Contains(out, "Command not supported in present state") {
				t.Errorf("reset while off: err=%v\n%s", err, out)
			}
		})
	}
}

func TestIpmitoolChassisStatusMCInfoGUID(t *testing.T) {
	const uuid = "8a8e5b2e-4a5f-4c1d-9a3b-1f2e3d4c5b6a"
	n := startNode(t, func(c *bmc.Node) {
		c.Identity = bmc.Identity{ManufacturerID: 343, ProductID: 0x1234, UUID: uuid}
	})
	mustContain(t, n.lanplus("chassis", "status"), "System Power         : off", "Power Restore Policy : always-off")
	n.lanplus("power", "on")
	out := n.lanplus("chassis", "status")
	mustContain(t, out, "System Power         : on", "Last Power Event     : command")

	mustContain(t, n.lanplus("mc", "info"),
		"IPMI Version              : 2.0",
		"Manufacturer ID           : 343",
		"Product ID                : 4660 (0x1234)",
		"Chassis Device")
	mustContain(t, n.lanplus("mc", "guid"), "System GUID   : "+uuid, "GUID Encoding : IPMI")

	// A BMC reset must not reset the managed machine.
	boots := len(n.sim.Boots())
	for _, kind := range []string{"cold", "warm"} {
		n.lanplus("mc", "reset", kind)
		if n.power() != bmc.PowerOn || len(n.sim.Boots()) != boots || strings.Contains(n.sim.Transcript(), "ACPI power button") {
			t.Errorf("mc reset %s touched the machine", kind)
		}
	}
}

// bootDevices are the devices `ipmitool chassis bootdev` takes, with the
// selector text `chassis bootparam get 5` prints and the data byte 2.
var bootDevices = []struct {
	arg   string
	dev   bmc.BootDevice
	sel   types.BootDeviceSelector
	text  string
	byte2 string
}{
	{"pxe", bmc.BootPXE, types.BootDeviceSelectorForcePXE, "Force PXE", "04"},
	{"disk", bmc.BootDisk, types.BootDeviceSelectorForceHardDrive, "Force Boot from default Hard-Drive", "08"},
	{"safe", bmc.BootDiskSafe, types.BootDeviceSelectorForceHardDriveSafe, "Force Boot from default Hard-Drive, request Safe-Mode", "0c"},
	{"diag", bmc.BootDiagnostic, types.BootDeviceSelectorForceDiagnosticPartition, "Force Boot from Diagnostic Partition", "10"},
	{"cdrom", bmc.BootCDROM, types.BootDeviceSelectorForceCDROM, "Force Boot from CD/DVD", "14"},
	{"bios", bmc.BootBIOSSetup, types.BootDeviceSelectorForceBIOSSetup, "Force Boot into BIOS Setup", "18"},
	{"floppy", bmc.BootFloppy, types.BootDeviceSelectorForceFloppy, "Force Boot from Floppy/primary removable media", "3c"},
}

var bootOptions = []struct {
	name       string
	args       []string
	persistent bool
	efi        bool
	byte1      string
}{
	{"next-boot", nil, false, false, "80"},
	{"persistent", []string{"options=persistent"}, true, false, "c0"},
	{"efiboot", []string{"options=efiboot"}, false, true, "a0"},
	{"persistent-efiboot", []string{"options=persistent,efiboot"}, true, true, "e0"},
}

func TestIpmitoolBootdevMatrix(t *testing.T) {
	n := startNode(t)
	for _, d := range bootDevices {
		for _, o := range bootOptions {
			t.Run(d.arg+"/"+o.name, func(t *testing.T) {
				out := n.lanplus(append([]string{"chassis", "bootdev", d.arg}, o.args...)...)
				mustContain(t, out, "Set Boot Device to "+d.arg)
				want := bmc.BootOverride{Device: d.dev, Persistent: o.persistent, EFI: o.efi}
				if got := n.override(); got != want {
					t.Errorf("machine override = %+v, want %+v", got, want)
				}
				get := n.lanplus("chassis", "bootparam", "get", "5")
				mustContain(t, get,
					"Boot parameter data: "+o.byte1+d.byte2+"000000",
					"Boot Flag Valid",
					"Boot Device Selector : "+d.text)
				if o.persistent {
					mustContain(t, get, "Options apply to all future boots")
				} else {
					mustContain(t, get, "Options apply to only next boot")
				}
				if o.efi {
					mustContain(t, get, "BIOS EFI boot")
				} else {
					mustContain(t, get, "BIOS PC Compatible (legacy) boot")
				}
			})
		}
	}
}

func TestNextBootOverrideIsConsumed(t *testing.T) {
	n := startNode(t)
	n.lanplus("chassis", "bootdev", "cdrom")
	n.lanplus("power", "on")
	boots := n.sim.Boots()
	if last := boots[len(boots)-1]; last.Device != bmc.BootCDROM || !last.Override {
		t.Fatalf("first boot = %+v, want the CD/DVD override", last)
	}
	mustContain(t, n.sim.Transcript(), "Booting from CD/DVD")
	get := n.lanplus("chassis", "bootparam", "get", "5")
	mustContain(t, get, "Boot parameter data: 0000000000", "Boot Flag Invalid", "Boot Device Selector : No override")

	n.lanplus("power", "reset")
	boots = n.sim.Boots()
	if last := boots[len(boots)-1]; last.Device != bmc.BootDisk || last.Override {
		t.Fatalf("second boot = %+v, want the default disk", last)
	}

	// A persistent override survives every boot.
	n.lanplus("chassis", "bootdev", "pxe", "options=persistent")
	n.lanplus("power", "cycle")
	n.lanplus("power", "reset")
	for _, b := range n.sim.Boots()[len(boots):] {
		if b.Device != bmc.BootPXE {
			t.Errorf("boot %+v, want PXE", b)
		}
	}
	mustContain(t, n.lanplus("chassis", "bootparam", "get", "5"), "Force PXE", "Options apply to all future boots")
}

var selectorRE = regexp.MustCompile(`Boot Device Selector : (.+)`)

// TestIronicCommandLines runs the exact command lines of Ironic's ipmitool
// driver: a fresh process per command, one try (-R 1), which must succeed
// every time.
func TestIronicCommandLines(t *testing.T) {
	n := startNode(t)
	pw := passwordFile(t, admin.Password)
	for _, proto := range []string{"lanplus", "lan"} {
		t.Run(proto, func(t *testing.T) {
			ironic := func(args ...string) string {
				t.Helper()
				base := []string{"-I", proto, "-L", "ADMINISTRATOR", "-U", admin.Name, "-R", "1", "-N", "5", "-f", pw}
				out, err := n.ipmitool(append(base, args...)...)
				if err != nil {
					t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
				}
				return out
			}
			for round := 0; round < 5; round++ {
				n.setPower(bmc.PowerOff)
				mustContain(t, ironic("power", "status"), "Chassis Power is off")
				ironic("raw", "0x00", "0x08", "0x03", "0x08")
				ironic("raw", "0x00", "0x08", "0x05", "0xe0", "0x04", "0x00", "0x00", "0x00")
				out := ironic("chassis", "bootparam", "get", "5")
				if m := selectorRE.FindStringSubmatch(out); m == nil || m[1] != "Force PXE" {
					t.Fatalf("UEFI persistent PXE reads back as %q:\n%s", m, out)
				}
				mustContain(t, out, "Options apply to all future boots", "BIOS EFI boot")

				ironic("raw", "0x00", "0x08", "0x05", "0xa0", "0x08", "0x00", "0x00", "0x00")
				out = ironic("chassis", "bootparam", "get", "5")
				if m := selectorRE.FindStringSubmatch(out); m == nil || m[1] != "Force Boot from default Hard-Drive" {
					t.Fatalf("UEFI next-boot disk reads back as %q:\n%s", m, out)
				}
				if strings.Contains(out, "Options apply to all future boots") {
					t.Fatalf("next-boot override reported persistent:\n%s", out)
				}

				ironic("chassis", "bootdev", "pxe", "options=persistent")
				mustContain(t, ironic("chassis", "bootparam", "get", "5"), "Force PXE", "Options apply to all future boots", "BIOS PC Compatible (legacy) boot")

				ironic("power", "on")
				mustContain(t, ironic("power", "status"), "Chassis Power is on")
				ironic("power", "reset")
				ironic("power", "diag")
				ironic("mc", "info")
				ironic("power", "soft")
				eventually(t, toolTimeoutShort, "soft off completes", func() bool { return n.power() == bmc.PowerOff })
				ironic("power", "on")
				ironic("power", "off")
				if n.power() != bmc.PowerOff {
					t.Fatal("power off did not take")
				}
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	n := startNode(t)
	refused := []struct {
		name string
		args []string
		want string
	}{
		{"wrong password lanplus", []string{"-I", "lanplus", "-U", "admin", "-P", "wrong"}, "Unable to establish IPMI v2 / RMCP+ session"},
		{"unknown user lanplus", []string{"-I", "lanplus", "-U", "nobody", "-P", "password"}, "Unable to establish IPMI v2 / RMCP+ session"},
		{"wrong password lan", []string{"-I", "lan", "-U", "admin", "-P", "wrong"}, "Unable to establish IPMI v1.5 / RMCP session"},
		{"unknown user lan", []string{"-I", "lan", "-U", "nobody", "-P", "password"}, "Unable to establish IPMI v1.5 / RMCP session"},
		{"anonymous user", []string{"-I", "lanplus", "-U", "", "-P", ""}, "Unable to establish IPMI v2 / RMCP+ session"},
		{"cipher suite 0", []string{"-I", "lanplus", "-C", "0", "-U", "admin", "-P", "password"}, "Unable to establish IPMI v2 / RMCP+ session"},
		{"USER privilege power off", []string{"-I", "lanplus", "-L", "USER", "-U", viewer.Name, "-P", viewer.Password}, "Insufficient privilege level"},
		{"USER asking for ADMINISTRATOR", []string{"-I", "lanplus", "-U", viewer.Name, "-P", viewer.Password}, "Unable to establish IPMI v2 / RMCP+ session"},
		{"OPERATOR asking for ADMINISTRATOR", []string{"-I", "lanplus", "-L", "ADMINISTRATOR", "-U", operator.Name, "-P", operator.Password}, "Unable to establish IPMI v2 / RMCP+ session"},
	}
	n.setPower(bmc.PowerOn)
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			out, err := n.ipmitool(append(append([]string{"-R", "1", "-N", "2"}, c.args...), "power", "off")...)
			if err == nil {
				t.Fatalf("accepted:\n%s", out)
			}
			mustContain(t, out, c.want)
			if n.power() != bmc.PowerOn {
				t.Fatal("a refused request changed the machine")
			}
		})
	}

	// A USER may not change the boot device either (Operator, Appendix G).
	out, _ := n.ipmitool("-I", "lanplus", "-L", "USER", "-U", viewer.Name, "-P", viewer.Password, "chassis", "bootdev", "pxe")
	mustContain(t, out, "Insufficient privilege level")
	if n.override().Active() {
		t.Fatal("a USER account set the boot device")
	}

	// What each lesser account may do.
	out, err := n.ipmitool("-I", "lanplus", "-L", "USER", "-U", viewer.Name, "-P", viewer.Password, "power", "status")
	if err != nil {
		t.Fatalf("USER power status: %v\n%s", err, out)
	}
	mustContain(t, n.lanplus("-L", "OPERATOR", "-U", operator.Name, "-P", operator.Password, "chassis", "bootdev", "pxe"), "Set Boot Device to pxe")
	mustContain(t, out, "Chassis Power is on")
	out, err = n.ipmitool("-I", "lanplus", "-L", "OPERATOR", "-U", operator.Name, "-P", operator.Password, "power", "off")
	if err != nil || n.power() != bmc.PowerOff {
		t.Fatalf("OPERATOR power off: %v\n%s", err, out)
	}
}

func TestBackendFailureIsRetryable(t *testing.T) {
	n := startNode(t)
	n.sim.SetFault(errors.New("hypervisor unreachable"))
	out, err := n.ipmitool("-I", "lanplus", "-U", admin.Name, "-P", admin.Password, "power", "on")
	if err == nil {
		t.Fatalf("power on succeeded while the backend fails:\n%s", out)
	}
	mustContain(t, out, "Node busy")
	out, err = n.ipmitool("-I", "lanplus", "-U", admin.Name, "-P", admin.Password, "chassis", "bootparam", "get", "5")
	if err == nil {
		t.Fatalf("bootparam get succeeded while the backend fails:\n%s", out)
	}
	mustContain(t, n.logs.String(), "hypervisor unreachable", "node="+n.cfg.Name, "op=\"power on\"")

	n.sim.SetFault(nil)
	n.lanplus("power", "on")
	if n.power() != bmc.PowerOn {
		t.Fatal("power on after recovery did not take")
	}
}

func TestUnknownCommandIsInvalidCommand(t *testing.T) {
	n := startNode(t)
	out, err := n.ipmitool("-I", "lanplus", "-U", admin.Name, "-P", admin.Password, "raw", "0x2c", "0x3e")
	if err == nil {
		t.Fatalf("unknown command accepted:\n%s", out)
	}
	mustContain(t, out, "rsp=0xc1")
}

func TestIPMIv15CanBeDisabled(t *testing.T) {
	n := startNode(t, func(c *bmc.Node) { c.DisableIPMIv15 = true })
	out, err := n.ipmitool("-I", "lan", "-R", "1", "-N", "2", "-U", admin.Name, "-P", admin.Password, "power", "status")
	if err == nil {
		t.Fatalf("IPMI 1.5 session opened on a node with it disabled:\n%s", out)
	}
	mustContain(t, n.lanplus("power", "status"), "Chassis Power is off")
}

func TestCipherSuiteList(t *testing.T) {
	n := startNode(t, func(c *bmc.Node) { c.CipherSuites = []int{17} })
	mustContain(t, n.lanplus("power", "status"), "Chassis Power is off")
	mustContain(t, n.lanplus("-C", "17", "power", "status"), "Chassis Power is off")
	out, err := n.ipmitool("-I", "lanplus", "-C", "3", "-R", "1", "-N", "2", "-U", admin.Name, "-P", admin.Password, "power", "status")
	if err == nil {
		t.Fatalf("suite 3 accepted on a node offering only 17:\n%s", out)
	}
}

// TestRetransmittedControlRunsOnce: when the machine is slower than the
// client's timeout, ipmitool retransmits; the power cycle must still run
// once, and the retransmission get the same answer. The acknowledgement
// bound is set above ipmitool's timeout here, so that the request really
// is retransmitted.
func TestRetransmittedControlRunsOnce(t *testing.T) {
	for _, proto := range []string{"lanplus", "lan"} {
		t.Run(proto, func(t *testing.T) {
			n := startNodeWith(t, ipmi.Options{AckWithin: 3 * time.Second})
			n.setPower(bmc.PowerOn)
			n.sim.SetLatency(1500 * time.Millisecond)
			boots := len(n.sim.Boots())
			out, err := n.ipmitool("-I", proto, "-N", "1", "-R", "4", "-U", admin.Name, "-P", admin.Password, "power", "cycle")
			if err != nil {
				t.Fatalf("power cycle: %v\n%s", err, out)
			}
			mustContain(t, out, "Chassis Power Control: Cycle")
			if got := len(n.sim.Boots()) - boots; got != 1 {
				t.Fatalf("one power cycle request booted the machine %d times", got)
			}
			if !strings.Contains(n.logs.String(), "Chassis Control") || strings.Count(n.logs.String(), `op="power cycle"`) != 1 {
				t.Fatalf("power cycle executed %d times", strings.Count(n.logs.String(), `op="power cycle"`))
			}
		})
	}
}

// TestFailedLoginsAreThrottled: after repeated failed logins from one
// address, new logins from it are refused for a while; a session already
// open is not affected, and logins work again after the block.
func TestFailedLoginsAreThrottled(t *testing.T) {
	n := startNodeWith(t, ipmi.Options{AuthFailureLimit: 3, AuthBlock: 5 * time.Second})
	open, err := n.connect(admin, client.InterfaceLanplus, types.PrivilegeLevelAdministrator)
	if err != nil {
		t.Fatal(err)
	}
	fail := [][]string{
		{"-I", "lanplus", "-U", "nobody", "-P", "x"},
		{"-I", "lan", "-U", "admin", "-P", "wrong"},
		{"-I", "lanplus", "-U", "nobody", "-P", "y"},
	}
	for _, args := range fail {
		if out, err := n.ipmitool(append(append([]string{"-R", "1", "-N", "1"}, args...), "power", "status")...); err == nil {
			t.Fatalf("a bad login succeeded:\n%s", out)
		}
	}
	// An RMCP+ client with a wrong password or user gives up after RAKP 2:
	// that counts once the handshake has been left for 3 s.
	time.Sleep(3200 * time.Millisecond)
	start := time.Now()
	c, err := client.NewClient("127.0.0.1", atoi(n.port), admin.Name, admin.Password)
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithInterface(client.InterfaceLanplus).WithCipherSuiteID(types.CipherSuiteID17).WithTimeout(500 * time.Millisecond).WithRetry(0)
	if err := c.Connect(context.Background()); err == nil {
		c.Close(context.Background())
		t.Fatal("a login from the throttled address went through")
	}
	if _, err := open.GetChassisStatus(context.Background()); err != nil {
		t.Fatalf("the session opened before the block suffered: %v", err)
	}
	mustContain(t, n.logs.String(), "logins from this address keep failing")
	time.Sleep(time.Until(start.Add(5500 * time.Millisecond)))
	mustContain(t, n.lanplus("power", "status"), "Chassis Power is off")
}

package ipmi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// TestSlowControlIsAcknowledged: against a machine whose every operation
// takes 1.5 s, Ironic's command line with -R 1 -N 1 (one try, a one-second
// timeout) succeeds at once for power off, on and cycle; power status tells
// the truth meanwhile; the machine reaches the target; each control runs
// once; a control that arrives while one is in flight runs after it.
func TestSlowControlIsAcknowledged(t *testing.T) {
	n := startNode(t)
	pw := passwordFile(t, admin.Password)
	ironic := func(args ...string) string {
		t.Helper()
		base := []string{"-I", "lanplus", "-L", "ADMINISTRATOR", "-U", admin.Name, "-R", "1", "-N", "1", "-f", pw}
		out, err := n.ipmitool(append(base, args...)...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	n.setPower(bmc.PowerOn)
	n.sim.SetLatency(1500 * time.Millisecond)

	mustContain(t, ironic("power", "off"), "Chassis Power Control: Down/Off")
	eventually(t, toolTimeout, "power off takes", func() bool { return n.power() == bmc.PowerOff })
	mustContain(t, n.logs.String(), `chassis control acknowledged; still running" node=`+n.cfg.Name+` op="power off"`)

	// Power on right after power off, both acknowledged before either has
	// run: the on is ordered after the off and the machine ends on.
	ironic("power", "off") // already off: runs, and takes 1.5 s
	mustContain(t, ironic("power", "on"), "Chassis Power Control: Up/On")
	eventually(t, toolTimeout, "power on after the off", func() bool { return n.power() == bmc.PowerOn })

	boots := len(n.sim.Boots())
	mustContain(t, ironic("power", "cycle"), "Chassis Power Control: Cycle")
	eventually(t, toolTimeout, "power cycle boots", func() bool { return len(n.sim.Boots()) == boots+1 })
	for op, want := range map[string]int{"power off": 2, "power on": 1, "power cycle": 1} {
		if got := strings.Count(n.logs.String(), `msg="chassis control" node=`+n.cfg.Name+` op="`+op+`"`); got != want {
			t.Errorf("%s ran %d times, want %d", op, got, want)
		}
	}
}

// TestFastControlReportsItsOutcome: an operation that fails within the
// bound is answered with its own completion code.
func TestFastControlReportsItsOutcome(t *testing.T) {
	n := startNode(t)
	out, err := n.ipmitool("-I", "lanplus", "-U", admin.Name, "-P", admin.Password, "-R", "1", "-N", "1", "power", "reset")
	if err == nil {
		t.Fatalf("hard reset of a machine that is off succeeded:\n%s", out)
	}
	mustContain(t, out, "Set Chassis Power Control to Reset failed: Command not supported in present state")
}

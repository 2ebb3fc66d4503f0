package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
)

// TestSSHDaemonKilledAndRestarted: sshd on the hypervisor is killed with
// SIGKILL (its session processes with it, so the tunnel really drops and
// nothing listens any more) under a qemu+ssh node. Meanwhile ipmitool gets
// an error answer (0xC0, "Node busy") at once, not silence until its
// retries run out; once sshd is back on the same port the node recovers on
// its own, with one new login, within a few seconds.
func TestSSHDaemonKilledAndRestarted(t *testing.T) {
	sshd, c, name, n := qemuNodeOverSSH(t)

	sshd.Kill()
	killed := time.Now()
	// ipmitool's defaults (lanplus: 1 s timeout, retries) would take over
	// 10 s to give up on a BMC that stays silent; an answer comes at once.
	var slowest time.Duration
	var answers []string
	for time.Since(killed) < 3*time.Second {
		start := time.Now()
		out, err := n.ipmitool("power", "status")
		took := time.Since(start)
		slowest = max(slowest, took)
		if err == nil {
			t.Fatalf("power status succeeded %v after sshd was killed:\n%s", time.Since(killed), out)
		}
		if !strings.Contains(out, "Node busy") {
			t.Fatalf("outage answer is not 0xC0 (Node busy), after %v:\n%s", took, out)
		}
		answers = append(answers, took.Round(time.Millisecond).String())
	}
	if slowest > 5*time.Second {
		t.Errorf("an ipmitool command took %v during the outage, want an answer within seconds", slowest)
	}
	mustContain(t, n.logs.String(), "hypervisor unreachable")

	sshd.Restart()
	restarted := time.Now()
	testtool.Eventually(t, 15*time.Second, "recovery after sshd restarted", func() bool {
		out, err := n.ipmitool("power", "status")
		return err == nil && strings.Contains(out, "Chassis Power is off")
	})
	recovered := time.Since(restarted)
	n.must("chassis", "bootdev", "pxe", "options=persistent")
	if !strings.Contains(testtool.InactiveXML(t, c, name), "<boot dev='network'/>") {
		t.Error("boot device not set through the new tunnel")
	}
	if recovered > 8*time.Second {
		t.Errorf("recovered %v after sshd restarted, want a few seconds", recovered)
	}
	if got := sshd.Logins(); got != 2 {
		t.Errorf("%d SSH logins, want 2 (before the kill and after the restart)", got)
	}
	t.Logf("outage answers (each an ipmitool run): %s; slowest %v; recovered %v after the restart (outage %v)",
		strings.Join(answers, " "), slowest.Round(time.Millisecond), recovered.Round(time.Millisecond), restarted.Sub(killed).Round(time.Millisecond))
}

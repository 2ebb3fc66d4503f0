package libvirtconn

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
)

// seaBIOSBanner is what SeaBIOS prints at every boot.
const seaBIOSBanner = "SeaBIOS (version"

// heldLog is in what the BMC logs when it finds the console held by
// another client, the first time (info) and on each retry (debug).
const heldLog = "held by another client"

// TestResetAndCycleTakeTheConsoleBack: a SOL client stays attached while an
// operator's `virsh console --force` holds the console; the BMC keeps
// trying without taking it back, and virsh stays connected. A reset
// through the BMC takes the console back (virsh is disconnected) before
// the reboot, whose banner the SOL client sees; so does a power cycle's
// boot.
func TestResetAndCycleTakeTheConsoleBack(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	c := qemuConn(t)
	name := testtool.DefineTestDomain(t, c, testtool.ConsoleDomainXML, testtool.VirtType())
	logs := &testtool.Buffer{}
	stacks := recordStuck(t)
	d := openDomain(t, c, name, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() {
		t.Logf("packets libvirtd sent for calls that had ended, dropped: %d; sent before their call's reply, held: %d", c.StalePackets.Load(), c.EarlyPackets.Load())
		if t.Failed() {
			t.Logf("BMC log:\n%s\ngo-libvirt's goroutines when a call was found stuck:\n%s", logs.String(), stacks.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := d.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	sol, err := d.OpenConsole(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sol.Close() })
	seen := &testtool.Buffer{}
	go func() { _, _ = io.Copy(seen, sol) }()
	testtool.Eventually(t, 60*time.Second, "the boot on the BMC's console", func() bool {
		return strings.Contains(seen.String(), seaBIOSBanner)
	})

	for _, op := range []struct {
		name string
		do   func(context.Context) error
	}{{"reset", d.Reset}, {"power cycle", d.PowerCycle}} {
		boots := strings.Count(seen.String(), seaBIOSBanner)
		virsh := testtool.StartTerminal(t, "virsh", "-c", "qemu:///system", "console", name, "--force")
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("the operator's virsh console at the %s:\n%q", op.name, virsh.Output())
			}
		})
		operatorHolds(t, virsh)
		// The BMC's stream may or may not have been told it lost the
		// console (libvirtd tells an old stream only at the guest's next
		// output, and what virsh showed may have been output the BMC's
		// stream had not read yet): the reset must take it back either
		// way. (That an idle BMC leaves an operator's console alone is
		// TestOperatorKeepsVirshConsole's.)
		if !virsh.Running() {
			t.Fatalf("before the %s, the operator's virsh console ended:\n%s", op.name, virsh.Output())
		}
		shown := len(virsh.Output())
		if err := op.do(ctx); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		// The console is the BMC's: the boot after the op is on its
		// console, and none of it on virsh's. (virsh is not always told:
		// libvirtd 9.0.0 tells a stream that a forced open took its console
		// only if it is waiting on that stream at that instant
		// (virfdstream.c, virFDStreamCloseInt); while it passes the guest's
		// output on to virsh it is not, and virsh then stays connected,
		// silent, even when typed into: 4 times in 87 runs, once with ESC
		// typed every half second for 30 s.)
		testtool.Eventually(t, 60*time.Second, "the boot after the "+op.name+" on the BMC's console", func() bool {
			return strings.Count(seen.String(), seaBIOSBanner) > boots
		})
		if after := virsh.Output()[shown:]; strings.Contains(after, seaBIOSBanner) {
			t.Fatalf("the operator's virsh console got the boot after the %s too:\n%q", op.name, after)
		}
	}
	if err := d.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
}

// operatorHolds waits until the operator's `virsh console` holds the
// console. virsh prints "Escape character is" before it even asks libvirtd
// for the console, so that line proves nothing: a reset right after it
// races virsh's --force open, and whichever comes last wins. What proves
// it is the guest's output reaching virsh: ESC (typed every half second,
// once virsh forwards input) makes SeaBIOS, in its boot menu prompt, print
// its boot menu; past the prompt it prints its boot attempts anyway.
func operatorHolds(t *testing.T, virsh *testtool.Terminal) {
	t.Helper()
	var typed time.Time
	testtool.Eventually(t, 30*time.Second, "the guest's output on the operator's virsh console", func() bool {
		_, after, ok := strings.Cut(virsh.Output(), "Escape character is")
		if !ok {
			return false
		}
		_, after, _ = strings.Cut(after, "\n")
		// A terminal not yet raw echoes the typed ESC as "^[".
		if strings.TrimSpace(strings.ReplaceAll(after, "^[", "")) != "" {
			return true
		}
		if time.Since(typed) > 500*time.Millisecond {
			virsh.Type(t, "\x1b")
			typed = time.Now()
		}
		return false
	})
}

// recordStuck records, each time the BMC finds a libvirt call stuck (see
// stuckHook), the stacks of the goroutines in go-libvirt then.
func recordStuck(t *testing.T) *testtool.Buffer {
	t.Helper()
	out := &testtool.Buffer{}
	hook := func(what string) {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		fmt.Fprintf(out, "=== %s\n", what)
		for _, g := range bytes.Split(buf, []byte("\n\n")) {
			if bytes.Contains(g, []byte("go-libvirt")) {
				fmt.Fprintf(out, "%s\n\n", g)
			}
		}
	}
	stuckHook.Store(&hook)
	t.Cleanup(func() { stuckHook.Store(nil) })
	return out
}

// TestClaimDuringTheOpenIsDoneByIt: a SOL activation's, power on's or
// reset's claim on the console made while libvirtd opens the BMC's stream
// (the stream loop having taken the claims made before) is done once that
// stream opens, not consoleOpenWait later.
func TestClaimDuringTheOpenIsDoneByIt(t *testing.T) {
	c := newConsole(nil, nil, nil, slog.New(slog.DiscardHandler))
	c.running = true // the stream loop is in streamOnce, opening a stream
	for _, renew := range []bool{false, true} {
		c.open = false // a stream being opened: not open yet, no input
		opened := c.claim(renew)
		ended := false
		c.gotConsole(&ended)
		select {
		case <-opened:
		default:
			t.Fatalf("claim(renew=%v) made while the stream opened: not done once it opened", renew)
		}
	}
}

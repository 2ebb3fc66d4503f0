package ipmi_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
)

// solSession runs `ipmitool sol activate` under a pseudo-terminal (script),
// as Ironic's console drivers do, typing input and returning what it printed.
type solSession struct {
	cmd  *exec.Cmd
	in   *os.File
	out  *testtool.Buffer
	done chan error
}

func (n *testNode) startSOL(t *testing.T) *solSession {
	t.Helper()
	testtool.Require(t, "script")
	ipmitool := testtool.Require(t, "ipmitool")
	pw := passwordFile(t, admin.Password)
	line := fmt.Sprintf("%s -I lanplus -H 127.0.0.1 -p %s -L ADMINISTRATOR -U %s -f %s sol activate", ipmitool, n.port, admin.Name, pw)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &solSession{in: w, out: &testtool.Buffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command("script", "-q", "-e", "-c", line, "/dev/null")
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = r, s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		w.Close()
		_ = s.cmd.Process.Kill()
		<-s.done
	})
	testtool.Eventually(t, 10*time.Second, "SOL session operational", func() bool {
		return strings.Contains(s.out.String(), "SOL Session operational")
	})
	return s
}

func (s *solSession) typeKeys(t *testing.T, keys string) {
	t.Helper()
	if _, err := s.in.WriteString(keys); err != nil {
		t.Fatal(err)
	}
}

func (s *solSession) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(within):
		t.Fatalf("ipmitool sol activate still running:\n%s", s.out.String())
		return nil
	}
}

// TestSOLShowsBootMessagesAndEchoes: output from before the client attached
// is there, typed characters reach the machine (which echoes them), and
// "~." ends the session.
func TestSOLShowsBootMessagesAndEchoes(t *testing.T) {
	n := startNode(t, func(c *bmc.Node) {})
	n.lanplus("power", "on") // boot messages while nobody is attached
	s := n.startSOL(t)
	testtool.Eventually(t, 5*time.Second, "the boot banner", func() bool {
		return strings.Contains(s.out.String(), "Booting from Hard Disk")
	})
	s.typeKeys(t, "typed-through-sol\r")
	testtool.Eventually(t, 5*time.Second, "the echo", func() bool {
		return strings.Contains(s.out.String(), "typed-through-sol")
	})
	n.lanplus("power", "reset")
	testtool.Eventually(t, 5*time.Second, "the reset's boot messages", func() bool {
		return strings.Count(s.out.String(), "Booting from Hard Disk") >= 2
	})
	s.typeKeys(t, "\r~.")
	if err := s.wait(t, 10*time.Second); err != nil {
		t.Fatalf("~. : %v\n%s", err, s.out.String())
	}
}

// TestSOLOneSessionAndDeactivateFromAnother: a second activation is refused
// as already active; `sol deactivate` from another process (Ironic's way)
// ends the first payload and frees the console for the next activation.
// (ipmitool ignores the BMC's "SOL deactivating" status and keeps running
// until killed, which is what Ironic does next.)
func TestSOLOneSessionAndDeactivateFromAnother(t *testing.T) {
	n := startNode(t)
	n.lanplus("power", "on")
	first := n.startSOL(t)

	out, err := n.ipmitool("-I", "lanplus", "-U", admin.Name, "-P", admin.Password, "sol", "activate")
	if err == nil {
		t.Fatalf("second activation accepted:\n%s", out)
	}
	mustContain(t, out, "SOL payload already active on another session")

	n.lanplus("sol", "deactivate")
	// The first console gets nothing more.
	seen := first.out.String()
	n.lanplus("power", "reset")
	time.Sleep(500 * time.Millisecond)
	if first.out.String() != seen {
		t.Errorf("a deactivated console still receives output:\n%s", first.out.String())
	}
	// The console is free again.
	again := n.startSOL(t)
	testtool.Eventually(t, 5*time.Second, "the reset's messages on the new console", func() bool {
		return strings.Contains(again.out.String(), "Hard reset")
	})
	again.typeKeys(t, "\r~.")
	_ = again.wait(t, 10*time.Second)
}

// TestSOLActivationCyclesLeakNothing activates and deactivates SOL many
// times: goroutines and file descriptors come back to where they were, and
// the console is free at the end.
func TestSOLActivationCyclesLeakNothing(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	c, err := n.connect(admin, client.InterfaceLanplus, types.PrivilegeLevelAdministrator)
	if err != nil {
		t.Fatal(err)
	}
	activate := []byte{0x01, 0x01, 0x00, 0x00, 0x00, 0x00}
	deactivate := []byte{0x01, 0x01, 0x00, 0x00, 0x00, 0x00}
	cycle := func() {
		if _, err := c.RawCommand(ctx, types.NetFnAppRequest, 0x48, activate, "activate"); err != nil {
			t.Fatalf("activate: %v", err)
		}
		if _, err := c.RawCommand(ctx, types.NetFnAppRequest, 0x49, deactivate, "deactivate"); err != nil {
			t.Fatalf("deactivate: %v", err)
		}
	}
	for i := 0; i < 20; i++ { // warm up lazily created workers
		cycle()
	}
	runtime.GC()
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	for i := 0; i < 1000; i++ {
		cycle()
	}
	testtool.Eventually(t, 5*time.Second, "goroutines back to their count", func() bool {
		runtime.GC()
		return runtime.NumGoroutine() <= goroutines+2
	})
	if now := openFDs(t); now > fds+2 {
		t.Errorf("file descriptors grew from %d to %d over 1,000 cycles", fds, now)
	}
	con, err := n.sim.OpenConsole(ctx)
	if errors.Is(err, bmc.ErrConsoleBusy) {
		t.Fatal("console still held after the last deactivation")
	}
	if err == nil {
		con.Close()
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}

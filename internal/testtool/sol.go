package testtool

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Terminal is a program running under a pseudo-terminal (script), as an
// operator runs it at a shell: `ipmitool … sol activate`, `virsh console`.
type Terminal struct {
	name string
	cmd  *exec.Cmd
	in   *os.File
	out  *Buffer
	done chan error
}

// SOL is `ipmitool … sol activate` under a pseudo-terminal, as Ironic's
// console drivers run it.
type SOL = Terminal

// StartTerminal runs program with args under a pseudo-terminal; it is
// killed at the end of the test.
func StartTerminal(t testing.TB, program string, args ...string) *Terminal {
	t.Helper()
	Require(t, "script")
	line := Require(t, program) + " " + strings.Join(args, " ")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &Terminal{name: program, in: w, out: &Buffer{}, done: make(chan error, 1)}
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
	return s
}

// StartSOL runs ipmitool with args (which end in "sol activate") and waits
// until the session is operational.
func StartSOL(t testing.TB, args ...string) *SOL {
	t.Helper()
	s := StartTerminal(t, "ipmitool", args...)
	Eventually(t, 15*time.Second, "SOL session operational", func() bool {
		return strings.Contains(s.Output(), "SOL Session operational")
	})
	return s
}

// Output is what the program printed so far.
func (s *Terminal) Output() string { return s.out.String() }

// Type sends keys as if typed on the terminal.
func (s *Terminal) Type(t testing.TB, keys string) {
	t.Helper()
	if _, err := s.in.WriteString(keys); err != nil {
		t.Fatal(err)
	}
}

// Running reports whether the program still runs.
func (s *Terminal) Running() bool {
	select {
	case err := <-s.done:
		s.done <- err
		return false
	default:
		return true
	}
}

// Wait waits for the program to exit, failing the test after within.
func (s *Terminal) Wait(t testing.TB, within time.Duration) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(within):
		t.Fatalf("%s still running:\n%s", s.name, s.Output())
		return nil
	}
}

package testtool

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// SOL is `ipmitool … sol activate` running under a pseudo-terminal (script),
// as Ironic's console drivers run it.
type SOL struct {
	cmd  *exec.Cmd
	in   *os.File
	out  *Buffer
	done chan error
}

// StartSOL runs ipmitool with args (which end in "sol activate") and waits
// until the session is operational.
func StartSOL(t testing.TB, args ...string) *SOL {
	t.Helper()
	Require(t, "script")
	line := Require(t, "ipmitool") + " " + strings.Join(args, " ")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &SOL{in: w, out: &Buffer{}, done: make(chan error, 1)}
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
	Eventually(t, 15*time.Second, "SOL session operational", func() bool {
		return strings.Contains(s.out.String(), "SOL Session operational")
	})
	return s
}

// Output is what the session printed so far.
func (s *SOL) Output() string { return s.out.String() }

// Type sends keys as if typed on the terminal.
func (s *SOL) Type(t testing.TB, keys string) {
	t.Helper()
	if _, err := s.in.WriteString(keys); err != nil {
		t.Fatal(err)
	}
}

// Wait waits for ipmitool to exit, failing the test after within.
func (s *SOL) Wait(t testing.TB, within time.Duration) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(within):
		t.Fatalf("ipmitool sol activate still running:\n%s", s.Output())
		return nil
	}
}

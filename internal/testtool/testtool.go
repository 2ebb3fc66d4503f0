// Package testtool finds and runs the real external programs (ipmitool,
// freeipmi) that govbmc's tests drive.
package testtool

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Require returns the path of an external program, looked for in PATH and
// then in /usr/sbin and /sbin (where Debian puts ipmipower, libvirtd and
// sshd, outside a normal user's PATH). When it is missing the test is
// skipped, except under CI=true, where a missing real dependency is a
// failure: `make test` and .ci/run install it.
func Require(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, serr := exec.LookPath(filepath.Join(dir, name)); serr == nil {
			return p
		}
	}
	Missing(t, fmt.Sprintf("%s is not installed (%v); `make test` installs it", name, err))
	return ""
}

// Missing stops a test whose real part (a program, root, a running
// daemon, a hook) is not there: it is skipped with why, so that `make
// check` runs on a machine nobody prepared, except under CI=true, where a
// missing real part is a failure.
func Missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: real dependencies must be present)", why)
	}
	t.Skip(why)
}

// RequireRoot stops a test that needs root for what (see Missing) when the
// test does not run as root.
func RequireRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, what+" needs root (CI runs `make test` as root)")
	}
}

// Run runs a program with a deadline and returns its combined output.
func Run(t testing.TB, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	return RunEnv(t, timeout, nil, name, args...)
}

// RunEnv is Run with the environment env (nil: this process's).
func RunEnv(t testing.TB, timeout time.Duration, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Require(t, name), args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// Eventually polls cond until it holds, failing the test after within.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WriteFile writes a private (0600) file in the test's temporary directory.
func WriteFile(t testing.TB, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

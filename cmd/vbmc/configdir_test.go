package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
)

// mountTmpfs mounts a small tmpfs of the test's own on dir, unmounted at
// cleanup. It needs root: without it the test is skipped, or fails under
// CI=true.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	testtool.RequireRoot(t, "mounting a tmpfs")
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		testtool.Missing(t, fmt.Sprintf("cannot mount a tmpfs: %v: %s", err, out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

func remount(t *testing.T, dir, mode string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+mode, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", dir, mode, err, out)
	}
}

// fill writes into dir until the file system is full, and returns the file
// that filled it.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for range 1 << 14 { // at most 1 GiB: the tmpfs is far smaller
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return p
			}
			t.Fatal(err)
		}
	}
	t.Fatal("the file system never filled")
	return ""
}

// startForeground runs vbmcd in the foreground, logging to the test rather
// than into the config directory (a read-only remount needs the directory
// free of files open for writing), with its pid file elsewhere. The
// returned function stops it with SIGTERM and waits.
func (e *env) startForeground() (stop func()) {
	e.t.Helper()
	logs := &testtool.Buffer{}
	cmd := exec.Command(filepath.Join(e.bin, "vbmcd"), "--foreground", "--pid-file", filepath.Join(e.t.TempDir(), "vbmcd.pid"))
	cmd.Env = append(os.Environ(), "VBMC_CONFIG_DIR="+e.dir)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if e.t.Failed() {
			e.t.Logf("vbmcd output:\n%s", logs.String())
		}
	}
	e.t.Cleanup(stop)
	testtool.Eventually(e.t, 15*time.Second, "vbmcd answering", func() bool {
		_, _, code := e.run("vbmc", "list")
		return code == 0
	})
	return stop
}

// TestConfigDirFullOrReadOnly: with the config directory full, then
// read-only, every change is refused with the cause named, and nothing is
// lost: the BMC files stay as they were, the running BMC keeps answering, a
// refused stop or delete leaves it running, a restart on the full disk
// brings it back, and once the directory is writable again changes work and
// a restart restores the fleet.
func TestConfigDirFullOrReadOnly(t *testing.T) {
	e := newEnv(t)
	mountTmpfs(t, e.dir, "2m")
	stop := e.startForeground()
	port := freePort(t)
	e.vbmc("add", "keep", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(port))
	e.vbmc("start", "keep")
	keepFile := filepath.Join(e.dir, "keep.json")
	saved, err := os.ReadFile(keepFile)
	if err != nil {
		t.Fatal(err)
	}
	stillServing := func(when string) {
		t.Helper()
		if out, err := ipmitool(t, port, "power", "status"); err != nil || !strings.Contains(out, "Chassis Power is") {
			t.Fatalf("%s: the running BMC stopped answering: %v\n%s", when, err, out)
		}
		if raw, err := os.ReadFile(keepFile); err != nil || string(raw) != string(saved) {
			t.Fatalf("%s: keep.json changed or unreadable (%v):\n%s", when, err, raw)
		}
		if l := e.listed(); l["keep"]["Status"] != "running" {
			t.Fatalf("%s: list %v", when, l)
		}
	}
	for _, c := range []struct {
		name  string
		setup func() (undo func())
		cause string
		ops   []string // refused; deleting needs no space, so a full directory allows it
	}{
		{"full", func() func() {
			filler := fill(t, e.dir)
			return func() { os.Remove(filler) }
		}, "no space left on device", []string{"add", "stop"}},
		{"read-only", func() func() {
			remount(t, e.dir, "ro")
			return func() { remount(t, e.dir, "rw") }
		}, "read-only file system", []string{"add", "stop", "delete"}},
	} {
		undo := c.setup()
		for _, op := range c.ops {
			args := []string{op, "keep"}
			if op == "add" {
				args = []string{"add", "new", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(freePort(t))}
			}
			errOut := e.refused(args...)
			if _, added := e.listed()["new"]; added {
				t.Fatalf("%s: a refused add is listed", c.name)
			}
			if !strings.Contains(errOut, c.cause) || !strings.Contains(errOut, e.dir) {
				t.Errorf("%s: vbmc %s: the error does not name the cause (%q) and the directory:\n%s", c.name, args[0], c.cause, errOut)
			}
			stillServing(c.name + ": after vbmc " + args[0])
		}
		if c.name == "full" {
			// vbmcd restarted on a full disk brings back what its files say.
			stop()
			stop = e.startForeground()
			testtool.Eventually(t, 10*time.Second, "keep running after a restart on a full disk", func() bool {
				return e.listed()["keep"]["Status"] == "running"
			})
			stillServing("restarted on a full disk")
		}
		undo()
	}
	e.vbmc("add", "new", "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(freePort(t)))
	stop()
	e.startForeground()
	if l := e.listed(); len(l) != 2 || l["keep"]["Status"] != "running" || l["new"]["Status"] != "down" {
		t.Fatalf("after a restart: %v", l)
	}
	stillServing("after a restart")
}

package libvirtconn

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
)

// heldStartEnv names the domain the helper process powers on and holds in
// its paused start (see TestHelperHoldPausedStart).
const heldStartEnv = "GOVBMC_TEST_HELD_START_DOMAIN"

// heldStartLine is what the helper prints once it holds the paused start.
const heldStartLine = "govbmc: paused start held"

// resumedLog is what a BMC logs when it resumes a domain an interrupted
// power on left paused.
const resumedLog = "resumed the domain an interrupted power on left paused"

// TestHelperHoldPausedStart is not a test of its own: run as a child
// process by TestKilledInsidePausedStart, it is a vbmcd powering a qemu
// domain on through its BMC, held (by the test hook) between opening the
// console of the paused domain and resuming it, until it is killed.
func TestHelperHoldPausedStart(t *testing.T) {
	name := os.Getenv(heldStartEnv)
	if name == "" {
		t.Skip("the helper process of TestKilledInsidePausedStart")
	}
	testHookHoldPausedStart = func(ctx context.Context) {
		fmt.Println(heldStartLine)
		<-ctx.Done()
	}
	pool := NewPool(nil, 0)
	defer pool.Close()
	c, err := pool.Get("qemu:///system", Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := NewDomain(c, name, nil)
	defer d.Close()
	err = d.PowerOn(ctx)
	t.Fatalf("the paused start was not held until the process was killed (power on: %v)", err)
}

// TestKilledInsidePausedStart: a vbmcd killed (SIGKILL) inside a power on's
// paused start (start paused, open the console, resume) leaves the domain
// paused, marked in its running definition's metadata; the next BMC for
// the domain resumes it as it starts, with no client asking, clears the
// mark and logs that it did.
func TestKilledInsidePausedStart(t *testing.T) {
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	c := qemuConn(t)
	name := testtool.DefineTestDomain(t, c, testtool.ConsoleDomainXML, testtool.VirtType())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperHoldPausedStart$", "-test.count=1")
	cmd.Env = append(os.Environ(), heldStartEnv+"="+name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	held := make(chan struct{})
	var out strings.Builder
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if sc.Text() == heldStartLine {
				close(held)
			}
		}
	}()
	select {
	case <-held:
	case <-exited:
		_ = cmd.Wait()
		t.Fatalf("the helper ended before holding the paused start:\n%s%s", out.String(), stderr.String())
	case <-ctx.Done():
		t.Fatalf("the helper did not hold the paused start in time")
	}

	// Inside the window, as libvirt holds it: paused, the running domain
	// marked, the definition not.
	if st := testtool.DomainState(t, c, name); st != libvirt.DomainPaused {
		t.Fatalf("inside the paused start the domain is in state %v, want paused", st)
	}
	if live := testtool.DomainXML(t, c, name, 0); !strings.Contains(live, startMarkNS) {
		t.Fatalf("the paused domain carries no paused-start mark:\n%s", live)
	}
	if def := testtool.InactiveXML(t, c, name); strings.Contains(def, startMarkNS) {
		t.Fatalf("the paused-start mark stayed in the definition:\n%s", def)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	<-exited
	// What the killed vbmcd left: a paused domain (that counts as on).
	if st := testtool.DomainState(t, c, name); st != libvirt.DomainPaused {
		t.Fatalf("after the kill the domain is in state %v, want still paused", st)
	}

	// The next vbmcd's BMC for the domain.
	logs := &testtool.Buffer{}
	d := openDomain(t, c, name, slog.New(slog.NewTextHandler(logs, nil)))
	testtool.Eventually(t, 30*time.Second, "the domain runs again without its mark", func() bool {
		return testtool.DomainState(t, c, name) == libvirt.DomainRunning &&
			!strings.Contains(testtool.DomainXML(t, c, name, 0), startMarkNS)
	})
	if !strings.Contains(logs.String(), "level=INFO msg=\""+resumedLog+"\"") {
		t.Errorf("the BMC did not log the resume at info level:\n%s", logs.String())
	}
	if s, err := d.PowerState(ctx); err != nil || s != bmc.PowerOn {
		t.Errorf("PowerState = %v, %v; want on", s, err)
	}
	if def := testtool.InactiveXML(t, c, name); strings.Contains(def, startMarkNS) {
		t.Errorf("the definition carries the mark:\n%s", def)
	}
}

// TestPausedBySomeoneElseStaysPaused: a domain paused by someone else
// carries no mark; a BMC starting for it leaves it paused.
func TestPausedBySomeoneElseStaysPaused(t *testing.T) {
	_, c := testConn(t)
	name := testtool.DefineTestDomain(t, c, testDomainXML)
	testtool.OnDomain(t, c, name, func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		if err := lv.DomainCreate(dom); err != nil {
			return err
		}
		return lv.DomainSuspend(dom)
	})
	logs := &testtool.Buffer{}
	d := openDomain(t, c, name, slog.New(slog.NewTextHandler(logs, nil)))
	// Operations wait for the BMC's first look at the domain.
	if s, err := d.PowerState(testCtx(t)); err != nil || s != bmc.PowerOn {
		t.Fatalf("PowerState = %v, %v; want on (paused)", s, err)
	}
	if st := testtool.DomainState(t, c, name); st != libvirt.DomainPaused {
		t.Fatalf("a domain paused by someone else is in state %v, want paused", st)
	}
	if strings.Contains(logs.String(), resumedLog) {
		t.Errorf("the BMC claims a resume:\n%s", logs.String())
	}
}

// TestStartMarkRecovery drives the recovery on the test driver, with marks
// written as an interrupted power on leaves them: a marked paused domain is
// resumed, a mark on a running domain or in a definition is cleared, and
// nothing else changes.
func TestStartMarkRecovery(t *testing.T) {
	_, c := testConn(t)
	for _, tc := range []struct {
		name    string
		prepare func(lv *libvirt.Libvirt, dom libvirt.Domain) error
		want    libvirt.DomainState
		resumed bool
	}{
		{"paused with mark", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
			if err := lv.DomainCreate(dom); err != nil {
				return err
			}
			if err := setStartMark(lv, dom, libvirt.DomainAffectLive); err != nil {
				return err
			}
			return lv.DomainSuspend(dom)
		}, libvirt.DomainRunning, true},
		{"running with mark", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
			if err := lv.DomainCreate(dom); err != nil {
				return err
			}
			return setStartMark(lv, dom, libvirt.DomainAffectLive)
		}, libvirt.DomainRunning, false},
		{"off with mark in the definition", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
			return setStartMark(lv, dom, libvirt.DomainAffectConfig)
		}, libvirt.DomainShutoff, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := testtool.DefineTestDomain(t, c, testDomainXML)
			testtool.OnDomain(t, c, name, tc.prepare)
			logs := &testtool.Buffer{}
			d := openDomain(t, c, name, slog.New(slog.NewTextHandler(logs, nil)))
			if _, err := d.PowerState(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if st := testtool.DomainState(t, c, name); st != tc.want {
				t.Errorf("state %v, want %v", st, tc.want)
			}
			for _, flags := range []libvirt.DomainXMLFlags{0, libvirt.DomainXMLInactive} {
				if doc := testtool.DomainXML(t, c, name, flags); strings.Contains(doc, startMarkNS) {
					t.Errorf("mark left (XML flags %d):\n%s", flags, doc)
				}
			}
			if got := strings.Contains(logs.String(), resumedLog); got != tc.resumed {
				t.Errorf("resume logged: %v, want %v:\n%s", got, tc.resumed, logs.String())
			}
		})
	}
}

// TestPowerOnLeavesNoMark: a power on that completes leaves no mark,
// neither in the running domain nor in the definition, whether it started
// the domain paused (qemu) or could not (the test driver).
func TestPowerOnLeavesNoMark(t *testing.T) {
	testtool.SystemLibvirtd(t)
	for _, tc := range []struct {
		name, uri, doc string
		args           []any
	}{
		{"qemu", "qemu:///system", testtool.ConsoleDomainXML, []any{testtool.VirtType()}},
		{"test driver", "test:///default", testDomainXML, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.uri == "qemu:///system" {
				testtool.Require(t, "qemu-system-x86_64")
			}
			c := connTo(t, tc.uri)
			name := testtool.DefineTestDomain(t, c, tc.doc, tc.args...)
			d := openDomain(t, c, name, nil)
			if err := d.PowerOn(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if st := testtool.DomainState(t, c, name); st != libvirt.DomainRunning {
				t.Fatalf("state %v after power on, want running", st)
			}
			for _, flags := range []libvirt.DomainXMLFlags{0, libvirt.DomainXMLInactive} {
				if doc := testtool.DomainXML(t, c, name, flags); strings.Contains(doc, startMarkNS) {
					t.Errorf("mark left after the power on (XML flags %d):\n%s", flags, doc)
				}
			}
		})
	}
}

// qemuConn returns a shared connection to qemu:///system.
func qemuConn(t *testing.T) *Conn {
	t.Helper()
	return connTo(t, "qemu:///system")
}

// connTo returns a shared connection to uri, on a pool of the test's.
func connTo(t *testing.T, uri string) *Conn {
	t.Helper()
	pool := NewPool(nil, 0)
	t.Cleanup(func() { pool.Close() })
	c, err := pool.Get(uri, Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openDomain makes a BMC's Domain for name, holding its own use of c (as
// a node does), closed at the end of the test.
func openDomain(t *testing.T, c *Conn, name string, log *slog.Logger) *Domain {
	t.Helper()
	own, err := c.pool.Get(c.key.uri, c.key.creds)
	if err != nil || own != c {
		t.Fatalf("another use of the connection: %v", err)
	}
	d := NewDomain(own, name, log)
	t.Cleanup(func() { d.Close() })
	return d
}

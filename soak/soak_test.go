// Package soak runs govbmc under mixed load for a while, with libvirtd
// restarted periodically: `make soak` runs it for 10 minutes, `make test`
// for a few seconds.
package soak

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/load"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/ipmi"
	"github.com/govbmc/govbmc/libvirtconn"
)

const (
	simNodes     = 190
	libvirtNodes = 10
	recoverGrace = 10 * time.Second // after libvirtd is back, errors may go on this long
)

// TestSoak: 200 BMCs (190 simulated, 10 on a libvirtd that is killed and
// restarted over and over) under continuous full-session traffic. Errors
// are allowed only on libvirt nodes inside outage windows; memory and
// goroutines must be flat at the end.
func TestSoak(t *testing.T) {
	// The short version (make test) stays light: it shares the machine
	// with every other test package.
	duration, every, concurrency := 8*time.Second, 3*time.Second, 4
	if d, err := time.ParseDuration(os.Getenv("GOVBMC_SOAK")); err == nil && d > 0 {
		duration, every, concurrency = d, time.Minute, 16
	}
	lvd := testtool.StartPrivateLibvirtd(t)
	pool := libvirtconn.NewPool(nil, 0)
	defer pool.Close()
	conn, err := pool.Get("test+unix:///default?socket="+lvd.Socket, libvirtconn.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var targets []load.Target
	isLibvirt := map[int]bool{}
	for i := 0; i < simNodes+libvirtNodes; i++ {
		n := bmc.Node{Name: fmt.Sprintf("soak-%d", i), Address: "127.0.0.1",
			Users: []bmc.User{{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}}}
		var m bmc.Machine
		if i < simNodes {
			if m, err = bmc.NewSimMachine(n); err != nil {
				t.Fatal(err)
			}
		} else {
			m = libvirtconn.NewDomain(conn, "test", quiet)
		}
		srv, err := ipmi.New(n, m, ipmi.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ctx) }()
		port := srv.Addr().Port
		targets = append(targets, load.Target{Host: "127.0.0.1", Port: port})
		if i >= simNodes {
			isLibvirt[port] = true
		}
	}

	// libvirtd outages, recorded as windows.
	type window struct{ from, to time.Time }
	var (
		mu      sync.Mutex
		outages []window
	)
	stopOutages := make(chan struct{})
	outagesDone := make(chan struct{})
	go func() {
		defer close(outagesDone)
		for {
			select {
			case <-stopOutages:
				return
			case <-time.After(every):
			}
			from := time.Now()
			lvd.Stop()
			time.Sleep(time.Second)
			lvd.Start()
			mu.Lock()
			// A session that began just before the kill fails with it.
			outages = append(outages, window{from.Add(-3 * time.Second), time.Now().Add(recoverGrace)})
			mu.Unlock()
		}
	}()
	inOutage := func(at time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range outages {
			if !at.Before(w.from) && at.Before(w.to) {
				return true
			}
		}
		return false
	}

	var (
		resMu    sync.Mutex
		sessions int
		bad      []string    // failures of simulated nodes (there must be none)
		libErrs  []time.Time // when failed libvirt-node sessions started
	)
	onSession := func(tg load.Target, start time.Time, err error) {
		resMu.Lock()
		defer resMu.Unlock()
		sessions++
		switch {
		case err == nil:
		case isLibvirt[tg.Port]:
			libErrs = append(libErrs, start)
		case len(bad) < 5:
			bad = append(bad, fmt.Sprintf("%s at %s: %v", tg, start.Format("15:04:05.000"), err))
		}
	}

	// Warm up, then take the baseline.
	load.Run(ctx, load.Config{Targets: targets, Username: "admin", Password: "password", Concurrency: concurrency})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()

	end := time.Now().Add(duration)
	for time.Now().Before(end) {
		load.Run(ctx, load.Config{Targets: targets, Username: "admin", Password: "password", Concurrency: concurrency,
			Command: "power-status", Duration: time.Until(end), Sessions: len(targets) * 5, OnSession: onSession})
	}
	close(stopOutages)
	<-outagesDone
	time.Sleep(recoverGrace)

	if len(bad) > 0 {
		t.Errorf("simulated nodes failed (they never should): %v", bad)
	}
	// Every libvirt-node error must fall in an outage window (all windows
	// are recorded: the outage loop has finished).
	outside := 0
	for _, at := range libErrs {
		if !inOutage(at) {
			outside++
		}
	}
	if outside > 0 {
		t.Errorf("%d libvirt-node errors outside libvirtd outages", outside)
	}

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	goroutinesAfter := runtime.NumGoroutine()
	t.Logf("%v: %d sessions, %d libvirtd restarts, %d errors on libvirt nodes (all inside outages: %v), heap %d → %d KiB, goroutines %d → %d",
		duration, sessions, len(outages), len(libErrs), outside == 0, before.HeapAlloc>>10, after.HeapAlloc>>10, goroutinesBefore, goroutinesAfter)
	if after.HeapAlloc > before.HeapAlloc+32<<20 {
		t.Errorf("heap grew from %d to %d KiB", before.HeapAlloc>>10, after.HeapAlloc>>10)
	}
	if goroutinesAfter > goroutinesBefore+50 {
		t.Errorf("goroutines grew from %d to %d", goroutinesBefore, goroutinesAfter)
	}
}

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/load"
	"github.com/govbmc/govbmc/internal/testtool"
)

// scaleBase is the first port of the scale runs: 10,000 ports from there
// stay below Linux's ephemeral range (32768 up), where the load
// generator's own sockets would take some of them.
const scaleBase = 20000

// webResult is what a fleet's Redfish service and metrics cost.
type webResult struct {
	collFirst    time.Duration // the first Systems collection GET
	coll         load.Result   // the next ones
	afterRedfish int           // resident KiB after the sweep and the collection GETs
	scrape       scrapeResult  // metrics on too, after a sweep
	afterScrape  int           // resident KiB after that sweep and the scrapes
}

// storedResult is one measurement of a vbmcd whose nodes are in its config
// directory, as vbmc add and vbmc start leave them.
type storedResult struct {
	up         time.Duration // start, restoring every node, to all listening
	idle       int           // resident KiB once up
	addFirst   time.Duration // vbmc add into a daemon with no node
	addNext    time.Duration // vbmc add into the daemon holding all of them
	list, json time.Duration // vbmc list, vbmc list -f json
	stop       time.Duration // SIGTERM to exit
	restart    time.Duration // SIGTERM, then a new vbmcd to all listening
}

// TestScale: 1,000 and 10,000 BMCs in one vbmcd, measured in the same run,
// each figure with its growth from 1k to 10k. Full mode only.
func TestScale(t *testing.T) {
	if !full {
		t.Skip("10,000 BMCs: make bench only (GOVBMC_BENCH=full)")
	}
	testtool.Require(t, "ipmitool")
	bin, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{1000, 10000}
	fleets := map[int]fleetResult{}
	stored := map[int]storedResult{}
	web := map[int]webResult{}
	for _, n := range sizes {
		var w webResult
		// Redfish on, as the memory target has it.
		f := measureFleetAt(t, filepath.Join(bin, "vbmcd"), n, scaleBase, fleetExtras{args: redfishArgs, during: func(pid int) {
			w.collFirst, w.coll = collectionTimes(t, n, 20)
			w.afterRedfish = rssKiB(pid)
		}})
		if f.sweep.Errors > 0 {
			t.Errorf("%d BMCs: sweep errors: %s", n, f.sweep)
		}
		// Metrics on too: a scrape once every node has its series.
		m := measureFleetAt(t, filepath.Join(bin, "vbmcd"), n, scaleBase, fleetExtras{args: append(append([]string(nil), redfishArgs...), metricsArgs...), during: func(pid int) {
			w.scrape = scrapeMetrics(t, 5)
			w.afterScrape = rssKiB(pid)
		}})
		if m.sweep.Errors > 0 {
			t.Errorf("%d BMCs, metrics on: sweep errors: %s", n, m.sweep)
		}
		fleets[n], web[n] = f, w
		stored[n] = measureStored(t, bin, n)
		t.Logf("%d BMCs: fleet %+v; Redfish and metrics %+v; config directory %+v", n, f, w, stored[n])
	}
	small, big := sizes[0], sizes[1]
	var rows []string
	row := func(figure string, a, b float64, show func(float64) string, target string, ok bool) {
		verdict := ""
		if target != "" {
			verdict = "met"
			if !ok {
				verdict = "**missed**"
			}
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %.1f× | %s | %s |", figure, show(a), show(b), b/max(a, 1e-9), target, verdict))
	}
	dur := func(d time.Duration) float64 { return float64(d) }
	showDur := func(v float64) string { return time.Duration(v).Round(time.Millisecond).String() }
	showMiB := func(v float64) string { return mib(int(v)) }
	f1, f2, s1, s2 := fleets[small], fleets[big], stored[small], stored[big]
	row("fleet file: start to all listening", dur(f1.up), dur(f2.up), showDur, "≤ 3 s", f2.up <= 3*time.Second)
	row("fleet file: RSS idle", float64(f1.idle), float64(f2.idle), showMiB, "≤ 256 MiB", f2.idle <= 256*1024)
	row("fleet file: full-session sweep (c=64)", dur(f1.sweep.Elapsed), dur(f2.sweep.Elapsed), showDur, "≤ 2 s", f2.sweep.Elapsed <= 2*time.Second)
	perSession := func(f fleetResult, cpu time.Duration) float64 {
		return float64(cpu) / float64(max(f.sweep.Sessions, 1))
	}
	showMicros := func(v float64) string { return time.Duration(v).Round(time.Microsecond).String() }
	row("fleet file: the sweep's CPU per session in vbmcd", perSession(f1, f1.serverCPU), perSession(f2, f2.serverCPU), showMicros, "", true)
	row("fleet file: the sweep's CPU per session in the load generator", perSession(f1, f1.clientCPU), perSession(f2, f2.clientCPU), showMicros, "", true)
	row("fleet file: RSS after the sweep", float64(f1.after), float64(f2.after), showMiB, "≤ 256 MiB", f2.after <= 256*1024)
	w1, w2 := web[small], web[big]
	row("fleet file: Redfish Systems collection GET, the first (every machine's UUID read)", dur(w1.collFirst), dur(w2.collFirst), showDur, "", true)
	row("fleet file: Redfish Systems collection GET, p50 of the next 20", dur(w1.coll.P50), dur(w2.coll.P50), showDur, "", true)
	row("fleet file: RSS after the sweep and the collection GETs", float64(w1.afterRedfish), float64(w2.afterRedfish), showMiB, "≤ 256 MiB", w2.afterRedfish <= 256*1024)
	showKiB := func(v float64) string { return fmt.Sprintf("%.0f KiB", v/1024) }
	row("metrics on too: scrape size after a sweep", float64(w1.scrape.bytes), float64(w2.scrape.bytes), showKiB, "", true)
	row("metrics on too: a scrape, p50 of 5 after the first", dur(w1.scrape.again.P50), dur(w2.scrape.again.P50), showDur, "", true)
	row("metrics on too: RSS after the sweep and the scrapes", float64(w1.afterScrape), float64(w2.afterScrape), showMiB, "", true)
	row("config directory: start restoring every node to all listening", dur(s1.up), dur(s2.up), showDur, "", true)
	row("config directory: RSS idle", float64(s1.idle), float64(s2.idle), showMiB, "≤ 256 MiB", s2.idle <= 256*1024)
	row("`vbmc add` of one more node (first add: "+showDur(dur(s1.addFirst))+", "+showDur(dur(s2.addFirst))+")", dur(s1.addNext), dur(s2.addNext), showDur, "", true)
	row("`vbmc list`", dur(s1.list), dur(s2.list), showDur, "≤ 1 s", s2.list <= time.Second)
	row("`vbmc list -f json`", dur(s1.json), dur(s2.json), showDur, "≤ 1 s", s2.json <= time.Second)
	row("SIGTERM to exit", dur(s1.stop), dur(s2.stop), showDur, "", true)
	row("restart: SIGTERM, then a new vbmcd restoring every node, to all listening", dur(s1.restart), dur(s2.restart), showDur, "≤ 5 s", s2.restart <= 5*time.Second)
	section := fmt.Sprintf("## 10,000 BMCs in one vbmcd\n\nSimulated BMCs, measured in this run at %d and %d; the growth column is the 10k figure over the 1k one (10.0× is linear). "+
		"Fleet-file rows: `vbmcd --config FLEET --redfish-address …` (read-only nodes, IPMI and Redfish on), the sweep one ipmitool-like full session per BMC, 64 at a time; the collection GETs follow the sweep. Metrics rows: the same with `--metrics-address` too, in a vbmcd of their own, scraped after its sweep. "+
		"Config-directory rows: a vbmcd whose nodes are in its config directory as `vbmc add` and `vbmc start` leave them (the benchmark writes those files through the same store), the list and add figures whole `vbmc` runs. "+
		"The sweep is bound by CPU: vbmcd and the load generator share the machine's cores, so the sweep cannot take less than their CPU time together divided by the cores (the two CPU rows, per session: 1.0× there means no work per session grows with the fleet); for 10,000 that floor was %v in this run. "+
		"Ports from %d, below the ephemeral range.\n\n"+
		"| figure | %d | %d | growth | target at 10k | |\n|---|---|---|---|---|---|\n%s\n",
		small, big, ((f2.serverCPU + f2.clientCPU) / time.Duration(runtime.NumCPU())).Round(time.Millisecond), scaleBase, small, big, strings.Join(rows, "\n"))
	t.Log("\n" + section)
	rep.add(section)
}

// measureStored puts n simulated nodes in a config directory and measures
// the vbmcd that restores them: start, vbmc add, list and a restart.
func measureStored(t *testing.T, bin string, n int) storedResult {
	t.Helper()
	vbmcd, dir := filepath.Join(bin, "vbmcd"), t.TempDir()
	args := []string{"--foreground", "--config-dir", dir}
	vbmc := func(args ...string) (time.Duration, string) {
		t.Helper()
		start := time.Now()
		out, err := exec.Command(filepath.Join(bin, "vbmc"), append([]string{"--config-dir", dir}, args...)...).Output()
		if err != nil {
			t.Fatalf("vbmc %s: %v", strings.Join(args, " "), err)
		}
		return time.Since(start), string(out)
	}
	add := func(name string, port int) time.Duration {
		d, _ := vbmc("add", name, "--backend", "sim", "--address", "127.0.0.1", "--port", strconv.Itoa(port))
		return d
	}
	var r storedResult

	d := startVbmcd(t, vbmcd, args...)
	r.addFirst = add("first", scaleBase+n)
	stopVbmcd(t, d)

	store, err := bmc.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		node := bmc.Node{Name: fmt.Sprintf("s%d", i), Address: "127.0.0.1", Port: scaleBase + i,
			Users: []bmc.User{{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}}}
		node.ApplyDefaults()
		if err := store.Save(bmc.StoredNode{Node: node, Active: true}); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	d = startVbmcd(t, vbmcd, args...)
	r.up = time.Since(start)
	lastAnswers(t, scaleBase+n-1)
	r.idle = rssKiB(d.Process.Pid)
	r.addNext = add("next", scaleBase+n+1)
	var table, js string
	r.list, table = vbmc("list")
	r.json, js = vbmc("list", "-f", "json")
	var listed []map[string]any
	if err := json.Unmarshal([]byte(js), &listed); err != nil || len(listed) != n+2 {
		t.Errorf("vbmc list -f json: %d nodes (want %d), err %v", len(listed), n+2, err)
	}
	if !strings.Contains(table, fmt.Sprintf("s%d ", n-1)) {
		t.Errorf("vbmc list does not show s%d", n-1)
	}

	start = time.Now()
	stopVbmcd(t, d)
	r.stop = time.Since(start)
	d = startVbmcd(t, vbmcd, args...)
	r.restart = time.Since(start)
	lastAnswers(t, scaleBase+n-1)
	stopVbmcd(t, d)
	return r
}

// stopVbmcd sends vbmcd SIGTERM and waits, up to a minute, for it to exit.
func stopVbmcd(t *testing.T, d *exec.Cmd) {
	t.Helper()
	if err := d.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("vbmcd exit: %v", err)
		}
	case <-time.After(time.Minute):
		_ = d.Process.Kill()
		t.Fatal("vbmcd still running a minute after SIGTERM")
	}
}

// cpuTime is the user and system CPU time process pid has used.
func cpuTime(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields 14 and 15 (utime, stime, in clock ticks) counted after the
	// command name, which may hold spaces.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// selfCPUTime is the user and system CPU time this process has used.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// lastAnswers checks that the BMC on port answers a full session.
func lastAnswers(t *testing.T, port int) {
	t.Helper()
	res := load.Run(context.Background(), load.Config{Targets: []load.Target{{Host: "127.0.0.1", Port: port}}, Username: "admin", Password: "password", Concurrency: 1})
	if res.Errors > 0 {
		t.Fatalf("BMC on port %d: %s", port, res)
	}
}

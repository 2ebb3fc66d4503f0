package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/load"
	"github.com/govbmc/govbmc/internal/testtool"
)

// baselineRev is the git revision `make bench` compares this checkout
// against (GOVBMC_BENCH_BASELINE); empty skips the comparison.
var baselineRev = os.Getenv("GOVBMC_BENCH_BASELINE")

// buildRevision builds vbmcd as it was at rev, from a detached worktree of
// this repository, and returns the binary's path.
func buildRevision(t *testing.T, rev string) string {
	t.Helper()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	root := strings.TrimSpace(string(top))
	wt := filepath.Join(t.TempDir(), "baseline")
	if out, err := exec.Command("git", "-C", root, "worktree", "add", "--detach", wt, rev).CombinedOutput(); err != nil {
		t.Fatalf("git worktree add %s: %v\n%s", rev, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("git", "-C", root, "worktree", "remove", "--force", wt).Run() })
	bin := filepath.Join(t.TempDir(), "vbmcd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vbmcd")
	build.Dir = wt
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build vbmcd at %s: %v\n%s", rev, err, out)
	}
	return bin
}

// TestAgainstBaseline measures this checkout's vbmcd and the baseline
// revision's in the same run, alternating, five rounds each, and reports
// the median of each figure side by side with the ratio (this / baseline).
func TestAgainstBaseline(t *testing.T) {
	if !full || baselineRev == "" {
		t.Skip("set GOVBMC_BENCH=full and GOVBMC_BENCH_BASELINE=REV (make bench does)")
	}
	testtool.Require(t, "ipmitool")
	bin, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	builds := []struct{ name, vbmcd string }{
		{"baseline " + baselineRev, buildRevision(t, baselineRev)},
		{"this checkout", filepath.Join(bin, "vbmcd")},
	}
	const rounds, fleet = 5, 1000
	type figures struct{ idle, after, up, sweep, rate []float64 }
	got := make([]figures, len(builds))
	for r := 0; r < rounds; r++ {
		for i, b := range builds {
			f := measureFleet(t, b.vbmcd, fleet)
			if f.sweep.Errors > 0 {
				t.Errorf("%s: sweep errors: %s", b.name, f.sweep)
			}
			g := &got[i]
			g.idle = append(g.idle, float64(f.idle)/1024)
			g.after = append(g.after, float64(f.after)/1024)
			g.up = append(g.up, float64(f.up.Milliseconds()))
			g.sweep = append(g.sweep, float64(f.sweep.Elapsed.Milliseconds()))
			g.rate = append(g.rate, sessionRate(t, b.vbmcd))
		}
	}
	rows := []struct {
		name   string
		pick   func(figures) []float64
		unit   string
		better string
	}{
		{fmt.Sprintf("%d BMCs: resident idle", fleet), func(f figures) []float64 { return f.idle }, "MiB", "lower"},
		{fmt.Sprintf("%d BMCs: resident after a sweep", fleet), func(f figures) []float64 { return f.after }, "MiB", "lower"},
		{fmt.Sprintf("%d BMCs: start to all listening", fleet), func(f figures) []float64 { return f.up }, "ms", "lower"},
		{fmt.Sprintf("%d BMCs: full-session sweep (c=64)", fleet), func(f figures) []float64 { return f.sweep }, "ms", "lower"},
		{"one BMC: full sessions/s (c=8)", func(f figures) []float64 { return f.rate }, "/s", "higher"},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## This checkout against %s\n\nBoth vbmcd binaries measured in this run on this machine, alternating, %d rounds each; medians. Ratio = this checkout / baseline.\n\n", baselineRev, rounds)
	b.WriteString("| figure | baseline | this checkout | ratio | better when |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		base, cur := median(r.pick(got[0])), median(r.pick(got[1]))
		fmt.Fprintf(&b, "| %s | %.1f %s | %.1f %s | %.2f | %s |\n", r.name, base, r.unit, cur, r.unit, cur/max(base, 1e-9), r.better)
	}
	b.WriteString("\nReproduce: `make bench` (GOVBMC_BENCH_BASELINE in the Makefile names the revision).\n")
	t.Log("\n" + b.String())
	rep.add(b.String())
}

// sessionRate runs vbmcd (with more flags args) with one simulated node
// and returns the full sessions per second 8 concurrent clients get from it.
func sessionRate(t *testing.T, vbmcd string, args ...string) float64 {
	t.Helper()
	const port = 31950
	cmd := startFleet(t, vbmcd, oneNodeFleet(port), args...)
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := load.Run(ctx, load.Config{Targets: []load.Target{{Host: "127.0.0.1", Port: port}}, Username: "admin", Password: "password", Concurrency: 8, Sessions: 3000})
	if res.Errors > 0 {
		t.Errorf("session rate: %s", res)
	}
	return res.PerSecond
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

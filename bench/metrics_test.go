package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/load"
	"github.com/govbmc/govbmc/internal/testtool"
)

// metricsArgs turn vbmcd's Prometheus metrics on.
var metricsArgs = []string{"--metrics-address", metricsAddress}

// scrapeResult is what scraping vbmcd's metrics cost.
type scrapeResult struct {
	first   time.Duration // the first scrape
	again   load.Result   // the next ones, one after another
	bytes   int           // size of the exposition
	samples int           // its sample lines
}

// scrapeMetrics scrapes the benchmarks' metrics address n+1 times and
// checks, once, that the exposition parses with Prometheus' own parser.
func scrapeMetrics(t *testing.T, n int) scrapeResult {
	t.Helper()
	url := "http://" + metricsAddress + "/metrics"
	get := func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fmt.Errorf("scrape: %w", err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("scrape: %w", err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("scrape: HTTP %d", res.StatusCode)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil {
			return nil, fmt.Errorf("scrape: read: %w", err)
		}
		return body, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var r scrapeResult
	start := time.Now()
	body, err := get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.first, r.bytes = time.Since(start), len(body)
	for _, line := range strings.Split(string(body), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			r.samples++
		}
	}
	if fams := testtool.ParseMetrics(t, bytes.NewReader(body)); len(fams) == 0 {
		t.Fatal("scrape: no metric families")
	}
	r.again = load.Loop(ctx, 1, n, 0, func(ctx context.Context, _ int) error {
		_, err := get(ctx)
		return err
	})
	if r.again.Errors > 0 {
		t.Errorf("scrapes: %s", r.again)
	}
	return r
}

// TestMetricsCost: what Prometheus metrics cost (issue 13): the session
// rate of one BMC with and without --metrics-address, alternating in one
// run, and a scrape of 1,000 nodes that all had a session.
func TestMetricsCost(t *testing.T) {
	testtool.Require(t, "ipmitool")
	bin, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	vbmcd := filepath.Join(bin, "vbmcd")
	rounds := pick(1, 5)
	var off, on []float64
	for range rounds {
		off = append(off, sessionRate(t, vbmcd))
		on = append(on, sessionRate(t, vbmcd, metricsArgs...))
	}
	nodes := pick(100, 1000)
	var s scrapeResult
	f := measureFleetAt(t, vbmcd, nodes, 31000, fleetExtras{args: metricsArgs, during: func(int) { s = scrapeMetrics(t, pick(3, 20)) }})
	if f.sweep.Errors > 0 {
		t.Errorf("sweep with metrics on: %s", f.sweep)
	}
	offRate, onRate := median(off), median(on)
	t.Logf("session rate without metrics %v, with %v; %d nodes: %d bytes, %d samples, first scrape %v, then %s; RSS after the sweep %s",
		off, on, nodes, s.bytes, s.samples, s.first, s.again, mib(f.after))
	section := fmt.Sprintf("## What metrics cost\n\n"+
		"Issue 13: the session rate with and without metrics, side by side in one run, and the scrape of 1,000 nodes. "+
		"Session rate: vbmcd with one simulated node, 8 clients, 3,000 full sessions, without and with `--metrics-address` (every session counted, each command counted by node, command and completion code, each machine operation timed into a histogram), alternating, %d rounds each; medians.\n\n"+
		"| | full sessions/s | ratio |\n|---|---|---|\n| without metrics | %.0f | 1.00 |\n| with metrics | %.0f | %.2f |\n\n"+
		"Scrape of %d simulated nodes after a full-session sweep over all of them (so every node has its series): %d bytes, %d sample lines (%d bytes per node); the first scrape took %s, the next %d one after another p50 %s, max %s. vbmcd's resident memory after the sweep, metrics on: %s.\n\n"+
		"Reproduce: `vbmcd --config FLEET --metrics-address 127.0.0.1:9100`, `ipmiload --targets 127.0.0.1:31000-31999 -c 64`, `curl -s 127.0.0.1:9100/metrics | wc`; or `GOVBMC_BENCH=full go test -count=1 -v -run TestMetricsCost ./bench`.\n",
		rounds, offRate, onRate, onRate/max(offRate, 1e-9), nodes, s.bytes, s.samples, s.bytes/nodes, ms(s.first), s.again.Sessions, ms(s.again.P50), ms(s.again.Max), mib(f.after))
	t.Log("\n" + section)
	rep.add(section)
}

package testtool

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is a parsed Prometheus text exposition, by family name.
type Metrics map[string]*dto.MetricFamily

// ParseMetrics parses a text exposition with Prometheus' own parser, as a
// Prometheus server would.
func ParseMetrics(t testing.TB, r io.Reader) Metrics {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	return fams
}

// Scrape fetches and parses url's metrics.
func Scrape(t testing.TB, url string) Metrics {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	return ParseMetrics(t, resp.Body)
}

// Value returns the sample of family name whose labels are exactly labels
// (a histogram's sample count).
func (ms Metrics) Value(name string, labels map[string]string) (float64, bool) {
	f, ok := ms[name]
	if !ok {
		return 0, false
	}
	for _, mt := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range mt.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if fmt.Sprint(got) != fmt.Sprint(labels) {
			continue
		}
		switch {
		case mt.Counter != nil:
			return mt.Counter.GetValue(), true
		case mt.Gauge != nil:
			return mt.Gauge.GetValue(), true
		case mt.Histogram != nil:
			return float64(mt.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// LabelValues returns every value any series of any family has for label.
func (ms Metrics) LabelValues(label string) map[string]bool {
	out := map[string]bool{}
	for _, f := range ms {
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] = true
				}
			}
		}
	}
	return out
}

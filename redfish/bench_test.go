package redfish_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/govbmc/govbmc/redfish"
)

// BenchmarkGetSystem measures a GET of one System over HTTPS with
// keep-alive and Basic auth, with 1 and 8 concurrent clients; it reports
// requests/s and the median latency.
func BenchmarkGetSystem(b *testing.B) {
	f := &testFleet{}
	f.add(b, "node-a", 6230, admin)
	sa, _ := f.System("node-a")
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = redfish.NewHTTPServer(redfish.New(f, redfish.Options{}), nil)
	srv.StartTLS()
	defer srv.Close()
	url := srv.URL + "/redfish/v1/Systems/" + sa.ID
	for _, clients := range []int{1, 8} {
		b.Run(map[int]string{1: "clients=1", 8: "clients=8"}[clients], func(b *testing.B) {
			tr := srv.Client().Transport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = clients
			c := &http.Client{Transport: tr}
			var mu sync.Mutex
			var lat []time.Duration
			var wg sync.WaitGroup
			per := b.N/clients + 1
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < clients; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					mine := make([]time.Duration, 0, per)
					for i := 0; i < per; i++ {
						req, _ := http.NewRequest("GET", url, nil)
						req.SetBasicAuth("admin", "password")
						t0 := time.Now()
						res, err := c.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, res.Body)
						res.Body.Close()
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			if len(lat) > 0 {
				b.ReportMetric(float64(len(lat))/el.Seconds(), "req/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			}
		})
	}
}

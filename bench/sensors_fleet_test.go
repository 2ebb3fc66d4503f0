package bench

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/libvirtconn"
)

// TestSensorFleetPoll: a fleet of BMCs of libvirt domains on one
// hypervisor connection, polled for `sdr -v` the way Ironic's
// send_sensor_data does (one node every 0.6 s, each poll a fresh ipmitool),
// costs the hypervisor at most one statistics call per interval. All the
// BMCs manage one domain: the statistics call fetches every domain at once,
// so the count of domains does not change the count of calls.
func TestSensorFleetPoll(t *testing.T) {
	requireQemuAndIpmitool(t)
	nodes := pick(50, 1000)
	duration := pick(4*time.Second, 60*time.Second)
	interval := pick(2*time.Second, libvirtconn.DefaultStatsInterval)

	name := fmt.Sprintf("%s%d", otherPrefix, os.Getpid())
	conn, quiet, _ := libvirtDomain(t, name, true)
	conn.SetStatsInterval(interval)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ports := make([]int, nodes)
	for i := range ports {
		ports[i] = serve(t, fmt.Sprintf("fleet-sdr-%d", i), libvirtconn.NewDomain(conn, name, quiet))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perBMC := (int64(after.HeapInuse) - int64(before.HeapInuse)) / int64(nodes)

	start := conn.StatsFetches()
	began := time.Now()
	polls, slowest := 0, time.Duration(0)
	for next := began; time.Since(began) < duration; next = next.Add(600 * time.Millisecond) {
		time.Sleep(time.Until(next)) // Ironic's pace, not a wait for a condition
		t0 := time.Now()
		out := ipmitoolFor(t, ports[polls%nodes], "-R", "1", "-N", "5")("sdr", "-v")
		slowest = max(slowest, time.Since(t0))
		if !strings.Contains(out, "Sensor ID              : CPU Utilization (0x1)") || !strings.Contains(out, "Sensor Reading") {
			t.Fatalf("sdr -v of node %d:\n%s", polls%nodes, out)
		}
		polls++
	}
	elapsed := time.Since(began)
	fetches := conn.StatsFetches() - start
	limit := int64(elapsed/interval) + 1
	t.Logf("%d BMCs, %d sdr -v polls over %v: %d statistics calls (limit %d), slowest poll %v, %d KiB heap per BMC",
		nodes, polls, elapsed.Round(time.Millisecond), fetches, limit, slowest.Round(time.Millisecond), perBMC>>10)
	if fetches > limit {
		t.Fatalf("%d statistics calls in %v, want at most one per %v (%d)", fetches, elapsed, interval, limit)
	}
	var v verdicts
	v.add("statistics calls", fetches <= limit, fmt.Sprintf("%d in %v", fetches, elapsed.Round(time.Second)), fmt.Sprintf("≤ one per %v: %d", interval, limit))
	heap := perBMC * int64(nodes) >> 10
	v.add(fmt.Sprintf("heap of the %d BMCs", nodes), heap <= 64*1024*int64(nodes)/1000, mib(int(heap)), fmt.Sprintf("within the fleet target, 64 MiB per 1,000 BMCs: %s", mib(64*nodes*1024/1000)))
	rep.add(fmt.Sprintf("## Sensor polling of a fleet (qemu:///system)\n\n"+
		"Target: at most one statistics call (`virConnectGetAllDomainStats`) per interval per hypervisor, however many BMCs are polled. %d BMCs on one libvirtconn connection, polled for `ipmitool sdr -v` one node every 0.6 s (Ironic's `send_sensor_data` with a 600 s period over 1,000 nodes), for %v.\n\n"+
		"| BMCs | polls | statistics calls | interval | slowest `sdr -v` | heap per BMC |\n|---|---|---|---|---|---|\n| %d | %d | %d | %v | %v | %d KiB |\n\n%s\n\n"+
		"The BMCs run in the benchmark process (one libvirtconn connection, as in vbmcd); the heap figure is its growth with the BMCs, after a GC.\n\n"+
		"Reproduce: `GOVBMC_BENCH=full go test -count=1 -v -run TestSensorFleetPoll ./bench`.\n",
		nodes, elapsed.Round(time.Second), nodes, polls, fetches, interval, slowest.Round(time.Millisecond), perBMC>>10, strings.Join(v, "\n")))
}

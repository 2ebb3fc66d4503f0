package bench

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/libvirtconn"
)

var cpuReadingRE = regexp.MustCompile(`(?m)^CPU Utilization\s+\|\s+(\d+) percent`)

// TestLibvirtSensors: three BMCs of domains on one libvirt connection serve
// `sdr -v` from the connection's statistics: CPU utilisation is near zero
// while the domain is paused and rises when it runs; the three BMCs' polls
// cost one ConnectGetAllDomainStats per interval. `fru print`, `lan print 1`
// and `sel list` (through a BMC with a key, `ipmitool -y`) work on them.
func TestLibvirtSensors(t *testing.T) {
	requireQemuAndIpmitool(t)
	name := fmt.Sprintf("%s%d", otherPrefix, os.Getpid())
	conn, quiet, dom := libvirtDomain(t, name, true)
	const interval = time.Second
	conn.SetStatsInterval(interval)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The third BMC has a BMC key (Kg): its ipmitool gives it with -y.
	const kg = "676f76626d632d6c6962766972742d6b6579"
	var ports []int
	tools := map[int]func(...string) string{}
	for i := 0; i < 3; i++ {
		node := bmc.Node{Name: fmt.Sprintf("sensors-%d", i)}
		opts := []string{"-R", "1", "-N", "5"}
		if i == 2 {
			node.Kg, opts = kg, append(opts, "-y", kg)
		}
		p := serveNode(t, node, libvirtconn.NewDomain(conn, name, quiet))
		ports, tools[p] = append(ports, p), ipmitoolFor(t, p, opts...)
	}
	sdr := func(port int, args ...string) string { return tools[port](append([]string{"sdr"}, args...)...) }
	cpu := func(port int) int {
		t.Helper()
		m := cpuReadingRE.FindStringSubmatch(sdr(port, "list"))
		if m == nil {
			return -1
		}
		v, _ := strconv.Atoi(m[1])
		return v
	}
	pause := func(paused bool) {
		t.Helper()
		err := conn.Do(ctx, func(lv *libvirt.Libvirt) error {
			if paused {
				return lv.DomainSuspend(dom)
			}
			return lv.DomainResume(dom)
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// FRU and LAN configuration of a libvirt node.
	mustHave(t, tools[ports[0]]("fru", "print"), "Product Serial        : "+bmc.UUID(dom.UUID).String())
	mustHave(t, tools[ports[1]]("lan", "print", "1"), "IP Address              : 127.0.0.1")

	// Paused, the guest uses no CPU: two fetches of a paused run read 0.
	pause(true)
	start := conn.StatsFetches()
	testtool.Eventually(t, 30*time.Second, "a paused guest reads 0 % CPU", func() bool { return cpu(ports[0]) == 0 })
	// Running (SeaBIOS waiting in its boot menu), it does.
	pause(false)
	testtool.Eventually(t, 30*time.Second, "a running guest's CPU reading rises", func() bool { return cpu(ports[1]) > 0 })

	// All three BMCs poll for 3 intervals; the connection fetches about once
	// per interval (the polls are serial: each interval has one fetch).
	polls, began := 0, time.Now()
	before := conn.StatsFetches()
	for time.Since(began) < 3*interval {
		for _, p := range ports {
			mustHave(t, sdr(p, "-v"), "Sensor ID              : CPU Utilization (0x1)", "Sensor ID              : Power State (0x10)")
			polls++
		}
	}
	elapsed := time.Since(began)
	fetches := conn.StatsFetches() - before
	if max := int64(elapsed/interval) + 1; fetches > max {
		t.Fatalf("%d sdr -v polls of 3 BMCs over %v made %d statistics calls, want at most %d", polls, elapsed, fetches, max)
	}
	t.Logf("%d sdr -v polls over %v: %d statistics calls (%d in all)", polls, elapsed.Round(time.Millisecond), fetches, conn.StatsFetches()-start)

	// A power off made outside the BMC (virsh destroy) is in its event log.
	if err := conn.Do(ctx, func(lv *libvirt.Libvirt) error { return lv.DomainDestroy(dom) }); err != nil {
		t.Fatal(err)
	}
	testtool.Eventually(t, 30*time.Second, "the outside power off is in the event log", func() bool {
		return strings.Contains(tools[ports[2]]("sel", "list"), "Power off/down")
	})
}

func mustHave(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Fatalf("output lacks %q:\n%s", w, out)
		}
	}
}

package libvirtconn

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

// Sensor readings come from one ConnectGetAllDomainStats call per
// hypervisor connection and interval, however many BMCs read and however
// often: the first reader after the interval fetches every domain's
// statistics, the others wait for it or use what it fetched. Rates are
// the difference between the last two fetches, over the time between them.

// DefaultStatsInterval is how old a connection's statistics may get before
// a reader fetches them again.
const DefaultStatsInterval = 10 * time.Second

// statsWanted are the statistics groups fetched.
const statsWanted = libvirt.DomainStatsState | libvirt.DomainStatsCPUTotal | libvirt.DomainStatsBalloon |
	libvirt.DomainStatsVCPU | libvirt.DomainStatsInterface | libvirt.DomainStatsBlock

// domainSample is one domain's counters at one fetch.
type domainSample struct {
	on                       bool
	cpuNs, vcpus             uint64
	memKiB, availKiB, usable uint64
	haveAvail, haveUsable    bool
	rd, wr, rx, tx           uint64
}

// fetchedStats is every domain's sample at one time, by name and by UUID.
type fetchedStats struct {
	at      time.Time
	domains map[string]domainSample
}

// statsCache is a connection's statistics.
type statsCache struct {
	fetching sync.Mutex // held across a fetch: one at a time
	mu       sync.Mutex
	cur      fetchedStats
	prev     fetchedStats
	fetches  atomic.Int64
	interval time.Duration // 0: DefaultStatsInterval
}

// SetStatsInterval changes how often the connection fetches statistics
// (tests and benchmarks shorten it).
func (c *Conn) SetStatsInterval(d time.Duration) {
	c.stats.mu.Lock()
	defer c.stats.mu.Unlock()
	c.stats.interval = d
}

// StatsFetches is how many times the connection fetched statistics.
func (c *Conn) StatsFetches() int64 { return c.stats.fetches.Load() }

// domainStats returns the newest fetch and the one before it, fetching
// when the newest is older than the interval.
func (c *Conn) domainStats(ctx context.Context) (cur, prev fetchedStats, err error) {
	s := &c.stats
	fresh := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		cur, prev = s.cur, s.prev
		interval := s.interval
		if interval <= 0 {
			interval = DefaultStatsInterval
		}
		return !cur.at.IsZero() && time.Since(cur.at) < interval
	}
	if fresh() {
		return cur, prev, nil
	}
	s.fetching.Lock()
	defer s.fetching.Unlock()
	if fresh() { // another reader fetched meanwhile
		return cur, prev, nil
	}
	var recs []libvirt.DomainStatsRecord
	err = c.Do(ctx, func(lv *libvirt.Libvirt) error {
		var err error
		recs, err = lv.ConnectGetAllDomainStats(nil, uint32(statsWanted), 0)
		return err
	})
	if err != nil {
		return cur, prev, err
	}
	s.fetches.Add(1)
	next := fetchedStats{at: time.Now(), domains: make(map[string]domainSample, 2*len(recs))}
	for _, r := range recs {
		d := sampleOf(r.Params)
		next.domains[r.Dom.Name] = d
		next.domains[bmc.UUID(r.Dom.UUID).String()] = d
	}
	s.mu.Lock()
	s.prev, s.cur = s.cur, next
	cur, prev = s.cur, s.prev
	s.mu.Unlock()
	return cur, prev, nil
}

// sampleOf reads one domain's typed parameters.
func sampleOf(params []libvirt.TypedParam) domainSample {
	var d domainSample
	for _, p := range params {
		v, ok := paramUint(p.Value.I)
		if !ok {
			continue
		}
		switch f := p.Field; {
		case f == "state.state":
			d.on = isOn(int32(v))
		case f == "cpu.time":
			d.cpuNs = v
		case f == "vcpu.current":
			d.vcpus = v
		case f == "balloon.current":
			d.memKiB = v
		case f == "balloon.available":
			d.availKiB, d.haveAvail = v, true
		case f == "balloon.usable":
			d.usable, d.haveUsable = v, true
		case strings.HasPrefix(f, "block.") && strings.HasSuffix(f, ".rd.bytes"):
			d.rd += v
		case strings.HasPrefix(f, "block.") && strings.HasSuffix(f, ".wr.bytes"):
			d.wr += v
		case strings.HasPrefix(f, "net.") && strings.HasSuffix(f, ".rx.bytes"):
			d.rx += v
		case strings.HasPrefix(f, "net.") && strings.HasSuffix(f, ".tx.bytes"):
			d.tx += v
		}
	}
	return d
}

func paramUint(v any) (uint64, bool) {
	switch n := v.(type) {
	case uint64:
		return n, true
	case int64:
		return uint64(max(n, 0)), true
	case uint32:
		return uint64(n), true
	case int32:
		return uint64(max(n, 0)), true
	}
	return 0, false
}

var _ bmc.StatsReporter = (*Domain)(nil)

// Stats reports the domain's utilisation from its connection's statistics
// (bmc.StatsReporter). Rates are known once the connection has fetched
// twice while the domain ran; until then At is zero.
func (d *Domain) Stats(ctx context.Context) (bmc.Stats, error) {
	cur, prev, err := d.conn.domainStats(ctx)
	if err != nil {
		return bmc.Stats{}, fmt.Errorf("domain %q on %s: statistics: %w", d.ref, d.conn.URI().Raw, err)
	}
	key := d.ref
	if u, err := bmc.ParseUUID(d.ref); err == nil {
		key = u.String()
	}
	c, ok := cur.domains[key]
	if !ok {
		return bmc.Stats{}, fmt.Errorf("domain %q on %s: statistics: no such domain", d.ref, d.conn.URI().Raw)
	}
	s := bmc.Stats{On: c.on, MemoryTotalMiB: c.memKiB / 1024}
	if c.on && c.haveAvail && c.haveUsable && c.availKiB >= c.usable {
		s.MemoryUsedMiB, s.MemoryUsedKnown = (c.availKiB-c.usable)/1024, true
	}
	p, ok := prev.domains[key]
	dt := cur.at.Sub(prev.at).Seconds()
	if !c.on {
		s.At = cur.at // off: every rate is zero
		return s, nil
	}
	if !ok || !p.on || dt <= 0 || c.cpuNs < p.cpuNs || c.vcpus == 0 {
		return s, nil // no earlier sample of this run
	}
	s.At = cur.at
	s.CPUPercent = min(100, float64(c.cpuNs-p.cpuNs)/1e9/dt/float64(c.vcpus)*100)
	rate := func(now, before uint64) float64 {
		if now < before {
			return 0
		}
		return float64(now-before) / dt
	}
	s.DiskReadBytesPerSec, s.DiskWriteBytesPerSec = rate(c.rd, p.rd), rate(c.wr, p.wr)
	s.NetRxBytesPerSec, s.NetTxBytesPerSec = rate(c.rx, p.rx), rate(c.tx, p.tx)
	return s, nil
}

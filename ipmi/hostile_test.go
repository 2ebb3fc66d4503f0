package ipmi_test

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
)

// capturedSeeds reads the real client datagrams of the fuzz corpus.
func capturedSeeds(t *testing.T) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDatagram", "capture-*"))
	var out [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			continue
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, []byte(s))
	}
	if len(out) == 0 {
		t.Fatal("no captured datagrams in testdata")
	}
	return out
}

// TestHostileTraffic throws 100,000 random, truncated, oversized, mutated
// and replayed datagrams at three nodes while real ipmitool sessions go on:
// nothing crashes, every legitimate session succeeds, no unauthenticated
// datagram changes a machine, and memory and goroutines stay bounded.
func TestHostileTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	nodes := []*testNode{startNode(t), startNode(t), startNode(t)}
	seeds := capturedSeeds(t)
	runtime.GC()
	baseGoroutines := runtime.NumGoroutine()

	var sent atomic.Int64
	const total = 100_000
	deadline := time.Now().Add(60 * time.Second)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			conns := make([]*net.UDPConn, len(nodes))
			for i, n := range nodes {
				// From another loopback address than ipmitool's: the storm
				// gets its logins throttled, which must not shut out the
				// legitimate user at another address.
				c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: atoi(n.port)})
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				conns[i] = c
			}
			buf := make([]byte, 65000)
			for sent.Add(1) <= total && time.Now().Before(deadline) {
				var pkt []byte
				seed := seeds[rng.Intn(len(seeds))]
				switch rng.Intn(5) {
				case 0: // random bytes
					pkt = buf[:rng.Intn(300)]
					rng.Read(pkt)
				case 1: // a real datagram, truncated
					pkt = seed[:rng.Intn(len(seed)+1)]
				case 2: // a real datagram, mutated
					pkt = append([]byte(nil), seed...)
					for i := 0; i < 1+rng.Intn(4); i++ {
						pkt[rng.Intn(len(pkt))] = byte(rng.Intn(256))
					}
				case 3: // replayed as is
					pkt = seed
				case 4: // oversized
					pkt = buf[:1000+rng.Intn(64000)]
					copy(pkt, seed)
				}
				_, _ = conns[rng.Intn(len(conns))].Write(pkt)
				if sent.Load()%64 == 0 {
					time.Sleep(time.Millisecond) // bounded rate: the legitimate traffic must get through too
				}
			}
		}(w)
	}
	// Legitimate sessions during the storm.
	legit := 0
	go func() { wg.Wait(); close(stop) }()
	for done := false; !done; {
		select {
		case <-stop:
			done = true
		default:
		}
		for _, n := range nodes {
			out, err := n.ipmitool("-I", "lanplus", "-U", admin.Name, "-P", admin.Password, "power", "status")
			if err != nil || !strings.Contains(out, "Chassis Power is off") {
				t.Fatalf("a legitimate session failed during the storm: %v\n%s", err, out)
			}
			legit++
		}
	}
	t.Logf("%d hostile datagrams, %d legitimate sessions", min(sent.Load(), total), legit)
	for _, n := range nodes {
		if s, _ := n.sim.PowerState(context.Background()); s != bmc.PowerOff {
			t.Fatal("hostile traffic changed a machine")
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > 64<<20 {
		t.Errorf("heap is %d MiB after the storm", ms.HeapAlloc>>20)
	}
	// Sessions the storm opened expire; goroutines come back near the baseline.
	testtool.Eventually(t, 10*time.Second, fmt.Sprintf("goroutines back near the %d before the storm", baseGoroutines), func() bool {
		return runtime.NumGoroutine() <= baseGoroutines+64
	})
}

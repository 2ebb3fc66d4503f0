package ipmi

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/clock"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/govbmc/govbmc/bmc"
)

// tickerCounter is go-ipmi's real clock, counting the tickers made.
type tickerCounter struct {
	clock.Clock
	tickers atomic.Int32
}

func (c *tickerCounter) NewTicker(d time.Duration) clock.Ticker {
	c.tickers.Add(1)
	return c.Clock.NewTicker(d)
}

// scriptedConn is a PacketConn whose reads return what reads holds, in
// turn, recording the size of the buffers it is given.
type scriptedConn struct {
	reads   chan error
	bufSize atomic.Int32
}

func (c *scriptedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.bufSize.Store(int32(len(p)))
	return 0, nil, <-c.reads
}

func (c *scriptedConn) WriteTo(p []byte, _ net.Addr) (int, error) { return len(p), nil }
func (c *scriptedConn) Close() error                              { return nil }

// TestGoIPMICanaryServeHoldsBufferAndTicker: for as long as it runs,
// go-ipmi's Serve holds a 4 KiB read buffer (server/server.go:219) and a
// session-eviction goroutine with its ticker (:215-217); it returns nil,
// its server still open, on a read error that wraps net.ErrClosed (:228),
// and can be run again. govbmc parks an idle BMC by ending Serve that way
// (idle.go): when Serve no longer holds either, parking is not needed.
func TestGoIPMICanaryServeHoldsBufferAndTicker(t *testing.T) {
	clk := &tickerCounter{Clock: clock.Real}
	node := bmc.Node{Name: "canary-idle", Users: canaryUsers}
	m, err := bmc.NewSimMachine(node)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	state := gobmc.New(deviceInfo(node), ipmiGUID(bmc.DeriveUUID("bmc:canary-idle")), machineHAL{m: m}, gobmc.WithClock(clk))
	c := &scriptedConn{reads: make(chan error)}
	srv := server.NewServer(state, c)
	for round := 1; round <= 2; round++ {
		done := make(chan error, 1)
		go func() { done <- srv.Serve(context.Background()) }()
		c.reads <- fmt.Errorf("a timeout: keep reading")
		c.reads <- errParked
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Serve on a parked read returned %v; idle.go depends on nil", round, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Serve did not return on an error wrapping net.ErrClosed; idle.go depends on it", round)
		}
	}
	// The eviction goroutine makes its ticker when it first runs.
	for deadline := time.Now().Add(2 * time.Second); clk.tickers.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if c.bufSize.Load() < 4096 && clk.tickers.Load() == 0 {
		fixed(t, fmt.Sprintf("Serve's per-run cost (a %d-byte buffer, %d tickers)", c.bufSize.Load(), clk.tickers.Load()), "serveWhenAwake/readAwake (idle.go)")
	}
}

package bmc_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"

	"github.com/govbmc/govbmc/bmc"
)

// BenchmarkManagerAddToLargeFleet measures one Add into a fleet of 10,000
// nodes: it looks only at the nodes on the same port, so its cost does not
// grow with the fleet.
func BenchmarkManagerAddToLargeFleet(b *testing.B) {
	ctx := context.Background()
	m := bmc.NewManager(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range 10000 {
		if err := m.Add(ctx, validNode(fmt.Sprintf("n%d", i), 1+i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("extra%d", i)
		if err := m.Add(ctx, validNode(name, 20000+i%40000)); err != nil {
			b.Fatal(err)
		}
		if err := m.Delete(name); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkManagerClose10k measures Close of 10,000 started sim nodes, each
// behind a listener on a loopback UDP port (what SIGTERM of such a fleet
// waits for).
func BenchmarkManagerClose10k(b *testing.B) {
	ctx := context.Background()
	var running, peak atomic.Int32
	frontends := func(bmc.Node, bmc.Machine) (bmc.Frontend, error) {
		conn, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		return &udpFrontend{conn: conn, running: &running, peak: &peak}, nil
	}
	for range b.N {
		b.StopTimer()
		m := bmc.NewManager(newMachines().factory, frontends, slog.New(slog.NewTextHandler(io.Discard, nil)))
		for i := range 10000 {
			name := fmt.Sprintf("n%d", i)
			if err := m.Add(ctx, validNode(name, 1+i)); err != nil {
				b.Fatal(err)
			}
			if err := m.Start(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

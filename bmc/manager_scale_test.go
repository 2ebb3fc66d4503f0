package bmc_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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

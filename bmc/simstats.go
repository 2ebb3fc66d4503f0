package bmc

import (
	"context"
	"time"
)

// SimMemoryMiB is the memory of a simulated machine.
const SimMemoryMiB = 4096

// simIdleMemoryMiB is what a simulated guest uses when nothing loads it.
const simIdleMemoryMiB = 512

// SimLoad is the work a simulated guest is doing, set by SetLoad.
type SimLoad struct {
	CPUPercent           float64
	MemoryUsedMiB        uint64 // on top of the idle guest's
	DiskReadBytesPerSec  float64
	DiskWriteBytesPerSec float64
	NetRxBytesPerSec     float64
	NetTxBytesPerSec     float64
}

// SetLoad makes the simulated guest work (its sensors read it while the
// machine is on); the zero SimLoad is an idle guest.
func (m *SimMachine) SetLoad(l SimLoad) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.load = l
}

// Stats reports the simulated guest's load: nothing while it is off.
func (m *SimMachine) Stats(ctx context.Context) (Stats, error) {
	if err := m.begin(ctx); err != nil {
		return Stats{}, err
	}
	defer m.mu.Unlock()
	s := Stats{At: time.Now(), On: m.state == PowerOn, MemoryTotalMiB: SimMemoryMiB, MemoryUsedKnown: true}
	if !s.On {
		return s, nil
	}
	l := m.load
	s.CPUPercent = min(max(l.CPUPercent, 0), 100)
	s.MemoryUsedMiB = min(simIdleMemoryMiB+l.MemoryUsedMiB, SimMemoryMiB)
	s.DiskReadBytesPerSec, s.DiskWriteBytesPerSec = l.DiskReadBytesPerSec, l.DiskWriteBytesPerSec
	s.NetRxBytesPerSec, s.NetTxBytesPerSec = l.NetRxBytesPerSec, l.NetTxBytesPerSec
	return s, nil
}

package bmc

import (
	"context"
	"time"
)

// Stats is what a machine measures of itself over its last sampling
// interval: the basis of a BMC's sensors. Rates are averages over the
// interval that ended at At.
type Stats struct {
	// At is when the sample was taken; zero when the machine has no
	// sample yet (its rates are then unknown, not zero).
	At time.Time
	// On is whether the machine was running at At.
	On bool
	// CPUPercent is the share of the machine's vCPUs' time spent running
	// guest code, 0 to 100 (100: every vCPU busy).
	CPUPercent float64
	// MemoryTotalMiB is the guest's memory; MemoryUsedMiB what the guest
	// uses of it, known only when MemoryUsedKnown (for libvirt, when the
	// guest's balloon driver reports its free memory).
	MemoryTotalMiB  uint64
	MemoryUsedMiB   uint64
	MemoryUsedKnown bool
	// Disk and network throughput, summed over the machine's devices.
	DiskReadBytesPerSec  float64
	DiskWriteBytesPerSec float64
	NetRxBytesPerSec     float64
	NetTxBytesPerSec     float64
}

// StatsReporter is a machine that measures itself. Backends sample at
// most once per interval, whatever the number of readers: Stats returns
// the newest sample, taking one only when it is older than the interval.
type StatsReporter interface {
	Stats(ctx context.Context) (Stats, error)
}

package ipmi

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/command/storage"
	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
)

// Sensors (IPMI 2.0 §35–36, §43): an SDR repository of full sensor records
// (go-ipmi serves the repository commands from the StorageHAL) and Get
// Sensor Reading and Get Sensor Thresholds, read from the machine. A
// machine that measures itself (bmc.StatsReporter) has the utilisation and
// throughput sensors; every machine has its power state. A VM has no fans
// or temperatures, so there are none. See README's sensor table.

// sensor is one full sensor record and how its reading is taken.
type sensor struct {
	number     uint8
	name       string
	sensorType uint8
	entity     uint8
	// threshold sensors: units and linear conversion raw = value / (m·10^r)
	percent  bool
	baseUnit uint8
	perSec   bool
	m        uint16
	rExp     int8
	// upper non-critical and critical thresholds in the sensor's units
	// (0: none).
	unc, uc float64
	value   func(bmc.Stats) (float64, bool)
	// discrete sensors (sensor-specific event type): the state offset.
	discrete func(bmc.Stats) uint8
	states   uint16 // the offsets the sensor can assert
}

// IPMI sensor types (Table 42-3), entity IDs (Table 43-13) and units
// (Table 43-15).
const (
	sensorTypeProcessor   = 0x07
	sensorTypeOtherUnits  = 0x0B
	sensorTypeMemory      = 0x0C
	sensorTypeACPIState   = 0x22
	entityProcessor       = 0x03
	entityDisk            = 0x04
	entitySystemBoard     = 0x07
	entitySystemChassis   = 0x17
	entityMemoryDevice    = 0x20
	unitSecond            = 22
	unitMegabit           = 68
	unitMegabyte          = 72
	eventTypeThreshold    = 0x01
	acpiS0Working         = 0x00
	acpiS5SoftOff         = 0x05
	sensorReadingUnusable = 0x20 // Get Sensor Reading byte 2: reading unavailable
	sensorScanning        = 0x40
)

const mebi = 1 << 20

// statsSensors are the sensors of a machine that reports bmc.Stats.
var statsSensors = []sensor{
	{number: 0x01, name: "CPU Utilization", sensorType: sensorTypeProcessor, entity: entityProcessor, percent: true, m: 1, unc: 90,
		value: func(s bmc.Stats) (float64, bool) { return s.CPUPercent, true }},
	{number: 0x02, name: "Memory Usage", sensorType: sensorTypeMemory, entity: entityMemoryDevice, percent: true, m: 1, unc: 90, uc: 98,
		value: func(s bmc.Stats) (float64, bool) {
			if !s.MemoryUsedKnown || s.MemoryTotalMiB == 0 {
				return 0, false
			}
			return 100 * float64(s.MemoryUsedMiB) / float64(s.MemoryTotalMiB), true
		}},
	{number: 0x03, name: "Disk Read", sensorType: sensorTypeOtherUnits, entity: entityDisk, baseUnit: unitMegabyte, perSec: true, m: 1,
		value: func(s bmc.Stats) (float64, bool) { return s.DiskReadBytesPerSec / mebi, true }},
	{number: 0x04, name: "Disk Write", sensorType: sensorTypeOtherUnits, entity: entityDisk, baseUnit: unitMegabyte, perSec: true, m: 1,
		value: func(s bmc.Stats) (float64, bool) { return s.DiskWriteBytesPerSec / mebi, true }},
	{number: 0x05, name: "Net Receive", sensorType: sensorTypeOtherUnits, entity: entitySystemBoard, baseUnit: unitMegabit, perSec: true, m: 4,
		value: func(s bmc.Stats) (float64, bool) { return s.NetRxBytesPerSec * 8 / 1e6, true }},
	{number: 0x06, name: "Net Transmit", sensorType: sensorTypeOtherUnits, entity: entitySystemBoard, baseUnit: unitMegabit, perSec: true, m: 4,
		value: func(s bmc.Stats) (float64, bool) { return s.NetTxBytesPerSec * 8 / 1e6, true }},
}

// powerSensor is every machine's power state.
var powerSensor = sensor{number: 0x10, name: "Power State", sensorType: sensorTypeACPIState, entity: entitySystemChassis,
	states: 1<<acpiS0Working | 1<<acpiS5SoftOff,
	discrete: func(s bmc.Stats) uint8 {
		if s.On {
			return acpiS0Working
		}
		return acpiS5SoftOff
	}}

// scale is the sensor's conversion factor m·10^r.
func (s *sensor) scale() float64 { return float64(s.m) * math.Pow10(int(s.rExp)) }

// raw converts a value in the sensor's units to its 8-bit reading.
func (s *sensor) raw(v float64) uint8 {
	return uint8(min(max(math.Round(v/s.scale()), 0), 255))
}

// readable is the threshold mask (Table 43-1, byte 19): UNC bit 3, UC bit 4.
func (s *sensor) readable() uint8 {
	var m uint8
	if s.unc > 0 {
		m |= 1 << 3
	}
	if s.uc > 0 {
		m |= 1 << 4
	}
	return m
}

// record encodes the sensor's full sensor record (SDR type 01h) with ID id.
func (s *sensor) record(id uint16) []byte {
	r := make([]byte, 48, 48+16)
	binary.LittleEndian.PutUint16(r, id)
	r[2], r[3] = 0x51, 0x01
	r[5], r[6], r[7] = generatorBMC, 0x00, s.number
	r[8], r[9] = s.entity, 0x01
	r[10] = 0x63 // scanning and events enabled at init, thresholds and hysteresis from the record
	r[12] = s.sensorType
	if s.discrete != nil {
		r[11] = 0x43 // auto re-arm, no thresholds, no events
		r[13] = eventTypeSensor
		binary.LittleEndian.PutUint16(r[14:], s.states)
		binary.LittleEndian.PutUint16(r[16:], s.states)
		binary.LittleEndian.PutUint16(r[18:], s.states)
	} else {
		r[11] = 0x47 // auto re-arm, thresholds readable, no events
		r[13] = eventTypeThreshold
		r[18] = s.readable()
		if s.percent {
			r[20] |= 0x01
		}
		r[21] = s.baseUnit
		if s.perSec {
			r[20] |= 1 << 1 // base unit / modifier unit
			r[22] = unitSecond
		}
		r[24] = uint8(s.m)
		r[25] = uint8(s.m>>8) << 6
		r[29] = uint8(s.rExp) << 4
		r[34], r[35] = 0xFF, 0x00 // sensor maximum and minimum readings
		if s.uc > 0 {
			r[37] = s.raw(s.uc)
		}
		if s.unc > 0 {
			r[38] = s.raw(s.unc)
		}
	}
	r[47] = 0xC0 | uint8(len(s.name)) // 8-bit ASCII + Latin 1
	r = append(r, s.name...)
	r[4] = uint8(len(r) - 5)
	return r
}

// sensors is a node's sensors, its SDR repository and its readings.
type sensors struct {
	*sdrRepo

	mu     sync.Mutex
	last   bmc.Stats
	lastAt time.Time
}

// sdrRepo is an SDR repository: the sensors and their encoded records. It
// depends only on whether the machine reports statistics, so the two
// there can be are built once and shared, read-only, by every node
// (in a fleet of 10,000 a repository per node held 15 MiB).
type sdrRepo struct {
	list    []sensor
	records map[uint16][]byte
	ids     []uint16
	made    time.Time // when the records were made: their last addition
}

// sdrRepos are the repository of a machine without statistics ([0]) and
// with them ([1]).
var sdrRepos = [2]func() *sdrRepo{
	sync.OnceValue(func() *sdrRepo { return newSDRRepo(nil) }),
	sync.OnceValue(func() *sdrRepo { return newSDRRepo(statsSensors) }),
}

func newSDRRepo(stats []sensor) *sdrRepo {
	r := &sdrRepo{list: append(slices.Clone(stats), powerSensor), records: map[uint16][]byte{}, made: time.Now()}
	for i := range r.list {
		id := uint16(i + 1)
		r.records[id] = r.list[i].record(id)
		r.ids = append(r.ids, id)
	}
	return r
}

// sensorCache is how long one machine reading serves a node's sensors:
// `sdr -v` reads every sensor one after the other.
const sensorCache = time.Second

func newSensors(m bmc.Machine) *sensors {
	repo := sdrRepos[0]
	if _, ok := bmc.As[bmc.StatsReporter](m); ok {
		repo = sdrRepos[1]
	}
	return &sensors{sdrRepo: repo()}
}

// stats reads the machine's statistics (cached for sensorCache); a machine
// without them reports only its power state.
func (h *nodeHandlers) stats(ctx context.Context) (bmc.Stats, types.CompletionCode) {
	s := h.sensors
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lastAt.IsZero() && time.Since(s.lastAt) < sensorCache {
		return s.last, types.CodeOK
	}
	var st bmc.Stats
	cc := types.CodeOK
	if r, ok := bmc.As[bmc.StatsReporter](h.machine); ok {
		st, cc = machineRead(ctx, h, "read statistics", r.Stats)
	} else {
		var p bmc.PowerState
		p, cc = machineRead(ctx, h, "power status", h.machine.PowerState)
		st.On = p == bmc.PowerOn
	}
	if cc == types.CodeOK {
		s.last, s.lastAt = st, time.Now()
	}
	return st, cc
}

// requested is the sensor a request (its sensor number) names.
func (s *sensors) requested(req []byte) (*sensor, types.CompletionCode) {
	if len(req) != 1 {
		return nil, types.CodeRequestDataLengthInvalid
	}
	for i := range s.list {
		if s.list[i].number == req[0] {
			return &s.list[i], types.CodeOK
		}
	}
	return nil, types.CodeRequestedDataNotPresent
}

// getSensorReading implements Get Sensor Reading (Sensor/Event 0x2D).
func (h *nodeHandlers) getSensorReading(ctx context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	sn, cc := h.sensors.requested(req)
	if cc != types.CodeOK {
		return nil, cc, nil
	}
	st, cc := h.stats(ctx)
	if cc != types.CodeOK {
		return nil, cc, nil
	}
	if sn.discrete != nil {
		bits := uint16(1) << sn.discrete(st)
		return []byte{0, sensorScanning, uint8(bits), uint8(bits>>8) | 0x80}, types.CodeOK, nil
	}
	v, ok := sn.value(st)
	if !ok || st.At.IsZero() {
		return []byte{0, sensorScanning | sensorReadingUnusable, 0}, types.CodeOK, nil
	}
	var status uint8
	if sn.unc > 0 && v >= sn.unc {
		status |= 1 << 3
	}
	if sn.uc > 0 && v >= sn.uc {
		status |= 1 << 4
	}
	return []byte{sn.raw(v), sensorScanning, status | 0xC0}, types.CodeOK, nil
}

// getSensorThresholds implements Get Sensor Thresholds (Sensor/Event 0x27).
func (h *nodeHandlers) getSensorThresholds(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	sn, cc := h.sensors.requested(req)
	if cc != types.CodeOK {
		return nil, cc, nil
	}
	if sn.discrete != nil {
		return nil, types.CodeInvalidCommand, nil
	}
	resp := make([]byte, 7)
	resp[0] = sn.readable()
	if sn.unc > 0 {
		resp[4] = sn.raw(sn.unc)
	}
	if sn.uc > 0 {
		resp[5] = sn.raw(sn.uc)
	}
	return resp, types.CodeOK, nil
}

// sdrStore serves the node's records to go-ipmi's SDR repository
// handlers; the repository is fixed.
type sdrStore struct{ s *sensors }

var _ hal.SDRStore = sdrStore{}

func (d sdrStore) Read(_ context.Context, id uint16) ([]byte, error) {
	if r, ok := d.s.records[id]; ok {
		return slices.Clone(r), nil // the record is shared by every node
	}
	return nil, hal.ErrNotFound
}
func (sdrStore) Write(context.Context, uint16, []byte) error { return hal.ErrNotSupported }
func (sdrStore) Delete(context.Context, uint16) error        { return hal.ErrNotSupported }
func (d sdrStore) RecordIDs(context.Context) ([]uint16, error) {
	return slices.Clone(d.s.ids), nil
}

// sdrRepoInfo answers Get SDR Repository Info with go-ipmi's answer but
// the repository's real times of last addition and erase. go-ipmi reports
// the current time for both (pkg/bmc/sdr_repository.go:147-153), so a
// client that caches the records (freeipmi's SDR cache) finds its cache
// out of date once a second boundary has passed since it filled it. The
// records here never change after they are made.
func (h *nodeHandlers) sdrRepoInfo(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	resp, cc, err := registered(goipmiDefaults(), types.CommandGetSDRRepoInfo).Handle(ctx, hctx, req)
	if err != nil || cc != types.CodeOK {
		return resp, cc, err
	}
	var info storage.GetSDRRepoInfoResponse
	if err := info.Unpack(resp); err != nil {
		return nil, types.CodeUnspecifiedError, fmt.Errorf("go-ipmi's SDR repository info: %w", err)
	}
	info.MostRecentAdditionTime, info.MostRecentEraseTime = h.sensors.made, h.sensors.made
	return info.Pack(), types.CodeOK, nil
}

// nodeStorage is the node's StorageHAL: its SDR repository and its FRU.
type nodeStorage struct{ h *nodeHandlers }

func (n nodeStorage) SDR() hal.SDRStore { return sdrStore{n.h.sensors} }
func (n nodeStorage) FRU() hal.FRUStore { return &n.h.fru }

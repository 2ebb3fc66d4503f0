package ipmi

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
)

// The System Event Log (IPMI 2.0 §31): the node's bmc.EventLog, served as
// 16-byte system event records (Table 32-1). Each kind of event is a
// sensor-specific offset of a standard sensor type (Table 42-3), so that
// ipmitool and ipmi-sel name it.

// selEvent is how one kind of event reads in the SEL.
type selEvent struct {
	sensorType   uint8
	sensorNumber uint8
	offset       uint8
}

// The event-only sensors the SEL's records name (sensor numbers from 0x80,
// apart from the measuring sensors of the SDR repository).
const (
	selSensorPowerUnit = 0x80 + iota
	selSensorBoot
	selSensorACPI
	selSensorInterrupt
	selSensorSystemEvent
	selSensorSession
	selSensorSecurity
)

var selEvents = map[bmc.EventKind]selEvent{
	bmc.EventPowerOff:            {0x09, selSensorPowerUnit, 0x00},   // Power Unit: Power off/down
	bmc.EventPowerCycle:          {0x09, selSensorPowerUnit, 0x01},   // Power Unit: Power cycle
	bmc.EventControlFailed:       {0x09, selSensorPowerUnit, 0x05},   // Power Unit: Soft-power control failure
	bmc.EventPowerOn:             {0x1D, selSensorBoot, 0x00},        // System Boot Initiated: power up
	bmc.EventReset:               {0x1D, selSensorBoot, 0x01},        // System Boot Initiated: hard reset
	bmc.EventSoftOff:             {0x22, selSensorACPI, 0x05},        // System ACPI Power State: S5/G2 soft-off
	bmc.EventDiagnosticInterrupt: {0x13, selSensorInterrupt, 0x00},   // Critical Interrupt: front panel NMI / diagnostic interrupt
	bmc.EventBootDeviceChanged:   {0x12, selSensorSystemEvent, 0x00}, // System Event: System Reconfigured
	bmc.EventConsoleActivated:    {0x2A, selSensorSession, 0x00},     // Session Audit: Session Activated
	bmc.EventLoginFailed:         {0x06, selSensorSecurity, 0x05},    // Platform Security Violation: out-of-band access password violation
}

// controlEvents is the event each Chassis Control directive records.
var controlEvents = map[uint8]bmc.EventKind{
	controlPowerDown:  bmc.EventPowerOff,
	controlPowerUp:    bmc.EventPowerOn,
	controlPowerCycle: bmc.EventPowerCycle,
	controlHardReset:  bmc.EventReset,
	controlDiagInt:    bmc.EventDiagnosticInterrupt,
	controlSoftOff:    bmc.EventSoftOff,
}

const (
	selRecordLen    = 16
	selVersion      = 0x51
	selNoTimestamp  = 0xFFFFFFFF
	selFirstRecord  = 0x0000
	selLastRecord   = 0xFFFF
	selReadAll      = 0xFF
	selOpReserve    = 0x02 // Get SEL Info operation support: Reserve SEL supported
	selOpOverflow   = 0x80
	selEraseStart   = 0xAA
	selEraseDone    = 0x01
	generatorBMC    = 0x20 // the BMC's slave address, as generator ID
	eventTypeSensor = 0x6F // sensor-specific offsets
)

// sel serves a node's event log.
type sel struct {
	events *bmc.EventLog
	mu     sync.Mutex
	resv   uint16
}

// record adds an event, logging a failure to keep it.
func (h *nodeHandlers) record(kind bmc.EventKind, detail string) {
	if _, err := h.sel.events.Add(kind, "ipmi", detail); err != nil {
		h.log.Warn("event log not saved", "err", err)
	}
}

func selTime(t time.Time) uint32 {
	if t.IsZero() {
		return selNoTimestamp
	}
	return uint32(t.Unix())
}

// selRecord encodes one event as a system event record.
func selRecord(e bmc.Event) []byte {
	se := selEvents[e.Kind]
	r := make([]byte, selRecordLen)
	binary.LittleEndian.PutUint16(r[0:], e.ID)
	r[2] = 0x02 // system event record
	binary.LittleEndian.PutUint32(r[3:], selTime(e.Time))
	r[7], r[8] = generatorBMC, 0x00
	r[9] = 0x04 // event message format revision (IPMI 1.5 and later)
	r[10], r[11], r[12] = se.sensorType, se.sensorNumber, eventTypeSensor
	r[13], r[14], r[15] = se.offset, 0xFF, 0xFF
	return r
}

// getSELInfo implements Get SEL Info (Storage 0x40).
func (h *nodeHandlers) getSELInfo(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
	info := h.sel.events.Info()
	resp := make([]byte, 14)
	resp[0] = selVersion
	binary.LittleEndian.PutUint16(resp[1:], uint16(info.Entries))
	binary.LittleEndian.PutUint16(resp[3:], uint16((info.Capacity-info.Entries)*selRecordLen))
	binary.LittleEndian.PutUint32(resp[5:], selTime(info.LastAdd))
	binary.LittleEndian.PutUint32(resp[9:], selTime(info.LastErase))
	resp[13] = selOpReserve
	if info.Overflow {
		resp[13] |= selOpOverflow
	}
	return resp, types.CodeOK, nil
}

// reserveSEL implements Reserve SEL (Storage 0x42).
func (h *nodeHandlers) reserveSEL(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
	h.sel.mu.Lock()
	defer h.sel.mu.Unlock()
	h.sel.resv++
	if h.sel.resv == 0 {
		h.sel.resv = 1
	}
	return binary.LittleEndian.AppendUint16(nil, h.sel.resv), types.CodeOK, nil
}

// reserved checks a reservation ID (0 is accepted where IPMI allows
// reading without one).
func (s *sel) reserved(id uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return id == s.resv && id != 0
}

// getSELEntry implements Get SEL Entry (Storage 0x43).
func (h *nodeHandlers) getSELEntry(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) != 6 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	resv, id, offset, count := binary.LittleEndian.Uint16(req), binary.LittleEndian.Uint16(req[2:]), int(req[4]), int(req[5])
	if offset != 0 && !h.sel.reserved(resv) {
		return nil, types.CodeReservationCanceled, nil
	}
	events := h.sel.events.Events()
	i := -1
	switch {
	case len(events) == 0:
	case id == selFirstRecord:
		i = 0
	case id == selLastRecord:
		i = len(events) - 1
	default:
		for j, e := range events {
			if e.ID == id {
				i = j
			}
		}
	}
	if i < 0 {
		return nil, types.CodeRequestedDataNotPresent, nil
	}
	next := uint16(selLastRecord)
	if i+1 < len(events) {
		next = events[i+1].ID
	}
	rec := selRecord(events[i])
	if offset > len(rec) {
		return nil, types.CodeParameterOutOfRange, nil
	}
	rec = rec[offset:]
	if count != selReadAll && count < len(rec) {
		rec = rec[:count]
	}
	return append(binary.LittleEndian.AppendUint16(nil, next), rec...), types.CodeOK, nil
}

// clearSEL implements Clear SEL (Storage 0x47).
func (h *nodeHandlers) clearSEL(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) != 6 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	if string(req[2:5]) != "CLR" {
		return nil, types.CodeRequestDataFieldInvalid, nil
	}
	if !h.sel.reserved(binary.LittleEndian.Uint16(req)) {
		return nil, types.CodeReservationCanceled, nil
	}
	if req[5] == selEraseStart {
		if err := h.sel.events.Clear(); err != nil {
			h.log.Warn("event log not saved", "err", err)
		}
		h.log.Info("event log cleared")
	}
	return []byte{selEraseDone}, types.CodeOK, nil
}

// getSELTime implements Get SEL Time (Storage 0x48): the host's clock.
func (h *nodeHandlers) getSELTime(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
	return binary.LittleEndian.AppendUint32(nil, uint32(time.Now().Unix())), types.CodeOK, nil
}

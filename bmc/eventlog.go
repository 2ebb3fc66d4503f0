package bmc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// EventKind is what happened to a machine or its BMC, as the event log
// records it. Front ends map kinds to their own vocabulary (IPMI sensor
// types and offsets, Redfish messages).
type EventKind int

// The events a BMC records.
const (
	EventPowerOn EventKind = iota + 1
	EventPowerOff
	EventPowerCycle
	EventReset
	EventSoftOff
	EventDiagnosticInterrupt
	// EventControlFailed: a power control acknowledged before it finished
	// failed afterwards; Detail says which and why.
	EventControlFailed
	EventBootDeviceChanged
	EventConsoleActivated
	EventLoginFailed
)

// Event is one entry of a node's event log.
type Event struct {
	// ID is the entry's record ID: 1 to 0xFFFE, increasing, wrapping.
	ID   uint16    `json:"id"`
	Time time.Time `json:"time"`
	Kind EventKind `json:"kind"`
	// Source says who caused it: "ipmi", "redfish", "machine".
	Source string `json:"source,omitempty"`
	// Detail is free text (the user, the address, the error).
	Detail string `json:"detail,omitempty"`
}

// EventLogInfo describes a log.
type EventLogInfo struct {
	Entries  int
	Capacity int
	// Overflow is true when entries were dropped to make room since the
	// last clear.
	Overflow bool
	// LastAdd and LastErase are zero when nothing was added or erased.
	LastAdd, LastErase time.Time
}

// DefaultEventLogCapacity is how many entries a log keeps (about 25 KiB
// when full, per node).
const DefaultEventLogCapacity = 256

// EventLog is a node's bounded event log: a ring that drops its oldest
// entry when full, and says so. With a path it is kept in that file
// (written whole, through a temporary file and a rename, after each change)
// and survives a restart.
type EventLog struct {
	path     string
	capacity int

	mu     sync.Mutex
	state  eventLogFile
	nowFor func() time.Time
}

type eventLogFile struct {
	NextID    uint16    `json:"next_id"`
	Overflow  bool      `json:"overflow,omitempty"`
	LastAdd   time.Time `json:"last_add,omitzero"`
	LastErase time.Time `json:"last_erase,omitzero"`
	Events    []Event   `json:"events"`
}

// EventLogPath is where a node's event log is kept beside the store's file
// of the node (an extension LoadAll does not read as a node).
func EventLogPath(storeDir, node string) string {
	return filepath.Join(storeDir, node+".sel")
}

// NewEventLog returns a log of capacity entries (DefaultEventLogCapacity
// when capacity ≤ 0), loaded from path when path is set and the file
// exists. An unreadable file is an error; the log then starts empty.
func NewEventLog(capacity int, path string) (*EventLog, error) {
	if capacity <= 0 {
		capacity = DefaultEventLogCapacity
	}
	l := &EventLog{path: path, capacity: capacity, state: eventLogFile{NextID: 1}, nowFor: time.Now}
	if path == "" {
		return l, nil
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err == nil {
		var st eventLogFile
		if err = json.Unmarshal(raw, &st); err == nil {
			if over := len(st.Events) - capacity; over > 0 {
				st.Events, st.Overflow = st.Events[over:], true
			}
			st.NextID = validID(st.NextID)
			l.state = st
			return l, nil
		}
	}
	return l, fmt.Errorf("event log %s: %w", path, err)
}

func validID(id uint16) uint16 {
	if id == 0 || id == 0xFFFF {
		return 1
	}
	return id
}

// Add records an event now and returns it; the error is the file's (the
// event is in the log either way).
func (l *EventLog) Add(kind EventKind, source, detail string) (Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := Event{ID: l.state.NextID, Time: l.nowFor().UTC().Truncate(time.Second), Kind: kind, Source: source, Detail: detail}
	l.state.NextID = validID(l.state.NextID + 1)
	if len(l.state.Events) >= l.capacity {
		l.state.Events = append(l.state.Events[:0], l.state.Events[1:]...)
		l.state.Overflow = true
	}
	l.state.Events = append(l.state.Events, e)
	l.state.LastAdd = e.Time
	return e, l.saveLocked()
}

// Events returns the entries, oldest first.
func (l *EventLog) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.state.Events...)
}

// Info describes the log.
func (l *EventLog) Info() EventLogInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return EventLogInfo{Entries: len(l.state.Events), Capacity: l.capacity, Overflow: l.state.Overflow,
		LastAdd: l.state.LastAdd, LastErase: l.state.LastErase}
}

// Clear erases every entry and the overflow flag.
func (l *EventLog) Clear() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state.Events, l.state.Overflow = nil, false
	l.state.LastErase = l.nowFor().UTC().Truncate(time.Second)
	return l.saveLocked()
}

func (l *EventLog) saveLocked() error {
	if l.path == "" {
		return nil
	}
	raw, err := json.Marshal(l.state)
	if err != nil {
		return err
	}
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	return nil
}

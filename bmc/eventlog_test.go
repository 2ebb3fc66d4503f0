package bmc

import (
	"os"
	"path/filepath"
	"testing"
)

// TestEventLogRingAndFile: the ring drops its oldest entry and says so,
// record IDs keep increasing across a reload, Clear empties it, and an
// unreadable file is an error with an empty log.
func TestEventLogRingAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.sel")
	l, err := NewEventLog(2, path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []EventKind{EventPowerOn, EventPowerOff, EventReset} {
		if _, err := l.Add(k, "ipmi", ""); err != nil {
			t.Fatal(err)
		}
	}
	if ev, info := l.Events(), l.Info(); len(ev) != 2 || ev[0].Kind != EventPowerOff || !info.Overflow || info.Entries != 2 {
		t.Fatalf("ring: %+v %+v", ev, info)
	}
	l2, err := NewEventLog(2, path)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := l2.Add(EventSoftOff, "ipmi", "")
	if e.ID != 4 || !l2.Info().Overflow {
		t.Fatalf("after a reload: ID %d, %+v", e.ID, l2.Info())
	}
	if err := l2.Clear(); err != nil || len(l2.Events()) != 0 || l2.Info().Overflow || l2.Info().LastErase.IsZero() {
		t.Fatalf("clear: %v %+v", err, l2.Info())
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l3, err := NewEventLog(2, path); err == nil || len(l3.Events()) != 0 {
		t.Fatalf("a corrupt file: %v", err)
	}
}

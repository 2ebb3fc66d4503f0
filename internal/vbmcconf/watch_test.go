package vbmcconf

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// watchCalls runs Watch in the background and returns a channel that gets a
// value on every rescan.
func watchCalls(t *testing.T, dir string, interval time.Duration) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = Watch(ctx, dir, interval, slog.New(slog.NewTextHandler(io.Discard, nil)), func() { calls <- struct{}{} })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return calls
}

func waitCall(t *testing.T, calls <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatalf("no rescan after %s", what)
	}
}

// drain empties calls once no rescan has come for the settle time twice over.
func drain(calls <-chan struct{}) {
	for {
		select {
		case <-calls:
		case <-time.After(3 * settle):
			return
		}
	}
}

func TestWatchRescansOnChange(t *testing.T) {
	dir := t.TempDir()
	calls := watchCalls(t, dir, time.Hour) // only events can trigger a rescan
	waitCall(t, calls, "start")

	steps := []struct {
		what string
		do   func() error
	}{
		{"a node folder created", func() error { return os.Mkdir(filepath.Join(dir, "n1"), 0o700) }},
		{"its config written", func() error { return os.WriteFile(NodePath(dir, "n1"), []byte(metal3Node), 0o600) }},
		{"its config rewritten", func() error { return os.WriteFile(NodePath(dir, "n1"), []byte(virtualBMCNode), 0o600) }},
		{"its config replaced by a rename", func() error {
			tmp := filepath.Join(dir, "n1", ".new")
			if err := os.WriteFile(tmp, []byte(metal3Node), 0o600); err != nil {
				return err
			}
			return os.Rename(tmp, NodePath(dir, "n1"))
		}},
		{"the folder removed", func() error { return os.RemoveAll(filepath.Join(dir, "n1")) }},
	}
	for _, s := range steps {
		drain(calls)
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		waitCall(t, calls, s.what)
	}
}

func TestWatchIgnoresGovbmcsOwnFiles(t *testing.T) {
	dir := t.TempDir()
	calls := watchCalls(t, dir, time.Hour)
	waitCall(t, calls, "start")
	for _, f := range []string{"vbmcd.log", "node.json", "vbmcd.pid"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-calls:
		t.Error("writing govbmc's own files beside the node folders triggered a rescan")
	case <-time.After(3 * settle):
	}
}

func TestWatchRescansPeriodically(t *testing.T) {
	calls := watchCalls(t, t.TempDir(), 20*time.Millisecond)
	for i := 0; i < 3; i++ {
		waitCall(t, calls, "an interval")
	}
}

package vbmcconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// RescanInterval is how often VirtualBMC's daemon re-reads its config
// directory; the watcher rescans as often even when no event arrived.
const RescanInterval = 3 * time.Second

// settle is how long the watcher waits after a file event for more to come
// (an editor's write is several events) before it rescans.
const settle = 100 * time.Millisecond

// Watch calls rescan once at once, then whenever something changes under
// dir (a node folder or config file added, written, renamed or removed) and
// at least every interval as a safety net for events a filesystem does not
// deliver (network filesystems, a directory replaced under the watch). It
// returns when ctx ends. When dir cannot be watched at all, it logs why and
// keeps the periodic rescan.
func Watch(ctx context.Context, dir string, interval time.Duration, log *slog.Logger, rescan func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("cannot watch the config directory; rescanning periodically only", "dir", dir, "err", err)
		w = nil
	} else {
		defer w.Close()
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	watched := map[string]bool{}
	// track (re)adds watches on dir and every node folder in it; a folder
	// created later is added when its event arrives.
	track := func() {
		if w == nil {
			return
		}
		paths := []string{dir}
		if entries, err := os.ReadDir(dir); err == nil {
			for _, e := range entries {
				if e.IsDir() {
					paths = append(paths, filepath.Join(dir, e.Name()))
				}
			}
		}
		for _, p := range paths {
			if watched[p] {
				continue
			}
			if err := w.Add(p); err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					log.Warn("cannot watch a config folder; its changes are seen by the periodic rescan", "path", p, "err", err)
				}
				continue
			}
			watched[p] = true
		}
	}
	run := func() {
		track()
		rescan()
	}
	run()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var pending <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			run()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if !relevant(dir, ev, watched) {
				continue
			}
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				delete(watched, ev.Name)
			}
			if pending == nil {
				pending = time.After(settle)
			}
		case <-pending:
			pending = nil
			run()
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			log.Warn("config directory watch", "dir", dir, "err", fmt.Errorf("fsnotify: %w", err))
		}
	}
}

// relevant reports an event that may change what the directory serves: a
// node folder created, removed or renamed, or a config file in one. The
// files beside the folders (govbmc's own: its log, pid file, socket and
// JSON files) are written all the time and change nothing here.
func relevant(dir string, ev fsnotify.Event, watched map[string]bool) bool {
	if filepath.Base(ev.Name) == NodeFileName || watched[ev.Name] {
		return true
	}
	if filepath.Dir(ev.Name) != dir {
		return false // a temporary file in a node folder, before its rename to config
	}
	st, err := os.Stat(ev.Name)
	return err == nil && st.IsDir()
}

package bmc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// StoredNode is one BMC as the store keeps it: its configuration and
// whether it was started (so that a daemon restart brings it back).
type StoredNode struct {
	Node   Node `json:"node"`
	Active bool `json:"active"`
}

// Store keeps one file per BMC in a directory, each written atomically
// (temporary file, fsync, rename, directory fsync) with mode 0600: a crash
// at any moment leaves every file either old or new, never torn.
type Store struct {
	dir string
}

const storeFileExt = ".json"

// OpenStore prepares the directory (mode 0700) and returns the store.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("config directory %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("config directory %s: %w", dir, err)
	}
	// Temporary files of writes a crash interrupted.
	if stale, err := filepath.Glob(filepath.Join(dir, ".tmp-*")); err == nil {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(name string) string {
	return filepath.Join(s.dir, name+storeFileExt)
}

// Save writes a BMC's file atomically.
func (s *Store) Save(sn StoredNode) error {
	if !nodeNameRE.MatchString(sn.Node.Name) {
		return fmt.Errorf("save %q: invalid node name", sn.Node.Name)
	}
	raw, err := json.MarshalIndent(sn, "", "  ")
	if err != nil {
		return fmt.Errorf("save %q: %w", sn.Node.Name, err)
	}
	return writeFileAtomic(s.dir, s.path(sn.Node.Name), append(raw, '\n'))
}

// Delete removes a BMC's file.
func (s *Store) Delete(name string) error {
	if err := os.Remove(s.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete %q: %w", name, err)
	}
	return syncDir(s.dir)
}

// LoadAll reads every BMC file, sorted by name. Files that cannot be read
// or parsed are reported in errs and skipped; they are left in place.
func (s *Store) LoadAll() (nodes []StoredNode, errs []error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("read config directory: %w", err)}
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, storeFileExt) || strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(s.dir, name)
		raw, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		var sn StoredNode
		if err := json.Unmarshal(raw, &sn); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		if sn.Node.Name+storeFileExt != name {
			errs = append(errs, fmt.Errorf("%s: holds node %q", p, sn.Node.Name))
			continue
		}
		nodes = append(nodes, sn)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Node.Name < nodes[j].Node.Name })
	return nodes, errs
}

// writeFileAtomic replaces path with data: a private temporary file in the
// same directory, fsynced, renamed over path, then the directory fsynced.
func writeFileAtomic(dir, path string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	cleanup := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return cleanup(err)
	}
	if _, err := f.Write(data); err != nil {
		return cleanup(err)
	}
	if err := f.Sync(); err != nil {
		return cleanup(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

package vbmcconf

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/libvirtconn"
)

// VirtualBMC's defaults for what a node file leaves out (its `vbmc add`
// defaults).
const (
	defaultAddress  = "::"
	defaultUsername = "admin"
	defaultPassword = "password"
)

// maxV15Password is the longest password an IPMI 1.5 session carries; a
// longer one (VirtualBMC allows 20 bytes) serves IPMI 2.0 only.
const maxV15Password = 16

// ToNode is the govbmc node a VirtualBMC file describes: a libvirt node
// with one administrator. An invalid one is an error naming the file.
func ToNode(nf NodeFile) (bmc.Node, error) {
	n := bmc.Node{
		Name:    nf.Name,
		Address: cmp.Or(strings.TrimSpace(nf.Address), defaultAddress),
		Port:    nf.Port,
		// kg is govbmc's own key in a VirtualBMC file: the BMC key, which
		// VirtualBMC ignores.
		Kg: nf.Extra[KeyKg],
		Users: []bmc.User{{
			Name:      cmp.Or(nf.Username, defaultUsername),
			Password:  cmp.Or(nf.Password, defaultPassword),
			Privilege: bmc.PrivilegeAdministrator,
		}},
		Backend: bmc.Backend{Type: libvirtconn.BackendType, Config: libvirtconn.Config{
			URI:          cmp.Or(strings.TrimSpace(nf.LibvirtURI), libvirtconn.DefaultURI),
			Domain:       nf.DomainName,
			SASLUsername: nf.LibvirtSASLUsername,
			SASLPassword: nf.LibvirtSASLPassword,
		}},
	}
	n.DisableIPMIv15 = len(n.Users[0].Password) > maxV15Password
	n.ApplyDefaults()
	if err := n.Validate(); err != nil {
		return n, fmt.Errorf("%s: %w", nf.Path, err)
	}
	return n, nil
}

// filePersister keeps an adopted node in its VirtualBMC file: a start or
// stop rewrites its active line, a delete removes its folder, as
// VirtualBMC's own vbmc does. Nothing else about a node changes at run time.
type filePersister struct{ dir string }

// Save rewrites the node's active line.
func (p filePersister) Save(sn bmc.StoredNode) error {
	return SetActive(p.dir, sn.Node.Name, sn.Active)
}

// Delete removes the node's folder.
func (p filePersister) Delete(name string) error { return Delete(p.dir, name) }

// Syncer makes a manager serve what a VirtualBMC config directory says, as
// VirtualBMC's daemon does on every rescan: each readable node file is a
// node (started when active), a file changed is applied, a folder removed
// is forgotten. A file that cannot be read is logged once per distinct
// problem and skipped; when it belonged to a running node, that node keeps
// its last good configuration until the file parses again.
type Syncer struct {
	dir string
	mgr *bmc.Manager
	log *slog.Logger

	mu       sync.Mutex
	applied  map[string]NodeFile // the nodes adopted, as their files last read
	reported map[string]string   // file path → the problem last logged for it
}

// NewSyncer returns a syncer of dir into mgr; call Rescan (or run it under
// Watch).
func NewSyncer(dir string, mgr *bmc.Manager, log *slog.Logger) *Syncer {
	return &Syncer{dir: dir, mgr: mgr, log: log, applied: map[string]NodeFile{}, reported: map[string]string{}}
}

// Rescan reads the directory once and applies it.
func (s *Syncer) Rescan(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nodes, problems := Scan(s.dir)
	present := map[string]bool{}
	problemAt := map[string]bool{}
	for _, nf := range nodes {
		present[nf.Name] = true
		if err := s.apply(ctx, nf); err != nil {
			problemAt[nf.Path] = true
			s.report(nf.Path, err)
		}
	}
	for _, p := range problems {
		path := NodePath(s.dir, p.Name)
		problemAt[path] = true
		if p.Name == "" {
			s.report(s.dir, p.Err)
			continue
		}
		if errors.Is(p, ErrNoConfig) {
			s.report(path, fmt.Errorf("%w: folder %s skipped", p.Err, p.Name))
			continue
		}
		// Present but unreadable: a node it held keeps running as it was.
		present[p.Name] = true
		if _, held := s.applied[p.Name]; held {
			s.report(path, fmt.Errorf("%w (node %q keeps its last good configuration until the file reads again)", p.Err, p.Name))
		} else {
			s.report(path, fmt.Errorf("%w (skipped)", p.Err))
		}
	}
	for name := range s.applied {
		if present[name] {
			continue
		}
		delete(s.applied, name)
		switch err := s.mgr.Forget(name); {
		case errors.Is(err, bmc.ErrNotFound): // vbmc delete removed it
		case err != nil:
			s.log.Error("forgetting a node whose config file is gone", "node", name, "err", err)
		default:
			s.log.Info("config file removed; node forgotten", "node", name, "path", NodePath(s.dir, name))
		}
	}
	for path := range s.reported {
		if !problemAt[path] {
			delete(s.reported, path)
		}
	}
}

// apply adopts or updates the node of one readable file; s.mu must be held.
func (s *Syncer) apply(ctx context.Context, nf NodeFile) error {
	last, known := s.applied[nf.Name]
	if known && reflect.DeepEqual(last, nf) {
		return nil
	}
	n, err := ToNode(nf)
	if err != nil {
		if known {
			return fmt.Errorf("%w (node %q keeps its last good configuration)", err, nf.Name)
		}
		return fmt.Errorf("%w (skipped)", err)
	}
	if known {
		err := s.mgr.Apply(ctx, n, nf.Active)
		if errors.Is(err, bmc.ErrNotFound) { // deleted with vbmc, then written again
			delete(s.applied, nf.Name)
			return s.apply(ctx, nf)
		}
		if err != nil {
			return fmt.Errorf("%s: %w (node %q keeps its last good configuration)", nf.Path, s.explain(err), nf.Name)
		}
		s.applied[nf.Name] = nf
		s.log.Info("config file changed; applied", "node", nf.Name, "path", nf.Path, "active", nf.Active)
		return nil
	}
	if st, err := s.mgr.Get(nf.Name); err == nil {
		return s.claim(ctx, nf, n, st)
	}
	if err := s.mgr.Adopt(ctx, n, nf.Active, filePersister{dir: s.dir}); err != nil {
		if st, gerr := s.mgr.Get(nf.Name); errors.Is(err, bmc.ErrExists) && gerr == nil { // added meanwhile
			return s.claim(ctx, nf, n, st)
		}
		return fmt.Errorf("%s: %w (skipped)", nf.Path, s.explain(err))
	}
	s.applied[nf.Name] = nf
	if len(nf.Extra) > 0 {
		keys := make([]string, 0, len(nf.Extra))
		for k := range nf.Extra {
			if k != KeyKg {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			sort.Strings(keys)
			s.log.Warn("config file has keys neither VirtualBMC nor govbmc knows; they are ignored", "path", nf.Path, "keys", strings.Join(keys, ","))
		}
	}
	return nil
}

// claim takes as the file's a node the manager already has: one vbmc add
// wrote this file for (Store), the same node. A different node of that
// name (govbmc's own file, the fleet file) keeps it, and the file is
// skipped.
func (s *Syncer) claim(ctx context.Context, nf NodeFile, n bmc.Node, st bmc.NodeStatus) error {
	if st.ReadOnly || !reflect.DeepEqual(st.Node, n) {
		return fmt.Errorf("%s: node %q is already served from govbmc's own files; this file is skipped", nf.Path, nf.Name)
	}
	s.applied[nf.Name] = nf
	if err := s.mgr.Apply(ctx, n, nf.Active); err != nil {
		return fmt.Errorf("%s: %w", nf.Path, err)
	}
	return nil
}

// explain adds the file of the node holding a port to a port clash.
func (s *Syncer) explain(err error) error {
	var pe *bmc.PortInUseError
	if errors.As(err, &pe) && pe.Holder != "" {
		if _, ok := s.applied[pe.Holder]; ok {
			return fmt.Errorf("%w (%s)", err, NodePath(s.dir, pe.Holder))
		}
	}
	return err
}

// report logs a file's problem once: again only when the problem or the
// file changes, never on every rescan.
func (s *Syncer) report(path string, err error) {
	msg := err.Error()
	key := msg
	if st, err := os.Stat(path); err == nil {
		key = fmt.Sprintf("%s\x00%v\x00%d", msg, st.ModTime().UnixNano(), st.Size())
	}
	if s.reported[path] == key {
		return
	}
	s.reported[path] = key
	s.log.Warn("VirtualBMC config file not served", "path", path, "err", msg)
}

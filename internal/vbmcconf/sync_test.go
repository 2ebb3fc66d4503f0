package vbmcconf

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/libvirtconn"
)

// listener stands in for a node's IPMI listener.
type listener struct{ closed chan struct{} }

func (l *listener) Serve(ctx context.Context) error {
	select {
	case <-l.closed:
	case <-ctx.Done():
	}
	return nil
}

func (l *listener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

// served is a manager over simulated machines whose listeners record the
// configuration each node was last started with.
type served struct {
	mgr  *bmc.Manager
	logs *testtool.Buffer
	mu   sync.Mutex
	last map[string]bmc.Node
}

func newServed(t *testing.T) *served {
	s := &served{logs: &testtool.Buffer{}, last: map[string]bmc.Node{}}
	log := slog.New(slog.NewTextHandler(s.logs, nil))
	machines := func(_ context.Context, n bmc.Node) (bmc.Machine, error) { return bmc.NewSimMachine(n) }
	frontends := func(n bmc.Node, _ bmc.Machine) (bmc.Frontend, error) {
		s.mu.Lock()
		s.last[n.Name] = n
		s.mu.Unlock()
		return &listener{closed: make(chan struct{})}, nil
	}
	s.mgr = bmc.NewManager(machines, frontends, log)
	t.Cleanup(func() { _ = s.mgr.Close() })
	return s
}

// status is a node's status, or "absent".
func (s *served) status(name string) string {
	st, err := s.mgr.Get(name)
	if errors.Is(err, bmc.ErrNotFound) {
		return "absent"
	}
	return string(st.Status)
}

func (s *served) started(name string) bmc.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[name]
}

func TestSyncerServesTheDirectoryAndWritesBack(t *testing.T) {
	dir := t.TempDir()
	writeNode(t, dir, "node_0", metal3Node)
	writeNode(t, dir, "node-1", virtualBMCNode)
	s := newServed(t)
	sy := NewSyncer(dir, s.mgr, slog.New(slog.NewTextHandler(s.logs, nil)))
	ctx := context.Background()
	sy.Rescan(ctx)

	if got := s.status("node_0"); got != "running" {
		t.Fatalf("metal3's active node is %s, want running", got)
	}
	if got := s.status("node-1"); got != "down" {
		t.Fatalf("VirtualBMC's inactive node is %s, want down", got)
	}
	n0, _ := s.mgr.Get("node_0")
	lv := n0.Node.Backend.Config.(libvirtconn.Config)
	if n0.Node.Address != "192.168.111.1" || n0.Node.Port != 6230 || lv.Domain != "node_0" ||
		lv.URI != "qemu+ssh://root@192.168.111.1/system?&keyfile=/root/ssh/id_rsa_virt_power&no_verify=1&no_tty=1" ||
		len(n0.Node.Users) != 1 || n0.Node.Users[0].Name != "admin" || n0.Node.Users[0].Password != "password" || n0.Node.Users[0].Privilege != bmc.PrivilegeAdministrator {
		t.Errorf("metal3's node served as %+v", n0.Node)
	}
	n1, _ := s.mgr.Get("node-1")
	lv1 := n1.Node.Backend.Config.(libvirtconn.Config)
	if lv1.SASLUsername != "govbmc" || lv1.SASLPassword != "secret" || n1.Node.Users[0].Password != "p%ss#word" || n1.Node.Address != "::" {
		t.Errorf("VirtualBMC's node served as %+v", n1.Node)
	}

	// vbmc start and stop rewrite the active line; the rescan that sees
	// the rewrite changes nothing.
	if err := s.mgr.Start(ctx, "node-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.mgr.Stop("node_0"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"node-1": true, "node_0": false} {
		nf, err := ReadNode(dir, name)
		if err != nil || nf.Active != want {
			t.Errorf("%s's file after vbmc start/stop: active %v (%v), want %v", name, nf.Active, err, want)
		}
	}
	sy.Rescan(ctx)
	if s.status("node-1") != "running" || s.status("node_0") != "down" {
		t.Errorf("after the rescan: node-1 %s, node_0 %s", s.status("node-1"), s.status("node_0"))
	}

	// Another tool flips active and changes a port.
	writeNode(t, dir, "node_0", strings.Replace(metal3Node, "port = 6230", "port = 6240", 1))
	sy.Rescan(ctx)
	if s.status("node_0") != "running" || s.started("node_0").Port != 6240 {
		t.Errorf("node_0 after its file was rewritten: %s on port %d, want running on 6240", s.status("node_0"), s.started("node_0").Port)
	}
	writeNode(t, dir, "node-1", virtualBMCNode) // active = False again
	sy.Rescan(ctx)
	if s.status("node-1") != "down" {
		t.Errorf("node-1 after active = False: %s", s.status("node-1"))
	}

	// Another tool removes a folder; vbmc delete removes one.
	if err := os.RemoveAll(filepath.Join(dir, "node-1")); err != nil {
		t.Fatal(err)
	}
	sy.Rescan(ctx)
	if s.status("node-1") != "absent" {
		t.Errorf("node-1 after its folder was removed: %s", s.status("node-1"))
	}
	if err := s.mgr.Delete("node_0"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_0")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("vbmc delete left node_0's folder: %v", err)
	}
	sy.Rescan(ctx)
	if s.status("node_0") != "absent" {
		t.Errorf("node_0 after vbmc delete and a rescan: %s", s.status("node_0"))
	}
}

func TestSyncerKeepsARunningNodeThroughAHalfWrittenFile(t *testing.T) {
	dir := t.TempDir()
	writeNode(t, dir, "node_0", metal3Node)
	s := newServed(t)
	sy := NewSyncer(dir, s.mgr, slog.New(slog.NewTextHandler(s.logs, nil)))
	ctx := context.Background()
	sy.Rescan(ctx)
	half := metal3Node[:strings.Index(metal3Node, "port")]
	writeNode(t, dir, "node_0", half)
	for range 3 {
		sy.Rescan(ctx)
	}
	if s.status("node_0") != "running" || s.started("node_0").Port != 6230 {
		t.Fatalf("node_0 after a half-written file: %s on %d, want running on 6230", s.status("node_0"), s.started("node_0").Port)
	}
	path := NodePath(dir, "node_0")
	if n := s.logs.Lines("level=WARN", path, "port: missing", "keeps its last good configuration"); n != 1 {
		t.Errorf("%d log lines about the half-written file over three rescans, want 1:\n%s", n, s.logs)
	}
	// Written again, as broken: logged again, once.
	writeNode(t, dir, "node_0", half+"# still being written\n")
	sy.Rescan(ctx)
	sy.Rescan(ctx)
	if n := s.logs.Lines("level=WARN", path, "port: missing"); n != 2 {
		t.Errorf("%d log lines after the file was written again, still broken; want 2", n)
	}
	writeNode(t, dir, "node_0", strings.Replace(metal3Node, "port = 6230", "port = 6231", 1))
	sy.Rescan(ctx)
	if s.status("node_0") != "running" || s.started("node_0").Port != 6231 {
		t.Errorf("node_0 once its file is whole: %s on %d, want running on 6231", s.status("node_0"), s.started("node_0").Port)
	}
}

func TestSyncerBadInput(t *testing.T) {
	dir := t.TempDir()
	good := func(port string) string { return strings.Replace(metal3Node, "6230", port, 1) }
	writeNode(t, dir, "a-first", good("6300"))
	writeNode(t, dir, "b-same-port", good("6300"))
	writeNode(t, dir, "no-section", "username = admin\nport = 6301\n")
	writeNode(t, dir, "unknown-keys", good("6302")+"colour = blue\n")
	writeNode(t, dir, "bad-port", good("sixty"))
	writeNode(t, dir, "too-high", good("70000"))
	if err := os.MkdirAll(filepath.Join(dir, "no-config"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(NodePath(dir, "config-is-dir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "fifo"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(NodePath(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeNode(t, dir, "unreadable", good("6303"))
	if err := os.Chmod(NodePath(dir, "unreadable"), 0); err != nil {
		t.Fatal(err)
	}
	s := newServed(t)
	sy := NewSyncer(dir, s.mgr, slog.New(slog.NewTextHandler(s.logs, nil)))
	for range 3 {
		sy.Rescan(context.Background())
	}
	if s.status("a-first") != "running" || s.status("unknown-keys") != "running" {
		t.Errorf("the good nodes: a-first %s, unknown-keys %s; want both running", s.status("a-first"), s.status("unknown-keys"))
	}
	once := func(what string, parts ...string) {
		t.Helper()
		if n := s.logs.Lines(parts...); n != 1 {
			t.Errorf("%s: %d log lines with %q over three rescans, want 1:\n%s", what, n, parts, s.logs)
		}
	}
	once("two files on one port", "level=WARN", NodePath(dir, "b-same-port"), "already used by the BMC of", "a-first", NodePath(dir, "a-first"))
	once("missing section", "level=WARN", NodePath(dir, "no-section"), "no [VirtualBMC] section")
	once("unknown keys", "level=WARN", NodePath(dir, "unknown-keys"), "colour")
	once("bad port", "level=WARN", NodePath(dir, "bad-port"), "sixty")
	once("port out of range", "level=WARN", NodePath(dir, "too-high"), "70000")
	once("folder without config", "level=WARN", NodePath(dir, "no-config"), "no config file")
	once("config that is a directory", "level=WARN", NodePath(dir, "config-is-dir"), "is a directory")
	once("config that is a FIFO", "level=WARN", NodePath(dir, "fifo"), "not a regular file")
	for _, name := range []string{"b-same-port", "no-section", "bad-port", "too-high", "no-config", "config-is-dir", "fifo"} {
		if got := s.status(name); got != "absent" {
			t.Errorf("%s is %s, want not served", name, got)
		}
	}
	// Nothing lost: every file is as it was written.
	if raw, err := os.ReadFile(NodePath(dir, "unknown-keys")); err != nil || !strings.Contains(string(raw), "colour = blue") {
		t.Errorf("unknown-keys' file after the scans: %q, %v", raw, err)
	}
	if os.Geteuid() == 0 {
		t.Log("running as root: a mode 0 file is readable, so the permission case is checked only as another user")
		return
	}
	once("unreadable permissions", "level=WARN", NodePath(dir, "unreadable"), "permission denied")
}

func TestAddedNodesAreWrittenAsVirtualBMCWritesThem(t *testing.T) {
	dir := t.TempDir()
	json, err := bmc.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := newServed(t)
	s.mgr.UseStore(json)
	s.mgr.PersistAddsWith(NewStore(dir, json))
	sy := NewSyncer(dir, s.mgr, slog.New(slog.NewTextHandler(s.logs, nil)))
	ctx := context.Background()
	lvNode := bmc.Node{Name: "vm-1", Address: "::", Port: 6250,
		Users:   []bmc.User{{Name: "admin", Password: "p%ss"}},
		Backend: bmc.Backend{Type: libvirtconn.BackendType, Config: libvirtconn.Config{URI: "qemu:///system"}}}
	if err := s.mgr.Add(ctx, lvNode); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(NodePath(dir, "vm-1"))
	want := "[VirtualBMC]\nusername = admin\npassword = p%%ss\naddress = ::\nport = 6250\ndomain_name = vm-1\nlibvirt_uri = qemu:///system\nactive = False\n\n"
	if err != nil || string(raw) != want {
		t.Fatalf("vbmc add of a libvirt node wrote %q (%v), want VirtualBMC's file %q", raw, err, want)
	}
	simNode := bmc.Node{Name: "sim-1", Address: "127.0.0.1", Port: 6251, Users: []bmc.User{{Name: "admin", Password: "password"}}}
	if err := s.mgr.Add(ctx, simNode); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sim-1.json")); err != nil {
		t.Errorf("a node VirtualBMC cannot serve is not in govbmc's own file: %v", err)
	}

	sy.Rescan(ctx) // sees vm-1's new folder: the node it already serves
	if err := s.mgr.Start(ctx, "vm-1"); err != nil {
		t.Fatal(err)
	}
	sy.Rescan(ctx)
	if nf, err := ReadNode(dir, "vm-1"); err != nil || !nf.Active || s.status("vm-1") != "running" {
		t.Errorf("after vbmc start: file active %v (%v), node %s", nf.Active, err, s.status("vm-1"))
	}
	if strings.Contains(s.logs.String(), "level=WARN") {
		t.Errorf("warnings about a file vbmc add wrote:\n%s", s.logs)
	}
	// Another tool stops it, as in VirtualBMC.
	if err := SetActive(dir, "vm-1", false); err != nil {
		t.Fatal(err)
	}
	sy.Rescan(ctx)
	if s.status("vm-1") != "down" {
		t.Errorf("vm-1 after active = False: %s", s.status("vm-1"))
	}
	if err := s.mgr.Delete("vm-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vm-1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("vbmc delete left the folder: %v", err)
	}
}

func TestVirtualBMCNoneIsUnset(t *testing.T) {
	dir := t.TempDir()
	writeNode(t, dir, "n", strings.Replace(virtualBMCNode, "libvirt_sasl_username = govbmc\nlibvirt_sasl_password = secret", "libvirt_sasl_username = None\nlibvirt_sasl_password = None", 1))
	nf, err := ReadNode(dir, "n")
	if err != nil || nf.LibvirtSASLUsername != "" || nf.LibvirtSASLPassword != "" {
		t.Errorf("Python's None read as %q/%q (%v), want unset", nf.LibvirtSASLUsername, nf.LibvirtSASLPassword, err)
	}
}

package bmc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// This file is the backend registry: each backend (the built-in simulated
// machine here, libvirt in libvirtconn) registers by name, the way
// node_exporter's collectors or CoreDNS's plugins do, with its settings
// type, defaults, validation and factory. Nothing else in bmc knows any
// backend's settings.

// Backend says which machine a node manages and how: a registered backend's
// name and that backend's own settings. Config files and stored nodes write
// the settings flat beside "type" (backend: {type: libvirt, uri: …}).
type Backend struct {
	// Type names a registered backend (BackendSim once defaults are applied).
	Type string
	// Config is the backend's settings, a value of the type it registered
	// (SimConfig for BackendSim), or RawConfig for a type this program does
	// not know; nil means all defaults.
	Config any

	// unknown lists the settings a YAML file gave that no registered
	// backend knows, comma-separated; Validate refuses them by name.
	unknown string
}

// RawConfig holds the settings of a backend this program has not
// registered, so that they are written back unchanged.
type RawConfig map[string]any

// Masked stands for a secret in what is shown to users.
const Masked = "***"

// BackendSpec describes a backend whose settings are of type C. Name and New
// are required; the other hooks are optional.
type BackendSpec[C comparable] struct {
	// Name is the backend's name: a node's backend "type".
	Name string
	// Defaults returns c with what node n leaves out filled in.
	Defaults func(n *Node, c C) C
	// Validate checks c for node n. A *FieldError names the field from the
	// node down ("backend.uri"); its node is filled in.
	Validate func(n *Node, c C) error
	// Redact returns c with its secrets masked, for display.
	Redact func(c C) C
	// New starts the backend in one process (one pool of hypervisor
	// connections, say): the factory of its machines.
	New func(log *slog.Logger) Driver
}

// Driver is a backend running in one process: it builds the machines of
// its nodes and owns what they share.
type Driver interface {
	// NewMachine builds the machine node n manages; n is defaulted and valid.
	NewMachine(ctx context.Context, n Node) (Machine, error)
	// Close releases what the driver holds.
	Close() error
}

// MachineLister is a driver that can list the machines its settings reach
// (for libvirt, the domains of a hypervisor).
type MachineLister interface {
	// ListMachines names every machine b reaches, sorted.
	ListMachines(ctx context.Context, b Backend) ([]string, error)
}

// Prober is a machine that can tell, without changing anything, whether it
// is there and whether it can be reached.
type Prober interface {
	// Exists reports an error when the machine is not there (a libvirt
	// domain that is not defined) or cannot be asked.
	Exists(ctx context.Context) error
	// Health reports why the machine cannot be reached now, or nil. It
	// makes no call, so that listing a fleet stays cheap.
	Health() error
}

// backendKind is a registered backend with its settings type erased.
type backendKind struct {
	name     string
	typ      reflect.Type
	keys     map[string]bool // the settings' keys, as files write them
	config   func(v any) (any, bool)
	defaults func(n *Node, c any) any
	validate func(n *Node, c any) error
	redact   func(c any) any
	newDrv   func(log *slog.Logger) Driver
}

var registry struct {
	sync.RWMutex
	kinds map[string]*backendKind
	keys  map[string]bool // every registered backend's keys
}

// RegisterBackend makes a backend available by name. It is meant for init
// functions and panics when the name is taken, as sql.Register does.
func RegisterBackend[C comparable](s BackendSpec[C]) {
	if s.Name == "" || s.New == nil {
		panic("bmc: RegisterBackend needs a name and a factory")
	}
	typ := reflect.TypeFor[C]()
	if typ.Kind() != reflect.Struct {
		panic(fmt.Sprintf("bmc: backend %q: settings type %v is not a struct", s.Name, typ))
	}
	k := &backendKind{name: s.Name, typ: typ, keys: settingKeys(typ), newDrv: s.New}
	k.config = func(v any) (any, bool) {
		if v == nil {
			var zero C
			return zero, true
		}
		c, ok := v.(C)
		return c, ok
	}
	k.defaults = func(n *Node, c any) any {
		if s.Defaults == nil {
			return c
		}
		return s.Defaults(n, c.(C))
	}
	k.validate = func(n *Node, c any) error {
		if s.Validate == nil {
			return nil
		}
		return s.Validate(n, c.(C))
	}
	k.redact = func(c any) any {
		if s.Redact == nil {
			return c
		}
		return s.Redact(c.(C))
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.kinds == nil {
		registry.kinds, registry.keys = map[string]*backendKind{}, map[string]bool{}
	}
	if _, dup := registry.kinds[s.Name]; dup {
		panic(fmt.Sprintf("bmc: backend %q registered twice", s.Name))
	}
	registry.kinds[s.Name] = k
	for key := range k.keys {
		registry.keys[key] = true
	}
}

// BackendTypes returns the names of the registered backends, sorted.
func BackendTypes() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.kinds))
	for name := range registry.kinds {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func lookupBackend(name string) *backendKind {
	registry.RLock()
	defer registry.RUnlock()
	return registry.kinds[name]
}

// knownSetting reports whether any registered backend has a setting key.
func knownSetting(key string) bool {
	registry.RLock()
	defer registry.RUnlock()
	return registry.keys[key]
}

// settingKeys are the names a settings struct's fields take in files.
func settingKeys(typ reflect.Type) map[string]bool {
	keys := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" {
			tag = f.Tag.Get("json")
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name != "-" {
			keys[name] = true
		}
	}
	return keys
}

// applyDefaults fills the backend settings node n leaves out; an unknown
// type, or settings of another type, are left for Validate to refuse.
func (b *Backend) applyDefaults(n *Node) {
	if b.Type == "" {
		b.Type = BackendSim
	}
	k := lookupBackend(b.Type)
	if k == nil {
		return
	}
	if c, ok := k.config(b.Config); ok {
		b.Config = k.defaults(n, c)
	}
}

// validate checks node n's backend with the backend's own rules.
func (b *Backend) validate(n *Node) error {
	fe := func(field string, err error) error {
		return &FieldError{Node: n.Name, Field: "backend." + field, Err: err}
	}
	k := lookupBackend(b.Type)
	if k == nil {
		return fe("type", fmt.Errorf("unknown backend %q (want one of %s)", b.Type, strings.Join(BackendTypes(), ", ")))
	}
	if b.unknown != "" {
		key, _, _ := strings.Cut(b.unknown, ",")
		return fe(key, fmt.Errorf("not a setting of any backend (the %s backend takes %s)", b.Type, strings.Join(sortedKeys(k.keys), ", ")))
	}
	c, ok := k.config(b.Config)
	if !ok {
		return fe("type", fmt.Errorf("settings of type %T are not the %s backend's", b.Config, b.Type))
	}
	err := k.validate(n, c)
	var f *FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &f) && f.Node == "":
		return &FieldError{Node: n.Name, Field: f.Field, Err: f.Err}
	case f != nil:
		return err
	}
	return &FieldError{Node: n.Name, Field: "backend", Err: err}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Redacted returns the backend with its secrets masked, for display.
func (b Backend) Redacted() Backend {
	if k := lookupBackend(b.Type); k != nil {
		if c, ok := k.config(b.Config); ok && b.Config != nil {
			b.Config = k.redact(c)
		}
	}
	return b
}

// kindForDecoding is the backend whose settings type reads a backend
// section: the one named, or the default when none is.
func kindForDecoding(typ string) *backendKind {
	if typ == "" {
		typ = BackendSim
	}
	return lookupBackend(typ)
}

// MarshalJSON writes the settings flat beside "type", "type" first.
func (b Backend) MarshalJSON() ([]byte, error) {
	typ, err := json.Marshal(b.Type)
	if err != nil {
		return nil, err
	}
	cfg := []byte("{}")
	if b.Config != nil {
		if cfg, err = json.Marshal(b.Config); err != nil {
			return nil, fmt.Errorf("backend %q settings: %w", b.Type, err)
		}
	}
	if len(cfg) < 2 || cfg[0] != '{' {
		return nil, fmt.Errorf("backend %q settings: %T is not written as an object", b.Type, b.Config)
	}
	out := append([]byte(`{"type":`), typ...)
	if string(cfg) != "{}" {
		out = append(append(out, ','), cfg[1:len(cfg)-1]...)
	}
	return append(out, '}'), nil
}

// UnmarshalJSON reads the flat form: "type" names the backend whose
// settings type reads the rest. Keys it does not know are ignored, as they
// always were in stored nodes.
func (b *Backend) UnmarshalJSON(raw []byte) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return err
	}
	*b = Backend{}
	if t, ok := fields["type"]; ok {
		if err := json.Unmarshal(t, &b.Type); err != nil {
			return fmt.Errorf("backend type: %w", err)
		}
	}
	k := kindForDecoding(b.Type)
	if k == nil {
		rc := RawConfig{}
		for key, v := range fields {
			var x any
			if key != "type" && json.Unmarshal(v, &x) == nil {
				rc[key] = x
			}
		}
		b.Config = rc
		return nil
	}
	c := reflect.New(k.typ)
	if err := json.Unmarshal(raw, c.Interface()); err != nil {
		return fmt.Errorf("backend %q settings: %w", k.name, err)
	}
	b.Config = c.Elem().Interface()
	return nil
}

// yamlShape is the struct a backend section decodes into: the type, the
// backend's settings inline, and every other key aside.
func yamlShape(settings reflect.Type) reflect.Type {
	return reflect.StructOf([]reflect.StructField{
		{Name: "Type", Type: reflect.TypeFor[string](), Tag: `yaml:"type"`},
		{Name: "Config", Type: settings, Tag: `yaml:",inline"`},
		{Name: "Rest", Type: reflect.TypeFor[map[string]any](), Tag: `yaml:",inline"`},
	})
}

// UnmarshalYAML reads the flat form (yaml.v3 calls this signature, which
// needs no import). A key of another registered backend is accepted and
// ignored, as the flat settings of old accepted it; any other unknown key is
// refused by Validate, naming the node and the key.
func (b *Backend) UnmarshalYAML(unmarshal func(any) error) error {
	var fields map[string]any
	if err := unmarshal(&fields); err != nil {
		return err
	}
	*b = Backend{}
	if t, ok := fields["type"]; ok && t != nil {
		b.Type = fmt.Sprint(t)
	}
	k := kindForDecoding(b.Type)
	if k == nil {
		delete(fields, "type")
		b.Config = RawConfig(fields)
		return nil
	}
	v := reflect.New(yamlShape(k.typ))
	if err := unmarshal(v.Interface()); err != nil {
		return err
	}
	b.Config = v.Elem().Field(1).Interface()
	var unknown []string
	for key := range v.Elem().Field(2).Interface().(map[string]any) {
		if !knownSetting(key) {
			unknown = append(unknown, key)
		}
	}
	sort.Strings(unknown)
	b.unknown = strings.Join(unknown, ",")
	return nil
}

// MarshalYAML writes the flat form.
func (b Backend) MarshalYAML() (any, error) {
	k := lookupBackend(b.Type)
	c, ok := any(nil), false
	if k != nil {
		c, ok = k.config(b.Config)
	}
	if !ok {
		out := map[string]any{"type": b.Type}
		if rc, isRaw := b.Config.(RawConfig); isRaw {
			for key, v := range rc {
				out[key] = v
			}
		}
		return out, nil
	}
	v := reflect.New(yamlShape(k.typ)).Elem()
	v.Field(0).SetString(b.Type)
	v.Field(1).Set(reflect.ValueOf(c))
	return v.Interface(), nil
}

// Backends runs the registered backends in one process: each backend's
// driver is started at its first use and closed with Close.
type Backends struct {
	log *slog.Logger
	obs Observer // given to drivers that are ObservedDrivers; nil: none

	mu      sync.Mutex
	drivers map[string]Driver
	closed  bool
}

// NewBackends returns the backends of a process; drivers log to log.
func NewBackends(log *slog.Logger) *Backends {
	if log == nil {
		log = slog.Default()
	}
	return &Backends{log: log, drivers: map[string]Driver{}}
}

func (bs *Backends) driver(typ string) (Driver, error) {
	k := lookupBackend(typ)
	if k == nil {
		return nil, fmt.Errorf("unknown backend %q", typ)
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.closed {
		return nil, errors.New("backends closed")
	}
	d, ok := bs.drivers[typ]
	if !ok {
		d = k.newDrv(bs.log)
		bs.observeDriver(d)
		bs.drivers[typ] = d
	}
	return d, nil
}

// NewMachine builds the machine of node n with its backend's driver; it is
// a MachineFactory.
func (bs *Backends) NewMachine(ctx context.Context, n Node) (Machine, error) {
	d, err := bs.driver(n.Backend.Type)
	if err != nil {
		return nil, err
	}
	return d.NewMachine(ctx, n)
}

// ListMachines names the machines backend settings b reach, when its
// backend can list them (ErrNotSupported otherwise). Defaults are applied
// and the settings validated first.
func (bs *Backends) ListMachines(ctx context.Context, b Backend) ([]string, error) {
	n := Node{Backend: b}
	n.Backend.applyDefaults(&n)
	if err := n.Backend.validate(&n); err != nil {
		return nil, err
	}
	d, err := bs.driver(n.Backend.Type)
	if err != nil {
		return nil, err
	}
	l, ok := d.(MachineLister)
	if !ok {
		return nil, fmt.Errorf("backend %q cannot list its machines: %w", n.Backend.Type, ErrNotSupported)
	}
	return l.ListMachines(ctx, n.Backend)
}

// Close closes every driver started.
func (bs *Backends) Close() error {
	bs.mu.Lock()
	drivers := bs.drivers
	bs.drivers, bs.closed = map[string]Driver{}, true
	bs.mu.Unlock()
	var errs []error
	for name, d := range drivers {
		if err := d.Close(); err != nil {
			errs = append(errs, fmt.Errorf("backend %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

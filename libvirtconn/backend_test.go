package libvirtconn_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/libvirtconn"
)

func libvirtNode(c libvirtconn.Config) bmc.Node {
	return bmc.Node{
		Name: "n1", Address: "127.0.0.1", Port: 623,
		Users:   []bmc.User{{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}},
		Backend: bmc.Backend{Type: libvirtconn.BackendType, Config: c},
	}
}

func TestBackendValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   libvirtconn.Config
		field string // "" when valid
		not   string // text the error must not repeat
	}{
		{name: "sasl", cfg: libvirtconn.Config{URI: "qemu+tcp://h/system", SASLUsername: "u", SASLPassword: "p"}},
		{name: "ssh key from the settings", cfg: libvirtconn.Config{URI: "qemu+ssh://h/system", Keyfile: "/k", KnownHosts: "/kh"}},
		{name: "without uri", cfg: libvirtconn.Config{}, field: "backend.uri"},
		{name: "sasl username without password", cfg: libvirtconn.Config{URI: "qemu+tcp://h/system", SASLUsername: "u"}, field: "backend.sasl_username"},
		{name: "sasl password without username", cfg: libvirtconn.Config{URI: "qemu+tcp://h/system", SASLPassword: "p"}, field: "backend.sasl_username"},
		{name: "bad driver", cfg: libvirtconn.Config{URI: "xen:///system"}, field: "backend.uri"},
		{name: "password in uri", cfg: libvirtconn.Config{URI: "qemu+ssh://u:secret@h/system"}, field: "backend.uri", not: "secret"},
		{name: "unknown parameter", cfg: libvirtconn.Config{URI: "qemu:///system?bogus=1"}, field: "backend.uri"},
		{name: "keyfile on a unix uri", cfg: libvirtconn.Config{URI: "qemu:///system", Keyfile: "/k"}, field: "backend.uri"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := libvirtNode(tc.cfg)
			err := n.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *bmc.FieldError
			if !errors.As(err, &fe) || fe.Node != "n1" || fe.Field != tc.field {
				t.Fatalf("Validate = %v, want a *bmc.FieldError for node n1 field %s", err, tc.field)
			}
			if tc.not != "" && strings.Contains(err.Error(), tc.not) {
				t.Errorf("error %q repeats %q", err, tc.not)
			}
		})
	}
}

func TestBackendDefaults(t *testing.T) {
	tests := []struct {
		name    string
		in, out libvirtconn.Config
	}{
		{"uri and domain", libvirtconn.Config{}, libvirtconn.Config{URI: "qemu:///system", Domain: "vm1"}},
		{"kept", libvirtconn.Config{URI: "qemu+ssh://h/system", Domain: "other"}, libvirtconn.Config{URI: "qemu+ssh://h/system", Domain: "other"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := bmc.Node{Name: "vm1", Backend: bmc.Backend{Type: libvirtconn.BackendType, Config: tc.in}}
			n.ApplyDefaults()
			if want := (bmc.Backend{Type: libvirtconn.BackendType, Config: tc.out}); n.Backend != want {
				t.Errorf("Backend = %+v, want %+v", n.Backend, want)
			}
		})
	}
	// Settings left out entirely get the same defaults.
	n := bmc.Node{Name: "vm1", Backend: bmc.Backend{Type: libvirtconn.BackendType}}
	n.ApplyDefaults()
	if n.Backend.Config != (libvirtconn.Config{URI: libvirtconn.DefaultURI, Domain: "vm1"}) {
		t.Errorf("nil settings defaulted to %+v", n.Backend.Config)
	}
}

func TestConfigParseURI(t *testing.T) {
	c := libvirtconn.Config{URI: "qemu+ssh://root@h/system?keyfile=/from-uri", Keyfile: "/from-settings", KnownHosts: "/kh"}
	u, err := c.ParseURI()
	if err != nil {
		t.Fatal(err)
	}
	if u.Keyfile != "/from-uri" || u.KnownHosts != "/kh" || u.Raw != c.URI {
		t.Errorf("ParseURI = keyfile %q known_hosts %q raw %q; want the URI's keyfile, the settings' known_hosts, the URI unchanged", u.Keyfile, u.KnownHosts, u.Raw)
	}
}

// TestStoredLibvirtNodeFormat: a libvirt node's stored JSON keeps the flat
// keys of old, in their old order, and reads back the same.
func TestStoredLibvirtNodeFormat(t *testing.T) {
	const old = `{"type":"libvirt","uri":"qemu+ssh://h/system","domain":"vm","keyfile":"/k","known_hosts":"/kh","sasl_username":"u","sasl_password":"p"}`
	var b bmc.Backend
	if err := json.Unmarshal([]byte(old), &b); err != nil {
		t.Fatal(err)
	}
	want := bmc.Backend{Type: "libvirt", Config: libvirtconn.Config{URI: "qemu+ssh://h/system", Domain: "vm", Keyfile: "/k", KnownHosts: "/kh", SASLUsername: "u", SASLPassword: "p"}}
	if b != want {
		t.Fatalf("read %+v, want %+v", b, want)
	}
	raw, err := json.Marshal(b)
	if err != nil || string(raw) != old {
		t.Errorf("written as %s (%v), want %s", raw, err, old)
	}
	red := b.Redacted().Config.(libvirtconn.Config)
	if red.SASLPassword != bmc.Masked || b.Config.(libvirtconn.Config).SASLPassword != "p" {
		t.Errorf("Redacted: %+v (original %+v)", red, b.Config)
	}
}

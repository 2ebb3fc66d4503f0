package bmc_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// validNode returns a node that passes Validate, for tests to break one field at a time.
func validNode(name string, port int) bmc.Node {
	n := bmc.Node{
		Name:    name,
		Address: "127.0.0.1",
		Port:    port,
		Users:   []bmc.User{{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}},
		Backend: bmc.Backend{Type: bmc.BackendSim, Config: bmc.SimConfig{SoftOffDelay: time.Second}},
	}
	return n
}

// wantFieldError checks that err is a *bmc.FieldError for node and field,
// and that its text names both (plus every extra fragment).
func wantFieldError(t *testing.T, err error, node, field string, extra ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want a refusal of node %q field %q", node, field)
	}
	var fe *bmc.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %q (%T) is not a *bmc.FieldError", err, err)
	}
	if fe.Node != node || fe.Field != field {
		t.Errorf("FieldError{Node: %q, Field: %q}, want {Node: %q, Field: %q} (error %q)", fe.Node, fe.Field, node, field, err)
	}
	msg := err.Error()
	if node != "" && !strings.Contains(msg, fmt.Sprintf("%q", node)) {
		t.Errorf("error %q does not name node %q", msg, node)
	}
	if !strings.Contains(msg, field) {
		t.Errorf("error %q does not name field %q", msg, field)
	}
	for _, s := range extra {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not contain %q", msg, s)
		}
	}
}

func TestValidateAcceptsValidNodes(t *testing.T) {
	tests := []struct {
		name string
		edit func(*bmc.Node)
	}{
		{"minimal sim", func(*bmc.Node) {}},
		{"ipv6 wildcard", func(n *bmc.Node) { n.Address = "::" }},
		{"ipv4 wildcard", func(n *bmc.Node) { n.Address = "0.0.0.0" }},
		{"port 1", func(n *bmc.Node) { n.Port = 1 }},
		{"port 65535", func(n *bmc.Node) { n.Port = 65535 }},
		{"longest credentials (IPMI 2.0 only)", func(n *bmc.Node) {
			n.Users[0].Name = strings.Repeat("u", bmc.MaxUsernameLen)
			n.Users[0].Password = strings.Repeat("p", bmc.MaxPasswordLen)
			n.DisableIPMIv15 = true
		}},
		{"longest IPMI 1.5 password", func(n *bmc.Node) {
			n.Users[0].Password = strings.Repeat("p", 16)
		}},
		{"several users and privileges", func(n *bmc.Node) {
			n.Users = append(n.Users,
				bmc.User{Name: "op", Password: "x", Privilege: bmc.PrivilegeOperator},
				bmc.User{Name: "ro", Password: "y", Privilege: bmc.PrivilegeUser})
		}},
		{"every supported suite", func(n *bmc.Node) { n.CipherSuites = []int{1, 2, 3, 15, 16, 17} }},
		{"identity uuid", func(n *bmc.Node) { n.Identity.UUID = "12345678-9abc-def0-1234-56789abcdef0" }},
		{"fifteen users", func(n *bmc.Node) {
			n.Users = nil
			for i := 0; i < 15; i++ {
				n.Users = append(n.Users, bmc.User{Name: fmt.Sprintf("u%d", i), Password: "p", Privilege: bmc.PrivilegeUser})
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := validNode("good", 623)
			tc.edit(&n)
			if err := n.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if err := bmc.ValidateFleet([]bmc.Node{n}); err != nil {
				t.Fatalf("ValidateFleet: %v", err)
			}
		})
	}
}

func TestValidateRefusals(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*bmc.Node)
		node  string // node the error must name ("" when the node has no name)
		field string
		extra []string // further fragments the message must contain
	}{
		{"missing name", func(n *bmc.Node) { n.Name = "" }, "", "name", []string{"missing"}},
		{"bad name", func(n *bmc.Node) { n.Name = "has space" }, "has space", "name", nil},
		{"missing address", func(n *bmc.Node) { n.Address = "" }, "n1", "address", []string{"missing"}},
		{"bad address", func(n *bmc.Node) { n.Address = "localhost" }, "n1", "address", []string{"localhost"}},
		{"bad address with port", func(n *bmc.Node) { n.Address = "127.0.0.1:623" }, "n1", "address", nil},
		{"port 0", func(n *bmc.Node) { n.Port = 0 }, "n1", "port", []string{"0"}},
		{"port 70000", func(n *bmc.Node) { n.Port = 70000 }, "n1", "port", []string{"70000"}},
		{"port negative", func(n *bmc.Node) { n.Port = -1 }, "n1", "port", nil},
		{"no users", func(n *bmc.Node) { n.Users = nil }, "n1", "users", nil},
		{"too many users", func(n *bmc.Node) {
			n.Users = nil
			for i := 0; i < 16; i++ {
				n.Users = append(n.Users, bmc.User{Name: fmt.Sprintf("u%d", i), Password: "p", Privilege: bmc.PrivilegeUser})
			}
		}, "n1", "users", []string{"15"}},
		{"empty user name", func(n *bmc.Node) { n.Users[0].Name = "" }, "n1", "users[0].name", nil},
		{"user name 17 bytes", func(n *bmc.Node) { n.Users[0].Name = strings.Repeat("u", 17) }, "n1", "users[0].name", []string{"16"}},
		{"duplicate user", func(n *bmc.Node) {
			n.Users = append(n.Users, bmc.User{Name: "admin", Password: "other", Privilege: bmc.PrivilegeUser})
		}, "n1", "users[1].name", []string{"admin"}},
		{"missing password", func(n *bmc.Node) { n.Users[0].Password = "" }, "n1", "users[0].password", []string{"admin"}},
		{"password 21 bytes", func(n *bmc.Node) { n.Users[0].Password = strings.Repeat("p", 21) }, "n1", "users[0].password", []string{"20"}},
		{"privilege 0", func(n *bmc.Node) { n.Users[0].Privilege = 0 }, "n1", "users[0].privilege", nil},
		{"privilege callback", func(n *bmc.Node) { n.Users[0].Privilege = 1 }, "n1", "users[0].privilege", nil},
		{"privilege oem", func(n *bmc.Node) { n.Users[0].Privilege = 5 }, "n1", "users[0].privilege", nil},
		{"second user bad", func(n *bmc.Node) {
			n.Users = append(n.Users, bmc.User{Name: "op", Privilege: bmc.PrivilegeOperator})
		}, "n1", "users[1].password", []string{"op"}},
		{"cipher suite 0", func(n *bmc.Node) { n.CipherSuites = []int{3, 0} }, "n1", "cipher_suites", []string{"suite 0", "never allowed"}},
		{"cipher suite 4", func(n *bmc.Node) { n.CipherSuites = []int{4} }, "n1", "cipher_suites", []string{"4"}},
		{"cipher suite 18", func(n *bmc.Node) { n.CipherSuites = []int{17, 18} }, "n1", "cipher_suites", []string{"18"}},
		{"duplicate suite", func(n *bmc.Node) { n.CipherSuites = []int{3, 17, 3} }, "n1", "cipher_suites", []string{"3", "twice"}},
		{"unknown backend", func(n *bmc.Node) { n.Backend.Type = "vmware" }, "n1", "backend.type", []string{"vmware"}},
		{"empty backend type", func(n *bmc.Node) { n.Backend.Type = "" }, "n1", "backend.type", nil},
		{"negative soft off delay", func(n *bmc.Node) { n.Backend.Config = bmc.SimConfig{SoftOffDelay: -time.Second} }, "n1", "backend.soft_off_delay", nil},
		{"settings of another backend", func(n *bmc.Node) { n.Backend.Config = struct{ URI string }{"x"} }, "n1", "backend.type", []string{"sim"}},
		{"bad identity uuid", func(n *bmc.Node) { n.Identity.UUID = "not-a-uuid" }, "n1", "identity.uuid", []string{"not-a-uuid"}},
		{"identity uuid bad hex", func(n *bmc.Node) { n.Identity.UUID = "1234567g-9abc-def0-1234-56789abcdef0" }, "n1", "identity.uuid", nil},
		{"identity uuid misplaced dash", func(n *bmc.Node) { n.Identity.UUID = "123456789-abc-def0-1234-56789abcdef0" }, "n1", "identity.uuid", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := validNode("n1", 623)
			tc.edit(&n)
			wantFieldError(t, n.Validate(), tc.node, tc.field, tc.extra...)
			// ValidateFleet refuses the same node with the same error.
			wantFieldError(t, bmc.ValidateFleet([]bmc.Node{validNode("other", 700), n}), tc.node, tc.field, tc.extra...)
		})
	}
}

func TestValidateFleet(t *testing.T) {
	at := func(name, addr string, port int) bmc.Node {
		n := validNode(name, port)
		n.Address = addr
		return n
	}
	tests := []struct {
		name  string
		nodes []bmc.Node
		// want* are empty for a fleet that must pass.
		wantNode  string
		wantField string
		wantOther string // the earlier node the message must name
	}{
		{name: "distinct ports", nodes: []bmc.Node{at("a", "127.0.0.1", 623), at("b", "127.0.0.1", 624)}},
		{name: "same port distinct addresses", nodes: []bmc.Node{at("a", "127.0.0.1", 623), at("b", "127.0.0.2", 623)}},
		{name: "wildcard on another port", nodes: []bmc.Node{at("a", "::", 623), at("b", "127.0.0.1", 624)}},
		{name: "IPv4 wildcard beside an IPv6 address", nodes: []bmc.Node{at("a", "0.0.0.0", 623), at("b", "::1", 623)}},
		{name: "empty fleet", nodes: nil},
		{
			name:     "duplicate node name",
			nodes:    []bmc.Node{at("a", "127.0.0.1", 623), at("a", "127.0.0.1", 624)},
			wantNode: "a", wantField: "name",
		},
		{
			name:     "duplicate port same address",
			nodes:    []bmc.Node{at("a", "127.0.0.1", 623), at("b", "127.0.0.1", 623)},
			wantNode: "b", wantField: "port", wantOther: "a",
		},
		{
			name:     "duplicate port same address spelled differently",
			nodes:    []bmc.Node{at("a", "127.0.0.1", 623), at("b", "::ffff:127.0.0.1", 623)},
			wantNode: "b", wantField: "port", wantOther: "a",
		},
		{
			name:     "ipv6 wildcard after specific",
			nodes:    []bmc.Node{at("a", "127.0.0.1", 623), at("b", "::", 623)},
			wantNode: "b", wantField: "port", wantOther: "a",
		},
		{
			name:     "ipv4 wildcard after specific",
			nodes:    []bmc.Node{at("a", "127.0.0.1", 623), at("b", "0.0.0.0", 623)},
			wantNode: "b", wantField: "port", wantOther: "a",
		},
		{
			name:     "specific after ipv6 wildcard",
			nodes:    []bmc.Node{at("a", "::", 623), at("b", "127.0.0.1", 623)},
			wantNode: "b", wantField: "port", wantOther: "a",
		},
		{
			name:     "specific after ipv4 wildcard",
			nodes:    []bmc.Node{at("a", "0.0.0.0", 623), at("b", "10.0.0.1", 623)},
			wantNode: "b", wantField: "port", wantOther: "a",
		},
		{
			name:     "both wildcards",
			nodes:    []bmc.Node{at("a", "0.0.0.0", 623), at("b", "::", 623)},
			wantNode: "b", wantField: "port", wantOther: "a",
		},
		{
			name:     "clash after unrelated nodes",
			nodes:    []bmc.Node{at("a", "127.0.0.1", 623), at("b", "127.0.0.1", 624), at("c", "127.0.0.2", 625), at("d", "::", 624)},
			wantNode: "d", wantField: "port", wantOther: "b",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := bmc.ValidateFleet(tc.nodes)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("ValidateFleet: %v", err)
				}
				return
			}
			var extra []string
			if tc.wantOther != "" {
				extra = append(extra, fmt.Sprintf("%q", tc.wantOther))
			}
			wantFieldError(t, err, tc.wantNode, tc.wantField, extra...)
		})
	}
}

func TestApplyDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   bmc.Node
		want bmc.Backend
		priv []bmc.Privilege
	}{
		{
			name: "empty backend becomes sim",
			in:   bmc.Node{Name: "n", Users: []bmc.User{{Name: "a"}}},
			want: bmc.Backend{Type: bmc.BackendSim, Config: bmc.SimConfig{SoftOffDelay: bmc.DefaultSoftOffDelay}},
			priv: []bmc.Privilege{bmc.PrivilegeAdministrator},
		},
		{
			name: "sim keeps its delay",
			in:   bmc.Node{Name: "n", Backend: bmc.Backend{Type: bmc.BackendSim, Config: bmc.SimConfig{SoftOffDelay: 3 * time.Second}}},
			want: bmc.Backend{Type: bmc.BackendSim, Config: bmc.SimConfig{SoftOffDelay: 3 * time.Second}},
		},
		{
			name: "privileges: zero becomes administrator, others kept",
			in: bmc.Node{Name: "n", Users: []bmc.User{
				{Name: "a"},
				{Name: "b", Privilege: bmc.PrivilegeUser},
				{Name: "c", Privilege: bmc.PrivilegeOperator},
			}},
			want: bmc.Backend{Type: bmc.BackendSim, Config: bmc.SimConfig{SoftOffDelay: bmc.DefaultSoftOffDelay}},
			priv: []bmc.Privilege{bmc.PrivilegeAdministrator, bmc.PrivilegeUser, bmc.PrivilegeOperator},
		},
		{
			name: "unknown backend left alone",
			in:   bmc.Node{Name: "n", Backend: bmc.Backend{Type: "vmware"}},
			want: bmc.Backend{Type: "vmware"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.in
			n.Users = append([]bmc.User(nil), tc.in.Users...)
			n.ApplyDefaults()
			if n.Backend != tc.want {
				t.Errorf("Backend = %+v, want %+v", n.Backend, tc.want)
			}
			if len(n.Users) != len(tc.priv) {
				t.Fatalf("%d users, want %d", len(n.Users), len(tc.priv))
			}
			for i, p := range tc.priv {
				if n.Users[i].Privilege != p {
					t.Errorf("users[%d].Privilege = %v, want %v", i, n.Users[i].Privilege, p)
				}
			}
		})
	}
}

func TestApplyDefaultsThenValidate(t *testing.T) {
	// A node written with only the required fields is valid once defaulted.
	n := bmc.Node{Name: "n", Address: "::1", Port: 623, Users: []bmc.User{{Name: "admin", Password: "pw"}}}
	if err := n.Validate(); err == nil {
		t.Fatal("Validate passed before ApplyDefaults; want backend.type or privilege refused")
	}
	n.ApplyDefaults()
	if err := n.Validate(); err != nil {
		t.Fatalf("Validate after ApplyDefaults: %v", err)
	}
}

func TestNodeHelpers(t *testing.T) {
	n := validNode("n", 623)
	if got := n.EffectiveCipherSuites(); fmt.Sprint(got) != fmt.Sprint(bmc.DefaultCipherSuites) {
		t.Errorf("EffectiveCipherSuites() = %v, want defaults %v", got, bmc.DefaultCipherSuites)
	}
	n.CipherSuites = []int{17}
	if got := n.EffectiveCipherSuites(); fmt.Sprint(got) != "[17]" {
		t.Errorf("EffectiveCipherSuites() = %v, want [17]", got)
	}
	for addr, want := range map[string]string{"127.0.0.1": "127.0.0.1:623", "::": "[::]:623", "::1": "[::1]:623"} {
		n.Address = addr
		if got := n.ListenAddr(); got != want {
			t.Errorf("ListenAddr() with %q = %q, want %q", addr, got, want)
		}
	}
}

func TestParsePrivilege(t *testing.T) {
	tests := []struct {
		in      string
		want    bmc.Privilege
		wantErr bool
	}{
		{"user", bmc.PrivilegeUser, false},
		{"USER", bmc.PrivilegeUser, false},
		{"operator", bmc.PrivilegeOperator, false},
		{" Operator ", bmc.PrivilegeOperator, false},
		{"administrator", bmc.PrivilegeAdministrator, false},
		{"ADMINISTRATOR", bmc.PrivilegeAdministrator, false},
		{"admin", bmc.PrivilegeAdministrator, false},
		{"", 0, true},
		{"root", 0, true},
		{"callback", 0, true},
		{"oem", 0, true},
		{"4", 0, true},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			got, err := bmc.ParsePrivilege(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParsePrivilege(%q) = %v, want an error", tc.in, got)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in)) {
					t.Errorf("error %q does not quote the input", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParsePrivilege(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestPrivilegeTextRoundTrip(t *testing.T) {
	tests := []struct {
		p     bmc.Privilege
		str   string
		text  string
		valid bool
	}{
		{p: bmc.PrivilegeUser, str: "USER", text: "user", valid: true},
		{p: bmc.PrivilegeOperator, str: "OPERATOR", text: "operator", valid: true},
		{p: bmc.PrivilegeAdministrator, str: "ADMINISTRATOR", text: "administrator", valid: true},
		{p: 0, str: "Privilege(0)"},
		{p: 1, str: "Privilege(1)"},
		{p: 5, str: "Privilege(5)"},
	}
	for _, tc := range tests {
		t.Run(tc.str, func(t *testing.T) {
			if got := tc.p.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
			if got := tc.p.Valid(); got != tc.valid {
				t.Errorf("Valid() = %v, want %v", got, tc.valid)
			}
			text, err := tc.p.MarshalText()
			if !tc.valid {
				if err == nil {
					t.Errorf("MarshalText() = %q, want an error for an invalid level", text)
				}
				return
			}
			if err != nil || string(text) != tc.text {
				t.Fatalf("MarshalText() = %q, %v; want %q", text, err, tc.text)
			}
			var back bmc.Privilege
			if err := back.UnmarshalText(text); err != nil || back != tc.p {
				t.Errorf("UnmarshalText(%q) = %v, %v; want %v", text, back, err, tc.p)
			}
			if back, err := bmc.ParsePrivilege(tc.p.String()); err != nil || back != tc.p {
				t.Errorf("ParsePrivilege(String()) = %v, %v; want %v", back, err, tc.p)
			}
		})
	}
	var p bmc.Privilege = bmc.PrivilegeOperator
	if err := p.UnmarshalText([]byte("superuser")); err == nil {
		t.Error("UnmarshalText(superuser) succeeded")
	}
	if p != bmc.PrivilegeOperator {
		t.Errorf("failed UnmarshalText changed the value to %v", p)
	}
}

func TestLongPasswordNeedsIPMIv15Off(t *testing.T) {
	n := bmc.Node{Name: "n", Address: "127.0.0.1", Port: 623,
		Users: []bmc.User{{Name: "admin", Password: strings.Repeat("p", 17), Privilege: bmc.PrivilegeAdministrator}}}
	n.ApplyDefaults()
	if err := n.Validate(); err == nil || !strings.Contains(err.Error(), "IPMI 1.5") {
		t.Fatalf("17-byte password with IPMI 1.5 on: %v", err)
	}
	n.DisableIPMIv15 = true
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
}

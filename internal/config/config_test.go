package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/config"
	"github.com/govbmc/govbmc/libvirtconn"
	"go.yaml.in/yaml/v3"
)

func TestLoadDemo(t *testing.T) {
	nodes, err := config.Load("../../configs/demo.yaml")
	if err != nil {
		t.Fatalf("Load demo.yaml: %v", err)
	}
	if len(nodes) != 4 {
		t.Fatalf("demo.yaml has %d nodes, want 4", len(nodes))
	}
	for i, n := range nodes {
		wantName := "node-" + string(rune('0'+i))
		if n.Name != wantName || n.Address != "127.0.0.1" || n.Port != 6230+i {
			t.Errorf("node %d = %s on %s, want %s on 127.0.0.1:%d", i, n.Name, n.ListenAddr(), wantName, 6230+i)
		}
		if n.Backend.Type != bmc.BackendSim || n.Backend.Config != (bmc.SimConfig{SoftOffDelay: bmc.DefaultSoftOffDelay}) {
			t.Errorf("%s backend = %+v, want sim with the default soft-off delay", n.Name, n.Backend)
		}
		want := []bmc.User{{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}}
		if len(n.Users) != 1 || n.Users[0] != want[0] {
			t.Errorf("%s users = %+v, want %+v", n.Name, n.Users, want)
		}
		if len(n.CipherSuites) != 0 || n.DisableIPMIv15 || n.Identity != (bmc.Identity{}) {
			t.Errorf("%s sets suites %v, v1.5 off %v, identity %+v; want defaults", n.Name, n.CipherSuites, n.DisableIPMIv15, n.Identity)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := config.Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("Load of a missing file = %v, want an error naming it", err)
	}
	path := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(path, []byte("nodes: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load of an invalid file = %v, want an error naming %s", err, path)
	}
}

// node renders one node of a fleet file; fields are spliced in verbatim.
func node(name string, port string, users string, extra ...string) string {
	s := "  - name: " + name + "\n    address: 127.0.0.1\n    port: " + port + "\n    users:\n" + users
	for _, e := range extra {
		s += "    " + e + "\n"
	}
	return s
}

const adminUser = "      - {name: admin, password: secret}\n"

func TestParse(t *testing.T) {
	raw := "nodes:\n" +
		node("a", "7000", adminUser,
			"cipher_suites: [17, 3]",
			"disable_ipmi_v15: true",
			"identity: {manufacturer_id: 343, product_id: 7, uuid: 12345678-9abc-def0-1234-56789abcdef0}",
			"backend: {type: sim, soft_off_delay: 2s}") +
		node("b", "7001", "      - {name: op, password: pw, privilege: OPERATOR}\n      - {name: ro, password: pw2, privilege: user}\n",
			"backend: {type: libvirt, sasl_username: u, sasl_password: p}") +
		node("c", "7002", adminUser)
	nodes, err := config.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(nodes) != 3 {
		t.Fatalf("%d nodes, want 3", len(nodes))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	if a.Backend.Config != (bmc.SimConfig{SoftOffDelay: 2 * time.Second}) {
		t.Errorf("soft_off_delay 2s parsed to %v, want %v", a.Backend.Config, 2*time.Second)
	}
	if len(a.CipherSuites) != 2 || a.CipherSuites[0] != 17 || a.CipherSuites[1] != 3 || !a.DisableIPMIv15 {
		t.Errorf("a: suites %v, v1.5 disabled %v; want [17 3], true", a.CipherSuites, a.DisableIPMIv15)
	}
	wantID := bmc.Identity{ManufacturerID: 343, ProductID: 7, UUID: "12345678-9abc-def0-1234-56789abcdef0"}
	if a.Identity != wantID {
		t.Errorf("a: identity %+v, want %+v", a.Identity, wantID)
	}
	if a.Users[0].Privilege != bmc.PrivilegeAdministrator {
		t.Errorf("a: omitted privilege became %v, want administrator", a.Users[0].Privilege)
	}
	wantB := bmc.Backend{Type: libvirtconn.BackendType, Config: libvirtconn.Config{URI: "qemu:///system", Domain: "b", SASLUsername: "u", SASLPassword: "p"}}
	if b.Backend != wantB {
		t.Errorf("b: backend %+v, want %+v", b.Backend, wantB)
	}
	if b.Users[0].Privilege != bmc.PrivilegeOperator || b.Users[1].Privilege != bmc.PrivilegeUser {
		t.Errorf("b: privileges %v, %v; want operator, user", b.Users[0].Privilege, b.Users[1].Privilege)
	}
	if c.Backend.Type != bmc.BackendSim || c.Backend.Config != (bmc.SimConfig{SoftOffDelay: bmc.DefaultSoftOffDelay}) {
		t.Errorf("c: backend %+v, want the sim defaults", c.Backend)
	}
}

func TestParseSoftOffDelay(t *testing.T) {
	tests := []struct {
		value string
		want  time.Duration
	}{
		{"2s", 2 * time.Second},
		{"150ms", 150 * time.Millisecond},
		{"1m30s", 90 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			nodes, err := config.Parse([]byte("nodes:\n" + node("n", "7000", adminUser, "backend: {soft_off_delay: "+tc.value+"}")))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := nodes[0].Backend.Config.(bmc.SimConfig).SoftOffDelay; got != tc.want {
				t.Errorf("soft_off_delay %s = %v, want %v", tc.value, got, tc.want)
			}
		})
	}
}

func TestParseRefusals(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []string // fragments the error must contain (the field, the value)
		node string   // node the error must name ("" when there is none)
	}{
		{
			name: "empty file",
			raw:  "",
			want: []string{"no nodes"},
		},
		{
			name: "only a comment",
			raw:  "# nothing here\n",
			want: []string{"no nodes"},
		},
		{
			name: "no nodes",
			raw:  "nodes: []\n",
			want: []string{"no nodes", "nodes:"},
		},
		{
			name: "nodes key without list",
			raw:  "nodes:\n",
			want: []string{"no nodes"},
		},
		{
			name: "unknown top-level key",
			raw:  "node:\n" + node("n1", "7000", adminUser),
			want: []string{"field node not found"},
		},
		{
			name: "unknown user key",
			raw:  "nodes:\n" + node("n1", "7000", "      - {name: admin, pasword: secret}\n"),
			want: []string{"pasword", "line 6"},
			node: "n1",
		},
		{
			name: "unknown node key",
			raw:  "nodes:\n" + node("n1", "7000", adminUser, "soft_off_delay: 2s"),
			want: []string{"soft_off_delay", "line 7"},
			node: "n1",
		},
		{
			name: "unknown privilege",
			raw:  "nodes:\n" + node("n1", "7000", "      - {name: admin, password: secret, privilege: root}\n"),
			want: []string{"privilege", "root"},
			node: "n1",
		},
		{
			name: "duplicate port",
			raw:  "nodes:\n" + node("n1", "7000", adminUser) + node("n2", "7000", adminUser),
			want: []string{"port", "127.0.0.1:7000", `"n1"`},
			node: "n2",
		},
		{
			name: "wildcard port clash",
			raw:  "nodes:\n" + node("n1", "7000", adminUser) + strings.Replace(node("n2", "7000", adminUser), "127.0.0.1", `"::"`, 1),
			want: []string{"port", "7000", `"n1"`},
			node: "n2",
		},
		{
			name: "duplicate name",
			raw:  "nodes:\n" + node("n1", "7000", adminUser) + node("n1", "7001", adminUser),
			want: []string{"name", "twice"},
			node: "n1",
		},
		{
			name: "missing password",
			raw:  "nodes:\n" + node("n1", "7000", "      - {name: admin}\n"),
			want: []string{"users[0].password", "admin"},
			node: "n1",
		},
		{
			name: "password too long",
			raw:  "nodes:\n" + node("n1", "7000", "      - {name: admin, password: "+strings.Repeat("x", 21)+"}\n"),
			want: []string{"users[0].password", "20"},
			node: "n1",
		},
		{
			name: "no users",
			raw:  "nodes:\n  - {name: n1, address: 127.0.0.1, port: 7000}\n",
			want: []string{"users"},
			node: "n1",
		},
		{
			name: "unknown cipher suite",
			raw:  "nodes:\n" + node("n1", "7000", adminUser, "cipher_suites: [3, 4]"),
			want: []string{"cipher_suites", "4"},
			node: "n1",
		},
		{
			name: "cipher suite 0",
			raw:  "nodes:\n" + node("n1", "7000", adminUser, "cipher_suites: [0]"),
			want: []string{"cipher_suites", "suite 0", "never allowed"},
			node: "n1",
		},
		{
			name: "bad address",
			raw:  "nodes:\n" + strings.Replace(node("n1", "7000", adminUser), "127.0.0.1", "localhost", 1),
			want: []string{"address", "localhost"},
			node: "n1",
		},
		{
			name: "port out of range",
			raw:  "nodes:\n" + node("n1", "70000", adminUser),
			want: []string{"port", "70000"},
			node: "n1",
		},
		{
			name: "unknown backend",
			raw:  "nodes:\n" + node("n1", "7000", adminUser, "backend: {type: xen}"),
			want: []string{"backend.type", "xen"},
			node: "n1",
		},
		{
			name: "bad identity uuid",
			raw:  "nodes:\n" + node("n1", "7000", adminUser, "identity: {uuid: nope}"),
			want: []string{"identity.uuid", "nope"},
			node: "n1",
		},
		{
			name: "bad soft off delay",
			raw:  "nodes:\n" + node("n1", "7000", adminUser, "backend: {soft_off_delay: soon}"),
			want: []string{"soon"},
		},
		{
			name: "second node bad after a good one",
			raw:  "nodes:\n" + node("good", "7000", adminUser) + node("n2", "7001", adminUser, "cipher_suites: [0]"),
			want: []string{"cipher_suites"},
			node: "n2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nodes, err := config.Parse([]byte(tc.raw))
			if err == nil {
				t.Fatalf("Parse accepted %d nodes from:\n%s", len(nodes), tc.raw)
			}
			if nodes != nil {
				t.Errorf("Parse returned nodes %v along with error %v", nodes, err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if tc.node != "" && !strings.Contains(msg, `"`+tc.node+`"`) {
				t.Errorf("error %q does not name node %q", msg, tc.node)
			}
		})
	}
}

func TestLibvirtExampleParses(t *testing.T) {
	nodes, err := config.Load("../../configs/libvirt-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 6 {
		t.Fatalf("%d nodes", len(nodes))
	}
	if b, _ := nodes[3].Backend.Config.(libvirtconn.Config); b.SASLUsername != "govbmc" || b.SASLPassword == "" {
		t.Errorf("%s: SASL credentials not read: %+v", nodes[3].Name, b)
	}
	for _, n := range nodes {
		if b, _ := n.Backend.Config.(libvirtconn.Config); n.Backend.Type != "libvirt" || b.URI == "" || b.Domain == "" {
			t.Errorf("%s: backend %+v", n.Name, n.Backend)
		}
	}
}

// FuzzParse: no fleet file crashes the reader; what it accepts is valid.
func FuzzParse(f *testing.F) {
	raw, _ := os.ReadFile("../../configs/demo.yaml")
	f.Add(raw)
	f.Add([]byte("nodes:\n  - {name: a, address: 127.0.0.1, port: 1, users: [{name: u, password: p}]}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		nodes, err := config.Parse(raw)
		if err != nil {
			return
		}
		if err := bmc.ValidateFleet(nodes); err != nil {
			t.Fatalf("accepted an invalid fleet: %v", err)
		}
	})
}

func TestBadLibvirtURIRefusedAtLoad(t *testing.T) {
	for _, uri := range []string{"xen:///system", "qemu+ssh://u:secret@h/system", "qemu:///system?bogus=1"} {
		raw := "nodes:\n  - {name: n1, address: 127.0.0.1, port: 7000, users: [{name: a, password: p}], backend: {type: libvirt, uri: \"" + uri + "\"}}\n"
		_, err := config.Parse([]byte(raw))
		if err == nil || !strings.Contains(err.Error(), `node "n1"`) || !strings.Contains(err.Error(), "backend.uri") {
			t.Errorf("%s: err=%v", uri, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error repeats the password: %v", uri, err)
		}
	}
}

// TestParseBackendSettings: a backend section is read by the backend its
// type names; keys of another backend are accepted as the flat settings of
// old accepted them, and a key no backend has is refused by node and field.
func TestParseBackendSettings(t *testing.T) {
	tests := []struct {
		name    string
		backend string
		want    bmc.Backend
		err     []string // fragments of the refusal; nil when accepted
	}{
		{"sim", "{type: sim, soft_off_delay: 3s}", bmc.Backend{Type: "sim", Config: bmc.SimConfig{SoftOffDelay: 3 * time.Second}}, nil},
		{"sim with a libvirt key of old", "{type: sim, uri: \"qemu:///system\"}", bmc.Backend{Type: "sim", Config: bmc.SimConfig{SoftOffDelay: bmc.DefaultSoftOffDelay}}, nil},
		{"libvirt ssh", "{type: libvirt, uri: \"qemu+ssh://h/system\", keyfile: /k, known_hosts: /kh, domain: d}",
			bmc.Backend{Type: "libvirt", Config: libvirtconn.Config{URI: "qemu+ssh://h/system", Keyfile: "/k", KnownHosts: "/kh", Domain: "d"}}, nil},
		{"misspelt key", "{type: libvirt, urri: \"qemu:///system\"}", bmc.Backend{}, []string{`node "n"`, "backend.urri"}},
		{"misspelt key, no type", "{soft_off_dely: 2s}", bmc.Backend{}, []string{`node "n"`, "backend.soft_off_dely"}},
		{"unknown type", "{type: xen, uri: x}", bmc.Backend{}, []string{`node "n"`, "backend.type", "xen"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nodes, err := config.Parse([]byte("nodes:\n" + node("n", "7000", adminUser, "backend: "+tc.backend)))
			if tc.err != nil {
				if err == nil {
					t.Fatalf("accepted: %+v", nodes[0].Backend)
				}
				for _, w := range tc.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if nodes[0].Backend != tc.want {
				t.Errorf("backend %+v, want %+v", nodes[0].Backend, tc.want)
			}
		})
	}
}

// TestBackendYAMLRoundTrip: a node written as YAML keeps the flat settings.
func TestBackendYAMLRoundTrip(t *testing.T) {
	b := bmc.Backend{Type: "libvirt", Config: libvirtconn.Config{URI: "qemu:///system", Domain: "d"}}
	raw, err := yaml.Marshal(struct {
		Backend bmc.Backend `yaml:"backend"`
	}{b})
	if err != nil {
		t.Fatal(err)
	}
	if want := "backend:\n    type: libvirt\n    uri: qemu:///system\n    domain: d\n"; string(raw) != want {
		t.Errorf("written as\n%s\nwant\n%s", raw, want)
	}
}

func TestMetricsAddress(t *testing.T) {
	const node = "nodes:\n  - {name: n, address: 127.0.0.1, port: 6230, users: [{name: admin, password: password}], backend: {type: sim}}\n"
	f, err := config.ParseFleet([]byte("metrics_address: 127.0.0.1:9623\n" + node))
	if err != nil || f.MetricsAddress != "127.0.0.1:9623" {
		t.Errorf("metrics_address read as %q (%v)", f.MetricsAddress, err)
	}
	if f, err := config.ParseFleet([]byte(node)); err != nil || f.MetricsAddress != "" {
		t.Errorf("no metrics_address read as %q (%v), want off", f.MetricsAddress, err)
	}
	if _, err := config.ParseFleet([]byte("metrics_address: 9623\n" + node)); err == nil || !strings.Contains(err.Error(), "metrics_address") {
		t.Errorf("a port without host: %v", err)
	}
}

const oneNode = "nodes:\n  - {name: n, address: 127.0.0.1, port: 6230, users: [{name: admin, password: password}], backend: {type: sim}}\n"

func TestRedfishSection(t *testing.T) {
	f, err := config.ParseFleet([]byte("redfish:\n  address: 127.0.0.1:8000\n  cert: /etc/govbmc/rf.pem\n  key: /etc/govbmc/rf.key\n" + oneNode))
	want := config.Redfish{Address: "127.0.0.1:8000", Cert: "/etc/govbmc/rf.pem", Key: "/etc/govbmc/rf.key"}
	if err != nil || f.Redfish != want {
		t.Fatalf("redfish read as %+v (%v), want %+v", f.Redfish, err, want)
	}
	if f, err := config.ParseFleet([]byte("redfish: {address: '[::1]:0', insecure_http: true}\n" + oneNode)); err != nil || !f.Redfish.InsecureHTTP || f.Redfish.Address != "[::1]:0" {
		t.Errorf("insecure_http read as %+v (%v)", f.Redfish, err)
	}
	if f, err := config.ParseFleet([]byte(oneNode)); err != nil || f.Redfish != (config.Redfish{}) {
		t.Errorf("no redfish section read as %+v (%v), want off", f.Redfish, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"redfish: {address: 8000}", `redfish.address "8000": want host:port`},
		{"redfish: {address: 'localhost:http'}", `redfish.address "localhost:http": bad port`},
		{"redfish: {address: '127.0.0.1:70000'}", `redfish.address "127.0.0.1:70000": bad port`},
		{"redfish: {address: '127.0.0.1:8000', cert: c.pem}", "redfish.cert and redfish.key go together"},
		{"redfish: {address: '127.0.0.1:8000', key: k.pem}", "redfish.cert and redfish.key go together"},
		{"redfish: {address: '127.0.0.1:8000', cert: c.pem, key: k.pem, insecure_http: true}", "redfish.insecure_http and redfish.cert exclude each other"},
		{"redfish: {address: '127.0.0.1:8000', port: 8000}", "field port not found"},
		{"redfish: {address: '127.0.0.1:8000', insecure_http: maybe}", "line 1"},
	} {
		if _, err := config.ParseFleet([]byte(tc.yaml + "\n" + oneNode)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.yaml, err, tc.want)
		}
	}
}

func TestRedfishFilesRelativeToTheFleetFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fleet.yaml")
	body := "redfish: {address: '127.0.0.1:8000', cert: tls/rf.pem, key: /abs/rf.key}\n" + oneNode
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.LoadFleet(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Redfish.Cert != filepath.Join(dir, "tls/rf.pem") || f.Redfish.Key != "/abs/rf.key" {
		t.Errorf("cert %q key %q", f.Redfish.Cert, f.Redfish.Key)
	}
}

func TestVirtualMediaSection(t *testing.T) {
	f, err := config.ParseFleet([]byte("virtual_media:\n  max_size: 512MiB\n  idle_timeout: 10s\n  deadline: 5m\n  concurrent_inserts: 2\n  pool: isos\n" + oneNode))
	if err != nil || f.VirtualMedia.Pool != "isos" {
		t.Fatalf("%+v %v", f.VirtualMedia, err)
	}
	c, err := f.VirtualMedia.Fetcher(config.FileKey("virtual_media"))
	if err != nil || c.MaxSize != 512<<20 || c.IdleTimeout != 10*time.Second || c.Deadline != 5*time.Minute || c.Concurrency != 2 {
		t.Fatalf("limits %+v (%v)", c, err)
	}
	// A plain number is bytes; no section keeps bmc's defaults (zero).
	f, err = config.ParseFleet([]byte("virtual_media: {max_size: 1048576}\n" + oneNode))
	if c, _ := f.VirtualMedia.Fetcher(config.FileKey("virtual_media")); err != nil || c.MaxSize != 1<<20 {
		t.Errorf("max_size: 1048576 read as %d (%v)", c.MaxSize, err)
	}
	f, err = config.ParseFleet([]byte(oneNode))
	if c, _ := f.VirtualMedia.Fetcher(config.FileKey("virtual_media")); err != nil || c.MaxSize != 0 || c.IdleTimeout != 0 || c.Deadline != 0 || c.Concurrency != 0 {
		t.Errorf("no section: %+v (%v)", c, err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"virtual_media: {max_size: 8 gigs}", `virtual_media.max_size "8 gigs": want a size`},
		{"virtual_media: {max_size: -1}", `virtual_media.max_size "-1"`},
		{"virtual_media: {max_size: 99999999TiB}", `virtual_media.max_size "99999999TiB": too large`},
		{"virtual_media: {idle_timeout: 30}", `virtual_media.idle_timeout "30": want a duration`},
		{"virtual_media: {deadline: -5m}", `virtual_media.deadline "-5m": want a duration`},
		{"virtual_media: {concurrent_inserts: -1}", `virtual_media.concurrent_inserts -1: want a positive number`},
		{"virtual_media: {pool: a/b}", `virtual_media.pool "a/b": want a storage pool's name`},
		{"virtual_media: {pools: default}", "field pools not found"},
	} {
		if _, err := config.ParseFleet([]byte(tc.yaml + "\n" + oneNode)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.yaml, err, tc.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "4096B": 4096, "1KiB": 1024, "2 MiB": 2 << 20, "8GiB": 8 << 30, "1TiB": 1 << 40, "1KB": 1000, "3MB": 3e6, "2GB": 2e9, "1TB": 1e12} {
		if got, err := config.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "1.5GiB", "1 PiB", "0x10", "ten"} {
		if got, err := config.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

// TestDemoServesRedfish guards `make run`: the demo fleet turns Redfish on,
// over TLS, on sushy-tools' port on loopback.
func TestDemoServesRedfish(t *testing.T) {
	f, err := config.LoadFleet("../../configs/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := (config.Redfish{Address: "127.0.0.1:8000"}); f.Redfish != want {
		t.Errorf("demo.yaml redfish = %+v, want %+v (TLS with the generated certificate)", f.Redfish, want)
	}
}

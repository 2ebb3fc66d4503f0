package vbmcconf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// metal3Node is the file metal3-dev-env's virtbmc role writes for a node
// (vm-setup/roles/virtbmc/tasks/setup_tasks.yml), mode 0750.
const metal3Node = `[VirtualBMC]
username = admin
password = password
domain_name = node_0
libvirt_uri = qemu+ssh://root@192.168.111.1/system?&keyfile=/root/ssh/id_rsa_virt_power&no_verify=1&no_tty=1
address = 192.168.111.1
active = True
port = 6230
`

// virtualBMCNode is what VirtualBMC's own `vbmc add` writes (configparser's
// write: "key = value", a blank line after the section).
const virtualBMCNode = `[VirtualBMC]
username = admin
password = p%%ss#word
address = ::
port = 6231
domain_name = node-1
libvirt_uri = qemu:///system
libvirt_sasl_username = govbmc
libvirt_sasl_password = secret
active = False

`

func writeNode(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(NodePath(dir, name), []byte(body), 0o750); err != nil {
		t.Fatal(err)
	}
}

func TestReadNode(t *testing.T) {
	dir := t.TempDir()
	writeNode(t, dir, "node_0", metal3Node)
	writeNode(t, dir, "node-1", virtualBMCNode)
	writeNode(t, dir, "lower", "[VirtualBMC]\nPort: 6232\ndomain_name: lower\nactive = true\nkg = 0102\n")
	writeNode(t, dir, "one", "[VirtualBMC]\nport=6233\ndomain_name=one\nactive=1\n")

	tests := []struct {
		name string
		want NodeFile
	}{
		{"node_0", NodeFile{
			Username: "admin", Password: "password", Address: "192.168.111.1", Port: 6230, DomainName: "node_0",
			LibvirtURI: "qemu+ssh://root@192.168.111.1/system?&keyfile=/root/ssh/id_rsa_virt_power&no_verify=1&no_tty=1",
			Active:     true,
		}},
		{"node-1", NodeFile{
			Username: "admin", Password: "p%ss#word", Address: "::", Port: 6231, DomainName: "node-1",
			LibvirtURI: "qemu:///system", LibvirtSASLUsername: "govbmc", LibvirtSASLPassword: "secret",
		}},
		{"lower", NodeFile{Port: 6232, DomainName: "lower", Active: true, Extra: map[string]string{"kg": "0102"}}},
		{"one", NodeFile{Port: 6233, DomainName: "one", Active: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadNode(dir, tc.name)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Name, tc.want.Path = tc.name, NodePath(dir, tc.name)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ReadNode:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestReadNodeBadInput(t *testing.T) {
	dir := t.TempDir()
	writeNode(t, dir, "nosection", "username = admin\nport = 6230\n")
	writeNode(t, dir, "badport", "[VirtualBMC]\ndomain_name = x\nport = sixty\n")
	writeNode(t, dir, "bigport", "[VirtualBMC]\ndomain_name = x\nport = 70000\n")
	writeNode(t, dir, "noport", "[VirtualBMC]\ndomain_name = x\n")
	writeNode(t, dir, "nodomain", "[VirtualBMC]\nport = 6230\n")
	writeNode(t, dir, "badactive", "[VirtualBMC]\ndomain_name = x\nport = 6230\nactive = maybe\n")
	if err := os.MkdirAll(filepath.Join(dir, "isdir", NodeFileName), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, want string }{
		{"nosection", "no [VirtualBMC] section"},
		{"badport", `port: "sixty" is not a port number`},
		{"bigport", `port: "70000" is not a port number`},
		{"noport", "port: missing"},
		{"nodomain", "domain_name: missing"},
		{"badactive", `active: "maybe" is not a boolean`},
		{"isdir", "is a directory"},
		{"empty", "no config file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadNode(dir, tc.name)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), NodePath(dir, tc.name)) {
				t.Errorf("error %q does not name the file and %q", err, tc.want)
			}
		})
	}
	if _, err := ReadNode(dir, "empty"); !errors.Is(err, ErrNoConfig) {
		t.Errorf("folder without config: %v, want ErrNoConfig", err)
	}
}

func TestReadNodeUnreadable(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	dir := t.TempDir()
	writeNode(t, dir, "secret", metal3Node)
	if err := os.Chmod(NodePath(dir, "secret"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadNode(dir, "secret"); err == nil || !errors.Is(err, os.ErrPermission) {
		t.Errorf("unreadable file: %v, want a permission error", err)
	}
}

func TestScanSkipsWhatItCannotParse(t *testing.T) {
	dir := t.TempDir()
	writeNode(t, dir, "good-b", strings.ReplaceAll(metal3Node, "node_0", "good-b"))
	writeNode(t, dir, "good-a", virtualBMCNode)
	writeNode(t, dir, "broken", "[VirtualBMC]\nport = x\n")
	if err := os.MkdirAll(filepath.Join(dir, "noconfig"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "node.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes, problems := Scan(dir)
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	if want := []string{"good-a", "good-b"}; !reflect.DeepEqual(names, want) {
		t.Errorf("scanned %v, want %v", names, want)
	}
	if len(problems) != 2 || problems[0].Name != "broken" || !strings.Contains(problems[0].Error(), NodePath(dir, "broken")) ||
		problems[1].Name != "noconfig" || !errors.Is(problems[1], ErrNoConfig) || !strings.Contains(problems[1].Error(), NodePath(dir, "noconfig")) {
		t.Errorf("problems %v, want the broken file and the folder without config, each named", problems)
	}
}

func TestSetActiveKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	writeNode(t, dir, "node-1", "# written by hand\n"+virtualBMCNode)
	if err := SetActive(dir, "node-1", true); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNode(dir, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Active || got.Password != "p%ss#word" || got.LibvirtSASLPassword != "secret" || got.Port != 6231 {
		t.Errorf("after SetActive(true): %+v", got)
	}
	raw, _ := os.ReadFile(NodePath(dir, "node-1"))
	if !strings.Contains(string(raw), "True") || !strings.Contains(string(raw), "p%%ss#word") || !strings.Contains(string(raw), "# written by hand") {
		t.Errorf("rewritten file lost content or VirtualBMC's spelling:\n%s", raw)
	}
	if err := SetActive(dir, "node-1", false); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadNode(dir, "node-1"); got.Active {
		t.Error("SetActive(false) left it active")
	}
	if raw, _ := os.ReadFile(NodePath(dir, "node-1")); string(raw) != "# written by hand\n"+virtualBMCNode {
		t.Errorf("True then False: the file is not byte for byte what was written:\n%s", raw)
	}
	// metal3's file, its spacing kept; a file without an active line gets one.
	writeNode(t, dir, "m", "[VirtualBMC]\nusername=admin\nport=6230\ndomain_name=m\nACTIVE: true\n[other]\nactive = x\n")
	if err := SetActive(dir, "m", false); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(NodePath(dir, "m")); string(raw) != "[VirtualBMC]\nusername=admin\nport=6230\ndomain_name=m\nactive = False\n[other]\nactive = x\n" {
		t.Errorf("SetActive rewrote more than the active line:\n%s", raw)
	}
	writeNode(t, dir, "n", "[VirtualBMC]\nport = 6230\ndomain_name = n\n\n# end\n")
	if err := SetActive(dir, "n", true); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(NodePath(dir, "n")); string(raw) != "[VirtualBMC]\nport = 6230\ndomain_name = n\nactive = True\n\n# end\n" {
		t.Errorf("SetActive without an active line:\n%s", raw)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "node-1", ".tmp-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestDelete(t *testing.T) {
	dir := t.TempDir()
	writeNode(t, dir, "gone", metal3Node)
	if err := Delete(dir, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("folder still there: %v", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if err := Delete(dir, bad); err == nil {
			t.Errorf("Delete(%q) accepted", bad)
		}
	}
}

func TestLoadDaemonConfig(t *testing.T) {
	dir := t.TempDir()
	// metal3-dev-env's virtualbmc.conf, its misspelt session_timout included.
	metal3 := filepath.Join(dir, "metal3.conf")
	if err := os.WriteFile(metal3, []byte("[default]\nconfig_dir=/root/.vbmc/conf/\n[log]\nlogfile=/root/.vbmc/log/virtualbmc.log\ndebug=True\n[ipmi]\nsession_timout=20\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	c, err := LoadDaemonConfig(metal3)
	if err != nil {
		t.Fatal(err)
	}
	def := Defaults()
	if c.ConfigDir != "/root/.vbmc/conf/" || c.LogFile != "/root/.vbmc/log/virtualbmc.log" || !c.Debug ||
		c.SessionTimeout != time.Second || c.SessionTimeoutSet || c.PIDFile != def.PIDFile || c.ServerPort != 50891 || c.ShowPasswords {
		t.Errorf("metal3's file read as %+v", c)
	}
	full := filepath.Join(dir, "full.conf")
	if err := os.WriteFile(full, []byte("[default]\nshow_passwords = true\npid_file = /run/vbmc.pid\nserver_port = 50892\n[ipmi]\nsession_timeout = 20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = LoadDaemonConfig(full); err != nil {
		t.Fatal(err)
	}
	if !c.ShowPasswords || c.PIDFile != "/run/vbmc.pid" || c.ServerPort != 50892 || c.SessionTimeout != 20*time.Second || !c.SessionTimeoutSet || c.ConfigDir != def.ConfigDir {
		t.Errorf("full file read as %+v", c)
	}
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("[default]\nshow_passwords = sometimes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDaemonConfig(bad); err == nil || !strings.Contains(err.Error(), "[default] show_passwords") || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad boolean: %v", err)
	}
}

func TestLocate(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	env := filepath.Join(t.TempDir(), "devstack.conf")
	t.Setenv(EnvConfig, env)
	if got := Locate(); got != "" && got != "/etc/virtualbmc/virtualbmc.conf" {
		t.Errorf("nothing exists: Locate() = %q", got)
	}
	homeConf := filepath.Join(home, ".vbmc", "virtualbmc.conf")
	if err := os.MkdirAll(filepath.Dir(homeConf), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(homeConf, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Locate(); got != homeConf {
		t.Errorf("Locate() = %q, want %q", got, homeConf)
	}
	if err := os.WriteFile(env, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Locate(); got != env {
		t.Errorf("with $VIRTUALBMC_CONFIG: Locate() = %q, want %q", got, env)
	}
}

func TestResolvePrecedence(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv(EnvConfig, "")
	t.Setenv(EnvConfigDir, "")
	if dir, conf, err := Resolve(""); err != nil || dir != filepath.Join(home, ".vbmc") || conf.Path != "" {
		t.Errorf("no file, no flag: %q (file %q, %v), want VirtualBMC's ~/.vbmc", dir, conf.Path, err)
	}
	file := filepath.Join(t.TempDir(), "virtualbmc.conf")
	if err := os.WriteFile(file, []byte("[default]\nconfig_dir = /srv/vbmc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvConfig, file)
	if dir, conf, err := Resolve(""); err != nil || dir != "/srv/vbmc" || conf.Path != file {
		t.Errorf("$VIRTUALBMC_CONFIG: %q (file %q, %v), want its config_dir", dir, conf.Path, err)
	}
	t.Setenv(EnvConfigDir, "/var/lib/govbmc")
	if dir, _, _ := Resolve(""); dir != "/var/lib/govbmc" {
		t.Errorf("$VBMC_CONFIG_DIR: %q, want it over virtualbmc.conf", dir)
	}
	if dir, conf, _ := Resolve("/flag"); dir != "/flag" || conf.Path != file {
		t.Errorf("--config-dir: %q (file %q), want the flag, the file still read", dir, conf.Path)
	}
}

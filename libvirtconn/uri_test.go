package libvirtconn

import (
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	cases := []struct {
		raw                   string
		transport, name, sock string
		addr                  string
		keyfile, knownHosts   string
		noVerify              bool
	}{
		{raw: "qemu:///system", transport: "unix", name: "qemu:///system", sock: SystemSocket},
		{raw: "qemu+unix:///system?socket=/tmp/s", transport: "unix", name: "qemu:///system", sock: "/tmp/s"},
		{raw: "test:///default", transport: "unix", name: "test:///default", sock: SystemSocket},
		{raw: "qemu+tcp://10.0.0.1/system", transport: "tcp", name: "qemu:///system", addr: "10.0.0.1:16509"},
		{raw: "qemu+tcp://10.0.0.1:1234/system", transport: "tcp", name: "qemu:///system", addr: "10.0.0.1:1234"},
		{raw: "qemu://host/system", transport: "tls", name: "qemu:///system", addr: "host:16514"},
		{raw: "qemu+ssh://root@host/system", transport: "ssh", name: "qemu:///system", addr: "host:22", sock: SystemSocket},
		{raw: "qemu+ssh://root@[::1]:2222/system?keyfile=/k&known_hosts=/kh&no_verify=1&socket=/run/x", transport: "ssh", name: "qemu:///system", addr: "[::1]:2222", sock: "/run/x", keyfile: "/k", knownHosts: "/kh", noVerify: true},
	}
	for _, c := range cases {
		u, err := ParseURI(c.raw)
		if err != nil {
			t.Errorf("%s: %v", c.raw, err)
			continue
		}
		if u.Transport != c.transport || u.Name() != c.name || (c.sock != "" && u.SocketPath() != c.sock) ||
			(c.addr != "" && u.Addr() != c.addr) || u.Keyfile != c.keyfile || u.KnownHosts != c.knownHosts || u.NoVerify != c.noVerify {
			t.Errorf("%s: parsed %+v (name %s, socket %s, addr %s)", c.raw, u, u.Name(), u.SocketPath(), u.Addr())
		}
	}
}

func TestParseURIRefusals(t *testing.T) {
	cases := []struct{ raw, want string }{
		{"xen:///system", `driver "xen"`},
		{"qemu+libssh2://host/system", `transport "libssh2"`},
		{"qemu+ext:///system?command=/bin/x", `transport "ext"`},
		{"qemu:///system?keyfile=/k", "parameter keyfile"},
		{"qemu+ssh://host/system?sshauth=agent", "parameter sshauth"},
		{"qemu+tcp://host/system?socket=/x", "parameter socket"},
		{"qemu+ssh:///system", "needs a host"},
		{"qemu+unix://host/system", "takes no host"},
		{"qemu:///elsewhere", `path "/elsewhere"`},
		{"qemu+ssh://host/system?no_verify=yes", "no_verify"},
		{"qemu+ssh://u:pw@host/system", "passwords"},
		{"qemu+tcp://host:0/system", "bad port"},
	}
	for _, c := range cases {
		_, err := ParseURI(c.raw)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err=%v, want mention of %q", c.raw, err, c.want)
		}
	}
}

// FuzzParseURI: parsing never panics, and what it accepts has a transport
// and a driver name it knows.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"qemu:///system", "qemu+ssh://root@h:22/system?keyfile=/k&no_verify=1", "test:///default", "qemu+tcp://[::1]:1/system"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ParseURI(raw)
		if err != nil {
			return
		}
		if _, ok := allowedParams[u.Transport]; !ok || (u.Driver != "qemu" && u.Driver != "test") {
			t.Fatalf("accepted %q as %+v", raw, u)
		}
		_ = u.Name()
		_ = u.SocketPath()
	})
}

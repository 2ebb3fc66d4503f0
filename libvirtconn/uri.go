// Package libvirtconn is govbmc's libvirt back end: libvirt URIs, dialers
// (unix socket, TCP, SSH with key files), one shared RPC connection per
// hypervisor that reconnects on its own, and the bmc.Machine implementation
// over libvirt domains, on github.com/digitalocean/go-libvirt (no cgo).
package libvirtconn

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Transports a URI can name.
const (
	TransportUnix = "unix"
	TransportTCP  = "tcp"
	TransportTLS  = "tls"
	TransportSSH  = "ssh"
)

// SystemSocket is where libvirtd listens for qemu:///system.
const SystemSocket = "/var/run/libvirt/libvirt-sock"

var defaultPorts = map[string]int{TransportTCP: 16509, TransportTLS: 16514, TransportSSH: 22}

// params each transport accepts (libvirt's own names, docs/uri.html).
var allowedParams = map[string]map[string]bool{
	TransportUnix: {"socket": true},
	TransportTCP:  {},
	TransportTLS:  {"pkipath": true, "no_verify": true},
	TransportSSH:  {"socket": true, "keyfile": true, "known_hosts": true, "no_verify": true, "no_tty": true},
}

// URI is a parsed libvirt connection URI.
type URI struct {
	// Raw is the URI as given.
	Raw string
	// Driver is the hypervisor driver: "qemu" or "test".
	Driver string
	// Transport is how libvirtd is reached.
	Transport string
	// User, Host and Port address the remote host (not for unix).
	User string
	Host string
	Port int
	// Path is the driver path: "/system", "/session", "/default"…
	Path string
	// Socket is the libvirtd socket path (unix, and at the far end of ssh).
	Socket string
	// Keyfile and KnownHosts configure ssh; NoVerify accepts an unknown
	// host key (a changed one is still refused), as libvirt's no_verify=1.
	Keyfile    string
	KnownHosts string
	NoVerify   bool
	// PKIPath is the directory with cacert.pem, clientcert.pem, clientkey.pem (tls).
	PKIPath string
}

// ParseURI reads a libvirt URI. Anything govbmc would otherwise silently
// ignore — an unknown driver, transport or parameter — is refused by name.
func ParseURI(raw string) (*URI, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("libvirt URI %s: not a URI", redacted(raw))
	}
	shown := u.Redacted() // errors never repeat a password given in the URI
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	out := &URI{Raw: raw, Driver: driver, Transport: transport, Host: u.Hostname(), Path: u.Path}
	if u.User != nil {
		out.User = u.User.Username()
		if _, ok := u.User.Password(); ok {
			return nil, fmt.Errorf("libvirt URI %q: passwords in URIs are not accepted; use a key file or SASL credentials", shown)
		}
	}
	switch driver {
	case "qemu", "test":
	default:
		return nil, fmt.Errorf("libvirt URI %q: unsupported driver %q (want qemu or test)", shown, driver)
	}
	if out.Transport == "" {
		// libvirt's rule: no transport means unix locally, tls to a host.
		out.Transport = TransportUnix
		if out.Host != "" {
			out.Transport = TransportTLS
		}
	}
	allowed, ok := allowedParams[out.Transport]
	if !ok {
		return nil, fmt.Errorf("libvirt URI %q: unsupported transport %q (want unix, tcp, tls or ssh)", shown, out.Transport)
	}
	if out.Transport == TransportUnix && out.Host != "" {
		return nil, fmt.Errorf("libvirt URI %q: the unix transport takes no host", shown)
	}
	if out.Transport != TransportUnix && out.Host == "" {
		return nil, fmt.Errorf("libvirt URI %q: transport %s needs a host", shown, out.Transport)
	}
	if err := out.checkPath(); err != nil {
		return nil, err
	}
	if p := u.Port(); p != "" {
		if out.Port, err = strconv.Atoi(p); err != nil || out.Port < 1 || out.Port > 65535 {
			return nil, fmt.Errorf("libvirt URI %q: bad port %q", shown, p)
		}
	} else {
		out.Port = defaultPorts[out.Transport]
	}
	if err := out.readParams(u.Query(), allowed); err != nil {
		return nil, err
	}
	return out, nil
}

func (u *URI) checkPath() error {
	switch {
	case u.Driver == "qemu" && (u.Path == "/system" || u.Path == "/session"):
	case u.Driver == "test" && u.Path != "" && u.Path != "/":
	default:
		return fmt.Errorf("libvirt URI %q: unsupported path %q (qemu takes /system or /session, test /default or a file)", u.Raw, u.Path)
	}
	return nil
}

func (u *URI) readParams(q url.Values, allowed map[string]bool) error {
	var unknown []string
	for k := range q {
		if !allowed[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("libvirt URI %q: parameter %s not supported with transport %s", u.Raw, strings.Join(unknown, ", "), u.Transport)
	}
	u.Socket = q.Get("socket")
	u.Keyfile = q.Get("keyfile")
	u.KnownHosts = q.Get("known_hosts")
	u.PKIPath = q.Get("pkipath")
	switch v := q.Get("no_verify"); v {
	case "", "0":
	case "1":
		u.NoVerify = true
	default:
		return fmt.Errorf("libvirt URI %q: no_verify=%q (want 0 or 1)", u.Raw, v)
	}
	return nil
}

// redacted shows a URI without its password, or nothing of it when it does
// not parse.
func redacted(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return fmt.Sprintf("%q", u.Redacted())
	}
	return "(unparseable)"
}

// Name is the URI libvirtd is asked to open: the driver and path, without
// transport or host (what libvirt's remote driver sends).
func (u *URI) Name() string {
	return u.Driver + "://" + u.Path
}

// SocketPath is the libvirtd socket to reach, locally or at the far end of
// an SSH tunnel.
func (u *URI) SocketPath() string {
	if u.Socket != "" {
		return u.Socket
	}
	if u.Driver == "qemu" && u.Path == "/session" {
		if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && u.Transport == TransportUnix {
			return filepath.Join(d, "libvirt", "libvirt-sock")
		}
		home, _ := os.UserHomeDir()
		return filepath.Join(home, ".cache", "libvirt", "libvirt-sock")
	}
	return SystemSocket
}

// Addr is host:port for the network transports.
func (u *URI) Addr() string {
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

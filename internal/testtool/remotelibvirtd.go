package testtool

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RemoteLibvirtdOptions configures StartRemoteLibvirtd.
type RemoteLibvirtdOptions struct {
	// MechList is the daemon's SASL mech_list, e.g. "digest-md5" (the only
	// mechanism plain TCP accepts: libvirtd demands SSF >= 56 there, so
	// DIGEST-MD5 with its auth-conf layer) or "scram-sha-256" (TLS only).
	// One daemon has one SASL config: start one daemon per mech_list.
	MechList string
	// Users are the SASL users (name -> password) put in the daemon's own
	// sasldb, in the daemon's default realm (see RemoteLibvirtd.Realm).
	Users map[string]string
	// TLS makes the daemon also listen with TLS (auth_tls = "sasl"), with a
	// CA and certificates generated for the test.
	TLS bool
	// NoTCP keeps the daemon off plain TCP (TCPAddr is then empty).
	NoTCP bool
}

// RemoteLibvirtd is a private libvirtd of the test's own that listens on
// loopback TCP and/or TLS with SASL authentication, configured the way a
// remote hypervisor would be. Like PrivateLibvirtd it runs unprivileged (as
// nobody, in session mode) with its own config, sockets, pid file, sasldb
// and logs, so it never touches the system libvirtd.
//
// URIs that work against it (session daemon): test+tcp://TCPAddr/default
// and test+tls://TLSAddr/default?pkipath=DIR (the test driver, one running
// domain "test"), and qemu+tcp://TCPAddr/session / qemu+tls://…/session
// (an empty qemu session driver). …/system is refused by the daemon
// ("unexpected qemu URI path '/system', try qemu:///session").
type RemoteLibvirtd struct {
	t      testing.TB
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	out    *Buffer

	// TCPAddr is "127.0.0.1:port" with auth_tcp = "sasl" (empty with NoTCP).
	TCPAddr string
	// TLSAddr is "127.0.0.1:port" with auth_tls = "sasl" (empty without TLS).
	TLSAddr string
	// PKIDir is a client pki dir in libvirt's layout (cacert.pem,
	// clientcert.pem, clientkey.pem): the daemon's CA and a client
	// certificate it signed. The server certificate carries SAN IP
	// 127.0.0.1 and DNS localhost.
	PKIDir string
	// UntrustedPKIDir has the same files from another CA: the daemon does
	// not trust its client certificate and its cacert.pem does not verify
	// the server.
	UntrustedPKIDir string
	// UntrustedClientPKIDir has the daemon's CA (the server verifies) but a
	// client certificate from the other CA, which the daemon rejects after
	// the handshake (it closes instead of sending its \x01 verdict byte).
	// virsh refuses to use it (it checks its own certificate against its
	// cacert.pem first); Go's crypto/tls with Config.Certificates does not
	// send it at all (the issuer is not among the CAs libvirtd's
	// CertificateRequest names), which libvirtd rejects the same way.
	UntrustedClientPKIDir string
	// Socket is the daemon's own unix socket (no authentication; nobody's).
	Socket string
	// LogFile is where libvirtd logs (log_outputs); print it when a test
	// against the daemon fails.
	LogFile string
	// Realm is the SASL realm of the users, which is also the realm the
	// daemon's DIGEST-MD5 challenge offers (Cyrus uses the host's
	// fully-qualified name). Empty when Users is empty.
	Realm string
}

// StartRemoteLibvirtd starts a private libvirtd listening on loopback TCP
// (and TLS) with SASL. It is killed and its files removed at cleanup.
func StartRemoteLibvirtd(t testing.TB, o RemoteLibvirtdOptions) *RemoteLibvirtd {
	t.Helper()
	RequireRoot(t, "a remote-style libvirtd run as nobody")
	Require(t, "libvirtd")
	Require(t, "setpriv")
	Require(t, "saslpasswd2")
	Require(t, "sasldblistusers2")
	if o.MechList == "" {
		t.Fatal("StartRemoteLibvirtd: MechList is required")
	}
	if o.NoTCP && !o.TLS {
		t.Fatal("StartRemoteLibvirtd: neither TCP nor TLS")
	}
	dir, err := os.MkdirTemp("", "govbmc-remote-libvirtd")
	if err != nil {
		t.Fatal(err)
	}
	r := &RemoteLibvirtd{t: t, dir: dir,
		Socket:  filepath.Join(dir, "run", "libvirt-sock"),
		LogFile: filepath.Join(dir, "libvirtd.log"),
	}
	t.Cleanup(func() {
		r.Stop()
		os.RemoveAll(dir)
	})
	for _, sub := range []string{"home", "run", "sasl", "server"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}

	// SASL: the daemon's app name is "libvirt", so Cyrus reads libvirt.conf
	// from SASL_CONF_PATH (set in Start).
	saslDir := filepath.Join(dir, "sasl")
	db := r.sasldb()
	saslConf := fmt.Sprintf("mech_list: %s\nsasldb_path: %s\n", o.MechList, db)
	if err := os.WriteFile(filepath.Join(saslDir, "libvirt.conf"), []byte(saslConf), 0o600); err != nil {
		t.Fatal(err)
	}
	for user, pass := range o.Users {
		r.saslpasswd(t, user, pass)
	}
	if len(o.Users) > 0 {
		out, err := exec.Command("sasldblistusers2", "-f", db).CombinedOutput()
		if err != nil {
			t.Fatalf("sasldblistusers2: %v: %s", err, out)
		}
		// "alice@realm: userPassword"
		if first, _, ok := strings.Cut(string(out), ":"); ok {
			if _, realm, ok := strings.Cut(first, "@"); ok {
				r.Realm = realm
			}
		}
	}

	conf := fmt.Sprintf(`listen_addr = "127.0.0.1"
unix_sock_dir = %q
log_outputs = "1:file:%s"
`, filepath.Join(dir, "run"), r.LogFile)
	if !o.NoTCP {
		r.TCPAddr = fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
		_, port, _ := net.SplitHostPort(r.TCPAddr)
		conf += fmt.Sprintf("listen_tcp = 1\ntcp_port = %q\nauth_tcp = \"sasl\"\n", port)
	} else {
		conf += "listen_tcp = 0\n"
	}
	if o.TLS {
		p, err := testPKI()
		if err != nil {
			t.Fatalf("generate test PKI: %v", err)
		}
		srv := filepath.Join(dir, "server")
		writePEMs(t, srv, map[string][]byte{"cacert.pem": p.ca, "servercert.pem": p.serverCert, "serverkey.pem": p.serverKey})
		r.PKIDir = filepath.Join(dir, "pki")
		writePEMs(t, r.PKIDir, map[string][]byte{"cacert.pem": p.ca, "clientcert.pem": p.clientCert, "clientkey.pem": p.clientKey})
		r.UntrustedPKIDir = filepath.Join(dir, "pki-untrusted")
		writePEMs(t, r.UntrustedPKIDir, map[string][]byte{"cacert.pem": p.otherCA, "clientcert.pem": p.otherClientCert, "clientkey.pem": p.otherClientKey})
		r.UntrustedClientPKIDir = filepath.Join(dir, "pki-untrusted-client")
		writePEMs(t, r.UntrustedClientPKIDir, map[string][]byte{"cacert.pem": p.ca, "clientcert.pem": p.otherClientCert, "clientkey.pem": p.otherClientKey})
		r.TLSAddr = fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
		_, port, _ := net.SplitHostPort(r.TLSAddr)
		conf += fmt.Sprintf(`listen_tls = 1
tls_port = %q
auth_tls = "sasl"
key_file = %q
cert_file = %q
ca_file = %q
tls_no_verify_certificate = 0
`, port, filepath.Join(srv, "serverkey.pem"), filepath.Join(srv, "servercert.pem"), filepath.Join(srv, "cacert.pem"))
	} else {
		conf += "listen_tls = 0\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "libvirtd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// The daemon (nobody) owns its tree; the client pki dirs stay root's.
	for _, sub := range []string{"home", "run", "sasl", "server", "libvirtd.conf"} {
		if out, err := exec.Command("chown", "-R", "nobody:nogroup", filepath.Join(dir, sub)).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v: %s", err, out)
		}
	}
	if out, err := exec.Command("chown", "nobody:nogroup", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v: %s", dir, err, out)
	}
	r.Start()
	return r
}

// Start starts (or restarts, after Stop) the daemon on the same ports and
// waits until it listens. Call it from the test's goroutine.
func (r *RemoteLibvirtd) Start() {
	r.t.Helper()
	home := filepath.Join(r.dir, "home")
	r.out = &Buffer{}
	r.cmd = exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
		"libvirtd", "--listen", "-f", filepath.Join(r.dir, "libvirtd.conf"), "-p", filepath.Join(r.dir, "run", "libvirtd.pid"))
	r.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_RUNTIME_DIR=" + filepath.Join(r.dir, "run"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"SASL_CONF_PATH=" + filepath.Join(r.dir, "sasl")}
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	r.cmd.WaitDelay = 2 * time.Second // children holding the output pipe
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start remote libvirtd: %v", err)
	}
	exited := make(chan struct{})
	r.exited = exited
	go func(cmd *exec.Cmd) {
		_ = cmd.Wait()
		close(exited)
	}(r.cmd)
	var ports []string
	for _, a := range []string{r.TCPAddr, r.TLSAddr} {
		if a != "" {
			_, p, _ := net.SplitHostPort(a)
			ports = append(ports, p)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !(exists(r.Socket) && listening(ports)) {
		select {
		case <-exited:
			r.t.Fatalf("remote libvirtd exited at start: %s\n%s", r.out.String(), r.Log())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("remote libvirtd not listening within 20s: %s\n%s", r.out.String(), r.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the daemon (SIGKILL: an outage, not a clean shutdown). Start
// brings it back on the same ports.
func (r *RemoteLibvirtd) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
	r.cmd = nil
	os.Remove(r.Socket)
}

// SetPassword sets (or creates) a SASL user's password in the daemon's
// sasldb; the running daemon checks the next login against it.
func (r *RemoteLibvirtd) SetPassword(t testing.TB, user, password string) {
	t.Helper()
	r.saslpasswd(t, user, password)
	if out, err := exec.Command("chown", "nobody:nogroup", r.sasldb()).CombinedOutput(); err != nil {
		t.Fatalf("chown sasldb: %v: %s", err, out)
	}
}

func (r *RemoteLibvirtd) sasldb() string { return filepath.Join(r.dir, "sasl", "passwd.db") }

// saslpasswd creates or changes a user in the daemon's sasldb.
func (r *RemoteLibvirtd) saslpasswd(t testing.TB, user, password string) {
	t.Helper()
	cmd := exec.Command("saslpasswd2", "-f", r.sasldb(), "-a", "libvirt", "-c", "-p", user)
	cmd.Env = append(os.Environ(), "SASL_CONF_PATH="+filepath.Join(r.dir, "sasl"))
	cmd.Stdin = strings.NewReader(password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("saslpasswd2 %s: %v: %s", user, err, out)
	}
}

// Log returns what libvirtd has logged so far (its log file).
func (r *RemoteLibvirtd) Log() string {
	b, err := os.ReadFile(r.LogFile)
	if err != nil {
		return fmt.Sprintf("(no libvirtd log: %v)", err)
	}
	return string(b)
}

// AuthFile writes a libvirt client auth file (for LIBVIRT_AUTH_FILE) that
// gives virsh the SASL credentials user/password for any host.
func (r *RemoteLibvirtd) AuthFile(t testing.TB, user, password string) string {
	t.Helper()
	return WriteFile(t, "libvirt-auth.conf", fmt.Sprintf(`[credentials-govbmc]
authname=%s
password=%s

[auth-libvirt-127.0.0.1]
credentials=govbmc

[auth-libvirt-localhost]
credentials=govbmc

[auth-libvirt-default]
credentials=govbmc
`, user, password))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// listening reports whether every port has a listening socket on
// 127.0.0.1 (read from /proc/net/tcp, so that probing leaves no
// connection errors in libvirtd's log).
func listening(ports []string) bool {
	if len(ports) == 0 {
		return true
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return false
	}
	defer f.Close()
	up := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "0A" { // TCP_LISTEN
			continue
		}
		if addr, port, ok := strings.Cut(fields[1], ":"); ok && (addr == "0100007F" || addr == "00000000") {
			var n int
			fmt.Sscanf(port, "%X", &n)
			up[fmt.Sprint(n)] = true
		}
	}
	for _, p := range ports {
		if !up[p] {
			return false
		}
	}
	return true
}

func writePEMs(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

type pkiSet struct {
	ca, serverCert, serverKey, clientCert, clientKey []byte
	otherCA, otherClientCert, otherClientKey         []byte
}

// testPKI generates, once per test binary, the daemon's CA with a server
// and a client certificate, and another CA with a client certificate.
var testPKI = sync.OnceValues(func() (*pkiSet, error) {
	var p pkiSet
	ca, caKey, caPEM, _, err := newCert("govbmc test CA", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	other, otherKey, otherPEM, _, err := newCert("govbmc untrusted test CA", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	p.ca, p.otherCA = caPEM, otherPEM
	if _, _, p.serverCert, p.serverKey, err = newCert("localhost", ca, caKey, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}); err != nil {
		return nil, err
	}
	if _, _, p.clientCert, p.clientKey, err = newCert("govbmc-test-client", ca, caKey, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}); err != nil {
		return nil, err
	}
	if _, _, p.otherClientCert, p.otherClientKey, err = newCert("govbmc-untrusted-client", other, otherKey, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}); err != nil {
		return nil, err
	}
	return &p, nil
})

// newCert makes an ECDSA P-256 certificate: a self-signed CA when parent is
// nil, else a leaf with the extended key usage eku (CN "localhost" also
// gets SAN DNS localhost and IP 127.0.0.1). It returns the certificate, its
// key, and both as PEM (the key as PKCS#8).
func newCert(cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, eku []x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, nil, nil, err
	}
	isCA := parent == nil
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"govbmc tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		ExtKeyUsage:           eku,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		// libvirt checks both bits on its peers' certificates.
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	if cn == "localhost" {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	signer, signKey := parent, parentKey
	if isCA {
		signer, signKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	k8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k8}), nil
}

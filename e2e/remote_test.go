package e2e

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/libvirtconn"
)

// The SASL account the remote libvirtds of these tests know.
var saslCreds = libvirtconn.Credentials{SASLUsername: "govbmc", SASLPassword: "sasl-Secret-1"}

func startRemote(t *testing.T, mechs string, tls bool) *testtool.RemoteLibvirtd {
	t.Helper()
	return testtool.StartRemoteLibvirtd(t, testtool.RemoteLibvirtdOptions{
		MechList: mechs, TLS: tls, Users: map[string]string{saslCreds.SASLUsername: saslCreds.SASLPassword}})
}

func getWith(t *testing.T, p *libvirtconn.Pool, uri string, creds libvirtconn.Credentials) *libvirtconn.Conn {
	t.Helper()
	c, err := p.Get(uri, creds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Release)
	return c
}

// powerAndBoot drives a fresh test-driver domain through a BMC with
// ipmitool, and checks with libvirt what the commands did.
func powerAndBoot(t *testing.T, c *libvirtconn.Conn) *node {
	t.Helper()
	name := testtool.DomainName(t, "")
	testtool.DefineDomain(t, c, name, testDomain)
	n := serveDomain(t, c, name)
	mustContain(t, n.must("power", "status"), "Chassis Power is off")
	mustContain(t, n.must("power", "on"), "Up/On")
	mustContain(t, n.must("power", "status"), "Chassis Power is on")
	n.must("chassis", "bootdev", "pxe", "options=persistent")
	if doc := testtool.InactiveXML(t, c, name); !strings.Contains(doc, "<boot dev='network'/>") {
		t.Fatalf("bootdev pxe: definition:\n%s", doc)
	}
	mustContain(t, n.must("chassis", "bootparam", "get", "5"), "Boot Device Selector : Force PXE", "Options apply to all future boots")
	mustContain(t, n.must("power", "off"), "Down/Off")
	mustContain(t, n.must("power", "status"), "Chassis Power is off")
	return n
}

// tap is a TCP relay that keeps a copy of every byte it passes, to see
// what an eavesdropper on the network would.
type tap struct {
	addr string
	mu   sync.Mutex
	seen bytes.Buffer
}

func startTap(t *testing.T, backend string) *tap {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{addr: l.Addr().String()}
	var conns sync.WaitGroup
	t.Cleanup(func() { l.Close(); conns.Wait() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", backend)
			if err != nil {
				in.Close()
				continue
			}
			conns.Add(2)
			go tp.pipe(&conns, out, in)
			go tp.pipe(&conns, in, out)
		}
	}()
	return tp
}

func (tp *tap) pipe(wg *sync.WaitGroup, dst, src net.Conn) {
	defer wg.Done()
	defer dst.Close()
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			tp.mu.Lock()
			tp.seen.Write(buf[:n])
			tp.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (tp *tap) saw(s string) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return bytes.Contains(tp.seen.Bytes(), []byte(s))
}

// TestIpmitoolOverTCPWithSASL: a libvirtd with auth_tcp = "sasl" and
// mech_list digest-md5 (which over plain TCP takes only a login with
// DIGEST-MD5's encryption layer): ipmitool's power and boot commands go
// through, and nothing of the RPC after the login is readable on the wire.
func TestIpmitoolOverTCPWithSASL(t *testing.T) {
	r := startRemote(t, "digest-md5", false)
	tp := startTap(t, r.TCPAddr)
	c := getWith(t, pool(t), "test+tcp://"+tp.addr+"/default", saslCreds)
	n := powerAndBoot(t, c)
	if !tp.saw("DIGEST-MD5") {
		t.Fatal("the tap saw no SASL login: the test proves nothing")
	}
	for _, secret := range []string{n.name[len("bmc-"):], "vnc-secret", "<domain"} {
		if tp.saw(secret) {
			t.Errorf("%q crossed the network in clear text", secret)
		}
	}
}

// TestIpmitoolOverTLSWithSCRAM: a libvirtd with a TLS listener, client
// certificates and auth_tls = "sasl" with mech_list scram-sha-256.
func TestIpmitoolOverTLSWithSCRAM(t *testing.T) {
	r := startRemote(t, "scram-sha-256", true)
	c := getWith(t, pool(t), "test+tls://"+r.TLSAddr+"/default?pkipath="+r.PKIDir, saslCreds)
	powerAndBoot(t, c)
}

// TestRemoteLoginFailures: wrong password, wrong user, missing credentials,
// an untrusted client certificate and an untrusted server each fail fast
// with an error that says so and names the URI; IPMI clients meanwhile get
// the retryable 0xC0 ("Node busy"), never a hang.
func TestRemoteLoginFailures(t *testing.T) {
	tcp := startRemote(t, "digest-md5", false)
	tls := startRemote(t, "scram-sha-256", true)
	tcpURI := "test+tcp://" + tcp.TCPAddr + "/default"
	tlsURI := "test+tls://" + tls.TLSAddr + "/default?pkipath="
	// Our certificate and key, but a CA that did not sign the server's.
	foreignCA := t.TempDir()
	for src, dst := range map[string]string{
		filepath.Join(tls.UntrustedPKIDir, "cacert.pem"): "cacert.pem",
		filepath.Join(tls.PKIDir, "clientcert.pem"):      "clientcert.pem",
		filepath.Join(tls.PKIDir, "clientkey.pem"):       "clientkey.pem",
	} {
		copyFile(t, src, filepath.Join(foreignCA, dst))
	}
	wrongPass := libvirtconn.Credentials{SASLUsername: saslCreds.SASLUsername, SASLPassword: "not-it"}
	wrongUser := libvirtconn.Credentials{SASLUsername: "mallory", SASLPassword: saslCreds.SASLPassword}
	cases := []struct {
		name, uri string
		creds     libvirtconn.Credentials
		want      []string
	}{
		{"wrong password over TCP", tcpURI, wrongPass, []string{"authentication failed", `login as "govbmc"`}},
		{"wrong user over TCP", tcpURI, wrongUser, []string{"authentication failed", `login as "mallory"`}},
		{"no credentials over TCP", tcpURI, libvirtconn.Credentials{}, []string{"asks for SASL authentication", "--libvirt-sasl-username"}},
		{"wrong password over TLS", tlsURI + tls.PKIDir, wrongPass, []string{"authentication failed", "SCRAM-SHA-256"}},
		{"untrusted client certificate", tlsURI + tls.UntrustedPKIDir + "&no_verify=1", saslCreds, []string{"refused our certificate"}},
		{"untrusted server certificate", tlsURI + foreignCA, saslCreds, []string{"certificate signed by unknown authority"}},
	}
	p := pool(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := getWith(t, p, tc.uri, tc.creds)
			start := time.Now()
			n := serveDomain(t, c, "test")
			out, err := n.ipmitool("-R", "1", "-N", "5", "power", "status")
			if err == nil {
				t.Fatalf("power status succeeded:\n%s", out)
			}
			mustContain(t, out, "Node busy")
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("the failure took %v", d)
			}
			health := c.Health()
			if health == nil || !errors.Is(health, libvirtconn.ErrUnavailable) {
				t.Fatalf("health %v", health)
			}
			mustContain(t, health.Error(), append(tc.want, strings.Split(tc.uri, "?")[0])...)
			if strings.Contains(health.Error(), saslCreds.SASLPassword) || strings.Contains(n.logs.String(), saslCreds.SASLPassword) {
				t.Error("a password appears in an error or a log")
			}
		})
	}
}

// TestRemoteConnectionsPooledAndReconnected: over TCP with SASL and over
// TLS with SASL, the BMCs of one hypervisor share one logged-in
// connection, which comes back on its own (one new login) after libvirtd is
// killed and restarted.
func TestRemoteConnectionsPooledAndReconnected(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
		uri  func(r *testtool.RemoteLibvirtd) string
	}{
		{"tcp", false, func(r *testtool.RemoteLibvirtd) string { return "test+tcp://" + r.TCPAddr + "/default" }},
		{"tls", true, func(r *testtool.RemoteLibvirtd) string {
			return "test+tls://" + r.TLSAddr + "/default?pkipath=" + r.PKIDir
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mech := "digest-md5"
			if tc.tls {
				mech = "scram-sha-256"
			}
			r := startRemote(t, mech, tc.tls)
			p := pool(t)
			var nodes []*node
			var c *libvirtconn.Conn
			for range 4 {
				got := getWith(t, p, tc.uri(r), saslCreds)
				if c != nil && got != c {
					t.Fatal("the pool handed out a second connection for the same hypervisor and credentials")
				}
				c = got
				nodes = append(nodes, serveDomain(t, c, "test"))
			}
			for _, n := range nodes {
				mustContain(t, n.must("power", "status"), "Chassis Power is on")
			}
			if d := c.Connects.Load(); d != 1 {
				t.Fatalf("%d logins for %d BMCs, want 1", d, len(nodes))
			}
			r.Stop()
			testtool.Eventually(t, 10*time.Second, "outage answered with 0xC0", func() bool {
				out, err := nodes[0].ipmitool("-R", "1", "power", "status")
				return err != nil && strings.Contains(out, "Node busy")
			})
			r.Start()
			for _, n := range nodes {
				testtool.Eventually(t, 20*time.Second, "recovery", func() bool {
					out, err := n.ipmitool("power", "status")
					return err == nil && strings.Contains(out, "Chassis Power is on")
				})
			}
			if d := c.Connects.Load(); d != 2 {
				t.Fatalf("%d logins after one restart, want 2 (%d connection attempts)", d, c.Dials.Load())
			}
		})
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

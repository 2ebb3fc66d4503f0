package testtool

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// virsh runs the real virsh against uri with SASL credentials from a
// LIBVIRT_AUTH_FILE, never interactively, within a deadline.
func virsh(t *testing.T, authFile, uri string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, Require(t, "virsh"), append([]string{"-c", uri}, args...)...)
	cmd.Env = append(os.Environ(), "LIBVIRT_AUTH_FILE="+authFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("virsh -c %s %v hung:\n%s", uri, args, out.String())
	}
	return out.String(), err
}

func TestRemoteLibvirtdWithVirsh(t *testing.T) {
	Require(t, "virsh")
	Require(t, "saslpasswd2")
	Require(t, "libvirtd")
	users := map[string]string{"alice": "s3cret pass", "bob": "other"}

	t.Run("tcp-digest-md5", func(t *testing.T) {
		d := StartRemoteLibvirtd(t, RemoteLibvirtdOptions{MechList: "digest-md5", Users: users})
		if d.TCPAddr == "" || d.TLSAddr != "" || d.PKIDir != "" {
			t.Fatalf("addresses: tcp %q tls %q pki %q", d.TCPAddr, d.TLSAddr, d.PKIDir)
		}
		host, _ := os.Hostname()
		if d.Realm == "" || !strings.HasPrefix(d.Realm, host) {
			t.Errorf("realm %q, host name %q", d.Realm, host)
		}
		defer func() {
			if t.Failed() {
				t.Logf("libvirtd log %s:\n%s", d.LogFile, d.Log())
			}
		}()
		good := d.AuthFile(t, "alice", "s3cret pass")
		uri := "test+tcp://" + d.TCPAddr + "/default"
		listsTest := func(uri string) {
			t.Helper()
			out, err := virsh(t, good, uri, "list", "--all")
			if err != nil || !strings.Contains(out, "test") || !strings.Contains(out, "running") {
				t.Fatalf("virsh -c %s list --all: %v\n%s", uri, err, out)
			}
		}
		listsTest(uri)
		listsTest("test+tcp://localhost:" + strings.TrimPrefix(d.TCPAddr, "127.0.0.1:") + "/default")
		if out, err := virsh(t, good, "qemu+tcp://"+d.TCPAddr+"/session", "list", "--all"); err != nil {
			t.Errorf("qemu+tcp …/session: %v\n%s", err, out)
		}
		if out, err := virsh(t, good, "qemu+tcp://"+d.TCPAddr+"/system", "list", "--all"); err == nil {
			t.Errorf("qemu+tcp …/system worked on a session daemon:\n%s", out)
		}
		for _, bad := range []struct{ what, user, pass string }{
			{"wrong password", "alice", "not it"},
			{"password of another user", "alice", "other"},
			{"unknown user", "mallory", "s3cret pass"},
		} {
			out, err := virsh(t, d.AuthFile(t, bad.user, bad.pass), uri, "list", "--all")
			if err == nil || !strings.Contains(out, "authentication failed") {
				t.Errorf("%s: err %v\n%s", bad.what, err, out)
			}
		}
		// An outage: killed, back on the same port.
		d.Stop()
		if out, err := virsh(t, good, uri, "list", "--all"); err == nil {
			t.Fatalf("virsh worked against a stopped daemon:\n%s", out)
		}
		d.Start()
		listsTest(uri)
	})

	t.Run("tls-scram-sha-256", func(t *testing.T) {
		d := StartRemoteLibvirtd(t, RemoteLibvirtdOptions{MechList: "scram-sha-256", Users: users, TLS: true})
		defer func() {
			if t.Failed() {
				t.Logf("libvirtd log %s:\n%s", d.LogFile, d.Log())
			}
		}()
		for _, dir := range []string{d.PKIDir, d.UntrustedPKIDir, d.UntrustedClientPKIDir} {
			for _, f := range []string{"cacert.pem", "clientcert.pem", "clientkey.pem"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Fatal(err)
				}
			}
		}
		good := d.AuthFile(t, "bob", "other")
		port := strings.TrimPrefix(d.TLSAddr, "127.0.0.1:")
		for _, uri := range []string{
			"test+tls://" + d.TLSAddr + "/default?pkipath=" + d.PKIDir,
			"test+tls://localhost:" + port + "/default?pkipath=" + d.PKIDir,
			"qemu+tls://" + d.TLSAddr + "/session?pkipath=" + d.PKIDir,
		} {
			out, err := virsh(t, good, uri, "list", "--all")
			if err != nil || !strings.Contains(out, "Name") {
				t.Fatalf("virsh -c %s list --all: %v\n%s", uri, err, out)
			}
		}
		uri := "test+tls://" + d.TLSAddr + "/default?pkipath="
		for _, bad := range []struct{ what, user, pass, pki, want string }{
			{"wrong password", "bob", "s3cret pass", d.PKIDir, "authentication failed"},
			{"unknown user", "mallory", "other", d.PKIDir, "authentication failed"},
			{"untrusted CA and client certificate", "bob", "other", d.UntrustedPKIDir, "certificate"},
			{"untrusted client certificate", "bob", "other", d.UntrustedClientPKIDir, ""},
		} {
			out, err := virsh(t, d.AuthFile(t, bad.user, bad.pass), uri+bad.pki, "list", "--all")
			if err == nil || !strings.Contains(out, bad.want) {
				t.Errorf("%s: err %v\n%s", bad.what, err, out)
			}
			t.Logf("%s: %s", bad.what, strings.TrimSpace(out))
		}
		// Plain TCP on the same daemon: SCRAM has no security layer, so
		// libvirt's SSF >= 56 rule leaves no usable mechanism.
		if out, err := virsh(t, good, "test+tcp://"+d.TCPAddr+"/default", "list"); err == nil {
			t.Errorf("SCRAM over plain TCP worked:\n%s", out)
		} else {
			t.Logf("SCRAM over plain TCP: %s", strings.TrimSpace(out))
		}

		// libvirtd's verdict after the handshake: one byte 1 when it accepts
		// the client's certificate, a closed connection when it does not.
		// The client certificate is always presented (GetClientCertificate):
		// with Config.Certificates, Go's client leaves out a certificate
		// whose issuer is not among the CAs libvirtd's CertificateRequest
		// names, and libvirtd then logs "No certificate was found".
		verdict := func(pki string) (byte, error) {
			cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "clientcert.pem"), filepath.Join(pki, "clientkey.pem"))
			if err != nil {
				t.Fatal(err)
			}
			caPEM, err := os.ReadFile(filepath.Join(pki, "cacert.pem"))
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(caPEM)
			c, err := tls.Dial("tcp", d.TLSAddr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1",
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }})
			if err != nil {
				return 0, err
			}
			defer c.Close()
			t.Logf("TLS %s with %s", tls.VersionName(c.ConnectionState().Version), filepath.Base(pki))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			var b [1]byte
			_, err = io.ReadFull(c, b[:])
			return b[0], err
		}
		if b, err := verdict(d.PKIDir); err != nil || b != 1 {
			t.Errorf("verdict with the trusted client certificate: %d, %v", b, err)
		}
		b, err := verdict(d.UntrustedClientPKIDir)
		if err == nil {
			t.Errorf("verdict with an untrusted client certificate: %d", b)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("no verdict with an untrusted client certificate: %v", err)
		} else {
			t.Logf("untrusted client certificate: %v", err)
		}
	})
}

package libvirtconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pkiFiles are the CA certificate, client certificate and client key, where
// libvirt looks for them.
type pkiFiles struct{ caCert, clientCert, clientKey string }

// pkiFilesFor follows libvirt's rules: the pkipath parameter's directory;
// else, for a non-root user, ~/.pki/libvirt when it holds them; else the
// system locations.
func pkiFilesFor(u *URI) pkiFiles {
	if u.PKIPath != "" {
		return pkiFiles{filepath.Join(u.PKIPath, "cacert.pem"), filepath.Join(u.PKIPath, "clientcert.pem"), filepath.Join(u.PKIPath, "clientkey.pem")}
	}
	if os.Geteuid() != 0 {
		if home, err := os.UserHomeDir(); err == nil {
			dir := filepath.Join(home, ".pki", "libvirt")
			if _, err := os.Stat(filepath.Join(dir, "clientcert.pem")); err == nil {
				return pkiFiles{filepath.Join(dir, "cacert.pem"), filepath.Join(dir, "clientcert.pem"), filepath.Join(dir, "clientkey.pem")}
			}
		}
	}
	return pkiFiles{"/etc/pki/CA/cacert.pem", "/etc/pki/libvirt/clientcert.pem", "/etc/pki/libvirt/private/clientkey.pem"}
}

// tlsConfig is the client side of libvirt's TLS: the server's certificate
// checked against the CA and the URI's host (unless no_verify=1), and our
// own certificate, which libvirtd checks in turn.
func tlsConfig(u *URI) (*tls.Config, error) {
	files := pkiFilesFor(u)
	cert, err := tls.LoadX509KeyPair(files.clientCert, files.clientKey)
	if err != nil {
		return nil, fmt.Errorf("client certificate %s / key %s: %w", files.clientCert, files.clientKey, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, ServerName: u.Host, MinVersion: tls.VersionTLS12}
	if u.NoVerify {
		cfg.InsecureSkipVerify = true
		return cfg, nil
	}
	pem, err := os.ReadFile(files.caCert)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA certificate %s: no PEM certificate in it", files.caCert)
	}
	return cfg, nil
}

// tlsAccepted is the byte libvirtd sends once it has checked our
// certificate and address; anything else means it refused us.
const tlsAccepted = 1

// dialTLS opens a qemu+tls connection: TCP, the TLS handshake, then
// libvirtd's verdict on us.
func dialTLS(ctx context.Context, u *URI) (net.Conn, error) {
	cfg, err := tlsConfig(u)
	if err != nil {
		return nil, fmt.Errorf("tls %s: %w", u.Addr(), err)
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", u.Addr())
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", u.Addr(), err)
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(dialTimeout)
	}
	tc.SetReadDeadline(dl)
	var verdict [1]byte
	if _, err := io.ReadFull(tc, verdict[:]); err != nil || verdict[0] != tlsAccepted {
		tc.Close()
		if err == nil {
			err = fmt.Errorf("answer %#x", verdict[0])
		}
		if errors.Is(err, io.EOF) {
			err = errors.New("it closed the connection")
		}
		return nil, fmt.Errorf("libvirtd at %s refused our certificate or address: %w", u.Addr(), err)
	}
	tc.SetReadDeadline(time.Time{})
	return tc, nil
}

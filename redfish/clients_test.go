package redfish_test

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/redfish"
)

// tlsEnv is newEnv on a listener with a certificate from
// SelfSignedCertificate, so real clients can be given it as their CA.
func tlsEnv(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t)
	certFile, keyFile, err := redfish.SelfSignedCertificate(t.TempDir(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	h := e.srv.Config.Handler
	e.srv.Close()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // clients probing and hanging up
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e.srv = srv
	e.client = srv.Client()
	e.client.Transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	return e, certFile
}

// clientEnv is the environment of a real client: it trusts caFile only
// (REQUESTS_CA_BUNDLE would otherwise make sushy ignore its verify argument).
func clientEnv(caFile string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "REQUESTS_CA_BUNDLE="+caFile, "SSL_CERT_FILE="+caFile, "NO_PROXY=*")
}

// systemPython is the Debian interpreter python3-sushy is installed for.
func systemPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3"} {
		if exec.Command(p, "-c", "import sushy").Run() == nil {
			return p
		}
	}
	py := testtool.Require(t, "python3")
	if err := exec.Command(py, "-c", "import sushy").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3-sushy is not installed (CI=true)")
		}
		t.Skip("python3-sushy is not installed; `make test` installs it")
	}
	return py
}

func runClient(t *testing.T, caFile string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = clientEnv(caFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestSushy(t *testing.T) {
	py := systemPython(t)
	e, ca := tlsEnv(t)
	hw, err := e.a.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	base := strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)
	for _, id := range []string{e.aID, "node-a"} {
		out := runClient(t, ca, 2*time.Minute, py, "testdata/sushy_client.py", base, id, "admin", "password", ca, hw.NICs[0].MAC)
		if !strings.Contains(out, "sushy: OK") {
			t.Fatalf("sushy with id %s:\n%s", id, out)
		}
	}
}

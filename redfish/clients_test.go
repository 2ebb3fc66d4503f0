package redfish_test

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http/httptest"
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

func runClient(t *testing.T, caFile string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = testtool.ClientEnv(caFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestSushy(t *testing.T) {
	py := testtool.SushyPython(t)
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

func TestRedfishtool(t *testing.T) {
	rt := testtool.Require(t, "redfishtool")
	e, ca := tlsEnv(t)
	host := strings.TrimPrefix(e.srv.URL, "https://")
	ctx := context.Background()
	tool := func(auth string, args ...string) string {
		t.Helper()
		base := []string{"-r", host, "-S", "Always", "-A", auth, "-u", "admin", "-p", "password", "-T", "20"}
		return runClient(t, ca, time.Minute, rt, append(base, args...)...)
	}
	for _, auth := range []string{"Basic", "Session"} {
		if out := tool(auth, "Systems"); !strings.Contains(out, e.aID) || strings.Contains(out, "node-b") {
			t.Fatalf("%s: Systems:\n%s", auth, out)
		}
	}
	tool("Session", "Systems", "-I", e.aID, "reset", "On")
	if s, _ := e.a.PowerState(ctx); s.String() != "on" {
		t.Fatal("redfishtool reset On did not power on")
	}
	if out := tool("Basic", "Systems", "-I", e.aID, "-P", "PowerState"); !strings.Contains(out, "On") {
		t.Fatalf("PowerState:\n%s", out)
	}
	tool("Basic", "Systems", "-I", e.aID, "setBootOverride", "Continuous", "Pxe")
	if o, _ := e.a.BootOverride(ctx); o.Device.String() != "pxe" || !o.Persistent {
		t.Fatalf("setBootOverride Continuous Pxe: %+v", o)
	}
	tool("Session", "Systems", "-I", e.aID, "reset", "ForceOff")
	if s, _ := e.a.PowerState(ctx); s.String() != "off" {
		t.Fatal("redfishtool reset ForceOff did not power off")
	}
	hw, _ := e.a.Inventory(ctx)
	if out := tool("Basic", "Systems", "-I", e.aID, "EthernetInterfaces", "-a"); !strings.Contains(out, hw.NICs[0].MAC) {
		t.Fatalf("EthernetInterfaces:\n%s", out)
	}
	if out := tool("Basic", "Managers", "-I", e.aID); !strings.Contains(out, `"ManagerType": "BMC"`) {
		t.Fatalf("Managers:\n%s", out)
	}
	if out := tool("Basic", "Chassis", "-I", e.aID); !strings.Contains(out, "RackMount") {
		t.Fatalf("Chassis:\n%s", out)
	}
	// redfishtool's Session auth logged out each time.
	if out := tool("Basic", "SessionService", "Sessions"); strings.Contains(out, "/Sessions/") {
		t.Fatalf("sessions left behind:\n%s", out)
	}
}

func TestCurlHeadersAndErrorBodies(t *testing.T) {
	curl := testtool.Require(t, "curl")
	e, ca := tlsEnv(t)
	base := e.srv.URL + "/redfish/v1"
	c := func(args ...string) string {
		t.Helper()
		return runClient(t, ca, 30*time.Second, curl, append([]string{"-sS", "-i", "--cacert", ca}, args...)...)
	}
	has := func(out string, want ...string) {
		t.Helper()
		low := strings.ToLower(out)
		for _, w := range want {
			if !strings.Contains(low, strings.ToLower(w)) {
				t.Fatalf("curl output lacks %q:\n%s", w, out)
			}
		}
	}
	has(c(base+"/"), " 200", "odata-version: 4.0", "content-type: application/json", `"@odata.id":"/redfish/v1"`)
	has(c(base+"/Systems"), " 401", "www-authenticate: basic", `"code":"Base.1.8.NoValidSession"`, `"@Message.ExtendedInfo"`)
	has(c("-u", "ro:ropass", "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"ResetType":"On"}`, base+"/Systems/"+e.aID+"/Actions/ComputerSystem.Reset"),
		" 403", "Base.1.8.InsufficientPrivilege")
	has(c("-u", "admin:password", "-X", "DELETE", base+"/Systems/"+e.aID), " 405", "allow: GET, HEAD, PATCH", "OperationNotAllowed")
	has(c("-u", "admin:password", base+"/Systems/"+e.aID+"/Nope"), " 404", "ResourceMissingAtURI")
	has(c("-u", "admin:password", "-X", "PATCH", "-d", `{"Boot":`, base+"/Systems/"+e.aID), " 400", "Base.1.8.MalformedJSON")
	has(c("-u", "admin:password", "-X", "PATCH", "-d", `{"UUID":"x"}`, base+"/Systems/"+e.aID), " 400", "PropertyNotWritable", `"RelatedProperties":["#/UUID"]`)
	has(c("-u", "admin:password", "-X", "PATCH", "-H", `If-Match: "nope"`, "-d", `{"Boot":{"BootSourceOverrideTarget":"Pxe"}}`, base+"/Systems/"+e.aID), " 412", "PreconditionFailed")
	out := c("-u", "admin:password", base+"/Systems/"+e.aID)
	has(out, " 200", "etag: W/")
	big := testtool.WriteFile(t, "big.json", `{"x":"`+strings.Repeat("A", 200<<10)+`"}`)
	has(c("-u", "admin:password", "-X", "PATCH", "-d", "@"+big, base+"/Systems/"+e.aID), " 413")
	login := c("-X", "POST", "-H", "Content-Type: application/json", "-d", `{"UserName":"admin","Password":"password"}`, base+"/SessionService/Sessions")
	has(login, " 201", "x-auth-token: ", "location: /redfish/v1/SessionService/Sessions/")
	if strings.Contains(login, `"Password"`) {
		t.Fatalf("the session echoes the password:\n%s", login)
	}
}

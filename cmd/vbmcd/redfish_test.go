package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/redfish"
)

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpsClient trusts only the certificate in file.
func httpsClient(t *testing.T, file string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in " + file)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func getJSON(t *testing.T, c *http.Client, url, user, pass string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var v map[string]any
	_ = json.Unmarshal(raw, &v)
	return res.StatusCode, v
}

func TestDaemonServesRedfishWithASelfSignedCertificateItKeeps(t *testing.T) {
	ports := freeUDPPorts(t, 4)
	cfg := demoConfigOnPorts(t, ports)
	dir := t.TempDir()
	port := freeTCPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	run := func() *daemon {
		d := startDaemon(t, "--config", cfg, "--config-dir", dir, "--pid-file", filepath.Join(dir, "pid"), "--redfish-address", addr)
		d.waitFor(t, "vbmcd serving")
		d.waitFor(t, "redfish serving")
		return d
	}
	d := run()
	certFile := filepath.Join(dir, redfish.SelfSignedCertName)
	var first []byte
	for _, name := range []string{redfish.SelfSignedCertName, redfish.SelfSignedKeyName} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	first, _ = os.ReadFile(certFile)
	c := httpsClient(t, certFile)
	base := "https://" + addr + "/redfish/v1"
	if code, root := getJSON(t, c, base, "", ""); code != 200 || root["Systems"] == nil {
		t.Fatalf("root: %d %v", code, root)
	}
	if code, _ := getJSON(t, c, base+"/Systems", "", ""); code != 401 {
		t.Fatalf("Systems without credentials: %d", code)
	}
	code, coll := getJSON(t, c, base+"/Systems", "admin", "password")
	if code != 200 || coll["Members@odata.count"] != float64(4) {
		t.Fatalf("Systems: %d %v", code, coll)
	}
	// Members are machine UUIDs; the node name finds the same system.
	want := bmc.DeriveUUID("node-2").String()
	code, sys := getJSON(t, c, base+"/Systems/node-2", "admin", "password")
	if code != 200 || sys["Id"] != want || !strings.Contains(fmt.Sprint(coll["Members"]), want) {
		t.Fatalf("node-2: %d %v (want Id %s)", code, sys, want)
	}
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-d.done
	d.done <- nil

	// A second start reuses the certificate.
	run()
	again, _ := os.ReadFile(certFile)
	if string(again) != string(first) {
		t.Fatal("the self-signed certificate was generated again")
	}
	if code, _ := getJSON(t, httpsClient(t, certFile), base, "", ""); code != 200 {
		t.Fatalf("root after restart: %d", code)
	}
}

func TestDaemonServesRedfishOverPlainHTTPOnlyWhenAsked(t *testing.T) {
	ports := freeUDPPorts(t, 4)
	addr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	d := startDaemon(t, "--config", demoConfigOnPorts(t, ports), "--redfish-address", addr, "--redfish-insecure-http")
	d.waitFor(t, "redfish serving")
	code, sys := getJSON(t, &http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/redfish/v1/Systems/node-0", "admin", "password")
	if code != 200 || sys["PowerState"] != "Off" {
		t.Fatalf("%d %v", code, sys)
	}
}

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
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
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

// TestRedfishBootOverrideSurvivesARestart: a Continuous override set over
// Redfish on a libvirt node is in the domain's definition, so a new vbmcd
// reads it back; so is a pending BIOS setting. The domain is only defined,
// never started.
func TestRedfishBootOverrideSurvivesARestart(t *testing.T) {
	testtool.SystemLibvirtd(t)
	virsh := testtool.Require(t, "virsh")
	name := "govbmc-redfish-restart"
	domXML := testtool.WriteFile(t, "dom.xml", fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
<devices><interface type='user'><mac address='52:54:00:65:43:21'/></interface></devices></domain>`, name))
	_ = exec.Command(virsh, "-c", "qemu:///system", "undefine", name).Run()
	if out, err := exec.Command(virsh, "-c", "qemu:///system", "define", domXML).CombinedOutput(); err != nil {
		t.Fatalf("virsh define: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(virsh, "-c", "qemu:///system", "undefine", name).Run() })
	uuid, err := exec.Command(virsh, "-c", "qemu:///system", "domuuid", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`nodes:
  - name: lv
    address: 127.0.0.1
    port: %d
    users: [{name: admin, password: password}]
    backend: {type: libvirt, uri: "qemu:///system", domain: %s}
`, freeUDPPorts(t, 1)[0], name))
	addr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	base := "http://" + addr + "/redfish/v1/Systems/" + strings.TrimSpace(string(uuid))
	c := &http.Client{Timeout: 20 * time.Second}
	send := func(method, url, body string) int {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.SetBasicAuth("admin", "password")
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	d := startDaemon(t, "--config", cfg, "--redfish-address", addr, "--redfish-insecure-http")
	d.waitFor(t, "redfish serving")
	if code := send("PATCH", base, `{"Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Continuous"}}`); code != 200 {
		t.Fatalf("PATCH Boot: %d", code)
	}
	if code := send("PATCH", base+"/Bios/Settings", `{"Attributes":{"ProcTurboMode":"Disabled"}}`); code != 200 {
		t.Fatalf("PATCH Bios/Settings: %d", code)
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	<-d.done
	d.done <- nil

	d = startDaemon(t, "--config", cfg, "--redfish-address", addr, "--redfish-insecure-http")
	d.waitFor(t, "redfish serving")
	code, sys := getJSON(t, c, base, "admin", "password")
	boot, _ := sys["Boot"].(map[string]any)
	if code != 200 || boot["BootSourceOverrideEnabled"] != "Continuous" || boot["BootSourceOverrideTarget"] != "Pxe" {
		t.Fatalf("after a restart: %d %v", code, boot)
	}
	code, set := getJSON(t, c, base+"/Bios/Settings", "admin", "password")
	if attrs, _ := set["Attributes"].(map[string]any); code != 200 || attrs["ProcTurboMode"] != "Disabled" {
		t.Fatalf("pending BIOS settings after a restart: %d %v", code, set)
	}
	code, nic := getJSON(t, c, base+"/EthernetInterfaces/525400654321", "admin", "password")
	if code != 200 || nic["MACAddress"] != "52:54:00:65:43:21" {
		t.Fatalf("NIC: %d %v", code, nic)
	}
}

// TestRedfishFromTheFleetFile: the fleet file's redfish: section turns
// Redfish on, with its own certificate (named relative to the file); a
// flag wins over the file's address.
func TestRedfishFromTheFleetFile(t *testing.T) {
	fleetDir := t.TempDir()
	if _, _, err := redfish.SelfSignedCertificate(fleetDir, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	ports := freeUDPPorts(t, 1)
	addr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	fleet := filepath.Join(fleetDir, "fleet.yaml")
	body := fmt.Sprintf(`redfish:
  address: %s
  cert: %s
  key: %s
nodes:
  - {name: n, address: 127.0.0.1, port: %d, users: [{name: admin, password: password}], backend: {type: sim}}
`, addr, redfish.SelfSignedCertName, redfish.SelfSignedKeyName, ports[0])
	if err := os.WriteFile(fleet, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	configDir := t.TempDir()
	d := startDaemon(t, "--config", fleet, "--config-dir", configDir)
	d.waitFor(t, "redfish serving")
	c := httpsClient(t, filepath.Join(fleetDir, redfish.SelfSignedCertName))
	code, coll := getJSON(t, c, "https://"+addr+"/redfish/v1/Systems", "admin", "password")
	if code != 200 || coll["Members@odata.count"] != float64(1) {
		t.Fatalf("Systems: %d %v", code, coll)
	}
	if _, err := os.Stat(filepath.Join(configDir, redfish.SelfSignedCertName)); err == nil {
		t.Error("a certificate was generated although the fleet file names one")
	}
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-d.done
	d.done <- nil

	// --redfish-address and --redfish-insecure-http win over the file.
	other := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	d = startDaemon(t, "--config", fleet, "--redfish-address", other, "--redfish-insecure-http")
	d.waitFor(t, "redfish serving")
	code, sys := getJSON(t, &http.Client{Timeout: 5 * time.Second}, "http://"+other+"/redfish/v1/Systems/n", "admin", "password")
	if code != 200 || sys["Id"] != bmc.DeriveUUID("n").String() {
		t.Fatalf("over the flags' address: %d %v", code, sys)
	}
}

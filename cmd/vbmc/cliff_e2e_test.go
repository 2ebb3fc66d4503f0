package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
)

// sh runs a shell script with vbmc first on PATH, as a deployment script
// would run it.
func (e *env) sh(script string) (stdout, stderr string, code int) {
	e.t.Helper()
	return e.runProgram("sh", []string{"PATH=" + e.bin + ":" + os.Getenv("PATH")}, "-c", script)
}

// addSims adds (and starts, when asked) simulated BMCs on free ports.
func (e *env) addSims(names []string, started map[string]bool) {
	e.t.Helper()
	for _, n := range names {
		e.vbmc("add", n, "--backend", "sim", "--address", "127.0.0.1", "--port", fmt.Sprint(freePort(e.t)))
		if started[n] {
			e.vbmc("start", n)
		}
	}
}

// tf-devstack finds the stopped BMCs with
// `vbmc list -f value -c 'Domain name' -c Status | grep down`; terraform
// recipes delete them all with `vbmc list -f value -c 'Domain name' |
// xargs vbmc delete`.
func TestScriptsReadCliffValues(t *testing.T) {
	e := newEnv(t)
	e.startDaemon()
	e.addSims([]string{"ctl-0", "cmp-1", "cmp-2"}, map[string]bool{"ctl-0": true, "cmp-2": true})

	out, errOut, code := e.sh(`vbmc list -f value -c 'Domain name' -c Status | grep down`)
	if out != "cmp-1 down\n" || code != 0 {
		t.Errorf("tf-devstack's grep: %q (exit %d) %s", out, code, errOut)
	}
	if out := e.vbmc("list", "-f", "value", "-c", "Status", "-c", "domain_name", "--sort-column", "Status", "--sort-descending"); out != "cmp-2 running\nctl-0 running\ncmp-1 down\n" { // stable: equal statuses stay in name order
		t.Errorf("-c in another order and case, sorted by status:\n%s", out)
	}
	if out := e.vbmc("list", "-f", "csv", "-c", "Domain name", "--quote", "minimal"); out != "Domain name\ncmp-1\ncmp-2\nctl-0\n" {
		t.Errorf("csv:\n%s", out)
	}
	_, errOut, code = e.run("vbmc", "list", "-c", "Name")
	if want := "No recognized column names in ['Name']. Recognized columns are ['Domain name', 'Status', 'Address', 'Port'].\n"; errOut != want || code != 1 {
		t.Errorf("unknown column: exit %d, stderr %q, cliff says %q", code, errOut, want)
	}

	if out, errOut, code := e.sh(`vbmc list -f value -c 'Domain name' | xargs vbmc delete`); code != 0 {
		t.Fatalf("terraform's delete: exit %d\n%s%s", code, out, errOut)
	}
	if out := e.vbmc("list"); out != "\n" {
		t.Errorf("BMCs left after terraform's delete:\n%s", out)
	}
	if out := e.vbmc("list", "--print-empty", "-c", "Domain name"); out != "+-------------+\n| Domain name |\n+-------------+\n+-------------+\n" {
		t.Errorf("--print-empty:\n%s", out)
	}
}

// tenks drives vbmc from its virtualbmc_domain Ansible module: every
// command is `vbmc --no-daemon --log-file FILE ...`, must exit 0, and its
// -f json is read by key. This runs the module's logic, twice (the second
// run stops, deletes and re-adds the BMC it finds running), with its exact
// command lines against a libvirt domain.
func TestTenksVirtualBMCDomain(t *testing.T) {
	defineDomains(t, "test:///default", testDomain, "govbmc-tenks-0")
	e := newEnv(t)
	e.startDaemon()
	logFile := filepath.Join(t.TempDir(), "vbmc-govbmc-tenks-0.log")
	tk := &tenks{e: e, logFile: logFile, domain: "govbmc-tenks-0", port: freePort(t), password: "Tenks-pw-3f1"}
	tk.configure()
	tk.configure()
	out, err := testtool.Run(t, 30*time.Second, "ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", fmt.Sprint(tk.port), "-U", "admin", "-P", tk.password, "power", "status")
	if err != nil || !strings.Contains(out, "Chassis Power is") {
		t.Fatalf("the BMC tenks configured: %v\n%s", err, out)
	}
	if _, err := os.Stat(logFile); err != nil {
		t.Errorf("--log-file: %v", err)
	}
	// VirtualBMC never prints a password (show_passwords is off).
	for _, f := range []string{"table", "json", "yaml", "value", "csv", "shell"} {
		for _, cmd := range [][]string{{"show", tk.domain, "-f", f}, {"list", "-f", f}} {
			if cmd[0] == "list" && f == "shell" {
				continue
			}
			if out := e.vbmc(cmd...); strings.Contains(out, tk.password) {
				t.Errorf("vbmc %v prints the password:\n%s", cmd, out)
			}
		}
	}
	if out := e.vbmc("show", tk.domain, "-f", "shell", "--prefix", "bmc_", "-c", "password", "-c", "status"); out != "bmc_password=\"***\"\nbmc_status=\"running\"\n" {
		t.Errorf("show -f shell:\n%s", out)
	}
}

// tenks is the state of tenks' virtualbmc_domain module for one domain.
type tenks struct {
	e               *env
	logFile, domain string
	port            int
	password        string
}

func (k *tenks) vbmc(args ...string) string {
	k.e.t.Helper()
	return k.e.vbmc(append([]string{"--no-daemon", "--log-file", k.logFile}, args...)...)
}

// get is the module's _get_domain: by `list -f json` keyed on "Domain
// name" when the domain may be missing, else by `show -f json` as a
// Property -> Value map.
func (k *tenks) get(allowMissing bool) map[string]any {
	k.e.t.Helper()
	var rows []map[string]any
	args := []string{"show", k.domain, "-f", "json"}
	if allowMissing {
		args = []string{"list", "-f", "json"}
	}
	out := k.vbmc(args...)
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		k.e.t.Fatalf("vbmc %v: %v\n%s", args, err, out)
	}
	byName, props := map[string]map[string]any{}, map[string]any{}
	for _, r := range rows {
		if allowMissing {
			byName[r["Domain name"].(string)] = r
			continue
		}
		if _, ok := r["Value"]; len(r) != 2 || !ok {
			k.e.t.Fatalf("show -f json: %v is not a Property/Value pair", r)
		}
		props[r["Property"].(string)] = r["Value"]
	}
	if allowMissing {
		return byName[k.domain]
	}
	return props
}

func (k *tenks) wait(what string, done func() bool) {
	k.e.t.Helper()
	for range 60 {
		if done() {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	k.e.t.Fatalf("Timed out waiting for domain %s to %s", k.domain, what)
}

// configure is the module's _virtualbmc_domain with state=present.
func (k *tenks) configure() {
	k.e.t.Helper()
	domain := k.get(true)
	if domain != nil && domain["Status"] == "running" {
		k.vbmc("stop", k.domain)
		k.wait("reach status down", func() bool { return k.get(false)["status"] == "down" })
	}
	if domain != nil {
		k.vbmc("delete", k.domain)
		k.wait("be deleted", func() bool { return k.get(true) == nil })
	}
	k.vbmc("add", k.domain, "--address", "127.0.0.1", "--port", fmt.Sprint(k.port),
		"--username", "admin", "--password", k.password, "--libvirt-uri", "test:///default")
	k.wait("be added", func() bool { return k.get(true) != nil })
	k.vbmc("start", k.domain)
	k.wait("reach status running", func() bool { return k.get(false)["status"] == "running" })
}

package redfish_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/redfish"
)

// testFleet is a Fleet over fixed nodes with simulated machines.
type testFleet struct {
	mu      sync.Mutex
	systems []redfish.System
	sims    map[string]*bmc.SimMachine
}

func (f *testFleet) Systems() []redfish.System {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]redfish.System(nil), f.systems...)
}

func (f *testFleet) System(id string) (redfish.System, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.systems {
		if s.ID == id || s.Name == id {
			return s, true
		}
	}
	return redfish.System{}, false
}

func (f *testFleet) add(t testing.TB, name string, port int, users ...bmc.User) *bmc.SimMachine {
	t.Helper()
	n := bmc.Node{Name: name, Address: "127.0.0.1", Port: port, Users: users, Backend: bmc.Backend{Type: bmc.BackendSim, Config: bmc.SimConfig{SoftOffDelay: 50 * time.Millisecond}}}
	m, err := bmc.NewSimMachine(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	u, _ := m.UUID(context.Background())
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sims == nil {
		f.sims = map[string]*bmc.SimMachine{}
	}
	f.sims[name] = m
	f.systems = append(f.systems, redfish.System{ID: u.String(), Name: name, Users: users, IPMIAddress: n.Address, IPMIPort: port, Machine: m})
	sort.Slice(f.systems, func(i, j int) bool { return f.systems[i].Name < f.systems[j].Name })
	return m
}

var (
	admin    = bmc.User{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}
	operator = bmc.User{Name: "op", Password: "oppass", Privilege: bmc.PrivilegeOperator}
	reader   = bmc.User{Name: "ro", Password: "ropass", Privilege: bmc.PrivilegeUser}
	other    = bmc.User{Name: "other", Password: "otherpw", Privilege: bmc.PrivilegeAdministrator}
)

// env is a Redfish server over two nodes: node-a (admin, op, ro) and
// node-b (other).
type env struct {
	t      *testing.T
	fleet  *testFleet
	srv    *httptest.Server
	a, b   *bmc.SimMachine
	aID    string
	client *http.Client
}

func newEnv(t *testing.T, opts ...func(*redfish.Options)) *env {
	t.Helper()
	f := &testFleet{}
	e := &env{t: t, fleet: f}
	e.a = f.add(t, "node-a", 6230, admin, operator, reader)
	e.b = f.add(t, "node-b", 6231, other)
	sa, _ := f.System("node-a")
	e.aID = sa.ID
	// A GET waits for the machine as long as it takes (what the machine
	// says right after a change made behind the server's back is what the
	// tests check), but in TestGetAnswersWhileTheMachineIsBusy.
	o := redfish.Options{FirmwareVersion: "1.2.3", Port: 8000, TLS: true, MachinePatience: time.Minute}
	for _, fn := range opts {
		fn(&o)
	}
	e.srv = httptest.NewTLSServer(redfish.New(f, o))
	t.Cleanup(e.srv.Close)
	e.client = e.srv.Client()
	return e
}

type resp struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (e *env) do(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "basic" {
			u, p, _ := strings.Cut(hdr[i+1], ":")
			req.SetBasicAuth(u, p)
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, body: raw}
	_ = json.Unmarshal(raw, &r.json)
	return r
}

func (e *env) admin(method, path string, body any, hdr ...string) resp {
	return e.do(method, path, body, append([]string{"basic", "admin:password"}, hdr...)...)
}

func (r resp) str(path ...string) string {
	var v any = r.json
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// errorInfo returns the MessageId and RelatedProperties of an error body.
func (r resp) errorInfo() (string, []any) {
	e, _ := r.json["error"].(map[string]any)
	infos, _ := e["@Message.ExtendedInfo"].([]any)
	if len(infos) == 0 {
		return "", nil
	}
	m := infos[0].(map[string]any)
	rel, _ := m["RelatedProperties"].([]any)
	id, _ := m["MessageId"].(string)
	return id, rel
}

func expect(t *testing.T, r resp, status int, what string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
	}
	if r.header.Get("OData-Version") != "4.0" {
		t.Fatalf("%s: OData-Version %q", what, r.header.Get("OData-Version"))
	}
}

func expectError(t *testing.T, r resp, status int, msgID, property string) {
	t.Helper()
	expect(t, r, status, msgID)
	id, rel := r.errorInfo()
	if !strings.HasSuffix(id, "."+msgID) || !strings.HasPrefix(id, "Base.") {
		t.Fatalf("MessageId %q, want Base.*.%s; body %s", id, msgID, r.body)
	}
	if property != "" && (len(rel) != 1 || rel[0] != "#/"+property) {
		t.Fatalf("RelatedProperties %v, want #/%s", rel, property)
	}
}

func TestServiceRootNeedsNoCredentialsButNothingElse(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/redfish/v1/", nil)
	expect(t, r, 200, "root")
	if r.str("Systems", "@odata.id") != "/redfish/v1/Systems" || r.str("Links", "Sessions", "@odata.id") != "/redfish/v1/SessionService/Sessions" || r.str("@odata.type") == "" || r.str("@odata.context") == "" {
		t.Fatalf("root %s", r.body)
	}
	for _, p := range []string{"/redfish/v1/Systems", "/redfish/v1/Systems/" + e.aID, "/redfish/v1/Managers", "/redfish/v1/Chassis", "/redfish/v1/SessionService"} {
		r := e.do("GET", p, nil)
		expectError(t, r, 401, "NoValidSession", "")
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("%s: WWW-Authenticate %q", p, r.header.Get("WWW-Authenticate"))
		}
	}
	expectError(t, e.do("GET", "/redfish/v1/Systems", nil, "basic", "admin:wrong"), 401, "NoValidSession", "")
	expectError(t, e.do("GET", "/redfish/v1/Systems", nil, "X-Auth-Token", "nope"), 401, "NoValidSession", "")
}

func members(r resp) []string {
	var out []string
	ms, _ := r.json["Members"].([]any)
	for _, m := range ms {
		out = append(out, m.(map[string]any)["@odata.id"].(string))
	}
	return out
}

func TestUsersSeeAndTouchOnlyTheirSystems(t *testing.T) {
	e := newEnv(t)
	sb, _ := e.fleet.System("node-b")
	for _, coll := range []string{"Systems", "Managers", "Chassis"} {
		r := e.admin("GET", "/redfish/v1/"+coll, nil)
		expect(t, r, 200, coll)
		if got := members(r); len(got) != 1 || got[0] != "/redfish/v1/"+coll+"/"+e.aID {
			t.Fatalf("admin of node-a sees %s %v", coll, got)
		}
		r = e.do("GET", "/redfish/v1/"+coll, nil, "basic", "other:otherpw")
		if got := members(r); len(got) != 1 || got[0] != "/redfish/v1/"+coll+"/"+sb.ID {
			t.Fatalf("other sees %s %v", coll, got)
		}
	}
	// Basic credentials of node-a are no credentials on node-b.
	expectError(t, e.admin("GET", "/redfish/v1/Systems/"+sb.ID, nil), 401, "NoValidSession", "")
	expectError(t, e.admin("POST", "/redfish/v1/Systems/node-b/Actions/ComputerSystem.Reset", map[string]any{"ResetType": "On"}), 401, "NoValidSession", "")
	// A session of node-a's admin does not find node-b at all.
	tok := e.login("admin", "password")
	expectError(t, e.do("GET", "/redfish/v1/Systems/"+sb.ID, nil, "X-Auth-Token", tok), 404, "ResourceMissingAtURI", "")
	expectError(t, e.do("GET", "/redfish/v1/Systems/nosuch", nil, "X-Auth-Token", tok), 404, "ResourceMissingAtURI", "")
	expectError(t, e.admin("GET", "/redfish/v1/Systems/nosuch", nil), 404, "ResourceMissingAtURI", "")
	if s, _ := e.b.PowerState(context.Background()); s != bmc.PowerOff {
		t.Fatal("node-b was powered on by node-a's admin")
	}
}

func (e *env) login(user, pass string) string {
	e.t.Helper()
	r := e.do("POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": user, "Password": pass})
	expect(e.t, r, 201, "login")
	tok := r.header.Get("X-Auth-Token")
	if tok == "" || !strings.HasPrefix(r.header.Get("Location"), "/redfish/v1/SessionService/Sessions/") {
		e.t.Fatalf("login headers %v", r.header)
	}
	return tok
}

func TestSystemByUUIDAndName(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{e.aID, "node-a", e.aID + "/"} {
		r := e.admin("GET", "/redfish/v1/Systems/"+id, nil)
		expect(t, r, 200, id)
		if r.str("@odata.id") != "/redfish/v1/Systems/"+e.aID || r.str("UUID") != e.aID || r.str("PowerState") != "Off" || r.header.Get("ETag") == "" {
			t.Fatalf("%s: %s", id, r.body)
		}
		if r.str("@odata.type") != "#ComputerSystem.v1_13_0.ComputerSystem" || r.str("@odata.context") == "" {
			t.Fatalf("odata: %s", r.body)
		}
	}
	r := e.admin("GET", "/redfish/v1/Systems/"+e.aID, nil)
	boot := r.json["Boot"].(map[string]any)
	for _, k := range []string{"BootSourceOverrideTarget@Redfish.AllowableValues", "BootSourceOverrideEnabled@Redfish.AllowableValues", "BootSourceOverrideMode@Redfish.AllowableValues"} {
		if _, ok := boot[k]; !ok {
			t.Fatalf("Boot lacks %s: %v", k, boot)
		}
	}
	if r.str("Links", "") != "" || r.json["ProcessorSummary"] == nil || r.json["MemorySummary"] == nil {
		t.Fatalf("summaries: %s", r.body)
	}
	reset := r.json["Actions"].(map[string]any)["#ComputerSystem.Reset"].(map[string]any)
	if len(reset["ResetType@Redfish.AllowableValues"].([]any)) != 8 {
		t.Fatalf("reset %v", reset)
	}
}

func TestBootOverrideOnceIsConsumedByTheNextBoot(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := "/redfish/v1/Systems/" + e.aID
	r := e.admin("PATCH", p, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once", "BootSourceOverrideMode": "UEFI"}})
	expect(t, r, 200, "patch")
	if o, _ := e.a.BootOverride(ctx); o.Device != bmc.BootPXE || o.Persistent || !o.EFI {
		t.Fatalf("machine override %+v", o)
	}
	r = e.admin("GET", p, nil)
	if r.str("Boot", "BootSourceOverrideTarget") != "Pxe" || r.str("Boot", "BootSourceOverrideEnabled") != "Once" || r.str("Boot", "BootSourceOverrideMode") != "UEFI" {
		t.Fatalf("boot %v", r.json["Boot"])
	}
	expect(t, e.admin("POST", p+"/Actions/ComputerSystem.Reset", map[string]any{"ResetType": "On"}), 204, "on")
	if boots := e.a.Boots(); len(boots) != 1 || boots[0].Device != bmc.BootPXE || !boots[0].EFI {
		t.Fatalf("boots %+v", boots)
	}
	r = e.admin("GET", p, nil)
	if r.str("PowerState") != "On" || r.str("Boot", "BootSourceOverrideEnabled") != "Disabled" || r.str("Boot", "BootSourceOverrideTarget") != "None" {
		t.Fatalf("after boot: %s %v", r.str("PowerState"), r.json["Boot"])
	}
	// Continuous stays, and what IPMI sets reads back here.
	expect(t, e.admin("PATCH", p, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Hdd", "BootSourceOverrideEnabled": "Continuous"}}), 200, "continuous")
	expect(t, e.admin("POST", p+"/Actions/ComputerSystem.Reset", map[string]any{"ResetType": "PowerCycle"}), 204, "cycle")
	r = e.admin("GET", p, nil)
	if r.str("Boot", "BootSourceOverrideEnabled") != "Continuous" || r.str("Boot", "BootSourceOverrideTarget") != "Hdd" {
		t.Fatalf("continuous after a cycle: %v", r.json["Boot"])
	}
	_ = e.a.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootCDROM})
	r = e.admin("GET", p, nil)
	if r.str("Boot", "BootSourceOverrideEnabled") != "Once" || r.str("Boot", "BootSourceOverrideTarget") != "Cd" || r.str("Boot", "BootSourceOverrideMode") != "UEFI" {
		t.Fatalf("set over the machine: %v", r.json["Boot"])
	}
	// A target alone is for the next boot; Disabled clears it.
	_ = e.a.SetBootOverride(ctx, bmc.BootOverride{})
	expect(t, e.admin("PATCH", p, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "BiosSetup"}}), 200, "target only")
	if o, _ := e.a.BootOverride(ctx); o.Device != bmc.BootBIOSSetup || o.Persistent {
		t.Fatalf("target only: %+v", o)
	}
	expect(t, e.admin("PATCH", p, map[string]any{"Boot": map[string]any{"BootSourceOverrideEnabled": "Disabled"}}), 200, "disable")
	if o, _ := e.a.BootOverride(ctx); o.Active() {
		t.Fatalf("disabled: %+v", o)
	}
	// UefiHttp is a UEFI network boot and reads back as itself.
	expect(t, e.admin("PATCH", p, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "UefiHttp", "BootSourceOverrideEnabled": "Once"}}), 200, "http")
	if r = e.admin("GET", p, nil); r.str("Boot", "BootSourceOverrideTarget") != "UefiHttp" {
		t.Fatalf("UefiHttp: %v", r.json["Boot"])
	}
	// Legacy mode switches the firmware.
	expect(t, e.admin("PATCH", p, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideMode": "Legacy"}}), 200, "legacy")
	if fw, _ := e.a.Firmware(ctx); fw.EFI {
		t.Fatal("Legacy did not switch the firmware")
	}
	expectError(t, e.admin("PATCH", p, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "UefiHttp"}}), 400, "PropertyValueConflict", "Boot/BootSourceOverrideTarget")
}

func TestResetTypes(t *testing.T) {
	e := newEnv(t)
	p := "/redfish/v1/Systems/" + e.aID + "/Actions/ComputerSystem.Reset"
	state := func() string { return e.admin("GET", "/redfish/v1/Systems/"+e.aID, nil).str("PowerState") }
	steps := []struct {
		reset, want string
		status      int
	}{
		{"ForceRestart", "Off", 409},
		{"Nmi", "Off", 409},
		{"On", "On", 204},
		{"ForceOn", "On", 204},
		{"ForceRestart", "On", 204},
		{"Nmi", "On", 204},
		{"PowerCycle", "On", 204},
		{"GracefulRestart", "On", 204},
		{"ForceOff", "Off", 204},
		{"On", "On", 204},
		{"GracefulShutdown", "", 204},
	}
	for _, s := range steps {
		r := e.admin("POST", p, map[string]any{"ResetType": s.reset})
		if r.status != s.status {
			t.Fatalf("%s: %d %s", s.reset, r.status, r.body)
		}
		if s.want != "" && state() != s.want {
			t.Fatalf("after %s: %s", s.reset, state())
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for state() != "Off" {
		if time.Now().After(deadline) {
			t.Fatal("GracefulShutdown never powered off")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(e.a.Transcript(), "NMI") || !strings.Contains(e.a.Transcript(), "ACPI reboot") {
		t.Fatalf("console: %s", e.a.Transcript())
	}
	expectError(t, e.admin("POST", p, map[string]any{"ResetType": "Explode"}), 400, "ActionParameterValueNotInList", "")
	expectError(t, e.admin("POST", p, map[string]any{}), 400, "ActionParameterMissing", "")
	expectError(t, e.admin("POST", p, map[string]any{"ResetType": 1}), 400, "ActionParameterValueTypeError", "")
	expectError(t, e.admin("POST", p, map[string]any{"ResetType": "On", "Force": true}), 400, "ActionParameterUnknown", "")
}

func TestPrivilegesPerRole(t *testing.T) {
	e := newEnv(t)
	sys := "/redfish/v1/Systems/" + e.aID
	reset := sys + "/Actions/ComputerSystem.Reset"
	mgr := "/redfish/v1/Managers/" + e.aID
	bootPatch := map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Pxe"}}
	date := map[string]any{"DateTime": time.Now().UTC().Format(time.RFC3339)}
	for _, c := range []struct {
		cred                   string
		get, power, boot, date int
	}{
		{"ro:ropass", 200, 403, 403, 403},
		{"op:oppass", 200, 204, 200, 403},
		{"admin:password", 200, 204, 200, 200},
	} {
		if r := e.do("GET", sys, nil, "basic", c.cred); r.status != c.get {
			t.Errorf("%s GET: %d", c.cred, r.status)
		}
		r := e.do("POST", reset, map[string]any{"ResetType": "On"}, "basic", c.cred)
		if r.status != c.power {
			t.Errorf("%s reset: %d", c.cred, r.status)
		}
		if r.status == 403 {
			expectError(t, r, 403, "InsufficientPrivilege", "")
		}
		if r := e.do("PATCH", sys, bootPatch, "basic", c.cred); r.status != c.boot {
			t.Errorf("%s boot: %d", c.cred, r.status)
		}
		if r := e.do("PATCH", mgr, date, "basic", c.cred); r.status != c.date {
			t.Errorf("%s DateTime: %d %s", c.cred, r.status, r.body)
		}
	}
}

func TestErrorsNameTheProperty(t *testing.T) {
	e := newEnv(t)
	p := "/redfish/v1/Systems/" + e.aID
	expectError(t, e.admin("PATCH", p, map[string]any{"PowerState": "On"}), 400, "PropertyNotWritable", "PowerState")
	expectError(t, e.admin("PATCH", p, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget@Redfish.AllowableValues": []string{}}}), 400, "PropertyNotWritable", "Boot/BootSourceOverrideTarget@Redfish.AllowableValues")
	expectError(t, e.admin("PATCH", p, map[string]any{"Frobnicate": 1}), 400, "PropertyUnknown", "Frobnicate")
	expectError(t, e.admin("PATCH", p, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Tape"}}), 400, "PropertyValueNotInList", "Boot/BootSourceOverrideTarget")
	expectError(t, e.admin("PATCH", p, map[string]any{"Boot": map[string]any{"BootSourceOverrideEnabled": true}}), 400, "PropertyValueTypeError", "Boot/BootSourceOverrideEnabled")
	expectError(t, e.admin("PATCH", p, map[string]any{"Boot": "Pxe"}), 400, "PropertyValueTypeError", "Boot")
	expectError(t, e.admin("PATCH", p, `{"Boot": {`), 400, "MalformedJSON", "")
	expectError(t, e.admin("PATCH", p, `[1,2]`), 400, "MalformedJSON", "")
	expectError(t, e.admin("PATCH", p, `{} {}`), 400, "MalformedJSON", "")
	huge := `{"Boot": {"BootSourceOverrideTarget": "` + strings.Repeat("x", 1<<20) + `"}}`
	expectError(t, e.admin("PATCH", p, huge), 413, "GeneralError", "")

	r := e.admin("DELETE", p, nil)
	expectError(t, r, 405, "OperationNotAllowed", "")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "PATCH") {
		t.Fatalf("Allow %q", allow)
	}
	expectError(t, e.admin("GET", "/redfish/v1/Nothing", nil), 404, "ResourceMissingAtURI", "")
	expectError(t, e.admin("GET", p+"/EthernetInterfaces/nope", nil), 404, "ResourceMissingAtURI", "")

	// If-Match: the current ETag (strong or weak) passes, another is 412.
	etag := e.admin("GET", p, nil).header.Get("ETag")
	patch := map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Cd"}}
	expectError(t, e.admin("PATCH", p, patch, "If-Match", `W/"stale"`), 412, "PreconditionFailed", "")
	expect(t, e.admin("PATCH", p, patch, "If-Match", etag), 200, "If-Match current")
	expectError(t, e.admin("PATCH", p, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Pxe"}}, "If-Match", etag), 412, "PreconditionFailed", "")
}

func TestSessions(t *testing.T) {
	e := newEnv(t, func(o *redfish.Options) { o.MaxSessions = 3 })
	r := e.do("POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": "admin", "Password": "password"})
	expect(t, r, 201, "login")
	tok, loc := r.header.Get("X-Auth-Token"), r.header.Get("Location")
	if r.str("UserName") != "admin" || r.str("@odata.id") != loc || strings.Contains(string(r.body), tok) {
		t.Fatalf("session %s", r.body)
	}
	expect(t, e.do("GET", "/redfish/v1/Systems/"+e.aID, nil, "X-Auth-Token", tok), 200, "with token")
	expect(t, e.do("GET", loc, nil, "X-Auth-Token", tok), 200, "own session")
	if got := members(e.do("GET", "/redfish/v1/SessionService/Sessions", nil, "X-Auth-Token", tok)); len(got) != 1 || got[0] != loc {
		t.Fatalf("sessions %v", got)
	}
	// Someone else's session is not there for other.
	expectError(t, e.do("DELETE", loc, nil, "basic", "other:otherpw"), 404, "ResourceMissingAtURI", "")
	expect(t, e.do("DELETE", loc, nil, "X-Auth-Token", tok), 204, "logout")
	expectError(t, e.do("GET", "/redfish/v1/Systems/"+e.aID, nil, "X-Auth-Token", tok), 401, "NoValidSession", "")

	expectError(t, e.do("POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": "admin", "Password": "bad"}), 401, "NoValidSession", "")
	expectError(t, e.do("POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": "admin"}), 400, "PropertyMissing", "Password")
	expectError(t, e.do("POST", "/redfish/v1/SessionService/Sessions", map[string]any{"UserName": "admin", "Password": "password", "Role": "x"}), 400, "PropertyUnknown", "Role")

	// The table is bounded: the least recently used session makes room.
	first := e.login("admin", "password")
	var toks []string
	for i := 0; i < 3; i++ {
		toks = append(toks, e.login("op", "oppass"))
	}
	expectError(t, e.do("GET", "/redfish/v1/SessionService", nil, "X-Auth-Token", first), 401, "NoValidSession", "")
	for _, tok := range toks {
		expect(t, e.do("GET", "/redfish/v1/SessionService", nil, "X-Auth-Token", tok), 200, "newer session")
	}
}

func TestSessionsExpireWhenIdle(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, func(o *redfish.Options) { o.Now = clock; o.SessionTimeout = time.Minute })
	tok := e.login("admin", "password")
	for i := 0; i < 3; i++ {
		mu.Lock()
		now = now.Add(50 * time.Second)
		mu.Unlock()
		expect(t, e.do("GET", "/redfish/v1/Systems", nil, "X-Auth-Token", tok), 200, "used in time")
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	expectError(t, e.do("GET", "/redfish/v1/Systems", nil, "X-Auth-Token", tok), 401, "NoValidSession", "")
}

func TestFailedLoginsAreThrottledPerAddress(t *testing.T) {
	e := newEnv(t, func(o *redfish.Options) { o.AuthFailureLimit = 5 })
	tok := e.login("admin", "password")
	for i := 0; i < 5; i++ {
		expectError(t, e.do("GET", "/redfish/v1/Systems", nil, "basic", "admin:guess"), 401, "NoValidSession", "")
	}
	// Blocked: even the right password is refused, and says when to retry.
	r := e.admin("GET", "/redfish/v1/Systems", nil)
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("after 5 failures: %d %v", r.status, r.header)
	}
	r = e.do("POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": "admin", "Password": "password"})
	if r.status != 429 {
		t.Fatalf("login while blocked: %d", r.status)
	}
	// A session opened before keeps working, and the root is public.
	expect(t, e.do("GET", "/redfish/v1/Systems", nil, "X-Auth-Token", tok), 200, "session while blocked")
	expect(t, e.do("GET", "/redfish/v1", nil), 200, "root while blocked")
}

func TestInventoryBiosAndManager(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sys := "/redfish/v1/Systems/" + e.aID
	hw, _ := e.a.Inventory(ctx)

	nics := e.admin("GET", sys+"/EthernetInterfaces", nil)
	expect(t, nics, 200, "nics")
	m := members(nics)
	if len(m) != 1 {
		t.Fatalf("nics %s", nics.body)
	}
	if nic := e.admin("GET", m[0], nil); nic.str("MACAddress") != hw.NICs[0].MAC {
		t.Fatalf("nic %s, want %s", nic.body, hw.NICs[0].MAC)
	}
	cpu := e.admin("GET", members(e.admin("GET", sys+"/Processors", nil))[0], nil)
	if cpu.json["TotalThreads"].(float64) != float64(hw.CPUs) {
		t.Fatalf("cpu %s", cpu.body)
	}
	dimm := e.admin("GET", members(e.admin("GET", sys+"/Memory", nil))[0], nil)
	if dimm.json["CapacityMiB"].(float64) != float64(hw.MemoryMiB) {
		t.Fatalf("memory %s", dimm.body)
	}
	st := e.admin("GET", members(e.admin("GET", sys+"/SimpleStorage", nil))[0], nil)
	if devs := st.json["Devices"].([]any); len(devs) != 1 {
		t.Fatalf("storage %s", st.body)
	}

	// BIOS: a PATCH is pending until the next boot.
	bios := e.admin("GET", sys+"/Bios", nil)
	expect(t, bios, 200, "bios")
	attrs := bios.json["Attributes"].(map[string]any)
	if attrs["ProcTurboMode"] != "Enabled" || attrs["QuietBoot"] != false || attrs["PowerOnDelaySeconds"] != float64(0) || attrs["BootMode"] != "Bios" {
		t.Fatalf("bios %s", bios.body)
	}
	set := sys + "/Bios/Settings"
	expect(t, e.admin("PATCH", set, map[string]any{"Attributes": map[string]any{"ProcTurboMode": "Disabled", "QuietBoot": true, "PowerOnDelaySeconds": 5}}), 200, "bios patch")
	if p := e.admin("GET", set, nil); len(p.json["Attributes"].(map[string]any)) != 3 {
		t.Fatalf("pending %s", p.body)
	}
	if e.admin("GET", sys+"/Bios", nil).json["Attributes"].(map[string]any)["ProcTurboMode"] != "Enabled" {
		t.Fatal("BIOS setting applied before a boot")
	}
	expectError(t, e.admin("PATCH", set, map[string]any{"Attributes": map[string]any{"ProcTurboMode": "Maybe"}}), 400, "PropertyValueNotInList", "Attributes/ProcTurboMode")
	expectError(t, e.admin("PATCH", set, map[string]any{"Attributes": map[string]any{"PowerOnDelaySeconds": "5"}}), 400, "PropertyValueTypeError", "Attributes/PowerOnDelaySeconds")
	expectError(t, e.admin("PATCH", set, map[string]any{"Attributes": map[string]any{"Nope": "5"}}), 400, "PropertyUnknown", "Attributes/Nope")
	expectError(t, e.admin("PATCH", sys+"/Bios", map[string]any{"Attributes": map[string]any{}}), 405, "OperationNotAllowed", "")
	expect(t, e.admin("POST", sys+"/Actions/ComputerSystem.Reset", map[string]any{"ResetType": "On"}), 204, "on")
	attrs = e.admin("GET", sys+"/Bios", nil).json["Attributes"].(map[string]any)
	if attrs["ProcTurboMode"] != "Disabled" || attrs["QuietBoot"] != true || attrs["PowerOnDelaySeconds"] != float64(5) {
		t.Fatalf("after boot: %v", attrs)
	}
	expect(t, e.admin("POST", sys+"/Bios/Actions/Bios.ResetBios", nil), 204, "ResetBios")
	expect(t, e.admin("POST", sys+"/Actions/ComputerSystem.Reset", map[string]any{"ResetType": "ForceRestart"}), 204, "restart")
	if attrs = e.admin("GET", sys+"/Bios", nil).json["Attributes"].(map[string]any); attrs["ProcTurboMode"] != "Enabled" {
		t.Fatalf("after ResetBios: %v", attrs)
	}
	reg := e.admin("GET", "/redfish/v1/Registries/BiosAttributeRegistry/BiosAttributeRegistry", nil)
	expect(t, reg, 200, "registry")

	// SecureBoot needs UEFI.
	expectError(t, e.admin("PATCH", sys+"/SecureBoot", map[string]any{"SecureBootEnable": true}), 400, "PropertyValueConflict", "SecureBootEnable")
	expect(t, e.admin("PATCH", sys, map[string]any{"Boot": map[string]any{"BootSourceOverrideMode": "UEFI"}}), 200, "uefi")
	expect(t, e.admin("PATCH", sys+"/SecureBoot", map[string]any{"SecureBootEnable": true}), 200, "secure boot")
	if sb := e.admin("GET", sys+"/SecureBoot", nil); sb.json["SecureBootEnable"] != true {
		t.Fatalf("secure boot %s", sb.body)
	}
	expectError(t, e.admin("PATCH", sys+"/SecureBoot", map[string]any{"SecureBootMode": "SetupMode"}), 400, "PropertyNotWritable", "SecureBootMode")

	// Manager: DateTime is set and read back; FirmwareVersion; links.
	mgr := "/redfish/v1/Managers/" + e.aID
	r := e.admin("GET", mgr, nil)
	if r.str("FirmwareVersion") != "1.2.3" || r.str("ManagerType") != "BMC" || r.json["Links"].(map[string]any)["ManagerForServers"].([]any)[0].(map[string]any)["@odata.id"] != sys {
		t.Fatalf("manager %s", r.body)
	}
	want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	expect(t, e.admin("PATCH", mgr, map[string]any{"DateTime": want.Format(time.RFC3339), "DateTimeLocalOffset": "+02:00"}), 200, "DateTime")
	got, err := time.Parse(time.RFC3339, e.admin("GET", mgr, nil).str("DateTime"))
	if err != nil || got.Sub(want) < 0 || got.Sub(want) > 5*time.Second {
		t.Fatalf("DateTime %v (%v), want about %v", got, err, want)
	}
	if _, off := got.Zone(); off != 7200 {
		t.Fatalf("DateTime %v not in +02:00", got)
	}
	expectError(t, e.admin("PATCH", mgr, map[string]any{"DateTime": "yesterday"}), 400, "PropertyValueFormatError", "DateTime")
	expectError(t, e.admin("PATCH", mgr, map[string]any{"FirmwareVersion": "9"}), 400, "PropertyNotWritable", "FirmwareVersion")
	np := e.admin("GET", mgr+"/NetworkProtocol", nil)
	if np.json["IPMI"].(map[string]any)["Port"] != float64(6230) || np.json["HTTPS"].(map[string]any)["Port"] != float64(8000) {
		t.Fatalf("network protocol %s", np.body)
	}
	ch := e.admin("GET", "/redfish/v1/Chassis/"+e.aID, nil)
	if ch.json["Links"].(map[string]any)["ComputerSystems"].([]any)[0].(map[string]any)["@odata.id"] != sys {
		t.Fatalf("chassis %s", ch.body)
	}
}

func TestBackendFailuresAreRetryableAndSayNothingInternal(t *testing.T) {
	e := newEnv(t)
	e.a.SetFault(errors.New("dial unix /var/run/libvirt/libvirt-sock: connection refused"))
	r := e.admin("GET", "/redfish/v1/Systems/"+e.aID, nil)
	expectError(t, r, 503, "ServiceTemporarilyUnavailable", "")
	if r.header.Get("Retry-After") == "" || strings.Contains(string(r.body), "libvirt-sock") || strings.Contains(string(r.body), "node-a") {
		t.Fatalf("503: %v %s", r.header, r.body)
	}
	// Other systems are unaffected.
	expect(t, e.do("GET", "/redfish/v1/Systems/node-b", nil, "basic", "other:otherpw"), 200, "node-b")
	e.a.SetFault(nil)
	expect(t, e.admin("GET", "/redfish/v1/Systems/"+e.aID, nil), 200, "recovered")
}

package redfish_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/redfish"
)

// image is a test image of n random bytes.
func image(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) op(method, path string, body any, hdr ...string) resp {
	return e.do(method, path, body, append([]string{"basic", "op:oppass"}, hdr...)...)
}

func mediaBases(e *env) []string {
	return []string{"/redfish/v1/Managers/" + e.aID + "/VirtualMedia", "/redfish/v1/Systems/" + e.aID + "/VirtualMedia"}
}

func TestVirtualMediaResourcesAtManagerAndSystem(t *testing.T) {
	e := newEnv(t)
	sysURI, mgrURI := "/redfish/v1/Systems/"+e.aID, "/redfish/v1/Managers/"+e.aID
	if got := e.admin("GET", sysURI, nil).str("VirtualMedia", "@odata.id"); got != sysURI+"/VirtualMedia" {
		t.Fatalf("System's VirtualMedia link %q", got)
	}
	if got := e.admin("GET", mgrURI, nil).str("VirtualMedia", "@odata.id"); got != mgrURI+"/VirtualMedia" {
		t.Fatalf("Manager's VirtualMedia link %q", got)
	}
	for _, base := range mediaBases(e) {
		r := e.do("GET", base, nil, "basic", "ro:ropass")
		expect(t, r, http.StatusOK, "collection")
		var ids []string
		for _, m := range r.json["Members"].([]any) {
			ids = append(ids, m.(map[string]any)["@odata.id"].(string))
		}
		want := []string{base + "/Cd", base + "/USBStick", base + "/Floppy"}
		if strings.Join(ids, " ") != strings.Join(want, " ") || r.json["Members@odata.count"] != float64(3) {
			t.Fatalf("members %v, want %v", ids, want)
		}
		if r.str("@odata.type") != "#VirtualMediaCollection.VirtualMediaCollection" {
			t.Fatalf("collection type %q", r.str("@odata.type"))
		}
		cd := e.do("GET", base+"/Cd", nil, "basic", "ro:ropass")
		expect(t, cd, http.StatusOK, "Cd")
		for k, want := range map[string]any{
			"@odata.id": base + "/Cd", "@odata.type": "#VirtualMedia.v1_4_0.VirtualMedia",
			"@odata.context": "/redfish/v1/$metadata#VirtualMedia.VirtualMedia",
			"Id":             "Cd", "Inserted": false, "WriteProtected": true, "ConnectedVia": "NotConnected",
			"Image": nil, "ImageName": nil, "TransferProtocolType": nil, "VerifyCertificate": false,
		} {
			if got, ok := cd.json[k]; !ok || got != want {
				t.Fatalf("Cd %s = %v, want %v", k, got, want)
			}
		}
		if types := cd.json["MediaTypes"].([]any); len(types) != 2 || types[0] != "CD" || types[1] != "DVD" {
			t.Fatalf("Cd MediaTypes %v", types)
		}
		if cd.str("Actions", "#VirtualMedia.InsertMedia", "target") != base+"/Cd/Actions/VirtualMedia.InsertMedia" ||
			cd.str("Actions", "#VirtualMedia.EjectMedia", "target") != base+"/Cd/Actions/VirtualMedia.EjectMedia" {
			t.Fatalf("Cd actions %v", cd.json["Actions"])
		}
		if !strings.HasPrefix(cd.header.Get("ETag"), `W/"`) {
			t.Fatalf("Cd has no ETag: %v", cd.header)
		}
		usb := e.admin("GET", base+"/USBStick", nil)
		if types := usb.json["MediaTypes"].([]any); len(types) != 1 || types[0] != "USBStick" {
			t.Fatalf("USBStick MediaTypes %v", types)
		}
		expectError(t, e.admin("GET", base+"/Dvd9", nil), http.StatusNotFound, "ResourceMissingAtURI", "")
	}
	// node-b's user sees none of node-a's media.
	expect(t, e.do("GET", mediaBases(e)[0], nil, "basic", "other:otherpw"), http.StatusUnauthorized, "other node's user")
}

func TestInsertMediaBootsAndEjects(t *testing.T) {
	e := newEnv(t)
	iso := image(t, 64<<10)
	ms := testtool.NewMediaServer(t, iso)
	ctx := context.Background()
	for i, base := range mediaBases(e) {
		scheme := []string{"HTTP", "HTTPS"}[i]
		srv := []*httptest.Server{ms.HTTP, ms.HTTPS}[i]
		url := srv.URL + "/image"
		r := e.op("POST", base+"/Cd/Actions/VirtualMedia.InsertMedia",
			map[string]any{"Image": url, "Inserted": true, "WriteProtected": true, "TransferProtocolType": scheme})
		expect(t, r, http.StatusNoContent, "InsertMedia "+scheme)
		// The other path shows the same device.
		other := mediaBases(e)[1-i]
		cd := e.admin("GET", other+"/Cd", nil)
		for k, want := range map[string]any{"Image": url, "ImageName": "image", "Inserted": true, "WriteProtected": true,
			"ConnectedVia": "URI", "TransferProtocolType": scheme, "TransferMethod": "Upload"} {
			if cd.json[k] != want {
				t.Fatalf("after insert over %s: %s = %v, want %v", scheme, k, cd.json[k], want)
			}
		}
		st, err := e.a.Media(ctx, bmc.SlotCD)
		if err != nil || !st.Inserted || st.Size != int64(len(iso)) {
			t.Fatalf("machine's Cd %+v, %v", st, err)
		}
		// Busy: eject first.
		expectError(t, e.op("POST", base+"/Cd/Actions/VirtualMedia.InsertMedia", map[string]any{"Image": url}), http.StatusConflict, "ResourceInUse", "")
		// A Once Cd override boots it: the simulated console names it.
		reset := func(rt string) {
			t.Helper()
			expect(t, e.op("POST", "/redfish/v1/Systems/"+e.aID+"/Actions/ComputerSystem.Reset", map[string]any{"ResetType": rt}), http.StatusNoContent, rt)
		}
		reset("ForceOff")
		expect(t, e.op("PATCH", "/redfish/v1/Systems/"+e.aID, map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}}), http.StatusOK, "Once Cd")
		const line = "Booting virtual media Cd: image"
		before := strings.Count(e.a.Transcript(), line)
		reset("On")
		if strings.Count(e.a.Transcript(), line) != before+1 {
			t.Fatalf("the Once Cd boot did not boot the image:\n%s", e.a.Transcript())
		}
		if got := e.admin("GET", "/redfish/v1/Systems/"+e.aID, nil).str("Boot", "BootSourceOverrideEnabled"); got != "Disabled" {
			t.Fatalf("after the boot the override reads %s", got)
		}
		expect(t, e.op("POST", base+"/Cd/Actions/VirtualMedia.EjectMedia", nil), http.StatusNoContent, "EjectMedia")
		cd = e.admin("GET", base+"/Cd", nil)
		if cd.json["Inserted"] != false || cd.json["Image"] != nil || cd.json["ConnectedVia"] != "NotConnected" {
			t.Fatalf("after eject: %s", cd.body)
		}
		// Ejecting an empty device succeeds, as sushy's empty {} does.
		expect(t, e.op("POST", base+"/Cd/Actions/VirtualMedia.EjectMedia", map[string]any{}), http.StatusNoContent, "EjectMedia again")
	}
}

func TestInsertMediaUSBStickReadOnlyAndWritable(t *testing.T) {
	e := newEnv(t)
	ms := testtool.NewMediaServer(t, image(t, 8<<10))
	base := mediaBases(e)[0]
	for _, wp := range []bool{true, false} {
		expect(t, e.op("POST", base+"/USBStick/Actions/VirtualMedia.InsertMedia", map[string]any{"Image": ms.HTTP.URL + "/chunked", "WriteProtected": wp}), http.StatusNoContent, "insert USBStick")
		usb := e.admin("GET", base+"/USBStick", nil)
		if usb.json["WriteProtected"] != wp || usb.json["Inserted"] != true || usb.json["ImageName"] != "chunked" {
			t.Fatalf("USBStick WriteProtected %v: %s", wp, usb.body)
		}
		expect(t, e.op("POST", base+"/USBStick/Actions/VirtualMedia.EjectMedia", nil), http.StatusNoContent, "eject USBStick")
	}
	// WriteProtected defaults to true.
	expect(t, e.op("POST", base+"/USBStick/Actions/VirtualMedia.InsertMedia", map[string]any{"Image": ms.HTTP.URL + "/image"}), http.StatusNoContent, "insert USBStick")
	if usb := e.admin("GET", base+"/USBStick", nil); usb.json["WriteProtected"] != true {
		t.Fatalf("default WriteProtected: %s", usb.body)
	}
}

func TestPatchInsertsAndEjectsMedia(t *testing.T) {
	e := newEnv(t)
	ms := testtool.NewMediaServer(t, image(t, 8<<10))
	base := mediaBases(e)[1]
	url := ms.HTTP.URL + "/image"
	cur := e.admin("GET", base+"/Cd", nil)
	expect(t, e.op("PATCH", base+"/Cd", map[string]any{"Image": url}, "If-Match", `W/"stale"`), http.StatusPreconditionFailed, "stale If-Match")
	r := e.op("PATCH", base+"/Cd", map[string]any{"Image": url, "Inserted": true, "WriteProtected": true}, "If-Match", cur.header.Get("ETag"))
	expect(t, r, http.StatusOK, "PATCH insert")
	if r.json["Image"] != url || r.json["Inserted"] != true || r.header.Get("ETag") == cur.header.Get("ETag") {
		t.Fatalf("PATCH insert answered %s (ETag %s)", r.body, r.header.Get("ETag"))
	}
	// The same image again changes nothing.
	expect(t, e.op("PATCH", base+"/Cd", map[string]any{"Image": url, "Inserted": true}), http.StatusOK, "PATCH same image")
	expectError(t, e.op("PATCH", base+"/Cd", map[string]any{"ImageName": "x"}), http.StatusBadRequest, "PropertyNotWritable", "ImageName")
	expectError(t, e.op("PATCH", base+"/Cd", map[string]any{"Nope": 1}), http.StatusBadRequest, "PropertyUnknown", "Nope")
	// sushy's PATCH eject.
	r = e.op("PATCH", base+"/Cd", map[string]any{"Image": nil, "Inserted": false})
	expect(t, r, http.StatusOK, "PATCH eject")
	if r.json["Inserted"] != false || r.json["Image"] != nil {
		t.Fatalf("PATCH eject answered %s", r.body)
	}
	expectError(t, e.op("PATCH", base+"/Cd", map[string]any{"Inserted": true}), http.StatusBadRequest, "PropertyValueConflict", "Inserted")
	expectError(t, e.op("PATCH", base+"/Cd", map[string]any{"Image": 5}), http.StatusBadRequest, "PropertyValueTypeError", "Image")
	expectError(t, e.op("PATCH", base+"/Cd", map[string]any{"Image": "ftp://host/x.iso"}), http.StatusBadRequest, "PropertyValueFormatError", "Image")
	// Inserted false alone ejects.
	expect(t, e.op("PATCH", base+"/Cd", map[string]any{"Image": url}), http.StatusOK, "PATCH insert")
	if r := e.op("PATCH", base+"/Cd", map[string]any{"Inserted": false}); r.json["Inserted"] != false {
		t.Fatalf("PATCH Inserted false: %s", r.body)
	}
	// VerifyCertificate is kept per device.
	if r := e.op("PATCH", base+"/Cd", map[string]any{"VerifyCertificate": true}); r.json["VerifyCertificate"] != true {
		t.Fatalf("PATCH VerifyCertificate: %s", r.body)
	}
	if r := e.admin("GET", mediaBases(e)[0]+"/Cd", nil); r.json["VerifyCertificate"] != true {
		t.Fatalf("VerifyCertificate on the Manager's path: %s", r.body)
	}
	// A PATCH refused for another property changes nothing, this one neither.
	expectError(t, e.op("PATCH", base+"/Cd", map[string]any{"VerifyCertificate": false, "Image": "ftp://example.com/x.iso"}),
		http.StatusBadRequest, "PropertyValueFormatError", "Image")
	if r := e.admin("GET", base+"/Cd", nil); r.json["VerifyCertificate"] != true {
		t.Fatalf("a refused PATCH turned VerifyCertificate off: %s", r.body)
	}
}

func TestInsertMediaErrors(t *testing.T) {
	e := newEnv(t)
	img := image(t, 16<<10)
	ms := testtool.NewMediaServer(t, img)
	e.a.SetMediaFetcher(bmc.NewMediaFetcher(bmc.MediaFetcherConfig{MaxSize: 12 << 10, IdleTimeout: 300 * time.Millisecond}))
	base := mediaBases(e)[0]
	act := base + "/Cd/Actions/VirtualMedia.InsertMedia"
	small := testtool.NewMediaServer(t, img[:8<<10])
	for _, c := range []struct {
		body           map[string]any
		status         int
		msg, prop, has string
	}{
		{map[string]any{}, 400, "ActionParameterMissing", "Image", ""},
		{map[string]any{"Image": 7}, 400, "ActionParameterValueTypeError", "Image", ""},
		{map[string]any{"Image": "nfs://host/x.iso"}, 400, "ActionParameterValueFormatError", "Image", "only http and https"},
		{map[string]any{"Image": "http:///x.iso"}, 400, "ActionParameterValueFormatError", "Image", "no host"},
		{map[string]any{"Image": small.HTTP.URL + "/image", "TransferProtocolType": "NFS"}, 400, "ActionParameterValueNotInList", "TransferProtocolType", ""},
		{map[string]any{"Image": small.HTTP.URL + "/image", "TransferProtocolType": "HTTPS"}, 400, "PropertyValueConflict", "TransferProtocolType", "(http)"},
		{map[string]any{"Image": small.HTTP.URL + "/image", "Inserted": false}, 400, "PropertyValueConflict", "Inserted", ""},
		{map[string]any{"Image": small.HTTP.URL + "/image", "TransferMethod": "Carrier pigeon"}, 400, "ActionParameterValueNotInList", "TransferMethod", ""},
		{map[string]any{"Image": small.HTTP.URL + "/image", "Bogus": 1}, 400, "ActionParameterUnknown", "", ""},
		{map[string]any{"Image": testtool.ClosedPortURL(t)}, 400, "CouldNotEstablishConnection", "", "connection refused"},
		{map[string]any{"Image": ms.HTTP.URL + "/missing"}, 400, "ResourceMissingAtURI", "", "404"},
		{map[string]any{"Image": ms.HTTP.URL + "/image"}, 400, "ActionParameterValueFormatError", "Image", "too large"},
		{map[string]any{"Image": small.HTTP.URL + "/stall"}, 504, "OperationTimeout", "", "idle timeout"},
		{map[string]any{"Image": small.HTTP.URL + "/short"}, 502, "OperationFailed", "", "failed"},
	} {
		r := e.op("POST", act, c.body)
		expectError(t, r, c.status, c.msg, c.prop)
		if !strings.Contains(string(r.body), c.has) {
			t.Fatalf("%v: the error does not say %q: %s", c.body, c.has, r.body)
		}
		if st, _ := e.a.Media(context.Background(), bmc.SlotCD); st.Inserted || st.Inserting {
			t.Fatalf("%v left %+v", c.body, st)
		}
	}
	// A certificate the daemon does not trust, once VerifyCertificate is on.
	expect(t, e.op("PATCH", base+"/Cd", map[string]any{"VerifyCertificate": true}), http.StatusOK, "VerifyCertificate")
	r := e.op("POST", act, map[string]any{"Image": small.HTTPS.URL + "/image"})
	expectError(t, r, http.StatusBadRequest, "CouldNotEstablishConnection", "")
	if !strings.Contains(string(r.body), "certificate") {
		t.Fatalf("TLS failure: %s", r.body)
	}
	expect(t, e.op("PATCH", base+"/Cd", map[string]any{"VerifyCertificate": false}), http.StatusOK, "VerifyCertificate false")
	expect(t, e.op("POST", act, map[string]any{"Image": small.HTTPS.URL + "/image"}), http.StatusNoContent, "insecure https")
}

func TestVirtualMediaRoles(t *testing.T) {
	e := newEnv(t)
	ms := testtool.NewMediaServer(t, image(t, 4<<10))
	base := mediaBases(e)[0]
	body := map[string]any{"Image": ms.HTTP.URL + "/image"}
	expect(t, e.do("GET", base+"/Cd", nil, "basic", "ro:ropass"), http.StatusOK, "ReadOnly reads")
	expectError(t, e.do("POST", base+"/Cd/Actions/VirtualMedia.InsertMedia", body, "basic", "ro:ropass"), http.StatusForbidden, "InsufficientPrivilege", "")
	expectError(t, e.do("PATCH", base+"/Cd", body, "basic", "ro:ropass"), http.StatusForbidden, "InsufficientPrivilege", "")
	expectError(t, e.do("POST", base+"/Cd/Actions/VirtualMedia.EjectMedia", nil, "basic", "ro:ropass"), http.StatusForbidden, "InsufficientPrivilege", "")
	expect(t, e.do("POST", base+"/Cd/Actions/VirtualMedia.InsertMedia", body, "basic", "op:oppass"), http.StatusNoContent, "Operator inserts")
	expect(t, e.do("POST", base+"/Cd/Actions/VirtualMedia.EjectMedia", nil, "basic", "admin:password"), http.StatusNoContent, "Administrator ejects")
	expect(t, e.do("GET", base+"/Cd", nil), http.StatusUnauthorized, "no credentials")
	expectError(t, e.do("DELETE", base+"/Cd", nil, "basic", "admin:password"), http.StatusMethodNotAllowed, "OperationNotAllowed", "")
}

func TestMediaCredentialsAreUsedNeverShown(t *testing.T) {
	const user, secret = "imguser", "s3cr3t-pw"
	img := image(t, 4<<10)
	var authed, refused int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		mu.Lock()
		defer mu.Unlock()
		if !ok || u != user || p != secret {
			refused++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		authed++
		w.Header().Set("Content-Length", strconv.Itoa(len(img)))
		_, _ = w.Write(img)
	}))
	t.Cleanup(srv.Close)
	logs := &testtool.Buffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })
	e := newEnv(t, func(o *redfish.Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	base := mediaBases(e)[0]
	act := base + "/USBStick/Actions/VirtualMedia.InsertMedia"
	r := e.op("POST", act, map[string]any{"Image": srv.URL + "/cfg.img", "UserName": user, "Password": "wrong"})
	expectError(t, r, http.StatusBadRequest, "ResourceAtUriUnauthorized", "")
	expect(t, e.op("POST", act, map[string]any{"Image": srv.URL + "/cfg.img", "UserName": user, "Password": secret}), http.StatusNoContent, "insert with credentials")
	expect(t, e.op("POST", base+"/USBStick/Actions/VirtualMedia.EjectMedia", nil), http.StatusNoContent, "eject")
	// Credentials in the URL work too, and are not shown.
	withCreds := strings.Replace(srv.URL, "http://", "http://"+user+":"+secret+"@", 1) + "/cfg.img"
	expect(t, e.op("PATCH", base+"/USBStick", map[string]any{"Image": withCreds}), http.StatusOK, "PATCH with credentials in the URL")
	got := e.admin("GET", base+"/USBStick", nil)
	if got.json["Image"] != srv.URL+"/cfg.img" {
		t.Fatalf("Image %v, want it without credentials", got.json["Image"])
	}
	// A type error on Password does not echo it.
	bad := e.op("POST", act, map[string]any{"Image": srv.URL + "/cfg.img", "Password": []any{secret}})
	expectError(t, bad, http.StatusBadRequest, "ActionParameterValueTypeError", "Password")
	mu.Lock()
	if authed != 2 || refused != 1 {
		t.Fatalf("image server saw %d authenticated and %d refused downloads", authed, refused)
	}
	mu.Unlock()
	for what, text := range map[string]string{"resource": string(got.body), "error": string(r.body) + string(bad.body), "log": logs.String()} {
		if strings.Contains(text, secret) {
			t.Fatalf("the %s shows the password:\n%s", what, text)
		}
	}
	if !strings.Contains(logs.String(), "virtual media inserted") {
		t.Fatalf("no log line for the insert:\n%s", logs.String())
	}
}

// A synchronous insert holds nothing: the node's other requests and other
// nodes are answered meanwhile, and an eject cancels it.
func TestInsertDoesNotBlockAndEjectCancelsIt(t *testing.T) {
	e := newEnv(t)
	ms := testtool.NewMediaServer(t, image(t, 64<<10))
	base := mediaBases(e)[0]
	done := make(chan resp, 1)
	go func() {
		done <- e.op("POST", base+"/Cd/Actions/VirtualMedia.InsertMedia", map[string]any{"Image": ms.HTTP.URL + "/block"})
	}()
	<-ms.Blocked
	testtool.Eventually(t, 10*time.Second, "the Cd shows the insert under way", func() bool {
		r := e.admin("GET", base+"/Cd", nil)
		return r.str("Status", "State") == "Updating"
	})
	expect(t, e.op("POST", "/redfish/v1/Systems/"+e.aID+"/Actions/ComputerSystem.Reset", map[string]any{"ResetType": "On"}), http.StatusNoContent, "power on meanwhile")
	expect(t, e.admin("GET", "/redfish/v1/Systems/"+e.aID, nil), http.StatusOK, "the system meanwhile")
	expect(t, e.do("GET", "/redfish/v1/Systems/node-b", nil, "basic", "other:otherpw"), http.StatusOK, "another node meanwhile")
	expect(t, e.op("POST", base+"/Cd/Actions/VirtualMedia.EjectMedia", nil), http.StatusNoContent, "eject during the insert")
	r := <-done
	expectError(t, r, http.StatusConflict, "OperationFailed", "")
	if !strings.Contains(string(r.body), "cancelled by an eject") {
		t.Fatalf("cancelled insert: %s", r.body)
	}
	if st, _ := e.a.Media(context.Background(), bmc.SlotCD); st.Inserted || st.Inserting {
		t.Fatalf("left %+v", st)
	}
}

// An insert outlasts the HTTP server's read and write timeouts (which
// would cancel the request and cut its answer off) and the machine bound
// of an ordinary request: it has its own bound, and what the request does
// with the machine after the download has a fresh one. So a POST
// InsertMedia, a PATCH of the Cd's Image and a PATCH of the Boot with an
// HttpBootUri all succeed when the image takes longer than both.
func TestInsertOutlastsTheServerTimeouts(t *testing.T) {
	img := image(t, 4<<10)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"InsertMedia", "POST", "/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia", `{"Image":"%s"}`, http.StatusNoContent},
		{"PATCH Image", "PATCH", "/VirtualMedia/Cd", `{"Image":"%s","Inserted":true}`, http.StatusOK},
		{"PATCH HttpBootUri", "PATCH", "", `{"Boot":{"BootSourceOverrideTarget":"UefiHttp","BootSourceOverrideEnabled":"Once","BootSourceOverrideMode":"UEFI","HttpBootUri":"%s"}}`, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &testFleet{}
			m := f.add(t, "slow", 6240, admin)
			release := make(chan struct{})
			images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(img)))
				_, _ = w.Write(img[:1024])
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				_, _ = w.Write(img[1024:])
			}))
			t.Cleanup(images.Close)
			srv := httptest.NewUnstartedServer(redfish.New(f, redfish.Options{MachineTimeout: 200 * time.Millisecond, MediaTimeout: time.Minute}))
			srv.Config.ReadTimeout = 200 * time.Millisecond
			srv.Config.WriteTimeout = 200 * time.Millisecond
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.StartTLS()
			t.Cleanup(srv.Close)
			sys, _ := f.System("slow")
			req, _ := http.NewRequest(tc.method, srv.URL+"/redfish/v1/Systems/"+sys.ID+tc.path,
				strings.NewReader(fmt.Sprintf(tc.body, images.URL+"/slow.iso")))
			req.SetBasicAuth("admin", "password")
			// The image server holds the rest back for longer than every
			// server timeout above: that delay is what the test is about.
			timer := time.AfterFunc(time.Second, func() { close(release) })
			defer timer.Stop()
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("the answer was cut off: %v", err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("%s %s: %s\n%s", tc.method, tc.path, res.Status, body)
			}
			if st, _ := m.Media(context.Background(), bmc.SlotCD); !st.Inserted || st.Size != int64(len(img)) {
				t.Fatalf("Cd %+v", st)
			}
			if tc.path == "" {
				if o, _ := m.BootOverride(context.Background()); o.Device != bmc.BootCDROM || o.Persistent {
					t.Fatalf("boot override %+v, want the Cd once", o)
				}
			}
		})
	}
}

// UefiHttp with an HttpBootUri (Ironic's redfish-https boot) inserts the
// URI as a virtual CD for one boot, as sushy-tools does.
func TestHttpBootUriIsAOneTimeVirtualCD(t *testing.T) {
	e := newEnv(t)
	ms := testtool.NewMediaServer(t, image(t, 16<<10))
	sysURI := "/redfish/v1/Systems/" + e.aID
	cdURI := mediaBases(e)[1] + "/Cd"
	url := ms.HTTPS.URL + "/image"
	reset := func(rt string) {
		t.Helper()
		expect(t, e.op("POST", sysURI+"/Actions/ComputerSystem.Reset", map[string]any{"ResetType": rt}), http.StatusNoContent, rt)
	}
	patchBoot := func(boot map[string]any) resp {
		t.Helper()
		return e.op("PATCH", sysURI, map[string]any{"Boot": boot})
	}
	expectError(t, patchBoot(map[string]any{"BootSourceOverrideTarget": "Pxe", "HttpBootUri": url}), http.StatusBadRequest, "PropertyValueConflict", "Boot/HttpBootUri")
	expectError(t, patchBoot(map[string]any{"BootSourceOverrideTarget": "UefiHttp", "BootSourceOverrideMode": "UEFI", "HttpBootUri": "tftp://x/y"}),
		http.StatusBadRequest, "PropertyValueFormatError", "Boot/HttpBootUri")
	expectError(t, patchBoot(map[string]any{"BootSourceOverrideTarget": "UefiHttp", "BootSourceOverrideMode": "UEFI", "HttpBootUri": ms.HTTP.URL + "/missing"}),
		http.StatusBadRequest, "ResourceMissingAtURI", "")

	reset("ForceOff")
	r := patchBoot(map[string]any{"BootSourceOverrideTarget": "UefiHttp", "BootSourceOverrideEnabled": "Once", "BootSourceOverrideMode": "UEFI", "HttpBootUri": url})
	expect(t, r, http.StatusOK, "UefiHttp with HttpBootUri")
	if r.str("Boot", "BootSourceOverrideTarget") != "UefiHttp" || r.str("Boot", "HttpBootUri") != url || r.str("Boot", "BootSourceOverrideEnabled") != "Once" {
		t.Fatalf("Boot after the PATCH: %v", r.json["Boot"])
	}
	if cd := e.admin("GET", cdURI, nil); cd.json["Image"] != url || cd.json["Inserted"] != true {
		t.Fatalf("the Cd does not hold the HttpBootUri: %s", cd.body)
	}
	const line = "Booting virtual media Cd: image"
	reset("On")
	if n := strings.Count(e.a.Transcript(), line); n != 1 {
		t.Fatalf("the one-time boot booted the image %d times:\n%s", n, e.a.Transcript())
	}
	got := e.admin("GET", sysURI, nil)
	if got.str("Boot", "BootSourceOverrideEnabled") != "Disabled" || got.json["Boot"].(map[string]any)["HttpBootUri"] != nil {
		t.Fatalf("after the boot: %v", got.json["Boot"])
	}
	// The next reset boots without it: it is ejected first.
	reset("ForceRestart")
	if n := strings.Count(e.a.Transcript(), line); n != 1 {
		t.Fatalf("the image was booted again:\n%s", e.a.Transcript())
	}
	if cd := e.admin("GET", cdURI, nil); cd.json["Inserted"] != false {
		t.Fatalf("the HttpBootUri image is still in the Cd: %s", cd.body)
	}

	// A Continuous one stays until the override changes.
	expect(t, patchBoot(map[string]any{"BootSourceOverrideTarget": "UefiHttp", "BootSourceOverrideEnabled": "Continuous", "HttpBootUri": url}), http.StatusOK, "Continuous")
	reset("ForceRestart")
	reset("ForceRestart")
	if n := strings.Count(e.a.Transcript(), line); n != 3 {
		t.Fatalf("Continuous UefiHttp booted the image %d times in all:\n%s", n, e.a.Transcript())
	}
	if got := e.admin("GET", sysURI, nil); got.str("Boot", "HttpBootUri") != url || got.str("Boot", "BootSourceOverrideTarget") != "UefiHttp" {
		t.Fatalf("Continuous: %v", got.json["Boot"])
	}
	r = patchBoot(map[string]any{"BootSourceOverrideTarget": "Hdd"})
	if r.str("Boot", "BootSourceOverrideTarget") != "Hdd" || r.json["Boot"].(map[string]any)["HttpBootUri"] != nil {
		t.Fatalf("after Hdd: %v", r.json["Boot"])
	}
	if cd := e.admin("GET", cdURI, nil); cd.json["Inserted"] != false {
		t.Fatalf("a new target left the HttpBootUri image in: %s", cd.body)
	}
	// Without an HttpBootUri, UefiHttp is a UEFI network boot.
	r = patchBoot(map[string]any{"BootSourceOverrideTarget": "UefiHttp", "BootSourceOverrideEnabled": "Once"})
	if r.str("Boot", "BootSourceOverrideTarget") != "UefiHttp" || r.json["Boot"].(map[string]any)["HttpBootUri"] != nil {
		t.Fatalf("UefiHttp without a URI: %v", r.json["Boot"])
	}
	if o, _ := e.a.BootOverride(context.Background()); o.Device != bmc.BootPXE {
		t.Fatalf("UefiHttp without a URI set %v", o.Device)
	}
}

// TestCurlVirtualMedia runs the README's curl lines: insert, read, eject.
func TestCurlVirtualMedia(t *testing.T) {
	curl := testtool.Require(t, "curl")
	e, ca := tlsEnv(t)
	ms := testtool.NewMediaServer(t, image(t, 8<<10))
	cd := e.srv.URL + "/redfish/v1/Managers/" + e.aID + "/VirtualMedia/Cd"
	c := func(args ...string) string {
		t.Helper()
		return runClient(t, ca, 30*time.Second, curl, append([]string{"-sS", "-i", "--cacert", ca, "-u", "op:oppass"}, args...)...)
	}
	insert := func(body string) string {
		t.Helper()
		return c("-X", "POST", "-H", "Content-Type: application/json", "-d", body, cd+"/Actions/VirtualMedia.InsertMedia")
	}
	if out := insert(`{"Image":"` + ms.HTTP.URL + `/image","TransferProtocolType":"HTTP"}`); !strings.Contains(out, " 204") {
		t.Fatalf("insert:\n%s", out)
	}
	if out := c(cd); !strings.Contains(out, `"Inserted":true`) || !strings.Contains(out, `"ImageName":"image"`) {
		t.Fatalf("read:\n%s", out)
	}
	if out := insert(`{"Image":"` + ms.HTTP.URL + `/image"}`); !strings.Contains(out, " 409") || !strings.Contains(out, "Base.1.8.ResourceInUse") {
		t.Fatalf("insert into a full Cd:\n%s", out)
	}
	if out := c("-X", "POST", "-H", "Content-Type: application/json", "-d", "{}", cd+"/Actions/VirtualMedia.EjectMedia"); !strings.Contains(out, " 204") {
		t.Fatalf("eject:\n%s", out)
	}
	if out := insert(`{"Image":"` + ms.HTTP.URL + `/missing"}`); !strings.Contains(out, " 400") || !strings.Contains(out, "ResourceMissingAtURI") || !strings.Contains(out, "404 Not Found") {
		t.Fatalf("insert of a missing image:\n%s", out)
	}
}

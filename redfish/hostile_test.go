package redfish_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govbmc/govbmc/redfish"
)

// clientFrom returns an HTTPS client whose connections come from local
// address ip (any 127.0.0.0/8 address works on loopback).
func clientFrom(ip string, insecure bool) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:         d.DialContext,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: insecure},
		MaxIdleConnsPerHost: 32,
	}}
}

func TestHostileClientsDoNotStallOthers(t *testing.T) {
	f := &testFleet{}
	f.add(t, "node-a", 6230, admin)
	sa, _ := f.System("node-a")
	h := redfish.New(f, redfish.Options{})
	srv := httptest.NewUnstartedServer(h)
	srv.Config = redfish.NewHTTPServer(h, nil)
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	defer srv.Close()
	url := srv.URL + "/redfish/v1/Systems/" + sa.ID

	// 100 slow clients open connections and send half a header.
	var slow []net.Conn
	for i := 0; i < 100; i++ {
		c, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /redfish/v1/Systems HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		slow = append(slow, c)
	}
	defer func() {
		for _, c := range slow {
			c.Close()
		}
	}()

	// Thousands of bad logins, malformed and huge bodies, from 127.0.0.1.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent, throttled atomic.Int64
	var wg sync.WaitGroup
	bad := clientFrom("127.0.0.1", true)
	huge := bytes.Repeat([]byte("["), 256<<10) // 4x the cap
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 250; i++ {
				var req *http.Request
				switch i % 4 {
				case 0:
					req, _ = http.NewRequestWithContext(ctx, "GET", url, nil)
					req.SetBasicAuth("admin", fmt.Sprintf("guess-%d-%d", w, i))
				case 1:
					req, _ = http.NewRequestWithContext(ctx, "POST", srv.URL+"/redfish/v1/SessionService/Sessions", strings.NewReader(`{"UserName":"admin","Password":"x"}`))
				case 2:
					req, _ = http.NewRequestWithContext(ctx, "PATCH", url, strings.NewReader(`{"Boot":{"BootSourceOverrideTarget":`+strings.Repeat(`{"a":`, 5000)))
					req.SetBasicAuth("admin", "password")
				case 3:
					req, _ = http.NewRequestWithContext(ctx, "PATCH", url, bytes.NewReader(huge))
					req.SetBasicAuth("admin", "password")
				}
				res, err := bad.Do(req)
				if err != nil {
					continue
				}
				if res.StatusCode == http.StatusTooManyRequests {
					throttled.Add(1)
				}
				res.Body.Close()
				sent.Add(1)
			}
		}(w)
	}

	// Meanwhile a real client elsewhere is served, fast.
	good := clientFrom("127.0.0.2", true)
	var slowest time.Duration
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequest("GET", url, nil)
		req.SetBasicAuth("admin", "password")
		start := time.Now()
		res, err := good.Do(req)
		if err != nil {
			t.Fatalf("good client: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("good client: %d", res.StatusCode)
		}
		slowest = max(slowest, time.Since(start))
	}
	wg.Wait()
	if throttled.Load() == 0 {
		t.Fatalf("%d hostile requests and none throttled", sent.Load())
	}
	if slowest > 5*time.Second { // the flood lasts longer: the client was not stalled behind it
		t.Fatalf("a request of the good client took %v", slowest)
	}
	t.Logf("%d hostile requests (%d throttled); good client's slowest request %v", sent.Load(), throttled.Load(), slowest)
}

func FuzzPatchBodies(f *testing.F) {
	for _, s := range []string{
		`{"Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Once"}}`,
		`{"Boot":{"BootSourceOverrideMode":"UEFI"}}`, `{"Boot":null}`, `{"Boot":[1]}`, `{}`, `[]`, `null`, `{"Attributes":{"QuietBoot":1e400}}`,
		`{"Attributes":{"PowerOnDelaySeconds":1.5}}`, `{"DateTime":"2020-01-01T00:00:00Z","DateTimeLocalOffset":"+25:00"}`, `{"SecureBootEnable":"yes"}`,
		`{"ResetType":"On"}`,
	} {
		f.Add(s)
	}
	fl := &testFleet{}
	fl.add(f, "node-a", 6230, admin)
	sa, _ := fl.System("node-a")
	h := redfish.New(fl, redfish.Options{})
	paths := []string{"", "/Bios/Settings", "/SecureBoot", "/Actions/ComputerSystem.Reset", "/Bios/Actions/Bios.ResetBios"}
	f.Fuzz(func(t *testing.T, body string) {
		for i, p := range paths {
			method := "PATCH"
			if i >= 3 {
				method = "POST"
			}
			for _, target := range []string{"/redfish/v1/Systems/" + sa.ID + p, "/redfish/v1/Managers/" + sa.ID, "/redfish/v1/SessionService/Sessions"} {
				req := httptest.NewRequest(method, target, strings.NewReader(body))
				req.SetBasicAuth("admin", "password")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code >= 500 {
					t.Fatalf("%s %s %q: %d %s", method, target, body, rec.Code, rec.Body)
				}
			}
		}
	})
}

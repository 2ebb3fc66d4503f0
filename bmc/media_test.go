package bmc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
)

func mediaFetcher(cfg bmc.MediaFetcherConfig) *bmc.MediaFetcher {
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Second
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = 1 << 20
	}
	return bmc.NewMediaFetcher(cfg)
}

func TestMediaFetcherFaults(t *testing.T) {
	srv := testtool.NewMediaServer(t, make([]byte, 256<<10))
	big := testtool.NewMediaServer(t, make([]byte, 2<<20))
	f := mediaFetcher(bmc.MediaFetcherConfig{})
	ctx := context.Background()
	for _, tc := range []struct {
		url  string
		kind bmc.MediaFetchKind
	}{
		{srv.HTTP.URL + "/missing", bmc.FetchHTTPStatus},
		{testtool.ClosedPortURL(t), bmc.FetchUnreachable},
		{srv.HTTPS.URL + "/image", bmc.FetchTLS},
		{srv.HTTP.URL + "/stall", bmc.FetchStalled},
		{srv.HTTP.URL + "/short", bmc.FetchBroken},
		{big.HTTP.URL + "/image", bmc.FetchTooLarge},
		{big.HTTP.URL + "/chunked", bmc.FetchTooLarge},
	} {
		dl, err := f.Open(ctx, bmc.MediaRequest{URL: tc.url})
		if err == nil {
			_, err = io.Copy(io.Discard, dl)
			dl.Close()
		}
		var fe *bmc.MediaFetchError
		if !errors.As(err, &fe) || fe.Kind != tc.kind || !errors.Is(err, bmc.ErrMediaFetch) {
			t.Errorf("%s: %v, want %s", tc.url, err, tc.kind)
		}
	}
	// The overall deadline, on a server that keeps sending.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	defer slow.Close()
	fd := mediaFetcher(bmc.MediaFetcherConfig{Deadline: 300 * time.Millisecond})
	dl, err := fd.Open(ctx, bmc.MediaRequest{URL: slow.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, dl)
	dl.Close()
	var fe *bmc.MediaFetchError
	if !errors.As(err, &fe) || fe.Kind != bmc.FetchDeadline {
		t.Errorf("slow server: %v, want %s", err, bmc.FetchDeadline)
	}
	// Trusted, or not verified on request, HTTPS works.
	for _, req := range []struct {
		f   *bmc.MediaFetcher
		req bmc.MediaRequest
	}{
		{mediaFetcher(bmc.MediaFetcherConfig{RootCAs: srv.RootCAs()}), bmc.MediaRequest{URL: srv.HTTPS.URL + "/image"}},
		{f, bmc.MediaRequest{URL: srv.HTTPS.URL + "/image", InsecureTLS: true}},
	} {
		dl, err := req.f.Open(ctx, req.req)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, dl); err != nil || n != 256<<10 {
			t.Errorf("https: %d bytes, %v", n, err)
		}
		dl.Close()
	}
}

// TestMediaFetcherCredentialsAndQueue: basic credentials reach the server
// and never appear in errors; downloads beyond the concurrency bound wait
// for a slot.
func TestMediaFetcherCredentialsAndQueue(t *testing.T) {
	var running, peak atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ironic" || p != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		n := running.Add(1)
		defer running.Add(-1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		<-release
		_, _ = w.Write([]byte("image"))
	}))
	defer srv.Close()
	logs := &testtool.Buffer{}
	f := mediaFetcher(bmc.MediaFetcherConfig{Concurrency: 2, IdleTimeout: 10 * time.Second, Log: slog.New(slog.NewTextHandler(logs, nil))})
	ctx := context.Background()

	_, err := f.Open(ctx, bmc.MediaRequest{URL: strings.Replace(srv.URL, "http://", "http://ironic:wrong@", 1)})
	if err == nil || strings.Contains(err.Error(), "wrong") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong credentials: %v", err)
	}
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			dl, err := f.Open(ctx, bmc.MediaRequest{URL: srv.URL + "/x.iso", Username: "ironic", Password: "s3cret"})
			if err == nil {
				_, err = io.Copy(io.Discard, dl)
				dl.Close()
			}
			errs <- err
		}()
	}
	// Two run and three wait for a slot (a third let through would run
	// instead of queueing, and never be counted here).
	eventually(t, "two downloads running, three queued", func() bool {
		return running.Load() == 2 && strings.Count(logs.String(), "virtual media download queued") == 3
	})
	close(release)
	for range 5 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("%d downloads at once, want at most 2", p)
	}
	// A queued download gives up with its context.
	block := make(chan struct{})
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer hold.Close()
	defer close(block)
	for range 2 {
		dl, err := f.Open(ctx, bmc.MediaRequest{URL: hold.URL})
		if err != nil {
			t.Fatal(err)
		}
		defer dl.Close()
	}
	qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := f.Open(qctx, bmc.MediaRequest{URL: hold.URL}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("queued download: %v, want its deadline", err)
	}
}

func TestRedactURL(t *testing.T) {
	raw := "https://user:pw@host:8443/a/deploy.iso?temp_url_sig=abc#f"
	if got := bmc.RedactURL(raw); got != "https://host:8443/a/deploy.iso?temp_url_sig=abc#f" {
		t.Errorf("RedactURL = %s", got)
	}
	if got := bmc.LogURL(raw); strings.Contains(got, "pw") || strings.Contains(got, "abc") || strings.Contains(got, "user") {
		t.Errorf("LogURL = %s", got)
	}
	if got := bmc.ImageNameOf(raw); got != "deploy.iso" {
		t.Errorf("ImageNameOf = %s", got)
	}
}

// TestSimVirtualMediaBoot: the simulated machine fetches a real bootable
// ISO, boots it on a CD override (its console names it), and after the
// eject boots no media.
func TestSimVirtualMediaBoot(t *testing.T) {
	iso := testtool.BootISO(t, "sim boot line")
	body, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	srv := testtool.NewMediaServer(t, body)
	m := newSim(t)
	m.SetMediaFetcher(mediaFetcher(bmc.MediaFetcherConfig{RootCAs: srv.RootCAs()}))
	ctx := context.Background()
	slots, err := m.MediaSlots(ctx)
	if err != nil || len(slots) != 3 || slots[0] != bmc.SlotCD {
		t.Fatalf("slots %v, %v", slots, err)
	}
	url := srv.HTTPS.URL + "/image"
	must(t, "insert", m.InsertMedia(ctx, bmc.SlotCD, bmc.MediaRequest{URL: url}))
	st, err := m.Media(ctx, bmc.SlotCD)
	if err != nil || !st.Inserted || st.Image != url || st.ImageName != "image" || st.Size != int64(len(body)) || !st.WriteProtected {
		t.Fatalf("status %+v, %v", st, err)
	}
	if err := m.InsertMedia(ctx, bmc.SlotCD, bmc.MediaRequest{URL: url}); !errors.Is(err, bmc.ErrMediaBusy) {
		t.Fatalf("second insert: %v", err)
	}
	must(t, "override", m.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootCDROM}))
	must(t, "power on", m.PowerOn(ctx))
	if out := m.Transcript(); !strings.Contains(out, "Booting virtual media Cd: image (") || strings.Contains(out, "Boot failed") {
		t.Fatalf("console:\n%s", out)
	}
	must(t, "eject", m.EjectMedia(ctx, bmc.SlotCD))
	must(t, "eject again", m.EjectMedia(ctx, bmc.SlotCD))
	must(t, "override", m.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootCDROM}))
	must(t, "reset", m.Reset(ctx))
	if out := m.Transcript(); !strings.Contains(out, "Boot failed: no virtual media in Cd") {
		t.Fatalf("console after the eject:\n%s", out)
	}
	// A USB stick that is no ISO, on a floppy override.
	must(t, "insert usb", m.InsertMedia(ctx, bmc.SlotUSB, bmc.MediaRequest{URL: srv.HTTP.URL + "/chunked", WriteProtected: true}))
	must(t, "override", m.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootFloppy}))
	must(t, "reset", m.Reset(ctx))
	if out := m.Transcript(); !strings.Contains(out, "Booting virtual media USBStick: chunked") {
		t.Fatalf("console:\n%s", out)
	}
}

// TestSimVirtualMediaFaults: download failures and an eject during the
// download leave the slot empty.
func TestSimVirtualMediaFaults(t *testing.T) {
	srv := testtool.NewMediaServer(t, make([]byte, 64<<10))
	m := newSim(t)
	m.SetMediaFetcher(mediaFetcher(bmc.MediaFetcherConfig{IdleTimeout: 10 * time.Second}))
	ctx := context.Background()
	if err := m.InsertMedia(ctx, bmc.SlotCD, bmc.MediaRequest{URL: srv.HTTP.URL + "/missing"}); !errors.Is(err, bmc.ErrMediaFetch) {
		t.Fatalf("404: %v", err)
	}
	if err := m.InsertMedia(ctx, bmc.SlotCD, bmc.MediaRequest{URL: "ftp://x/y.iso"}); !errors.Is(err, bmc.ErrInvalidArgument) {
		t.Fatalf("ftp: %v", err)
	}
	if err := m.InsertMedia(ctx, "Tape", bmc.MediaRequest{URL: srv.HTTP.URL + "/image"}); !errors.Is(err, bmc.ErrNotSupported) {
		t.Fatalf("tape: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- m.InsertMedia(ctx, bmc.SlotCD, bmc.MediaRequest{URL: srv.HTTP.URL + "/block"}) }()
	<-srv.Blocked
	eventually(t, "insert under way", func() bool { st, _ := m.Media(ctx, bmc.SlotCD); return st.Inserting })
	must(t, "eject", m.EjectMedia(ctx, bmc.SlotCD))
	if err := <-done; !errors.Is(err, bmc.ErrMediaEjected) {
		t.Fatalf("insert: %v, want ErrMediaEjected", err)
	}
	if st, _ := m.Media(ctx, bmc.SlotCD); st.Inserted || st.Inserting {
		t.Fatalf("status %+v", st)
	}
}

package bmc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Defaults of a MediaFetcher.
const (
	// DefaultMediaMaxSize caps an image: 8 GiB holds any installer or
	// deploy ISO.
	DefaultMediaMaxSize = 8 << 30
	// DefaultMediaIdleTimeout is how long a download may go without a byte
	// (connecting and waiting for the headers included).
	DefaultMediaIdleTimeout = 30 * time.Second
	// DefaultMediaDeadline bounds a whole download.
	DefaultMediaDeadline = 30 * time.Minute
	// DefaultMediaConcurrency is how many downloads the daemon runs at once;
	// the others queue.
	DefaultMediaConcurrency = 4
)

// MediaFetcherConfig bounds the downloads of a MediaFetcher; zero fields
// take the defaults above.
type MediaFetcherConfig struct {
	// MaxSize caps an image's size in bytes.
	MaxSize int64
	// IdleTimeout is the longest wait for the next byte.
	IdleTimeout time.Duration
	// Deadline bounds a whole download.
	Deadline time.Duration
	// Concurrency is how many downloads run at once across the daemon.
	Concurrency int
	// RootCAs are the authorities trusted for https (nil: the system's).
	RootCAs *x509.CertPool
	// Log receives a line per download started, queued and failed.
	Log *slog.Logger
}

// MediaFetchKind says why a download failed.
type MediaFetchKind string

// The ways a download fails.
const (
	FetchUnreachable MediaFetchKind = "unreachable"   // no connection to the server
	FetchTLS         MediaFetchKind = "tls"           // the server's certificate was refused
	FetchHTTPStatus  MediaFetchKind = "http-status"   // an answer other than 200
	FetchStalled     MediaFetchKind = "stalled"       // no byte for the idle timeout
	FetchDeadline    MediaFetchKind = "deadline"      // the overall deadline passed
	FetchTooLarge    MediaFetchKind = "too-large"     // the image exceeds the size cap
	FetchBroken      MediaFetchKind = "broken-stream" // the body ended early or failed
)

// MediaFetchError is a failed download: the front end answers it as a
// Redfish error naming Kind; it matches ErrMediaFetch with errors.Is.
type MediaFetchError struct {
	// URL is the image URL without credentials.
	URL string
	// Kind classifies the failure.
	Kind MediaFetchKind
	// StatusCode is the HTTP status for FetchHTTPStatus.
	StatusCode int
	// Err is the cause.
	Err error
}

// Error describes the failure.
func (e *MediaFetchError) Error() string {
	return fmt.Sprintf("download %s: %s: %v", e.URL, e.Kind, e.Err)
}

// Unwrap returns the cause.
func (e *MediaFetchError) Unwrap() error { return e.Err }

// Is makes every MediaFetchError match ErrMediaFetch.
func (e *MediaFetchError) Is(target error) bool { return target == ErrMediaFetch }

// MediaFetcher downloads virtual media images over http(s) for every
// machine of a daemon: proxies from the environment, optional basic
// credentials, an idle timeout, an overall deadline, a size cap and a
// bound on concurrent downloads (the others wait their turn). It streams:
// a download is a reader, never a buffer or a file.
type MediaFetcher struct {
	cfg      MediaFetcherConfig
	log      *slog.Logger
	slots    chan struct{}
	secure   *http.Client
	insecure *http.Client
}

// NewMediaFetcher returns a fetcher with cfg's bounds.
func NewMediaFetcher(cfg MediaFetcherConfig) *MediaFetcher {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMediaMaxSize
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultMediaIdleTimeout
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultMediaDeadline
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultMediaConcurrency
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	client := func(insecure bool) *http.Client {
		dialer := &net.Dialer{Timeout: cfg.IdleTimeout, KeepAlive: 30 * time.Second}
		return &http.Client{Transport: &http.Transport{
			Proxy:           http.ProxyFromEnvironment,
			DialContext:     dialer.DialContext,
			TLSClientConfig: &tls.Config{RootCAs: cfg.RootCAs, InsecureSkipVerify: insecure}, //nolint:gosec // asked for per request
			// The download's idle timer bounds the handshake and the wait for
			// the headers; these are only backstops behind it.
			TLSHandshakeTimeout:   2 * cfg.IdleTimeout,
			ResponseHeaderTimeout: 2 * cfg.IdleTimeout,
			MaxIdleConns:          cfg.Concurrency,
			IdleConnTimeout:       time.Minute,
			ForceAttemptHTTP2:     true,
		}}
	}
	return &MediaFetcher{
		cfg: cfg, log: log, slots: make(chan struct{}, cfg.Concurrency),
		secure: client(false), insecure: client(true),
	}
}

var (
	defaultFetcherMu sync.Mutex
	defaultFetcher   *MediaFetcher
)

// DefaultMediaFetcher is the daemon-wide fetcher machines use unless given
// their own: one, so that its concurrency bound holds across every node.
func DefaultMediaFetcher() *MediaFetcher {
	defaultFetcherMu.Lock()
	defer defaultFetcherMu.Unlock()
	if defaultFetcher == nil {
		defaultFetcher = NewMediaFetcher(MediaFetcherConfig{})
	}
	return defaultFetcher
}

// SetDefaultMediaFetcher replaces the daemon-wide fetcher (the daemon does
// it once, from its configuration, before it starts nodes).
func SetDefaultMediaFetcher(f *MediaFetcher) {
	defaultFetcherMu.Lock()
	defer defaultFetcherMu.Unlock()
	defaultFetcher = f
}

// MaxSize is the fetcher's size cap in bytes.
func (f *MediaFetcher) MaxSize() int64 { return f.cfg.MaxSize }

// Deadline is the longest a whole download may take.
func (f *MediaFetcher) Deadline() time.Duration { return f.cfg.Deadline }

// MediaDownload is a download under way: read the image from it, then
// Close it (which gives its turn to the next queued download).
type MediaDownload struct {
	// Size is the image's size from Content-Length, or -1 when the server
	// did not say.
	Size int64
	// URL is the image URL without credentials.
	URL string

	f       *MediaFetcher
	body    io.ReadCloser
	read    int64
	idle    *time.Timer
	stalled chan struct{} // closed when the idle timer fired
	stall   sync.Once
	ctx     context.Context
	cancel  context.CancelCauseFunc
	release func()
	once    sync.Once
}

var (
	errStalled  = errors.New("no data within the idle timeout")
	errDeadline = errors.New("the download's deadline passed")
)

// Open waits for a download slot (within ctx), sends the request and checks
// the answer. The download ends when ctx does, when the server sends
// nothing for the idle timeout, at the overall deadline, or when it grows
// past the size cap; each is a *MediaFetchError.
func (f *MediaFetcher) Open(ctx context.Context, req MediaRequest) (*MediaDownload, error) {
	if err := CheckMediaRequest(req); err != nil {
		return nil, err
	}
	shown := RedactURL(req.URL)
	select {
	case f.slots <- struct{}{}:
	default:
		f.log.Info("virtual media download queued", "url", LogURL(req.URL), "running", cap(f.slots))
		select {
		case f.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a download slot: %w", ctx.Err())
		}
	}
	release := func() { <-f.slots }
	dctx, cancel := context.WithCancelCause(ctx)
	d := &MediaDownload{Size: -1, URL: shown, f: f, ctx: dctx, cancel: cancel, release: release, stalled: make(chan struct{})}
	deadline := time.AfterFunc(f.cfg.Deadline, func() { cancel(errDeadline) })
	d.idle = time.AfterFunc(f.cfg.IdleTimeout, func() {
		d.stall.Do(func() { close(d.stalled) })
		cancel(errStalled)
	})
	fail := func(err error) (*MediaDownload, error) {
		deadline.Stop()
		d.close()
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(dctx, http.MethodGet, req.URL, nil)
	if err != nil {
		return fail(fmt.Errorf("image URL %s: %v: %w", shown, err, ErrInvalidArgument))
	}
	if req.Username != "" || req.Password != "" {
		hreq.SetBasicAuth(req.Username, req.Password)
	}
	client := f.secure
	if req.InsecureTLS {
		client = f.insecure
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return fail(d.classify(err))
	}
	d.body = resp.Body
	// From here the idle timer only runs while a Read waits on the server.
	d.idle.Stop()
	d.cancel = func(cause error) { deadline.Stop(); cancel(cause) }
	if resp.StatusCode != http.StatusOK {
		return fail(&MediaFetchError{URL: shown, Kind: FetchHTTPStatus, StatusCode: resp.StatusCode, Err: errors.New(resp.Status)})
	}
	if resp.ContentLength > f.cfg.MaxSize {
		return fail(&MediaFetchError{URL: shown, Kind: FetchTooLarge,
			Err: fmt.Errorf("%d bytes, the cap is %d", resp.ContentLength, f.cfg.MaxSize)})
	}
	d.Size = resp.ContentLength
	return d, nil
}

// classify turns a transport error into a *MediaFetchError, or returns the
// caller's own cancellation as it is.
func (d *MediaDownload) classify(err error) error {
	// The client's *url.Error repeats the URL, query included: drop it.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	cause := context.Cause(d.ctx)
	kind := FetchBroken
	switch {
	case errors.Is(cause, errStalled):
		kind, err = FetchStalled, fmt.Errorf("%w (%v)", errStalled, d.f.cfg.IdleTimeout)
	case errors.Is(cause, errDeadline):
		kind, err = FetchDeadline, fmt.Errorf("%w (%v)", errDeadline, d.f.cfg.Deadline)
	case cause != nil:
		// The caller's context ended (or an eject cancelled): not the server's fault.
		return cause
	case isTLSError(err):
		kind = FetchTLS
	case d.body == nil:
		kind = FetchUnreachable
	}
	return &MediaFetchError{URL: d.URL, Kind: kind, Err: err}
}

func isTLSError(err error) bool {
	var (
		unknown   x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		recordHdr tls.RecordHeaderError
		alert     tls.AlertError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &recordHdr) || errors.As(err, &alert)
}

// Read reads the image, bounded by the idle timeout and the size cap.
func (d *MediaDownload) Read(p []byte) (int, error) {
	d.idle.Reset(d.f.cfg.IdleTimeout)
	n, err := d.body.Read(p)
	if !d.idle.Stop() {
		select {
		case <-d.stalled:
			if err == nil || err == io.EOF {
				err = errStalled
			}
		default:
		}
	}
	d.read += int64(n)
	if d.read > d.f.cfg.MaxSize {
		return n, &MediaFetchError{URL: d.URL, Kind: FetchTooLarge, Err: fmt.Errorf("more than the cap of %d bytes", d.f.cfg.MaxSize)}
	}
	if err == io.EOF {
		if d.Size >= 0 && d.read != d.Size {
			return n, &MediaFetchError{URL: d.URL, Kind: FetchBroken, Err: fmt.Errorf("%d bytes of %d", d.read, d.Size)}
		}
		return n, io.EOF
	}
	if err != nil {
		return n, d.classify(err)
	}
	return n, nil
}

// Done returns how many bytes were read so far.
func (d *MediaDownload) Done() int64 { return d.read }

// Close ends the download and frees its slot.
func (d *MediaDownload) Close() error {
	d.close()
	return nil
}

func (d *MediaDownload) close() {
	d.once.Do(func() {
		d.idle.Stop()
		d.cancel(context.Canceled)
		if d.body != nil {
			_ = d.body.Close()
		}
		d.release()
	})
}

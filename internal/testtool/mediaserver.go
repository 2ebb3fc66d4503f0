package testtool

import (
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// MediaServer serves a virtual media image and every way of failing to,
// over HTTP and HTTPS, for the insert tests:
//
//	/image        the image, with Content-Length
//	/chunked      the image, without Content-Length
//	/stall        a Content-Length, 4 KiB of the image, then nothing
//	/short        a Content-Length, 4 KiB of the image, then the end
//	/block        like /stall until Release; Blocked is closed once it is there
//	/missing      404
type MediaServer struct {
	// HTTP and HTTPS serve the same handler.
	HTTP, HTTPS *httptest.Server
	// Blocked is closed when a request to /block has sent its first bytes.
	Blocked chan struct{}

	image       []byte
	release     chan struct{}
	blockOnce   sync.Once
	releaseOnce sync.Once
}

// NewMediaServer serves image until the test ends.
func NewMediaServer(t testing.TB, image []byte) *MediaServer {
	t.Helper()
	s := &MediaServer{image: image, Blocked: make(chan struct{}), release: make(chan struct{})}
	s.HTTP = httptest.NewServer(s)
	s.HTTPS = httptest.NewTLSServer(s)
	t.Cleanup(func() {
		s.Release()
		s.HTTP.Close()
		s.HTTPS.Close()
	})
	return s
}

// Release lets a request blocked on /block go on (it then ends early).
func (s *MediaServer) Release() { s.releaseOnce.Do(func() { close(s.release) }) }

// RootCAs trusts the HTTPS server's certificate.
func (s *MediaServer) RootCAs() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.HTTPS.Certificate())
	return p
}

// ServeHTTP implements the paths above.
func (s *MediaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	head := min(4096, len(s.image))
	partial := func() {
		w.Header().Set("Content-Length", strconv.Itoa(len(s.image)))
		_, _ = w.Write(s.image[:head])
		w.(http.Flusher).Flush()
	}
	switch r.URL.Path {
	case "/image":
		w.Header().Set("Content-Length", strconv.Itoa(len(s.image)))
		_, _ = w.Write(s.image)
	case "/chunked":
		for p := s.image; len(p) > 0; {
			n := min(len(p), 64<<10)
			if _, err := w.Write(p[:n]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			p = p[n:]
		}
	case "/stall":
		partial()
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
	case "/short":
		partial()
		// Returning with fewer bytes than announced: the client sees the
		// connection end early.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
	case "/block":
		partial()
		s.blockOnce.Do(func() { close(s.Blocked) })
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
	default:
		http.NotFound(w, r)
	}
}

// ClosedPortURL is an http URL on a loopback port nothing listens on.
func ClosedPortURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/image"
}

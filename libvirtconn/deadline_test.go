package libvirtconn

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/govbmc/govbmc/internal/testtool"
)

// freezer is a unix socket proxy to libvirtd that can stop passing bytes,
// the way a hung libvirtd or a stalled tunnel does. A connection that was
// held up stays dead: once the proxy thaws, it is closed at both ends
// without passing on what it held, so that libvirtd never receives a call
// from a client that has already hung up: when the proxy passed such calls
// on at the thaw, this test once failed with every later connection to the
// test's libvirtd refused, and the kernel logged a libvirtd segfault (a
// NULL dereference in a priority RPC worker of Debian's libvirtd 9.0.0).
type freezer struct {
	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
	path   string
}

func startFreezer(t *testing.T, backend string) *freezer {
	path := filepath.Join(t.TempDir(), "proxy.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := relay(t, l, backend)
	f.path = path
	return f
}

// relay forwards every connection l accepts to the unix socket backend.
func relay(t *testing.T, l net.Listener, backend string) *freezer {
	f := &freezer{}
	f.cond = sync.NewCond(&f.mu)
	t.Cleanup(func() { l.Close(); f.set(false) })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("unix", backend)
			if err != nil {
				in.Close()
				continue
			}
			go f.pipe(in, out)
			go f.pipe(out, in)
		}
	}()
	return f
}

func (f *freezer) set(frozen bool) {
	f.mu.Lock()
	f.frozen = frozen
	f.mu.Unlock()
	f.cond.Broadcast()
}

// pass waits while the proxy is frozen and reports whether it was not: a
// connection held up by the freeze is dropped with what it held.
func (f *freezer) pass() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.frozen {
		return true
	}
	for f.frozen {
		f.cond.Wait()
	}
	return false
}

func (f *freezer) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if !f.pass() {
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestHungCallClosesTheConnection: a call libvirtd never answers returns
// at the caller's deadline, the connection is closed under it once the hard
// call timeout passes, and a fresh connection serves the next calls.
func TestHungCallClosesTheConnection(t *testing.T) {
	lvd := testtool.StartPrivateLibvirtd(t)
	proxy := startFreezer(t, lvd.Socket)
	pool := NewPool(nil, time.Second)
	defer pool.Close()
	c, err := pool.Get("test+unix:///default?socket="+proxy.path, Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDomain(c, "test", nil) // BootOverride always asks libvirt (no cache)
	if _, err := d.BootOverride(testCtx(t)); err != nil {
		t.Fatal(err)
	}

	proxy.set(true)
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	start := time.Now()
	_, err = d.BootOverride(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("short deadline: err=%v after %v", err, time.Since(start))
	}
	// The caller is gone, but the watchdog still closes the hung connection
	// once the call timeout passes.
	testtool.Eventually(t, 5*time.Second, "the watchdog closing the hung connection", func() bool {
		return c.Health() != nil
	})
	start = time.Now()
	_, err = d.BootOverride(testCtx(t))
	if !errors.Is(err, ErrUnavailable) || time.Since(start) > 3*time.Second {
		t.Fatalf("hung call: err=%v after %v, want ErrUnavailable after the 1s call timeout", err, time.Since(start))
	}

	proxy.set(false)
	testtool.Eventually(t, 15*time.Second, "a new connection serves calls", func() bool {
		_, err := d.BootOverride(testCtx(t))
		return err == nil
	})
	if c.Dials.Load() < 2 {
		t.Fatal("the hung connection was not replaced")
	}
}

// TestTCPTransport reaches libvirtd over qemu+tcp-style TCP through a
// loopback relay to its socket (libvirtd itself listens on TCP only with
// --listen, which the system daemon here does not use).
func TestTCPTransport(t *testing.T) {
	sock := testtool.SystemLibvirtd(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	relay(t, l, sock)
	pool := NewPool(nil, 0)
	defer pool.Close()
	c, err := pool.Get("test+tcp://"+l.Addr().String()+"/default", Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := NewDomain(c, "test", nil).PowerState(testCtx(t)); err != nil || s.String() != "on" {
		t.Fatalf("over TCP: %v %v", s, err)
	}
}

package load

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/ipmi"
)

func TestParseTargets(t *testing.T) {
	got, err := ParseTargets("127.0.0.1:6230-6232, [::1]:623,host:7000")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, x := range got {
		s = append(s, x.String())
	}
	if want := "127.0.0.1:6230 127.0.0.1:6231 127.0.0.1:6232 [::1]:623 host:7000"; strings.Join(s, " ") != want {
		t.Errorf("got %v, want %s", s, want)
	}
	for _, bad := range []string{"", "host", "host:0", "host:7-3", "host:1-70000", "host:x"} {
		if _, err := ParseTargets(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// relay forwards UDP between the load generator and a BMC, dropping what
// drop says, and counts Get Channel Cipher Suites requests by format.
type relay struct {
	conn     *net.UDPConn
	bmc      *net.UDPAddr
	drop     func(v15 bool) bool
	mu       sync.Mutex
	v15, v20 int
}

// cipherSuitesRequest reports whether pkt is a session-less Get Channel
// Cipher Suites request, and in which format.
func cipherSuitesRequest(pkt []byte) (ok, v15 bool) {
	switch {
	case len(pkt) > 19 && pkt[4] == 0x00: // IPMI 1.5, no authentication: the message at 14
		return pkt[19] == 0x54, true
	case len(pkt) > 21 && pkt[4] == 0x06 && pkt[5]&0x3f == 0 && binary.LittleEndian.Uint32(pkt[6:]) == 0: // RMCP+, session 0: at 16
		return pkt[21] == 0x54, false
	}
	return false, false
}

func startRelay(t *testing.T, bmcPort int, drop func(v15 bool) bool) (*relay, int) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{conn: conn, bmc: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: bmcPort}, drop: drop}
	upstream := map[string]*net.UDPConn{}
	done := make(chan struct{})
	t.Cleanup(func() {
		conn.Close()
		<-done
		for _, up := range upstream {
			up.Close()
		}
	})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			pkt := buf[:n]
			if ok, v15 := cipherSuitesRequest(pkt); ok {
				r.mu.Lock()
				if v15 {
					r.v15++
				} else {
					r.v20++
				}
				r.mu.Unlock()
				if r.drop(v15) {
					continue
				}
			}
			up := upstream[from.String()]
			if up == nil {
				if up, err = net.DialUDP("udp", nil, r.bmc); err != nil {
					return
				}
				upstream[from.String()] = up
				go func(up *net.UDPConn, client *net.UDPAddr) {
					b := make([]byte, 2048)
					for {
						n, err := up.Read(b)
						if err != nil {
							return
						}
						_, _ = conn.WriteToUDP(b[:n], client)
					}
				}(up, from)
			}
			_, _ = up.Write(pkt)
		}
	}()
	return r, conn.LocalAddr().(*net.UDPAddr).Port
}

// TestCipherSuitesFormat: Get Channel Cipher Suites goes out as an IPMI 1.5
// packet (ipmi_sim takes no other); a BMC that drops that is asked as
// ipmitool asks (RMCP+, session 0), one that answers neither gets go-ipmi's
// preferred suites, and only a target's first session pays the timeout.
func TestCipherSuitesFormat(t *testing.T) {
	node := bmc.Node{Name: "n", Address: "127.0.0.1", Users: []bmc.User{{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}}}
	m, err := bmc.NewSimMachine(node)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ipmi.New(node, m, ipmi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(ctx) }()
	for _, c := range []struct {
		name     string
		drop     func(v15 bool) bool
		v15, v20 int
	}{
		{"answers IPMI 1.5", func(bool) bool { return false }, 5, 0},
		{"answers RMCP+ only", func(v15 bool) bool { return v15 }, 1, 5},
		{"answers neither", func(bool) bool { return true }, 1, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, port := startRelay(t, srv.Addr().Port, c.drop)
			res := Run(ctx, Config{Targets: []Target{{Host: "127.0.0.1", Port: port}}, Username: "admin", Password: "password", Sessions: 5, Timeout: 300 * time.Millisecond})
			if res.Errors > 0 || res.Sessions != 5 {
				t.Fatalf("%s", res)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.v15 != c.v15 || r.v20 != c.v20 {
				t.Errorf("Get Channel Cipher Suites requests: %d as IPMI 1.5, %d as RMCP+; want %d, %d", r.v15, r.v20, c.v15, c.v20)
			}
		})
	}
}

package ipmi_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
)

// rmcpPing is an ASF Presence Ping; a live BMC answers it with a Pong.
var rmcpPing = []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x42, 0x00, 0x00}

// FuzzDatagram sends arbitrary datagrams to a running node: it must never
// crash, must keep answering, and nothing unauthenticated may change the
// machine. The seeds are real ipmitool and freeipmi traffic (testdata).
func FuzzDatagram(f *testing.F) {
	f.Add(rmcpPing)
	n := startNode(f)
	conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: atoi(n.port)})
	if err != nil {
		f.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex // fuzz workers share the one client socket
	f.Fuzz(func(t *testing.T, pkt []byte) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := conn.Write(pkt); err != nil {
			t.Fatal(err)
		}
		// Still alive: a ping gets its pong.
		if _, err := conn.Write(rmcpPing); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 512)
		deadline := time.Now().Add(2 * time.Second)
		for {
			_ = conn.SetReadDeadline(deadline)
			m, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("node stopped answering after % x: %v", pkt, err)
			}
			if m >= 12 && buf[3] == 0x06 && buf[8] == 0x40 { // Presence Pong
				break
			}
		}
		if s, _ := n.sim.PowerState(context.Background()); s != bmc.PowerOff {
			t.Fatalf("an unauthenticated datagram powered the machine on: % x", pkt)
		}
	})
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestCaptureSeeds records the datagrams real clients send into
// testdata/fuzz/FuzzDatagram (run with GOVBMC_CAPTURE=1 to refresh them).
func TestCaptureSeeds(t *testing.T) {
	if os.Getenv("GOVBMC_CAPTURE") == "" {
		t.Skip("GOVBMC_CAPTURE=1 refreshes the seed corpus")
	}
	n := startNode(t)
	proxy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	backend := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: atoi(n.port)}
	var mu sync.Mutex
	var seen [][]byte
	go relayUDP(proxy, backend, func(p []byte) {
		mu.Lock()
		seen = append(seen, append([]byte(nil), p...))
		mu.Unlock()
	})
	port := fmt.Sprint(proxy.LocalAddr().(*net.UDPAddr).Port)
	run := func(name string, args ...string) {
		_, _ = testtool.Run(t, 30*time.Second, name, args...)
	}
	for _, itf := range [][]string{{"-I", "lanplus"}, {"-I", "lanplus", "-C", "3"}, {"-I", "lan"}} {
		base := append(append([]string{}, itf...), "-H", "127.0.0.1", "-p", port, "-U", "admin", "-P", "password")
		run("ipmitool", append(base, "power", "status")...)
		run("ipmitool", append(base, "chassis", "bootdev", "pxe", "options=persistent,efiboot")...)
		run("ipmitool", append(base, "chassis", "bootparam", "get", "5")...)
	}
	run("ipmipower", "-h", "127.0.0.1:"+port, "-u", "admin", "-p", "password", "--stat")
	run("ipmipower", "-h", "127.0.0.1:"+port, "-u", "admin", "-p", "password", "-D", "LAN_2_0", "--stat")
	dir := filepath.Join("testdata", "fuzz", "FuzzDatagram")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, p := range seen {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", p)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("capture-%03d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("captured %d datagrams", len(seen))
	if len(seen) == 0 {
		t.Fatal("nothing captured")
	}
}

// relayUDP forwards client datagrams to backend and the answers back,
// reporting each client datagram.
func relayUDP(front *net.UDPConn, backend *net.UDPAddr, record func([]byte)) {
	clients := map[string]*net.UDPConn{}
	buf := make([]byte, 4096)
	for {
		n, from, err := front.ReadFromUDP(buf)
		if err != nil {
			return
		}
		record(buf[:n])
		up, ok := clients[from.String()]
		if !ok {
			if up, err = net.DialUDP("udp", nil, backend); err != nil {
				continue
			}
			clients[from.String()] = up
			go func(up *net.UDPConn, from *net.UDPAddr) {
				b := make([]byte, 4096)
				for {
					m, err := up.Read(b)
					if err != nil {
						return
					}
					_, _ = front.WriteToUDP(b[:m], from)
				}
			}(up, from)
		}
		_, _ = up.Write(buf[:n])
	}
}

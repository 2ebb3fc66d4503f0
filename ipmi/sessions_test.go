package ipmi_test

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/internal/load"
	"github.com/govbmc/govbmc/ipmi"
)

// rmcppDatagram frames an unauthenticated RMCP+ payload (IPMI 2.0 §13.6).
func rmcppDatagram(pt types.PayloadType, payload []byte) []byte {
	pkt := []byte{0x06, 0x00, 0xFF, 0x07, 0x06, byte(pt), 0, 0, 0, 0, 0, 0, 0, 0}
	pkt = binary.LittleEndian.AppendUint16(pkt, uint16(len(payload)))
	return append(pkt, payload...)
}

// openSessionRequest asks for a suite 3 session (IPMI 2.0 Table 13-9).
func openSessionRequest(consoleID uint32) []byte {
	p := []byte{0x01, 0x04, 0, 0}
	p = binary.LittleEndian.AppendUint32(p, consoleID)
	p = append(p, 0x00, 0, 0, 0x08, 0x01, 0, 0, 0) // RAKP-HMAC-SHA1
	p = append(p, 0x01, 0, 0, 0x08, 0x01, 0, 0, 0) // HMAC-SHA1-96
	p = append(p, 0x02, 0, 0, 0x08, 0x01, 0, 0, 0) // AES-CBC-128
	return rmcppDatagram(types.PayloadTypeRmcpOpenSessionRequest, p)
}

// rakp1 continues a login as user (IPMI 2.0 Table 13-11).
func rakp1(bmcID uint32, user string) []byte {
	p := []byte{0x02, 0, 0, 0}
	p = binary.LittleEndian.AppendUint32(p, bmcID)
	p = append(p, make([]byte, 16)...) // console random number
	p = append(p, 0x14, 0, 0, byte(len(user)))
	p = append(p, user...)
	return rmcppDatagram(types.PayloadTypeRAKPMessage1, p)
}

// payloadOf returns the payload of an RMCP+ answer of the given type, or nil.
func payloadOf(pkt []byte, pt types.PayloadType) []byte {
	if len(pkt) < 16 || pkt[5]&0x3F != byte(pt) {
		return nil
	}
	n := int(binary.LittleEndian.Uint16(pkt[14:16]))
	if len(pkt) < 16+n {
		return nil
	}
	return pkt[16 : 16+n]
}

// dialFrom opens a UDP socket from a loopback address to the node.
func dialFrom(t *testing.T, n *testNode, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: atoi(n.port)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends pkt and returns the answer, or nil after a second.
func exchange(t *testing.T, c *net.UDPConn, pkt []byte) []byte {
	t.Helper()
	return exchangeWait(t, c, pkt, time.Second)
}

// exchangeWait is exchange with a wait of its own.
func exchangeWait(t *testing.T, c *net.UDPConn, pkt []byte, wait time.Duration) []byte {
	t.Helper()
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1024)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	k, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:k]
}

// TestOpenSessionFloodCannotPushOutALogin: a real client has opened a
// session and is about to send RAKP 1 when another address floods the BMC
// with Open Session requests (no credentials needed), each followed by a
// forged RAKP 3, far more than the table holds. go-ipmi on its own evicts the oldest pending session for
// each, the real client's first; here the flood only recycles its own
// slots, and the real login completes. Meanwhile ipmitool logins from
// elsewhere all succeed.
func TestOpenSessionFloodCannotPushOutALogin(t *testing.T) {
	// The forged RAKP 3s are failed logins: the throttle would block the
	// flood's address after 10 and the table would never fill.
	n := startNodeWith(t, ipmi.Options{AuthFailureLimit: 1 << 20})
	real := dialFrom(t, n, "127.0.0.1")
	resp := payloadOf(exchange(t, real, openSessionRequest(0xA0A2A3A4)), types.PayloadTypeRmcpOpenSessionResponse)
	if len(resp) < 12 || resp[1] != 0 {
		t.Fatalf("open session: %x", resp)
	}
	bmcID := binary.LittleEndian.Uint32(resp[8:12])

	flood := dialFrom(t, n, "127.0.0.2")
	answered := 0
	for i := range 5 * ipmi.DefaultMaxSessions {
		open := payloadOf(exchange(t, flood, openSessionRequest(uint32(i+1))), types.PayloadTypeRmcpOpenSessionResponse)
		if len(open) < 12 {
			continue
		}
		answered++
		// A forged RAKP 3, too short to check: it must not count as a
		// finished login (which would leave the real client's handshake
		// the only unfinished one, and the one to go).
		forged := append([]byte{0x03, 0, 0, 0}, open[8:12]...)
		exchangeWait(t, flood, rmcppDatagram(types.PayloadTypeRAKPMessage3, forged), 200*time.Millisecond)
	}
	if answered < 4*ipmi.DefaultMaxSessions {
		t.Fatalf("only %d of the flood's Open Session requests were answered: the test proves nothing", answered)
	}
	r2 := payloadOf(exchange(t, real, rakp1(bmcID, admin.Name)), types.PayloadTypeRAKPMessage2)
	if len(r2) < 2 || r2[1] != 0 {
		t.Fatalf("the real login's RAKP 2 after the flood: %x (status 0x02 means its session was pushed out)", r2)
	}

	// A flood from several addresses at once, while ipmitool logs in.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	for _, ip := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		c := dialFrom(t, n, ip)
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 20000 && ctx.Err() == nil; i++ {
				_, _ = c.Write(openSessionRequest(uint32(i + 1)))
			}
		}()
	}
	for range 5 {
		out, err := n.ipmitool("-I", "lanplus", "-U", admin.Name, "-P", admin.Password, "-R", "1", "-N", "5", "power", "status")
		if err != nil || !strings.Contains(out, "Chassis Power is") {
			t.Errorf("ipmitool during the flood: %v\n%s", err, out)
		}
	}
	cancel()
	for range 3 {
		<-done
	}
}

// TestFullSessionTableAdmitsNewLogin: clients that log in and never close
// fill the table; a new login closes the session idle longest — not one
// in use — instead of being refused until the 60 s timeout.
func TestFullSessionTableAdmitsNewLogin(t *testing.T) {
	const size = 4
	n := startNodeWith(t, ipmi.Options{MaxSessions: size, EvictIdle: 300 * time.Millisecond})
	ctx := context.Background()
	var open []*client.Client
	for i := range size {
		c, err := n.connect(admin, client.InterfaceLanplus, types.PrivilegeLevelAdministrator)
		if err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
		open = append(open, c)
	}
	// The table is full of sessions that are not idle yet: no room.
	if _, err := n.connect(admin, client.InterfaceLanplus, types.PrivilegeLevelAdministrator); err == nil {
		t.Fatal("a fifth login into a full table of busy sessions succeeded")
	}
	time.Sleep(400 * time.Millisecond)
	// Sessions 2-4 stay in use; session 1 has been idle longest.
	for _, c := range open[1:] {
		if _, err := c.GetDeviceID(ctx); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(400 * time.Millisecond)
	for _, c := range open[2:] {
		if _, err := c.GetDeviceID(ctx); err != nil {
			t.Fatal(err)
		}
	}
	out, err := n.ipmitool("-I", "lanplus", "-U", admin.Name, "-P", admin.Password, "-R", "1", "-N", "5", "power", "status")
	if err != nil || !strings.Contains(out, "Chassis Power is") {
		t.Fatalf("a new login into a full table: %v\n%s", err, out)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := open[0].GetDeviceID(short); err == nil {
		t.Error("the session idle longest still works: nothing was evicted, or the wrong one")
	}
	for i, c := range open[1:] {
		if _, err := c.GetDeviceID(ctx); err != nil {
			t.Errorf("session %d, used more recently, was closed: %v", i+2, err)
		}
	}
	mustContain(t, n.logs.String(), "session closed to admit a new login")
}

// TestIdleSessionsExpire: a session left idle past the inactivity timeout
// (60 s by default, IPMI 2.0 §6.12.15; one second here, plus go-ipmi's
// 3 s tolerance of Table 6-7) is closed, while one in use stays.
func TestIdleSessionsExpire(t *testing.T) {
	n := startNodeWith(t, ipmi.Options{SessionTimeout: time.Second})
	ctx := context.Background()
	idle, err := n.connect(admin, client.InterfaceLanplus, types.PrivilegeLevelAdministrator)
	if err != nil {
		t.Fatal(err)
	}
	busy, err := n.connect(admin, client.InterfaceLanplus, types.PrivilegeLevelAdministrator)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // 5 s: past the timeout and its tolerance
		time.Sleep(250 * time.Millisecond)
		if _, err := busy.GetDeviceID(ctx); err != nil {
			t.Fatalf("the session in use was closed: %v", err)
		}
	}
	if _, err := n.connect(admin, client.InterfaceLanplus, types.PrivilegeLevelAdministrator); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := idle.GetDeviceID(short); err == nil {
		t.Error("a session idle past the timeout still works")
	}
	if _, err := busy.GetDeviceID(ctx); err != nil {
		t.Errorf("the session in use was closed: %v", err)
	}
}

// TestManyLoginsFromOneAddress: many clients logging in at once from one
// address (Ironic's conductor runs its power sync on a pool of workers) are
// all served while the table has room; none is closed to admit another.
func TestManyLoginsFromOneAddress(t *testing.T) {
	n := startNode(t)
	res := load.Run(context.Background(), load.Config{
		Targets:  []load.Target{{Host: "127.0.0.1", Port: atoi(n.port)}},
		Username: admin.Name, Password: admin.Password,
		Concurrency: 16, Sessions: 800, Duration: 60 * time.Second,
	})
	if res.Errors > 0 || res.Sessions != 800 {
		t.Fatalf("16 concurrent clients from one address: %s", res)
	}
	if strings.Contains(n.logs.String(), "session closed to admit a new login") {
		t.Error("a session was closed while the table had room")
	}
}

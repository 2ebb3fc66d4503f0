package ipmi_test

import (
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/crypto"
	"github.com/bougou/go-ipmi/pkg/protocol"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
)

// relay sits between a client and a node on loopback and keeps a copy of
// every datagram, so that a test can replay what a real client sent.
type relay struct {
	t     *testing.T
	front *net.UDPConn // the client talks to this
	back  *net.UDPConn // connected to the node

	mu     sync.Mutex
	client net.Addr
	sent   [][]byte // client → BMC, in order
	recv   [][]byte // BMC → client, in order
}

func newRelay(t *testing.T, n *testNode) *relay {
	t.Helper()
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: atoi(n.port)})
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{t: t, front: front, back: back}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			k, addr, err := front.ReadFrom(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.client = addr
			r.sent = append(r.sent, append([]byte(nil), buf[:k]...))
			r.mu.Unlock()
			_, _ = back.Write(buf[:k])
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			k, err := back.Read(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.recv = append(r.recv, append([]byte(nil), buf[:k]...))
			to := r.client
			r.mu.Unlock()
			if to != nil {
				_, _ = front.WriteTo(buf[:k], to)
			}
		}
	}()
	t.Cleanup(func() {
		front.Close()
		back.Close()
		wg.Wait()
	})
	return r
}

func (r *relay) port() int { return r.front.LocalAddr().(*net.UDPAddr).Port }

// lastSent is the client's latest datagram.
func (r *relay) lastSent() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sent) == 0 {
		r.t.Fatal("the client sent nothing")
	}
	return r.sent[len(r.sent)-1]
}

// payload returns the first captured RMCP+ payload of type pt in dgrams.
func firstPayload(dgrams [][]byte, pt types.PayloadType) []byte {
	for _, d := range dgrams {
		if len(d) < 6 || d[4] != 0x06 {
			continue
		}
		if _, _, typ, _, p, ok := protocol.ParseRMCPPlusHeader(d); ok && typ == uint8(pt) {
			return p
		}
	}
	return nil
}

// sessionKey derives the session's K1 from the captured handshake (RAKP
// Messages 1 and 2, IPMI 2.0 §13.31–13.32) and the user's password: what
// a holder of the password who watched the login could sign with.
func (r *relay) sessionK1(suite types.CipherSuiteID, u bmc.User) (k1 []byte, integ types.IntegrityAlg) {
	r.t.Helper()
	r.mu.Lock()
	rakp1 := firstPayload(r.sent, types.PayloadTypeRAKPMessage1)
	rakp2 := firstPayload(r.recv, types.PayloadTypeRAKPMessage2)
	r.mu.Unlock()
	if len(rakp1) < 28 || len(rakp2) < 24 {
		r.t.Fatalf("handshake not captured (RAKP 1: %d bytes, RAKP 2: %d bytes)", len(rakp1), len(rakp2))
	}
	auth := types.AuthAlg_HMAC_SHA1
	integ = types.IntegrityAlg_HMAC_SHA1_96
	if suite == types.CipherSuiteID17 {
		auth, integ = types.AuthAlg_HMAC_SHA256, types.IntegrityAlg_HMAC_SHA256_128
	}
	consoleRand, role, name := rakp1[8:24], rakp1[24], string(rakp1[28:28+int(rakp1[27])])
	_, k1, _, err := crypto.DeriveSessionKeys(auth, consoleRand, rakp2[8:24], role, name, crypto.PadPassword20([]byte(u.Password)))
	if err != nil {
		r.t.Fatal(err)
	}
	return k1, integ
}

// seqOf is the session sequence number of an RMCP+ datagram.
func seqOf(pkt []byte) uint32 { return binary.LittleEndian.Uint32(pkt[10:14]) }

// withSeq returns pkt carrying session sequence number seq; with k1 it is
// signed again (the AuthCode is the datagram's last bytes and covers
// everything from the session header on), without it the old AuthCode stays.
func withSeq(t *testing.T, pkt []byte, seq uint32, k1 []byte, integ types.IntegrityAlg) []byte {
	t.Helper()
	out := append([]byte(nil), pkt...)
	binary.LittleEndian.PutUint32(out[10:14], seq)
	if k1 == nil {
		return out
	}
	n, _ := crypto.IntegrityAuthCodeLen(integ)
	code, err := crypto.SessionIntegrityAuthCode(integ, out[4:len(out)-n], k1, "")
	if err != nil || len(code) != n {
		t.Fatalf("sign: %v (%d bytes)", err, len(code))
	}
	copy(out[len(out)-n:], code)
	return out
}

// injector sends datagrams to the node from a socket of its own and reads
// what comes back.
type injector struct {
	t *testing.T
	c *net.UDPConn
}

func newInjector(t *testing.T, n *testNode) *injector {
	t.Helper()
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: atoi(n.port)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &injector{t: t, c: c}
}

// send sends pkt and returns the answer, or nil when none comes within wait.
func (in *injector) send(pkt []byte, wait time.Duration) []byte {
	in.t.Helper()
	if _, err := in.c.Write(pkt); err != nil {
		in.t.Fatal(err)
	}
	buf := make([]byte, 65536)
	_ = in.c.SetReadDeadline(time.Now().Add(wait))
	k, err := in.c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:k]
}

// replayWait is how long a dropped datagram is given to be answered anyway.
const replayWait = 400 * time.Millisecond

// TestReplayedPacketsAreNotExecuted captures an authenticated,
// integrity-protected Chassis Control (power cycle) of a live RMCP+ session
// and replays it: a verbatim copy is dropped (no answer, no second power
// cycle), also after other commands of the session have moved on; a copy
// re-signed with the session key but a sequence number outside the window
// (IPMI 2.0 §6.12.13: 16 behind to 15 ahead of the highest received) is
// dropped, and so is one whose sequence number was changed without signing
// it again. A re-signed copy inside the window does run — the signing here
// is right — and the client's session goes on working.
func TestReplayedPacketsAreNotExecuted(t *testing.T) {
	for _, suite := range []types.CipherSuiteID{types.CipherSuiteID3, types.CipherSuiteID17} {
		t.Run("suite"+strconv.Itoa(int(suite)), func(t *testing.T) {
			n := startNode(t)
			n.setPower(bmc.PowerOn)
			r := newRelay(t, n)
			c, err := client.NewClient("127.0.0.1", r.port(), admin.Name, admin.Password)
			if err != nil {
				t.Fatal(err)
			}
			c = c.WithInterface(client.InterfaceLanplus).WithCipherSuiteID(suite).
				WithMaxPrivilegeLevel(types.PrivilegeLevelAdministrator).WithTimeout(2 * time.Second).WithRetry(0)
			ctx := context.Background()
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			boots := func() int { return len(n.sim.Boots()) }

			start := boots()
			if _, err := c.ChassisControl(ctx, chassis.ChassisControlPowerCycle); err != nil {
				t.Fatal(err)
			}
			cycle := r.lastSent()
			if cycle[4] != 0x06 || cycle[5]&types.PayloadFlagAuthenticated == 0 || cycle[5]&types.PayloadFlagEncrypted == 0 {
				t.Fatalf("captured datagram is not an authenticated, encrypted RMCP+ one: % x", cycle[:16])
			}
			if boots() != start+1 {
				t.Fatalf("power cycle booted %d times", boots()-start)
			}

			in := newInjector(t, n)
			for i := range 5 {
				if resp := in.send(cycle, replayWait); resp != nil {
					t.Fatalf("verbatim replay %d was answered: % x", i+1, resp)
				}
			}
			if boots() != start+1 {
				t.Fatalf("a replayed power cycle ran again (%d boots)", boots()-start)
			}

			// The session moves on (another Chassis Control, a status read);
			// the old power cycle replayed now is still not executed.
			if _, err := c.ChassisControl(ctx, chassis.ChassisControlDiagnosticInterrupt); err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetChassisStatus(ctx); err != nil {
				t.Fatal(err)
			}
			if resp := in.send(cycle, replayWait); resp != nil {
				t.Fatalf("replay after later commands was answered: % x", resp)
			}
			if boots() != start+1 {
				t.Fatalf("a power cycle replayed after later commands ran again (%d boots)", boots()-start)
			}

			k1, integ := r.sessionK1(suite, admin)
			last := seqOf(r.lastSent())

			// Positive control: correctly signed, fresh sequence number
			// inside the window → executed once.
			fresh := withSeq(t, cycle, last+5, k1, integ)
			if resp := in.send(fresh, 3*time.Second); resp == nil {
				t.Fatal("a correctly re-signed power cycle inside the window got no answer: the test's signing is wrong")
			}
			if boots() != start+2 {
				t.Fatalf("re-signed power cycle inside the window: %d boots, want 2", boots()-start)
			}
			if resp := in.send(fresh, replayWait); resp != nil {
				t.Fatalf("replay of the re-signed datagram was answered: % x", resp)
			}

			high := last + 5
			for _, tc := range []struct {
				name string
				pkt  []byte
			}{
				{"16 ahead of the highest, re-signed", withSeq(t, cycle, high+16, k1, integ)},
				{"100 ahead, re-signed", withSeq(t, cycle, high+100, k1, integ)},
				{"1<<31 ahead, re-signed", withSeq(t, cycle, high+1<<31, k1, integ)},
				{"17 behind the highest, re-signed", withSeq(t, cycle, high-17, k1, integ)},
				{"sequence number 0, re-signed", withSeq(t, cycle, 0, k1, integ)},
				{"in the window, old AuthCode", withSeq(t, cycle, high+1, nil, integ)},
			} {
				if resp := in.send(tc.pkt, replayWait); resp != nil {
					t.Errorf("%s: answered: % x", tc.name, resp)
				}
			}
			if boots() != start+2 {
				t.Fatalf("a datagram outside the window ran (%d boots, want 2)", boots()-start)
			}

			// The client's own session is unharmed: its next sequence
			// number (last+1) is inside the window and unused.
			st, err := c.GetChassisStatus(ctx)
			if err != nil {
				t.Fatalf("the session stopped working after the replays: %v", err)
			}
			if !st.PowerIsOn {
				t.Fatal("chassis status says off")
			}
		})
	}
}

// TestReplayedV15PacketsAreNotExecuted: an IPMI 1.5 session (MD5) replayed
// verbatim does not run its power cycle again (go-ipmi tracks the 1.5
// window itself; this guards it).
func TestReplayedV15PacketsAreNotExecuted(t *testing.T) {
	n := startNode(t)
	n.setPower(bmc.PowerOn)
	r := newRelay(t, n)
	c, err := client.NewClient("127.0.0.1", r.port(), admin.Name, admin.Password)
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithInterface(client.InterfaceLan).WithMaxPrivilegeLevel(types.PrivilegeLevelAdministrator).WithTimeout(2 * time.Second).WithRetry(0)
	ctx := context.Background()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	start := len(n.sim.Boots())
	if _, err := c.ChassisControl(ctx, chassis.ChassisControlPowerCycle); err != nil {
		t.Fatal(err)
	}
	cycle := r.lastSent()
	if _, err := c.ChassisControl(ctx, chassis.ChassisControlDiagnosticInterrupt); err != nil {
		t.Fatal(err)
	}
	in := newInjector(t, n)
	for range 3 {
		in.send(cycle, replayWait)
	}
	if got := len(n.sim.Boots()) - start; got != 1 {
		t.Fatalf("one power cycle and its replays booted %d times", got)
	}
	if _, err := c.GetChassisStatus(ctx); err != nil {
		t.Fatalf("the session stopped working after the replays: %v", err)
	}
}

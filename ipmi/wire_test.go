package ipmi

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/bougou/go-ipmi/pkg/protocol"
	"github.com/bougou/go-ipmi/pkg/rmcpplus"
	"github.com/bougou/go-ipmi/pkg/types"
)

// v15Datagram builds an IPMI 1.5 LAN datagram: auth code only when authType
// is not NONE; msg is the IPMI message.
func v15Datagram(authType uint8, seq, sid uint32, msg []byte) []byte {
	pkt := []byte{0x06, 0x00, 0xFF, rmcpClassIPMI, authType}
	pkt = binary.LittleEndian.AppendUint32(pkt, seq)
	pkt = binary.LittleEndian.AppendUint32(pkt, sid)
	if authType != authTypeNone {
		pkt = append(pkt, bytes.Repeat([]byte{0xAA}, v15AuthCodeLen)...)
	}
	pkt = append(pkt, byte(len(msg)))
	return append(pkt, msg...)
}

// request and response are IPMI messages for command c.
func request(c types.Command, data ...byte) []byte {
	return append(append([]byte{0x20, uint8(c.NetFn) << 2, 0, 0x81, 0x04, c.ID}, data...), 0)
}

func response(c types.Command, cc uint8, data ...byte) []byte {
	return protocol.BuildIPMIResponse(uint8(c.NetFn), c.ID, 1, cc, data)
}

func rmcpp(pt types.PayloadType, flags uint8, sid, seq uint32, payload []byte) []byte {
	return protocol.BuildRMCPPlusPacket(uint8(pt), flags, sid, seq, payload)
}

// rakp1 is a RAKP Message 1 payload whose name length byte says n and
// which carries name.
func rakp1(n uint8, name string) []byte {
	p := make([]byte, rakp1UsernameLenOff+1, rakp1UsernameLenOff+1+len(name))
	p[rakp1UsernameLenOff] = n
	return append(p, name...)
}

// loginAnswer is an Open Session Response or RAKP 4 payload.
func loginAnswer(status uint8, consoleID, bmcID uint32) []byte {
	p := []byte{0x01, status, 0x04, 0x00}
	p = binary.LittleEndian.AppendUint32(p, consoleID)
	return binary.LittleEndian.AppendUint32(p, bmcID)
}

var wireCases = []struct {
	name string
	pkt  []byte
	want header // payload and msg compared separately when set
	// what the consumers read of it
	loginStart, loginFailed, rakp1Overrun, openRequest bool
}{
	{name: "empty", pkt: nil},
	{name: "shorter than RMCP", pkt: []byte{0x06, 0x00, 0xFF}},
	{name: "ASF presence ping", pkt: rmcpPingDatagram, want: header{class: rmcpClassASF}},
	{name: "IPMI class, no session header", pkt: []byte{0x06, 0x00, 0xFF, 0x07}, want: header{class: rmcpClassIPMI}},
	{
		name: "RMCP+ Open Session Request", pkt: rmcpp(types.PayloadTypeRmcpOpenSessionRequest, 0, 0, 0, make([]byte, openSessionReqLen)),
		want:       header{class: rmcpClassIPMI, authType: authTypeRMCPP, session: true, payloadType: types.PayloadTypeRmcpOpenSessionRequest},
		loginStart: true, openRequest: true,
	},
	{
		name: "RMCP+ Open Session Request too short to take a slot", pkt: rmcpp(types.PayloadTypeRmcpOpenSessionRequest, 0, 0, 0, make([]byte, openSessionReqLen-1)),
		want:       header{class: rmcpClassIPMI, authType: authTypeRMCPP, session: true, payloadType: types.PayloadTypeRmcpOpenSessionRequest},
		loginStart: true,
	},
	{
		name: "RMCP+ IPMI request, encrypted and authenticated", pkt: rmcpp(types.PayloadTypeIPMI, types.PayloadFlagEncrypted|types.PayloadFlagAuthenticated, 0x11223344, 7, []byte{1, 2, 3}),
		want: header{class: rmcpClassIPMI, authType: authTypeRMCPP, session: true, payloadType: types.PayloadTypeIPMI,
			encrypted: true, authenticated: true, sessionID: 0x11223344, seq: 7},
	},
	{
		name: "RMCP+ payload shorter than its length says", pkt: rmcpp(types.PayloadTypeIPMI, 0, 1, 2, []byte{1, 2, 3})[:18],
		want: header{class: rmcpClassIPMI, authType: authTypeRMCPP},
	},
	{
		name: "RAKP 1 whose name fits", pkt: rmcpp(types.PayloadTypeRAKPMessage1, 0, 0, 0, rakp1(5, "admin")),
		want:       header{class: rmcpClassIPMI, authType: authTypeRMCPP, session: true, payloadType: types.PayloadTypeRAKPMessage1},
		loginStart: true,
	},
	{
		name: "RAKP 1 whose name length overruns (go-ipmi panics)", pkt: rmcpp(types.PayloadTypeRAKPMessage1, 0, 0, 0, rakp1(0xE4, "admin")),
		want:       header{class: rmcpClassIPMI, authType: authTypeRMCPP, session: true, payloadType: types.PayloadTypeRAKPMessage1},
		loginStart: true, rakp1Overrun: true,
	},
	{
		name: "RAKP 1 cut before its name length", pkt: rmcpp(types.PayloadTypeRAKPMessage1, 0, 0, 0, make([]byte, rakp1UsernameLenOff)),
		want:       header{class: rmcpClassIPMI, authType: authTypeRMCPP, session: true, payloadType: types.PayloadTypeRAKPMessage1},
		loginStart: true, rakp1Overrun: true,
	},
	{
		name: "RAKP 2 unauthorized name", pkt: rmcpp(types.PayloadTypeRAKPMessage2, 0, 0, 0, loginAnswer(rmcppUnauthorizedName, 1, 2)),
		want:        header{class: rmcpClassIPMI, authType: authTypeRMCPP, session: true, payloadType: types.PayloadTypeRAKPMessage2},
		loginFailed: true,
	},
	{
		name: "RAKP 4 invalid integrity check value", pkt: rmcpp(types.PayloadTypeRAKPMessage4, 0, 0, 0, loginAnswer(rmcppInvalidIntegrityCV, 1, 2)),
		want:        header{class: rmcpClassIPMI, authType: authTypeRMCPP, session: true, payloadType: types.PayloadTypeRAKPMessage4},
		loginFailed: true,
	},
	{
		name: "RAKP 4 invalid session ID (proves nothing about a password)", pkt: rmcpp(types.PayloadTypeRAKPMessage4, 0, 0, 0, loginAnswer(0x02, 1, 2)),
		want: header{class: rmcpClassIPMI, authType: authTypeRMCPP, session: true, payloadType: types.PayloadTypeRAKPMessage4},
	},
	{
		name: "IPMI 1.5 Get Session Challenge", pkt: v15Datagram(authTypeNone, 0, 0, request(types.CommandGetSessionChallenge, 0x02)),
		want:       header{class: rmcpClassIPMI, authType: authTypeNone, session: true, msg: ipmiMsg{ok: true, netFn: 0x06, cmd: 0x39, code: 0x02}},
		loginStart: true,
	},
	{
		name: "IPMI 1.5 Get Session Challenge inside a session", pkt: v15Datagram(2, 1, 9, request(types.CommandGetSessionChallenge, 0x02)),
		want: header{class: rmcpClassIPMI, authType: 2, session: true, sessionID: 9, seq: 1, msg: ipmiMsg{ok: true, netFn: 0x06, cmd: 0x39, code: 0x02}},
	},
	{
		name: "IPMI 1.5 Get Session Challenge refused", pkt: v15Datagram(authTypeNone, 0, 0, response(types.CommandGetSessionChallenge, 0x81)),
		want:        header{class: rmcpClassIPMI, authType: authTypeNone, session: true, msg: ipmiMsg{ok: true, netFn: 0x07, cmd: 0x39, code: 0x81}},
		loginFailed: true,
	},
	{
		name: "IPMI 1.5 MD5 Activate Session refused", pkt: v15Datagram(2, 0, 0x0A0B0C0D, response(types.CommandActivateSession, 0x86)),
		want:        header{class: rmcpClassIPMI, authType: 2, session: true, sessionID: 0x0A0B0C0D, msg: ipmiMsg{ok: true, netFn: 0x07, cmd: 0x3A, code: 0x86}},
		loginFailed: true,
	},
	{
		name: "IPMI 1.5 MD5 Activate Session answered", pkt: v15Datagram(2, 5, 0x0A0B0C0D, response(types.CommandActivateSession, 0, make([]byte, 10)...)),
		want: header{class: rmcpClassIPMI, authType: 2, session: true, sessionID: 0x0A0B0C0D, seq: 5, msg: ipmiMsg{ok: true, netFn: 0x07, cmd: 0x3A}},
	},
	{
		name: "IPMI 1.5 message length past the end", pkt: v15Datagram(authTypeNone, 0, 0, request(types.CommandGetSessionChallenge, 0x02))[:20],
		want: header{class: rmcpClassIPMI, authType: authTypeNone},
	},
	{
		name: "IPMI 1.5 auth code cut short", pkt: v15Datagram(2, 0, 0, nil)[:25],
		want: header{class: rmcpClassIPMI, authType: 2},
	},
	{
		name: "IPMI 1.5 message too short to name a command", pkt: v15Datagram(authTypeNone, 0, 0, []byte{0x20, 0x18, 0}),
		want: header{class: rmcpClassIPMI, authType: authTypeNone, session: true},
	},
}

var rmcpPingDatagram = []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x42, 0x00, 0x00}

// TestParseDatagram: each datagram's header, and what the transport, the
// throttle and session admission read of it.
func TestParseDatagram(t *testing.T) {
	for _, c := range wireCases {
		t.Run(c.name, func(t *testing.T) {
			got := parseDatagram(c.pkt)
			payload := got.payload
			got.payload = nil
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("header\n got %+v\nwant %+v", got, c.want)
			}
			if got.session {
				// The payload (RMCP+) or message (1.5) is the datagram's tail.
				if len(payload) == 0 || !bytes.HasSuffix(c.pkt, payload) {
					t.Errorf("payload % x is not the tail of % x", payload, c.pkt)
				}
			} else if payload != nil {
				t.Errorf("no session header, yet a payload % x", payload)
			}
			h := parseDatagram(c.pkt)
			if g := loginStart(h); g != c.loginStart {
				t.Errorf("loginStart = %v, want %v", g, c.loginStart)
			}
			if g := loginFailed(h); g != c.loginFailed {
				t.Errorf("loginFailed = %v, want %v", g, c.loginFailed)
			}
			if g := guardParsers(h); g != c.rakp1Overrun {
				t.Errorf("guardParsers = %v, want %v", g, c.rakp1Overrun)
			}
			if g := h.completeOpenSessionRequest(); g != c.openRequest {
				t.Errorf("completeOpenSessionRequest = %v, want %v", g, c.openRequest)
			}
		})
	}
}

// TestLoginAnswers: what session admission reads of Open Session and RAKP 4
// answers: only a successful one names sessions.
func TestLoginAnswers(t *testing.T) {
	open := parseDatagram(rmcpp(types.PayloadTypeRmcpOpenSessionResponse, 0, 0, 0, append(loginAnswer(0, 0xA0A2A3A4, 0x01020304), make([]byte, 24)...)))
	if c, b, ok := open.openedSession(); !ok || c != 0xA0A2A3A4 || b != 0x01020304 {
		t.Errorf("Open Session Response: console %#x BMC %#x ok=%v", c, b, ok)
	}
	if _, ok := open.establishedSession(); ok {
		t.Error("an Open Session Response read as a RAKP 4")
	}
	refused := parseDatagram(rmcpp(types.PayloadTypeRmcpOpenSessionResponse, 0, 0, 0, loginAnswer(0x01, 1, 2)))
	if _, _, ok := refused.openedSession(); ok {
		t.Error("a refused Open Session names a session")
	}
	if _, _, ok := parseDatagram(rmcpp(types.PayloadTypeRmcpOpenSessionResponse, 0, 0, 0, []byte{0, 0})).openedSession(); ok {
		t.Error("a truncated Open Session Response names a session")
	}
	rakp4 := parseDatagram(rmcpp(types.PayloadTypeRAKPMessage4, 0, 0, 0, loginAnswer(0, 0xA0A2A3A4, 0)))
	if c, ok := rakp4.establishedSession(); !ok || c != 0xA0A2A3A4 {
		t.Errorf("RAKP 4: console %#x ok=%v", c, ok)
	}
	if _, _, ok := rakp4.openedSession(); ok {
		t.Error("a RAKP 4 read as an Open Session Response")
	}
	if _, ok := parseDatagram(rmcpp(types.PayloadTypeRAKPMessage4, 0, 0, 0, loginAnswer(rmcppInvalidIntegrityCV, 1, 0))).establishedSession(); ok {
		t.Error("a failed RAKP 4 establishes a session")
	}
}

// TestSetV15SessionID: the rewrite touches the session ID and auth code
// only, and only of an authenticated IPMI 1.5 datagram.
func TestSetV15SessionID(t *testing.T) {
	msg := response(types.CommandActivateSession, 0, make([]byte, 10)...)
	pkt := v15Datagram(2, 5, 0x0A0B0C0D, msg)
	code := bytes.Repeat([]byte{0x55}, v15AuthCodeLen)
	if !setV15SessionID(pkt, parseDatagram(pkt), 0x01020304, code) {
		t.Fatal("not rewritten")
	}
	h := parseDatagram(pkt)
	if h.sessionID != 0x01020304 || h.seq != 5 || !bytes.Equal(h.payload, msg) {
		t.Errorf("after the rewrite: %+v", h)
	}
	if !bytes.Contains(pkt, code) {
		t.Error("auth code not written")
	}
	none := v15Datagram(authTypeNone, 0, 7, msg)
	if setV15SessionID(none, parseDatagram(none), 1, code) {
		t.Error("a datagram without an auth code was rewritten")
	}
	if setV15SessionID(pkt, parseDatagram(pkt), 1, code[:4]) {
		t.Error("rewritten with a short auth code")
	}
}

// TestParseDatagramAllocatesNothing: the header is read on every datagram.
func TestParseDatagramAllocatesNothing(t *testing.T) {
	pkt := rmcpp(types.PayloadTypeIPMI, types.PayloadFlagAuthenticated, 1, 2, make([]byte, 32))
	if n := testing.AllocsPerRun(100, func() { _ = loginStart(parseDatagram(pkt)) }); n != 0 {
		t.Errorf("parseDatagram allocates %v times", n)
	}
}

// FuzzParseDatagram: parseDatagram never panics and reads every datagram as
// go-ipmi's own parsers do, so that what govbmc decides about a datagram is
// about the datagram go-ipmi handles; a RAKP 1 the guard lets through never
// panics go-ipmi's parser.
func FuzzParseDatagram(f *testing.F) {
	for _, c := range wireCases {
		f.Add(c.pkt)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		h := parseDatagram(pkt)
		if len(pkt) < rmcpHeaderLen || pkt[3]&0x1F != rmcpClassIPMI {
			if h.session {
				t.Fatalf("% x: a session header outside an IPMI-class datagram", pkt)
			}
			return
		}
		if len(pkt) > authTypeOff && pkt[authTypeOff] == authTypeRMCPP {
			sid, seq, pt, flags, payload, ok := protocol.ParseRMCPPlusHeader(pkt)
			if ok != h.rmcpp() {
				t.Fatalf("% x: go-ipmi ok=%v, header %+v", pkt, ok, h)
			}
			if ok && (sid != h.sessionID || seq != h.seq || types.PayloadType(pt) != h.payloadType || !bytes.Equal(payload, h.payload) ||
				(flags&types.PayloadFlagEncrypted != 0) != h.encrypted || (flags&types.PayloadFlagAuthenticated != 0) != h.authenticated) {
				t.Fatalf("% x: go-ipmi reads sid=%#x seq=%d type=%#x flags=%#x, header %+v", pkt, sid, seq, pt, flags, h)
			}
			if h.is(types.PayloadTypeRAKPMessage1) && !guardParsers(h) {
				var m rmcpplus.RAKPMessage1
				_ = m.Unpack(h.payload) // must not panic
			}
			return
		}
		var s types.Session15
		ok := len(pkt) >= v15MinLen && s.Unpack(pkt[rmcpHeaderLen:]) == nil
		if ok != h.v15() {
			t.Fatalf("% x: go-ipmi ok=%v, header %+v", pkt, ok, h)
		}
		if !ok {
			return
		}
		hdr := s.SessionHeader15
		if uint8(hdr.AuthType) != h.authType || hdr.SessionID != h.sessionID || hdr.Sequence != h.seq || !bytes.Equal(s.Payload, h.payload) {
			t.Fatalf("% x: go-ipmi reads %+v, header %+v", pkt, hdr, h)
		}
		netFn, cmd, _, _, ok := protocol.ParseIPMIRequest(s.Payload)
		if ok != h.msg.ok || ok && (netFn != h.msg.netFn || cmd != h.msg.cmd) {
			t.Fatalf("% x: go-ipmi reads netFn=%#x cmd=%#x ok=%v, header %+v", pkt, netFn, cmd, ok, h.msg)
		}
	})
}

package ipmi

import (
	"encoding/binary"

	"github.com/bougou/go-ipmi/pkg/types"
)

// The wire layer: every datagram the node's socket reads or writes is parsed
// here, once, into a header; the transport, the login throttle, the replay
// guard and session admission read that header and never the bytes. This is
// the only file of the package that knows where a field lies in a datagram.
//
// Layouts (IPMI 2.0 §13.6, Tables 13-4, 13-8 and 13-9):
//
//	RMCP header     version, reserved, sequence, class (low 5 bits)
//	IPMI 1.5        auth type, sequence (4), session ID (4),
//	                auth code (16, absent for auth type NONE),
//	                message length (1), message
//	RMCP+ (IPMI 2)  auth type 06h, payload type (bit 7 encrypted, bit 6
//	                authenticated), session ID (4), sequence (4),
//	                payload length (2), payload, integrity trailer
//	IPMI message    rsSA, netFn/rsLUN, checksum, rqSA, rqSeq/rqLUN, cmd,
//	                data (a response's first data byte is its completion
//	                code), checksum
//
// A header is a small value: parsing allocates nothing, and its payload and
// message are slices of the datagram it was parsed from.

// RMCP message classes (IPMI 2.0 Table 13-1).
const (
	rmcpClassASF  = 0x06
	rmcpClassIPMI = 0x07
)

// Session header field positions, counted from the start of the datagram.
const (
	rmcpHeaderLen     = 4
	authTypeOff       = rmcpHeaderLen   // both session header formats
	authTypeNone      = 0x00            // IPMI 1.5: no auth code
	authTypeRMCPP     = 0x06            // the RMCP+ session header follows
	v15SeqOff         = authTypeOff + 1 // IPMI 1.5 session sequence number
	v15SessionIDOff   = v15SeqOff + 4   // IPMI 1.5 session ID
	v15AuthCodeOff    = v15SessionIDOff + 4
	v15AuthCodeLen    = 16
	v15MinLen         = v15AuthCodeOff + 1 // go-ipmi's own floor (auth type NONE, empty message)
	rmcppPayloadTyOff = authTypeOff + 1
	rmcppSessionIDOff = rmcppPayloadTyOff + 1
	rmcppSeqOff       = rmcppSessionIDOff + 4
	rmcppLenOff       = rmcppSeqOff + 4
	rmcppPayloadOff   = rmcppLenOff + 2
	rmcppTypeMask     = 0x3F
	ipmiMsgMinLen     = 7 // through the command and one more byte
)

// header is what govbmc reads of one datagram.
type header struct {
	// class is the RMCP message class; 0 for a datagram too short to be RMCP.
	class uint8
	// authType is the session header's auth type: an IPMI 1.5 type, or
	// authTypeRMCPP. Meaningful only when session is true.
	authType uint8
	// session is true when an IPMI-class datagram carries a complete
	// session header and a payload (or message) of the length it claims,
	// exactly as go-ipmi's parsers require before they act on it.
	session bool

	// RMCP+ only.
	payloadType   types.PayloadType // without the flag bits
	encrypted     bool
	authenticated bool

	sessionID uint32
	seq       uint32
	// payload is the RMCP+ payload, or the IPMI 1.5 message.
	payload []byte

	// msg is the IPMI 1.5 message's command, when it has one.
	msg ipmiMsg
}

// ipmiMsg is the command an IPMI 1.5 message carries (IPMI 2.0 Table 13-8).
type ipmiMsg struct {
	ok    bool  // the message is long enough to name a command
	netFn uint8 // without the LUN
	cmd   uint8
	// code is a response's completion code (a request's first data byte).
	code uint8
}

// parseDatagram reads the header of one datagram; it never fails: what it
// cannot read is left zero (session false, msg.ok false).
func parseDatagram(pkt []byte) header {
	var h header
	if len(pkt) < rmcpHeaderLen {
		return h
	}
	h.class = pkt[3] & 0x1F
	if h.class != rmcpClassIPMI || len(pkt) <= authTypeOff {
		return h
	}
	h.authType = pkt[authTypeOff]
	if h.authType == authTypeRMCPP {
		h.parseRMCPP(pkt)
	} else {
		h.parseV15(pkt)
	}
	return h
}

// parseRMCPP reads an RMCP+ session header; it accepts what go-ipmi's
// protocol.ParseRMCPPlusHeader accepts.
func (h *header) parseRMCPP(pkt []byte) {
	if len(pkt) < rmcppPayloadOff {
		return
	}
	flags := pkt[rmcppPayloadTyOff]
	n := int(binary.LittleEndian.Uint16(pkt[rmcppLenOff:]))
	if len(pkt) < rmcppPayloadOff+n {
		return
	}
	h.session = true
	h.payloadType = types.PayloadType(flags & rmcppTypeMask)
	h.encrypted = flags&types.PayloadFlagEncrypted != 0
	h.authenticated = flags&types.PayloadFlagAuthenticated != 0
	h.sessionID = binary.LittleEndian.Uint32(pkt[rmcppSessionIDOff:])
	h.seq = binary.LittleEndian.Uint32(pkt[rmcppSeqOff:])
	h.payload = pkt[rmcppPayloadOff : rmcppPayloadOff+n]
}

// parseV15 reads an IPMI 1.5 session header and message; it accepts what
// go-ipmi's types.Session15.Unpack accepts.
func (h *header) parseV15(pkt []byte) {
	lenOff := v15MsgLenOff(h.authType)
	if len(pkt) < v15MinLen || len(pkt) <= lenOff {
		return
	}
	n := int(pkt[lenOff])
	if len(pkt) < lenOff+1+n {
		return
	}
	h.session = true
	h.seq = binary.LittleEndian.Uint32(pkt[v15SeqOff:])
	h.sessionID = binary.LittleEndian.Uint32(pkt[v15SessionIDOff:])
	h.payload = pkt[lenOff+1 : lenOff+1+n]
	if m := h.payload; len(m) >= ipmiMsgMinLen {
		h.msg = ipmiMsg{ok: true, netFn: m[1] >> 2, cmd: m[5], code: m[6]}
	}
}

// v15MsgLenOff is where the message length lies in an IPMI 1.5 datagram.
func v15MsgLenOff(authType uint8) int {
	if authType == authTypeNone {
		return v15AuthCodeOff
	}
	return v15AuthCodeOff + v15AuthCodeLen
}

// rmcpp reports a well-formed RMCP+ datagram.
func (h header) rmcpp() bool { return h.session && h.authType == authTypeRMCPP }

// v15 reports a well-formed IPMI 1.5 datagram.
func (h header) v15() bool { return h.session && h.authType != authTypeRMCPP }

// is reports a well-formed RMCP+ datagram carrying payload type t.
func (h header) is(t types.PayloadType) bool { return h.rmcpp() && h.payloadType == t }

// v15Request reports a well-formed IPMI 1.5 datagram carrying a request
// for command c.
func (h header) v15Request(c types.Command) bool {
	return h.v15() && h.msg.ok && h.msg.netFn == uint8(c.NetFn) && h.msg.cmd == c.ID
}

// v15Response reports a well-formed IPMI 1.5 datagram carrying the
// response to command c (its NetFn is the request's plus one).
func (h header) v15Response(c types.Command) bool {
	return h.v15() && h.msg.ok && h.msg.netFn == uint8(c.NetFn)|1 && h.msg.cmd == c.ID
}

// Payload fields of the RMCP+ login messages (IPMI 2.0 Tables 13-9 to 13-12).
const (
	openSessionReqLen        = 32 // tag, privilege, reserved, console ID, three algorithm payloads
	loginStatusOff           = 1  // status code of Open Session Response, RAKP 2 and RAKP 4
	openSessionRespConsoleID = 4  // remote console session ID
	openSessionRespBMCID     = 8  // managed system session ID
	rakp4ConsoleIDOff        = 4  // remote console session ID
	rakp1UsernameLenOff      = 27 // then the user name
)

// completeOpenSessionRequest reports an Open Session Request long enough
// for go-ipmi to handle (a shorter one takes no session slot).
func (h header) completeOpenSessionRequest() bool {
	return h.is(types.PayloadTypeRmcpOpenSessionRequest) && len(h.payload) >= openSessionReqLen
}

// rakp1NameOverruns reports a RAKP Message 1 that is too short, or whose
// user name length runs past its end.
func (h header) rakp1NameOverruns() bool {
	if !h.is(types.PayloadTypeRAKPMessage1) {
		return false
	}
	p := h.payload
	return len(p) <= rakp1UsernameLenOff || int(p[rakp1UsernameLenOff]) > len(p)-rakp1UsernameLenOff-1
}

// loginStatus is the status code of an Open Session Response, RAKP 2 or
// RAKP 4; ok is false for other datagrams or a payload too short to hold it.
func (h header) loginStatus() (status uint8, ok bool) {
	if !h.is(types.PayloadTypeRmcpOpenSessionResponse) && !h.is(types.PayloadTypeRAKPMessage2) && !h.is(types.PayloadTypeRAKPMessage4) {
		return 0, false
	}
	if len(h.payload) <= loginStatusOff {
		return 0, false
	}
	return h.payload[loginStatusOff], true
}

// openedSession reads a successful Open Session Response: the remote
// console's session ID and the BMC's.
func (h header) openedSession() (consoleID, bmcID uint32, ok bool) {
	if s, ok := h.loginStatus(); !ok || s != 0 || !h.is(types.PayloadTypeRmcpOpenSessionResponse) || len(h.payload) < openSessionRespBMCID+4 {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint32(h.payload[openSessionRespConsoleID:]), binary.LittleEndian.Uint32(h.payload[openSessionRespBMCID:]), true
}

// establishedSession reads a successful RAKP 4: the remote console's
// session ID.
func (h header) establishedSession() (consoleID uint32, ok bool) {
	if s, ok := h.loginStatus(); !ok || s != 0 || !h.is(types.PayloadTypeRAKPMessage4) || len(h.payload) < rakp4ConsoleIDOff+4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(h.payload[rakp4ConsoleIDOff:]), true
}

// setV15SessionID rewrites, in place, the session ID and auth code of the
// authenticated IPMI 1.5 datagram pkt, whose header is h.
func setV15SessionID(pkt []byte, h header, id uint32, authCode []byte) bool {
	if !h.v15() || h.authType == authTypeNone || len(authCode) != v15AuthCodeLen {
		return false
	}
	binary.LittleEndian.PutUint32(pkt[v15SessionIDOff:], id)
	copy(pkt[v15AuthCodeOff:], authCode)
	return true
}

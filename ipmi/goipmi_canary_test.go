package ipmi

// Canaries: each test exercises go-ipmi v0.9.1's own behaviour, without
// govbmc's workaround around it, and passes while go-ipmi still behaves so.
// The day go-ipmi fixes one, its canary fails, naming the workaround to
// delete. GOIPMI.md has one row per canary.

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/clock"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/rmcpplus"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
)

// fixed fails a canary: go-ipmi no longer needs the workaround.
func fixed(t *testing.T, what, workaround string) {
	t.Helper()
	t.Fatalf("go-ipmi fixed %s: delete workaround %s, see GOIPMI.md", what, workaround)
}

// panics reports whether f panics.
func panics(f func()) (did bool) {
	defer func() { did = recover() != nil }()
	f()
	return false
}

// canaryUsers are installed as IDs 2, 3, … like a node's users.
var canaryUsers = []bmc.User{
	{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator},
	{Name: "op1", Password: "password", Privilege: bmc.PrivilegeOperator},
	{Name: "op2", Password: "password", Privilege: bmc.PrivilegeOperator},
	{Name: "op3", Password: "password", Privilege: bmc.PrivilegeOperator},
	{Name: "op4", Password: "password", Privilege: bmc.PrivilegeOperator},
}

// goipmiState is a node's go-ipmi BMC state as New builds it, over a
// simulated machine, with none of govbmc's handlers.
func goipmiState(t *testing.T) (*gobmc.BMC, *bmc.SimMachine) {
	t.Helper()
	node := bmc.Node{Name: "canary", Users: canaryUsers}
	m, err := bmc.NewSimMachine(node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	state := gobmc.New(deviceInfo(node), ipmiGUID(bmc.DeriveUUID("bmc:canary")), machineHAL{m: m})
	if err := addUsers(state, node.Users); err != nil {
		t.Fatal(err)
	}
	return state, m
}

// goipmiDispatch runs command c through go-ipmi's own handlers, in a
// session of the given privilege (0: before a session).
func goipmiDispatch(state *gobmc.BMC, priv gobmc.PrivilegeLevel, c types.Command, data ...byte) ([]byte, types.CompletionCode) {
	hctx := &handlers.HandlerContext{BMC: state}
	if priv != 0 {
		hctx.Session = &gobmc.Session{PrivilegeLevel: priv}
	}
	resp, cc, _ := goipmiDefaults().Dispatch(context.Background(), hctx, uint8(c.NetFn), c.ID, data)
	return resp, cc
}

// TestGoIPMICanaryRAKP1NameLength: go-ipmi checks RAKP 1's 28+length in
// 8-bit arithmetic, which wraps, then slices past the payload and panics.
func TestGoIPMICanaryRAKP1NameLength(t *testing.T) {
	payload := rakp1(0xE4, "admin") // 28+0xE4 wraps to 0x00
	if !panics(func() { _ = new(rmcpplus.RAKPMessage1).Unpack(payload) }) {
		fixed(t, "the RAKP 1 user name length check", "guardParsers (transport.go)")
	}
}

// TestGoIPMICanaryHandlerPanic: a handler's panic leaves go-ipmi's
// registry (and its server's per-datagram goroutine) unrecovered.
func TestGoIPMICanaryHandlerPanic(t *testing.T) {
	r := handlers.NewRegistry()
	r.RegisterFunc(types.CommandGetDeviceID, func(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
		panic("boom")
	})
	hctx := &handlers.HandlerContext{Session: &gobmc.Session{PrivilegeLevel: gobmc.PrivilegeLevelUser}}
	if !panics(func() {
		_, _, _ = r.Dispatch(context.Background(), hctx, uint8(types.NetFnAppRequest), types.CommandGetDeviceID.ID, nil)
	}) {
		fixed(t, "handler panics (Dispatch recovers them)", "recoverMiddleware (middleware.go)")
	}
}

// TestGoIPMICanaryPrivileges: go-ipmi lets a USER set boot options and
// run Chassis Identify; IPMI 2.0 Appendix G asks for OPERATOR.
func TestGoIPMICanaryPrivileges(t *testing.T) {
	for _, c := range []types.Command{types.CommandSetSystemBootOptions, types.CommandChassisIdentify} {
		if handlers.MinimumPrivilege(uint8(c.NetFn), c.ID) >= gobmc.PrivilegeLevelOperator {
			fixed(t, c.Name+"'s privilege (OPERATOR)", "requireOperator around "+c.Name+" (middleware.go, registry.go)")
		}
	}
}

// TestGoIPMICanaryBMCResetResetsMachine: go-ipmi's Cold Reset resets the
// managed machine through the HAL, and its Warm Reset shuts it down (the
// HAL's WarmReset is what go-ipmi's Chassis Control calls for a soft off).
func TestGoIPMICanaryBMCResetResetsMachine(t *testing.T) {
	state, m := goipmiState(t)
	ctx := context.Background()
	if err := m.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	boots := len(m.Boots())
	if _, cc := goipmiDispatch(state, gobmc.PrivilegeLevelAdministrator, types.CommandColdReset); cc != types.CodeOK || len(m.Boots()) == boots {
		fixed(t, "Cold Reset (it no longer resets the machine)", "bmcReset for Cold Reset (app.go, registry.go)")
	}
	if _, cc := goipmiDispatch(state, gobmc.PrivilegeLevelAdministrator, types.CommandWarmReset); cc != types.CodeOK {
		fixed(t, "Warm Reset (it no longer reaches the HAL)", "bmcReset for Warm Reset (app.go, registry.go)")
	}
	if !strings.Contains(m.Transcript(), "ACPI power button pressed") {
		fixed(t, "Warm Reset (it no longer shuts the machine down)", "bmcReset for Warm Reset (app.go, registry.go)")
	}
}

// TestGoIPMICanaryDiagnosticInterrupt: go-ipmi's Chassis Control answers
// the diagnostic interrupt (NMI) with 0xC9: its HAL has no NMI.
func TestGoIPMICanaryDiagnosticInterrupt(t *testing.T) {
	state, _ := goipmiState(t)
	if _, cc := goipmiDispatch(state, gobmc.PrivilegeLevelAdministrator, types.CommandChassisControl, controlDiagInt); cc != types.CodeParameterOutOfRange {
		fixed(t, "Chassis Control's diagnostic interrupt", "chassisControl (chassis.go)")
	}
}

// TestGoIPMICanaryChassisStatusLastPowerEvent: go-ipmi's Get Chassis Status
// never reports the last power on as commanded through IPMI.
func TestGoIPMICanaryChassisStatusLastPowerEvent(t *testing.T) {
	state, _ := goipmiState(t)
	if _, cc := goipmiDispatch(state, gobmc.PrivilegeLevelAdministrator, types.CommandChassisControl, controlPowerUp); cc != types.CodeOK {
		t.Fatalf("go-ipmi's power up: %#x", uint8(cc))
	}
	resp, cc := goipmiDispatch(state, gobmc.PrivilegeLevelAdministrator, types.CommandGetChassisStatus)
	if cc != types.CodeOK || len(resp) < 2 {
		t.Fatalf("go-ipmi's chassis status: %#x % x", uint8(cc), resp)
	}
	if resp[1]&0x10 != 0 { // Table 28-3 byte 2 bit 4: last power on via IPMI command
		fixed(t, "Get Chassis Status's last power event", "chassisStatus (chassis.go)")
	}
}

// TestGoIPMICanaryBootOptionParameters: go-ipmi refuses boot option
// parameter 0 (set in progress), which ipmitool's chassis bootdev writes
// first, and cannot read back parameter 3.
func TestGoIPMICanaryBootOptionParameters(t *testing.T) {
	state, _ := goipmiState(t)
	_, setCC := goipmiDispatch(state, gobmc.PrivilegeLevelAdministrator, types.CommandSetSystemBootOptions, bootParamSetInProgress, 0x01)
	_, getCC := goipmiDispatch(state, gobmc.PrivilegeLevelAdministrator, types.CommandGetSystemBootOptions, bootParamValidBitClear, 0, 0)
	if setCC == types.CodeOK && getCC == types.CodeOK {
		fixed(t, "boot option parameters 0 and 3", "setBootOptions/getBootOptions (bootoptions.go)")
	}
}

// TestGoIPMICanarySystemGUID: go-ipmi does not register Get System GUID.
func TestGoIPMICanarySystemGUID(t *testing.T) {
	state, _ := goipmiState(t)
	if _, cc := goipmiDispatch(state, gobmc.PrivilegeLevelUser, types.CommandGetSystemGUID); cc != types.CodeInvalidCommand {
		fixed(t, "Get System GUID", "systemGUID (app.go)")
	}
}

// TestGoIPMICanaryRMCPPSessionEviction: go-ipmi's RMCP+ session store holds
// the spec's minimum of 4 and, when full, evicts the oldest pending session
// of anyone (a real client's, between its Open Session and RAKP 1) and
// refuses every login once all are established.
func TestGoIPMICanaryRMCPPSessionEviction(t *testing.T) {
	store := gobmc.NewSessionStore(clock.Real)
	if store.Cap() != 4 {
		fixed(t, "the RMCP+ session table's size", "WithMaxSessions(DefaultMaxSessions) (server.go)")
	}
	alloc := func() (*gobmc.Session, error) {
		return store.Allocate(1, types.AuthAlg_HMAC_SHA1, types.IntegrityAlg_HMAC_SHA1_96, types.CryptAlg_AES_CBC_128, gobmc.PrivilegeLevelAdministrator, lanChannel)
	}
	first, err := alloc()
	if err != nil {
		t.Fatal(err)
	}
	for range store.Cap() {
		if _, err := alloc(); err != nil {
			fixed(t, "pending session eviction (a full table refuses)", "sessionTable (sessions.go)")
		}
	}
	if _, err := store.Get(first.BMCID); err == nil {
		fixed(t, "pending session eviction (the oldest pending login survives)", "sessionTable (sessions.go)")
	}
	store = gobmc.NewSessionStore(clock.Real)
	for range store.Cap() {
		s, err := alloc()
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Activate(s.BMCID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alloc(); err == nil {
		fixed(t, "a table full of established sessions (it admits a login)", "sessionTable.makeRoom (sessions.go)")
	}
}

// TestGoIPMICanaryV15Sessions: go-ipmi's IPMI 1.5 store holds 4 sessions,
// its Get Session Challenge answers 0xFF once they are all active, and its
// Activate Session allows one active session per user.
func TestGoIPMICanaryV15Sessions(t *testing.T) {
	state, _ := goipmiState(t)
	if state.V15Sessions.Cap() != 4 {
		fixed(t, "the IPMI 1.5 session table's size", "v15Sessions.makeRoom (session15.go)")
	}
	activate := func(name string) types.CompletionCode {
		resp, cc := goipmiDispatch(state, 0, types.CommandGetSessionChallenge, parseDatagram(sessionChallenge(name)).payload[6:23]...)
		if cc != types.CodeOK {
			return cc
		}
		sess, err := state.V15Sessions.Get(binary.LittleEndian.Uint32(resp))
		if err != nil {
			t.Fatal(err)
		}
		req := append([]byte{byte(gobmc.V15AuthTypeMD5), byte(gobmc.PrivilegeLevelUser)}, resp[4:20]...)
		req = binary.LittleEndian.AppendUint32(req, 1)
		hctx := &handlers.HandlerContext{BMC: state, V15Session: sess}
		_, cc, _ = goipmiDefaults().Dispatch(context.Background(), hctx, uint8(types.NetFnAppRequest), types.CommandActivateSession.ID, req)
		return cc
	}
	if cc := activate("admin"); cc != types.CodeOK {
		t.Fatalf("first activation: %#x", uint8(cc))
	}
	if cc := activate("admin"); cc == types.CodeOK {
		fixed(t, "one IPMI 1.5 session per user", "activateSession (session15.go)")
	}
	for _, u := range canaryUsers[1:4] {
		if cc := activate(u.Name); cc != types.CodeOK {
			t.Fatalf("activation of %s: %#x", u.Name, uint8(cc))
		}
	}
	if cc := activate(canaryUsers[4].Name); cc != types.CodeUnspecifiedError {
		fixed(t, "a full IPMI 1.5 table (Get Session Challenge no longer answers 0xFF)", "getSessionChallenge (session15.go)")
	}
}

// TestGoIPMICanaryReplayWindow: go-ipmi's RMCP+ sequence window accepts the
// number it accepted last, again: a datagram replayed verbatim runs twice.
func TestGoIPMICanaryReplayWindow(t *testing.T) {
	if !gobmc.InboundSeqValid(10, 10) {
		fixed(t, "RMCP+ duplicate sequence numbers", "replayGuard (replay.go)")
	}
}

// TestGoIPMICanaryRegistryMiddleware: go-ipmi's registry wraps a handler in
// the middleware present when it is registered, so per-node middleware
// means a wrapped copy of every command per node.
func TestGoIPMICanaryRegistryMiddleware(t *testing.T) {
	r := handlers.NewRegistry()
	r.RegisterFunc(types.CommandGetDeviceID, func(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
		return nil, types.CodeOK, nil
	})
	ran := false
	r.Use(func(next handlers.Handler) handlers.Handler {
		return handlers.HandlerFunc(func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
			ran = true
			return next.Handle(ctx, hctx, req)
		})
	})
	hctx := &handlers.HandlerContext{Session: &gobmc.Session{PrivilegeLevel: gobmc.PrivilegeLevelUser}}
	_, _, _ = r.Dispatch(context.Background(), hctx, uint8(types.NetFnAppRequest), types.CommandGetDeviceID.ID, nil)
	if ran {
		fixed(t, "middleware applied at registration", "the shared registry's per-node dispatch (registry.go)")
	}
}

// TestGoIPMICanaryCipherSuitePanic: go-ipmi panics on a cipher suite it
// does not implement.
func TestGoIPMICanaryCipherSuitePanic(t *testing.T) {
	state, _ := goipmiState(t)
	unsupported := unsupportedSuite(t)
	if !panics(func() { state.SetCipherSuites([]types.CipherSuiteID{unsupported}) }) {
		fixed(t, "SetCipherSuites' panic on an unsupported suite", "the SupportedCipherSuite check in cipherSuites (server.go)")
	}
}

// goipmiServer serves state with go-ipmi alone (its own registry, the bare
// socket) and returns a function that sends a datagram and reads the
// answer's header; ok is false when none came.
func goipmiServer(t *testing.T, state *gobmc.BMC) func(pkt []byte) (h header, ok bool) {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.NewServer(state, udp)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	c, err := net.DialUDP("udp", nil, udp.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(); cancel(); _ = srv.Close(); <-done })
	buf := make([]byte, 512)
	return func(pkt []byte) (header, bool) {
		t.Helper()
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			return header{}, false
		}
		return parseDatagram(append([]byte(nil), buf[:n]...)), true
	}
}

// sessionChallenge is an IPMI 1.5 Get Session Challenge for an MD5 login.
func sessionChallenge(user string) []byte {
	data := append([]byte{byte(gobmc.V15AuthTypeMD5)}, make([]byte, 16)...)
	copy(data[1:], user)
	return v15Datagram(authTypeNone, 0, 0, request(types.CommandGetSessionChallenge, data...))
}

// TestGoIPMICanaryNoLoginThrottle: go-ipmi answers every login attempt, however
// many failed before from the same address.
func TestGoIPMICanaryNoLoginThrottle(t *testing.T) {
	state, _ := goipmiState(t)
	roundTrip := goipmiServer(t, state)
	for range 2 * DefaultAuthFailureLimit {
		if h, ok := roundTrip(sessionChallenge("nobody")); !ok || h.msg.code == uint8(types.CodeOK) {
			fixed(t, "login throttling (a refused login went unanswered)", "authThrottle (throttle.go)")
		}
	}
	if h, ok := roundTrip(sessionChallenge("admin")); !ok || h.msg.code != uint8(types.CodeOK) {
		fixed(t, "login throttling (an address with failed logins is refused)", "authThrottle (throttle.go)")
	}
}

// TestGoIPMICanaryActivateSessionHeader: go-ipmi's server sends the IPMI 1.5
// Activate Session response with the new session ID in its session header,
// where freeipmi expects the temporary one its request carried.
func TestGoIPMICanaryActivateSessionHeader(t *testing.T) {
	state, _ := goipmiState(t)
	roundTrip := goipmiServer(t, state)
	ch, ok := roundTrip(sessionChallenge("admin"))
	if !ok || !ch.msg.ok || ch.msg.code != 0 || len(ch.payload) < 7+20 {
		t.Fatalf("Get Session Challenge: %+v", ch)
	}
	data := ch.payload[7:]
	temp := binary.LittleEndian.Uint32(data)
	user, err := state.Users.GetByName("admin")
	if err != nil {
		t.Fatal(err)
	}
	msg := request(types.CommandActivateSession, append(append([]byte{byte(gobmc.V15AuthTypeMD5), byte(gobmc.PrivilegeLevelAdministrator)}, data[4:20]...), 1, 0, 0, 0)...)
	pkt := v15Datagram(byte(gobmc.V15AuthTypeMD5), 0, temp, msg)
	setV15SessionID(pkt, parseDatagram(pkt), temp, handlers.GenV15AuthCode(user.PasswordV15Padded(), gobmc.V15AuthTypeMD5, temp, msg, 0))
	act, ok := roundTrip(pkt)
	if !ok || !act.v15Response(types.CommandActivateSession) || act.msg.code != 0 || len(act.payload) < 7+5 {
		t.Fatalf("Activate Session: %+v", act)
	}
	permanent := binary.LittleEndian.Uint32(act.payload[7+1:])
	switch act.sessionID {
	case temp:
		fixed(t, "the IPMI 1.5 Activate Session header ID", "fixActivateSession (transport.go)")
	case permanent:
	default:
		t.Fatalf("Activate Session header ID %#x: neither the temporary %#x nor the new %#x", act.sessionID, temp, permanent)
	}
}

// TestGoIPMICanaryAuthCapsAllocations: go-ipmi's Get Channel Authentication
// Capabilities looks up all 63 user IDs, building an error for each empty
// one.
func TestGoIPMICanaryAuthCapsAllocations(t *testing.T) {
	state, _ := goipmiState(t)
	empty := gobmc.MaxUsers - len(canaryUsers)
	if n := testing.AllocsPerRun(10, func() { goipmiDispatch(state, 0, types.CommandGetChannelAuthCapabilities, 0x0E, 0x04) }); n < float64(empty) {
		fixed(t, "empty user slots building errors on every Get Channel Authentication Capabilities", "authCaps (authcaps.go)")
	}
}

// TestGoIPMICanarySEL: go-ipmi registers none of the SEL commands.
func TestGoIPMICanarySEL(t *testing.T) {
	state, _ := goipmiState(t)
	if _, cc := goipmiDispatch(state, gobmc.PrivilegeLevelUser, types.CommandGetSELInfo); cc != types.CodeInvalidCommand {
		fixed(t, "the System Event Log", "sel.go")
	}
}

// TestGoIPMICanarySensorReading: go-ipmi has no Get Sensor Reading.
func TestGoIPMICanarySensorReading(t *testing.T) {
	state, _ := goipmiState(t)
	if _, cc := goipmiDispatch(state, gobmc.PrivilegeLevelUser, types.CommandGetSensorReading, 0x01); cc != types.CodeInvalidCommand {
		fixed(t, "Get Sensor Reading", "getSensorReading/getSensorThresholds (sensors.go)")
	}
}

// TestGoIPMICanaryLANConfig: go-ipmi's Get LAN Configuration Parameters has
// no cipher suite parameters and, without a NetworkHAL, no address; Set LAN
// Configuration Parameters is not registered.
func TestGoIPMICanaryLANConfig(t *testing.T) {
	state, _ := goipmiState(t)
	_, suitesCC := goipmiDispatch(state, gobmc.PrivilegeLevelAdministrator, types.CommandGetLanConfigParam, lanChannel, lanCipherSuites, 0, 0)
	_, ipCC := goipmiDispatch(state, gobmc.PrivilegeLevelAdministrator, types.CommandGetLanConfigParam, lanChannel, lanIP, 0, 0)
	_, setCC := goipmiDispatch(state, gobmc.PrivilegeLevelAdministrator, types.CommandSetLanConfigParam, lanChannel, lanIP, 10, 0, 0, 5)
	if suitesCC == types.CodeOK || ipCC == types.CodeOK || setCC != types.CodeInvalidCommand {
		fixed(t, "LAN configuration", "getLanConfig/setLanConfig (lan.go)")
	}
}

// fixedClock is a go-ipmi clock whose Now stands at one instant.
type fixedClock struct {
	clock.Clock
	at time.Time
}

func (c fixedClock) Now() time.Time { return c.at }

// TestGoIPMICanarySDRRepoTimes: go-ipmi's Get SDR Repository Info gives
// the BMC clock's current time as the repository's last addition and
// erase, whenever the records were made.
func TestGoIPMICanarySDRRepoTimes(t *testing.T) {
	node := bmc.Node{Name: "canary", Users: canaryUsers}
	m, err := bmc.NewSimMachine(node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	state := gobmc.New(deviceInfo(node), ipmiGUID(bmc.DeriveUUID("bmc:canary")),
		machineHAL{m: m, h: &nodeHandlers{sensors: newSensors(m)}}, gobmc.WithClock(fixedClock{clock.Real, at}))
	resp, cc := goipmiDispatch(state, gobmc.PrivilegeLevelUser, types.CommandGetSDRRepoInfo)
	if cc != types.CodeOK || len(resp) < 13 {
		t.Fatalf("go-ipmi's Get SDR Repository Info: cc %#x, %x", cc, resp)
	}
	if binary.LittleEndian.Uint32(resp[5:]) != uint32(at.Unix()) || binary.LittleEndian.Uint32(resp[9:]) != uint32(at.Unix()) {
		fixed(t, "the SDR repository's addition and erase times", "sdrRepoInfo (sensors.go)")
	}
}

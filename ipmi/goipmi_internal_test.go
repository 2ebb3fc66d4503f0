package ipmi

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
)

// TestHandlerPanicIsRecovered: a handler that panics answers 0xFF and is
// logged; the process goes on (go-ipmi would let the panic end it).
func TestHandlerPanicIsRecovered(t *testing.T) {
	var logs bytes.Buffer
	h := recoverMiddleware(slog.New(slog.NewTextHandler(&logs, nil)))(handlers.HandlerFunc(
		func(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
			panic("boom")
		}))
	hctx := &handlers.HandlerContext{Command: types.CommandGetDeviceID}
	_, cc, err := h.Handle(context.Background(), hctx, nil)
	if cc != types.CodeUnspecifiedError || err == nil {
		t.Fatalf("cc=%#x err=%v, want 0xFF and an error", uint8(cc), err)
	}
	if !strings.Contains(logs.String(), "handler panicked") || !strings.Contains(logs.String(), "Get Device ID") {
		t.Fatalf("panic not logged with its command:\n%s", logs.String())
	}
}

// TestUnsupportedCipherSuiteIsAnError: a node naming a cipher suite go-ipmi
// does not implement is refused with an error naming the field, where
// go-ipmi would panic.
func TestUnsupportedCipherSuiteIsAnError(t *testing.T) {
	node := bmc.Node{Name: "suites", Address: "127.0.0.1", CipherSuites: []int{3, int(unsupportedSuite(t))}}
	_, err := cipherSuites(node)
	var fe *bmc.FieldError
	if !errors.As(err, &fe) || fe.Field != "cipher_suites" {
		t.Fatalf("err = %v, want a cipher_suites field error", err)
	}
}

// unsupportedSuite is a cipher suite go-ipmi does not implement.
func unsupportedSuite(t *testing.T) types.CipherSuiteID {
	t.Helper()
	for id := types.CipherSuiteID(1); id < 20; id++ {
		if !gobmc.SupportedCipherSuite(id) {
			return id
		}
	}
	t.Fatal("go-ipmi implements every cipher suite below 20")
	return 0
}

// TestChannelAuthCapsFromCopy: a node answers Get Channel Authentication
// Capabilities exactly as go-ipmi's handler does, without its allocations
// per empty user slot, and follows a change of the users at once.
func TestChannelAuthCapsFromCopy(t *testing.T) {
	state, _ := goipmiState(t)
	unregister := registerNode(state, &nodeHandlers{})
	defer unregister()
	admin := &handlers.HandlerContext{BMC: state, Session: &gobmc.Session{PrivilegeLevel: gobmc.PrivilegeLevelAdministrator}}
	node := func(c types.Command, data ...byte) ([]byte, types.CompletionCode) {
		resp, cc, _ := sharedRegistry().Dispatch(context.Background(), admin, uint8(c.NetFn), c.ID, data)
		return resp, cc
	}
	same := func(when string) []byte {
		t.Helper()
		var last []byte
		for _, req := range [][]byte{{0x0E, 0x04}, {0x8E, 0x04}, {lanChannel, 0x02}, {0x0E}} {
			got, gotCC := node(types.CommandGetChannelAuthCapabilities, req...)
			want, wantCC := goipmiDispatch(state, 0, types.CommandGetChannelAuthCapabilities, req...)
			if gotCC != wantCC || !bytes.Equal(got, want) {
				t.Fatalf("%s, request % x: % x cc=%#x, go-ipmi answers % x cc=%#x", when, req, got, uint8(gotCC), want, uint8(wantCC))
			}
			if len(req) == 2 {
				last = got
			}
		}
		return last
	}
	before := same("at start")
	hctx := &handlers.HandlerContext{BMC: state}
	if n := testing.AllocsPerRun(100, func() {
		_, _, _ = sharedRegistry().Dispatch(context.Background(), hctx, uint8(types.NetFnAppRequest), types.CommandGetChannelAuthCapabilities.ID, []byte{0x0E, 0x04})
	}); n > 2 {
		t.Errorf("Get Channel Authentication Capabilities allocates %v times per request", n)
	}
	// go-ipmi's anonymous user (ID 1: null name, no password) disabled: the
	// answer no longer reports null or anonymous logins.
	if _, cc := node(types.CommandSetUserPassword, 1, 0x00); cc != types.CodeOK {
		t.Fatalf("disable user 1: %#x", uint8(cc))
	}
	if after := same("after a user change"); bytes.Equal(after, before) {
		t.Fatalf("the answer did not change with the users: % x", after)
	}
}

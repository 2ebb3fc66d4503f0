package ipmi

import (
	"context"
	"testing"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/protocol"
	"github.com/bougou/go-ipmi/pkg/types"
)

// TestReplayGuardMiddleware covers the duplicate that reaches the handlers
// (sent before its original was dispatched, so ReadFrom could not drop it):
// it is not executed again and gets the first answer, or 0xCF once that
// answer has left the window.
func TestReplayGuardMiddleware(t *testing.T) {
	g := newReplayGuard()
	runs := 0
	h := g.middleware(handlers.HandlerFunc(func(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		runs++
		return []byte{byte(runs)}, types.CodeOK, nil
	}))
	sess := &gobmc.Session{BMCID: 7}
	call := func(seq uint32) ([]byte, types.CompletionCode) {
		sess.InboundSeq = seq
		resp, cc, err := h.Handle(context.Background(), &handlers.HandlerContext{Session: sess}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp, cc
	}
	datagram := func(seq uint32) header {
		return parseDatagram(protocol.BuildRMCPPlusPacket(uint8(types.PayloadTypeIPMI), types.PayloadFlagAuthenticated, sess.BMCID, seq, []byte{1, 2, 3}))
	}

	call(10)
	if resp, cc := call(10); runs != 1 || cc != types.CodeOK || resp[0] != 1 {
		t.Fatalf("duplicate: runs=%d cc=%v resp=%v, want the first answer without a second run", runs, cc, resp)
	}
	call(12)
	call(11) // late but new
	if runs != 3 {
		t.Fatalf("in-window numbers ran %d times, want 3", runs)
	}
	for _, seq := range []uint32{10, 11, 12} {
		if !g.dropDatagram(datagram(seq)) {
			t.Errorf("datagram with dispatched sequence number %d not dropped", seq)
		}
	}
	for _, seq := range []uint32{9, 13, 40} {
		if g.dropDatagram(datagram(seq)) {
			t.Errorf("datagram with fresh sequence number %d dropped", seq)
		}
	}
	// SOL shares the numbers and is not tracked: far ahead is fine.
	call(40)
	if runs != 4 {
		t.Fatal("a request far ahead (after SOL traffic) did not run")
	}
	if _, cc := call(12); cc != types.CodeCannotExecuteDuplicatedRequest || runs != 4 {
		t.Fatalf("request older than the window: cc=%v runs=%d, want 0xCF and no run", cc, runs)
	}
	if !g.dropDatagram(datagram(23)) || g.dropDatagram(datagram(24)) {
		t.Fatal("window edge: 17 behind must drop, 16 behind must pass")
	}
	// A session that goes is forgotten; a new one with the same ID starts afresh.
	g.forget(sess.BMCID)
	if g.dropDatagram(datagram(40)) {
		t.Fatal("a forgotten session still drops")
	}
	call(40)
	sess = &gobmc.Session{BMCID: 7}
	call(40)
	if runs != 6 {
		t.Fatalf("a new session with a reused ID was refused (runs=%d)", runs)
	}
	// Pre-session requests pass through.
	if _, _, err := h.Handle(context.Background(), &handlers.HandlerContext{}, nil); err != nil || runs != 7 {
		t.Fatal("pre-session request not dispatched")
	}
}

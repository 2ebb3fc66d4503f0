package ipmi

import (
	"context"
	"encoding/binary"
	"sync"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// IPMI 1.5 session completion codes (IPMI 2.0 Table 22-22).
const (
	ccV15NoSessionSlot     types.CompletionCode = 0x81
	ccV15InvalidSessionID  types.CompletionCode = 0x85
	ccV15PrivilegeExceeds  types.CompletionCode = 0x86
	activateSessionReqLen                       = 22
	activateSessionRespLen                      = 10
)

// v15Sessions replaces go-ipmi's IPMI 1.5 session admission, which does not
// fit a BMC driven by scripts:
//
//   - go-ipmi allows one active 1.5 session per user and two at OPERATOR or
//     above, and its store holds four sessions in all. freeipmi's ipmipower
//     does not close its session after --reset, so one reset locked the
//     account out of IPMI 1.5 for the 60 s inactivity timeout.
//
// govbmc's Activate Session applies the same checks as go-ipmi (pending
// session, auth type, challenge, the user's privilege limit) without the
// per-user and per-privilege caps, and when every slot holds an active
// session a challenge for a known user closes the oldest one: the newest
// login wins, as an abandoned session must never lock out a real one. (The
// store's four slots are go-ipmi's and cannot be raised from outside.)
type v15Sessions struct {
	mu     sync.Mutex
	active []uint32 // session IDs in activation order
}

// makeRoom closes the oldest session govbmc activated when every slot
// holds an active session (pending ones go-ipmi evicts itself).
func (v *v15Sessions) makeRoom(store *gobmc.V15SessionStore) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	for store.CountActiveSessions() >= store.Cap() && len(v.active) > 0 {
		id := v.active[0]
		v.active = v.active[1:]
		if store.Close(id) == nil {
			return true
		}
	}
	return false
}

func (v *v15Sessions) activated(id uint32) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.active = append(v.active, id)
	// Forget sessions that were closed or expired meanwhile, keeping the list bounded.
	if len(v.active) > 4*gobmc.MaxSessions {
		v.active = v.active[len(v.active)-4*gobmc.MaxSessions:]
	}
}

// getSessionChallenge wraps go-ipmi's Get Session Challenge: when it fails
// only because every slot holds an active session (go-ipmi answers 0xFF;
// an unknown user gets 0x81/0x82 and evicts nothing), the oldest session
// is closed and the challenge tried once more.
func (h *nodeHandlers) getSessionChallenge(next handlers.Handler) handlers.HandlerFunc {
	return func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		resp, cc, err := next.Handle(ctx, hctx, req)
		if cc == types.CodeUnspecifiedError && h.v15.makeRoom(hctx.BMC.V15Sessions) {
			return next.Handle(ctx, hctx, req)
		}
		return resp, cc, err
	}
}

// activateSession implements Activate Session (App 0x3A, IPMI 2.0 §22.17).
// The server has already verified the request's authentication code against
// the pending session's user before dispatching it here.
func (h *nodeHandlers) activateSession(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < activateSessionReqLen {
		return nil, types.CodeRequestDataTruncated, nil
	}
	sess := hctx.V15Session
	if sess == nil || sess.State != gobmc.V15SessionStatePending || sess.User == nil || !sess.User.Enabled {
		return nil, ccV15InvalidSessionID, nil
	}
	if gobmc.V15AuthType(req[0]&0x0F) != sess.AuthType {
		return nil, ccV15InvalidSessionID, nil
	}
	var challenge [16]byte
	copy(challenge[:], req[2:18])
	if challenge != sess.Challenge {
		return nil, ccV15InvalidSessionID, nil
	}
	requested := gobmc.PrivilegeLevel(req[1] & 0x0F)
	if requested < gobmc.PrivilegeLevelCallback || requested > gobmc.PrivilegeLevelAdministrator {
		return nil, types.CodeParameterOutOfRange, nil
	}
	access, ok := sess.User.ChannelAccess[sess.Channel]
	if !ok || !access.Enabled || requested > access.MaxPrivilege {
		return nil, ccV15PrivilegeExceeds, nil
	}
	initialOutbound := binary.LittleEndian.Uint32(req[18:22])
	if initialOutbound == 0 {
		return nil, ccV15InvalidSessionID, nil
	}
	inboundSeq, err := gobmc.GenerateInboundSeq()
	if err != nil {
		return nil, types.CodeUnspecifiedError, err
	}
	id, err := gobmc.GenerateInboundSeq()
	if err != nil {
		return nil, types.CodeUnspecifiedError, err
	}
	if err := hctx.BMC.V15Sessions.Activate(sess, id, inboundSeq, initialOutbound, requested); err != nil {
		return nil, ccV15NoSessionSlot, nil
	}
	h.v15.activated(sess.SessionID)

	resp := make([]byte, activateSessionRespLen)
	resp[0] = uint8(sess.AuthType)
	binary.LittleEndian.PutUint32(resp[1:5], sess.SessionID)
	binary.LittleEndian.PutUint32(resp[5:9], inboundSeq)
	resp[9] = uint8(requested) // the session's maximum privilege
	return resp, types.CodeOK, nil
}

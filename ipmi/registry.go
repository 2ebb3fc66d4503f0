package ipmi

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// One handler registry serves every node of the process.
//
// go-ipmi's Registry applies middleware when a handler is registered, so a
// registry per node with govbmc's middleware (panic recovery, tracing,
// replay guard, session bookkeeping) held a wrapped copy of every one of
// its ~100 commands per node: the largest part of a BMC's memory in a fleet
// of 1,000 (see docs/BENCHMARKS.md). Instead:
//
//   - sharedRegistry, the one go-ipmi's servers are given, has a single
//     middleware that finds the node by the request's BMC state and hands
//     the request to that node's chain;
//   - a node's chain is its middleware wrapped once around innerRegistry,
//     which holds go-ipmi's handlers and, for the commands govbmc
//     overrides, a handler that calls the node's own (innerRegistry checks
//     the privilege either way).
//
// go-ipmi's handlers keep no state of their own (they reach the node
// through the HandlerContext), so sharing them is safe.
var (
	sharedRegistry = sync.OnceValue(func() *handlers.Registry {
		r := handlers.NewRegistry()
		r.Use(toNode)
		handlers.RegisterAllHandlers(r)
		for _, o := range overrides {
			r.Register(o.cmd, o.of(&nodeHandlers{})) // never reached (toNode does not call it): for the command table
		}
		return r
	})
	innerRegistry = sync.OnceValue(func() *handlers.Registry {
		r := handlers.NewRegistry()
		handlers.RegisterAllHandlers(r)
		for i, o := range overrides {
			r.RegisterFunc(o.cmd, func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
				n := nodeOf(hctx)
				if n == nil {
					return nil, types.CodeUnspecifiedError, errUnknownNode
				}
				return n.h.ownHandler(i).Handle(ctx, hctx, req)
			})
		}
		return r
	})
	// nodes maps a node's go-ipmi BMC state to what the shared handlers
	// need of it.
	nodes sync.Map // *gobmc.BMC → *nodeDispatch
)

var errUnknownNode = errors.New("request for a BMC that is not registered")

// nodeDispatch is one node as the shared registry sees it.
type nodeDispatch struct {
	chain handlers.Handler // the node's middleware around innerRegistry
	h     *nodeHandlers    // the node's own handlers (overrides)
}

// registerNode makes the shared registry serve a node; the returned
// function takes it out again.
func registerNode(state *gobmc.BMC, h *nodeHandlers, middleware ...handlers.Middleware) (unregister func()) {
	var chain handlers.Handler = handlers.HandlerFunc(func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		return innerRegistry().Dispatch(ctx, hctx, uint8(hctx.Command.NetFn), hctx.Command.ID, req)
	})
	for i := len(middleware) - 1; i >= 0; i-- {
		chain = middleware[i](chain)
	}
	nodes.Store(state, &nodeDispatch{chain: chain, h: h})
	return func() { nodes.Delete(state) }
}

func nodeOf(hctx *handlers.HandlerContext) *nodeDispatch {
	if hctx == nil || hctx.BMC == nil {
		return nil
	}
	if n, ok := nodes.Load(hctx.BMC); ok {
		return n.(*nodeDispatch)
	}
	return nil
}

// toNode is the shared registry's middleware: the request goes through its
// node's chain instead.
func toNode(handlers.Handler) handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		n := nodeOf(hctx)
		if n == nil {
			return nil, types.CodeUnspecifiedError, errUnknownNode
		}
		return n.chain.Handle(ctx, hctx, req)
	})
}

// overrides are the commands govbmc answers for a node instead of
// go-ipmi, each with how to make that node's handler. A node makes its
// handlers when it wakes and drops them when it parks (ownHandlers): kept
// for good they were about 1 KiB of every idle BMC.
var overrides = [...]struct {
	cmd types.Command
	of  func(h *nodeHandlers) handlers.Handler
}{
	{types.CommandGetSessionChallenge, func(h *nodeHandlers) handlers.Handler {
		return h.getSessionChallenge(registered(goipmiDefaults(), types.CommandGetSessionChallenge))
	}},
	{types.CommandActivateSession, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.activateSession) }},
	{types.CommandChassisControl, func(h *nodeHandlers) handlers.Handler { return h.retransmits.wrap(h.chassisControl) }},
	{types.CommandGetChassisStatus, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.chassisStatus) }},
	{types.CommandGetSDRRepoInfo, func(h *nodeHandlers) handlers.Handler {
		return handlers.HandlerFunc(h.sdrRepoInfo)
	}},
	{types.CommandSetSystemBootOptions, func(h *nodeHandlers) handlers.Handler {
		return requireOperator(handlers.HandlerFunc(h.setBootOptions))
	}},
	{types.CommandChassisIdentify, func(*nodeHandlers) handlers.Handler {
		return requireOperator(registered(goipmiDefaults(), types.CommandChassisIdentify))
	}},
	{types.CommandGetSystemBootOptions, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.getBootOptions) }},
	{types.CommandGetSystemGUID, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.systemGUID) }},
	{types.CommandColdReset, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.bmcReset) }},
	{types.CommandWarmReset, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.bmcReset) }},
	{types.CommandGetLanConfigParam, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.getLanConfig) }},
	{types.CommandSetLanConfigParam, func(h *nodeHandlers) handlers.Handler {
		return requirePrivilege(gobmc.PrivilegeLevelAdministrator, handlers.HandlerFunc(h.setLanConfig))
	}},
	{types.CommandGetSensorReading, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.getSensorReading) }},
	{types.CommandGetSensorThresholds, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.getSensorThresholds) }},
	{types.CommandGetSELInfo, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.getSELInfo) }},
	{types.CommandReserveSEL, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.reserveSEL) }},
	{types.CommandGetSELEntry, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.getSELEntry) }},
	{types.CommandClearSEL, func(h *nodeHandlers) handlers.Handler { return requireOperator(handlers.HandlerFunc(h.clearSEL)) }},
	{types.CommandGetSELTime, func(h *nodeHandlers) handlers.Handler { return handlers.HandlerFunc(h.getSELTime) }},
	{types.CommandGetChannelAuthCapabilities, func(h *nodeHandlers) handlers.Handler {
		return h.authCaps.wrap(registered(goipmiDefaults(), types.CommandGetChannelAuthCapabilities))
	}},
	{types.CommandSetUserAccess, userChange(types.CommandSetUserAccess)},
	{types.CommandSetUsername, userChange(types.CommandSetUsername)},
	{types.CommandSetUserPassword, userChange(types.CommandSetUserPassword)},
}

// userChange is the override of go-ipmi's command c that changes the
// users: the node's authentication capabilities are asked again after it.
func userChange(c types.Command) func(h *nodeHandlers) handlers.Handler {
	return func(h *nodeHandlers) handlers.Handler {
		return h.authCaps.changesUsers(registered(goipmiDefaults(), c))
	}
}

// ownHandlers are a node's handlers of the overrides, made on demand.
type ownHandlers struct {
	list atomic.Pointer[[]handlers.Handler]
}

// ownHandler is the node's handler of overrides[i], made with the others
// when the node has none.
func (h *nodeHandlers) ownHandler(i int) handlers.Handler {
	own := h.own.list.Load()
	if own == nil {
		made := make([]handlers.Handler, len(overrides))
		for j, o := range overrides {
			made[j] = o.of(h)
		}
		own = &made
		if !h.own.list.CompareAndSwap(nil, own) {
			own = h.own.list.Load()
		}
	}
	return (*own)[i]
}

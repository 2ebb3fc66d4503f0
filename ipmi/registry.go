package ipmi

import (
	"context"
	"errors"
	"sync"

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
		for _, o := range (&nodeHandlers{}).overrides() {
			r.Register(o.cmd, o.h) // never reached (toNode does not call it): for the command table
		}
		return r
	})
	innerRegistry = sync.OnceValue(func() *handlers.Registry {
		r := handlers.NewRegistry()
		handlers.RegisterAllHandlers(r)
		for i, o := range (&nodeHandlers{}).overrides() {
			r.RegisterFunc(o.cmd, func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
				n := nodeOf(hctx)
				if n == nil {
					return nil, types.CodeUnspecifiedError, errUnknownNode
				}
				return n.own[i].Handle(ctx, hctx, req)
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
	chain handlers.Handler   // the node's middleware around innerRegistry
	own   []handlers.Handler // the node's overrides, in the order of overrides()
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
	var own []handlers.Handler
	for _, o := range h.overrides() {
		own = append(own, o.h)
	}
	nodes.Store(state, &nodeDispatch{chain: chain, own: own})
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

// override is a command govbmc answers itself.
type override struct {
	cmd types.Command
	h   handlers.Handler
}

// overrides are the commands govbmc answers for a node instead of go-ipmi.
func (h *nodeHandlers) overrides() []override {
	defaults := goipmiDefaults()
	o := []override{
		{types.CommandGetSessionChallenge, handlers.HandlerFunc(h.getSessionChallenge(registered(defaults, types.CommandGetSessionChallenge)))},
		{types.CommandActivateSession, handlers.HandlerFunc(h.activateSession)},
		{types.CommandChassisControl, handlers.HandlerFunc(h.retransmits.wrap(h.chassisControl))},
		{types.CommandGetChassisStatus, handlers.HandlerFunc(h.chassisStatus)},
		{types.CommandSetSystemBootOptions, requireOperator(handlers.HandlerFunc(h.setBootOptions))},
		{types.CommandChassisIdentify, requireOperator(registered(defaults, types.CommandChassisIdentify))},
		{types.CommandGetSystemBootOptions, handlers.HandlerFunc(h.getBootOptions)},
		{types.CommandGetSystemGUID, handlers.HandlerFunc(h.systemGUID)},
		{types.CommandColdReset, handlers.HandlerFunc(h.bmcReset)},
		{types.CommandWarmReset, handlers.HandlerFunc(h.bmcReset)},
		{types.CommandGetLanConfigParam, handlers.HandlerFunc(h.getLanConfig)},
		{types.CommandSetLanConfigParam, requirePrivilege(gobmc.PrivilegeLevelAdministrator, handlers.HandlerFunc(h.setLanConfig))},
		{types.CommandGetSensorReading, handlers.HandlerFunc(h.getSensorReading)},
		{types.CommandGetSensorThresholds, handlers.HandlerFunc(h.getSensorThresholds)},
		{types.CommandGetSELInfo, handlers.HandlerFunc(h.getSELInfo)},
		{types.CommandReserveSEL, handlers.HandlerFunc(h.reserveSEL)},
		{types.CommandGetSELEntry, handlers.HandlerFunc(h.getSELEntry)},
		{types.CommandClearSEL, requireOperator(handlers.HandlerFunc(h.clearSEL))},
		{types.CommandGetSELTime, handlers.HandlerFunc(h.getSELTime)},
		{types.CommandGetChannelAuthCapabilities, h.authCaps.wrap(registered(defaults, types.CommandGetChannelAuthCapabilities))},
	}
	for _, c := range []types.Command{types.CommandSetUserAccess, types.CommandSetUsername, types.CommandSetUserPassword} {
		o = append(o, override{c, h.authCaps.changesUsers(registered(defaults, c))})
	}
	return o
}

package ipmi

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// recoverMiddleware turns a panic in a handler into completion code 0xFF and
// an error log, so one bad request can never take the daemon down.
func recoverMiddleware(log *slog.Logger) handlers.Middleware {
	return func(next handlers.Handler) handlers.Handler {
		return handlers.HandlerFunc(func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) (resp []byte, cc types.CompletionCode, err error) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("handler panicked", "command", commandName(hctx), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
					resp, cc, err = nil, types.CodeUnspecifiedError, fmt.Errorf("handler panic: %v", r)
				}
			}()
			return next.Handle(ctx, hctx, req)
		})
	}
}

// traceMiddleware logs every dispatched command at debug level with the user
// and the completion code (never the request data, which may hold secrets).
func traceMiddleware(log *slog.Logger) handlers.Middleware {
	return func(next handlers.Handler) handlers.Handler {
		return handlers.HandlerFunc(func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
			resp, cc, err := next.Handle(ctx, hctx, req)
			if log.Enabled(ctx, slog.LevelDebug) {
				user := ""
				if hctx != nil && hctx.User != nil {
					user = hctx.User.Name
				}
				log.Debug("ipmi command", "command", commandName(hctx), "user", user, "cc", fmt.Sprintf("0x%02x", uint8(cc)))
			}
			return resp, cc, err
		})
	}
}

func commandName(hctx *handlers.HandlerContext) string {
	if hctx == nil {
		return "?"
	}
	c := hctx.Command
	if c.Name != "" {
		return c.Name
	}
	return fmt.Sprintf("netfn=0x%02x cmd=0x%02x", uint8(c.NetFn), c.ID)
}

// requireOperator wraps a handler that IPMI 2.0 Appendix G reserves for
// OPERATOR and above (Set System Boot Options, Chassis Identify, Clear
// SEL), which go-ipmi lets any USER run.
func requireOperator(next handlers.Handler) handlers.HandlerFunc {
	return requirePrivilege(gobmc.PrivilegeLevelOperator, next)
}

// requirePrivilege wraps a handler that needs at least level.
func requirePrivilege(level gobmc.PrivilegeLevel, next handlers.Handler) handlers.HandlerFunc {
	return func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		var priv gobmc.PrivilegeLevel
		switch {
		case hctx == nil:
		case hctx.Session != nil:
			priv = hctx.Session.PrivilegeLevel
		case hctx.V15Session != nil:
			priv = hctx.V15Session.PrivilegeLevel
		}
		if priv < level {
			return nil, types.CodeInsufficientPrivilege, nil
		}
		return next.Handle(ctx, hctx, req)
	}
}

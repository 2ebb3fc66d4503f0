package ipmi

import (
	"context"
	"errors"
	"log/slog"

	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
)

// completionCode turns a machine error into the completion code the client
// gets. Errors the machine names get their specific code; anything else is a
// backend failure (hypervisor unreachable, domain gone, deadline exceeded):
// it is logged with the node and the operation and answered with 0xC0, "node
// busy", which IPMI clients and Ironic treat as retryable.
func completionCode(log *slog.Logger, op string, err error) types.CompletionCode {
	switch {
	case err == nil:
		return types.CodeOK
	case errors.Is(err, bmc.ErrPoweredOff):
		return types.CodeNotSupported // 0xD5: not supported in present state
	case errors.Is(err, bmc.ErrInvalidArgument):
		return types.CodeRequestDataFieldInvalid
	case errors.Is(err, bmc.ErrNotSupported):
		return types.CodeInvalidCommand
	}
	level := slog.LevelError
	if errors.Is(err, context.DeadlineExceeded) {
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "machine operation failed", "op", op, "err", err)
	return types.CodeNodeBusy
}

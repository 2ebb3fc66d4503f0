package ipmi

import (
	"context"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
)

// ipmiGUID encodes a UUID the way IPMI sends GUIDs (IPMI 2.0 §20.8, Table
// 20-10): the 16 bytes of its text form, least significant (the node field's
// last byte) first. ipmitool's `mc guid` decodes it back to the same text.
func ipmiGUID(u bmc.UUID) [16]byte {
	var g [16]byte
	for i := range u {
		g[i] = u[len(u)-1-i]
	}
	return g
}

// systemGUID implements Get System GUID (App 0x37) from the machine's UUID,
// which go-ipmi does not register at all.
func (h *nodeHandlers) systemGUID(ctx context.Context, _ *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	u, cc := machineRead(ctx, h, "get system uuid", h.machine.UUID)
	if cc != types.CodeOK {
		return nil, cc, nil
	}
	g := ipmiGUID(u)
	return g[:], types.CodeOK, nil
}

// bmcReset implements Cold Reset and Warm Reset (App 0x02, 0x03). They reset
// the BMC, not the managed system: go-ipmi's defaults hard-reset the machine
// through the HAL, which would reboot a VM on `ipmitool mc reset cold`. A
// virtual BMC has nothing to reinitialise, so it acknowledges the request.
func (h *nodeHandlers) bmcReset(_ context.Context, hctx *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	h.log.Info("BMC reset requested; the managed machine is not affected", "command", hctx.Command.Name)
	return nil, types.CodeOK, nil
}

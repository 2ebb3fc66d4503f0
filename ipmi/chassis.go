package ipmi

import (
	"context"

	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
)

// Chassis Control directives (IPMI 2.0 Table 28-4).
const (
	controlPowerDown  = 0x00
	controlPowerUp    = 0x01
	controlPowerCycle = 0x02
	controlHardReset  = 0x03
	controlDiagInt    = 0x04
	controlSoftOff    = 0x05
)

// chassisControl implements Chassis Control (0x00/0x02) for all six
// directives. go-ipmi's own handler answers the diagnostic interrupt with
// 0xC9 because its HAL has no NMI; the machine has one.
func (h *nodeHandlers) chassisControl(ctx context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 1 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	ctx, cancel := h.opContext(ctx)
	defer cancel()
	var (
		op  string
		err error
	)
	switch req[0] & 0x0F {
	case controlPowerDown:
		op, err = "power off", h.machine.PowerOff(ctx)
	case controlPowerUp:
		op, err = "power on", h.machine.PowerOn(ctx)
		if err == nil {
			h.lastPowerOnByCommand.Store(true)
		}
	case controlPowerCycle:
		op, err = "power cycle", h.machine.PowerCycle(ctx)
		if err == nil {
			h.lastPowerOnByCommand.Store(true)
		}
	case controlHardReset:
		op, err = "hard reset", h.machine.Reset(ctx)
	case controlDiagInt:
		op, err = "diagnostic interrupt", h.machine.DiagnosticInterrupt(ctx)
	case controlSoftOff:
		op, err = "soft off", h.machine.SoftOff(ctx)
	default:
		return nil, types.CodeRequestDataFieldInvalid, nil
	}
	if err == nil {
		h.log.Info("chassis control", "op", op)
	}
	return nil, completionCode(h.log, op, err), nil
}

// chassisStatus implements Get Chassis Status (0x00/0x01) from the machine's
// power state. A virtual machine stays off when its host comes back, so the
// restore policy reads "always-off".
func (h *nodeHandlers) chassisStatus(ctx context.Context, _ *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	state, cc := machineRead(ctx, h, "power status", h.machine.PowerState)
	if cc != types.CodeOK {
		return nil, cc, nil
	}
	resp := chassis.GetChassisStatusResponse{
		PowerRestorePolicy:       chassis.PowerRestorePolicyAlwaysOff,
		PowerIsOn:                state == bmc.PowerOn,
		LastPowerOnByCommand:     h.lastPowerOnByCommand.Load(),
		ChassisIdentifySupported: true,
	}
	return resp.Pack(), types.CodeOK, nil
}

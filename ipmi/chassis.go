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
// 0xC9 because its HAL has no NMI; the machine has one. The directive runs
// on the node's control queue (control.go): answered with its outcome when
// it ends within the acknowledgement bound, acknowledged otherwise.
func (h *nodeHandlers) chassisControl(_ context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 1 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	directive := req[0] & 0x0F
	op, ok := controlNames[directive]
	if !ok {
		return nil, types.CodeRequestDataFieldInvalid, nil
	}
	cc, finished := h.control.run(func(ctx context.Context) types.CompletionCode {
		err := h.control1(ctx, directive)
		if err == nil {
			h.log.Info("chassis control", "op", op)
		}
		h.controlDone(directive, op, err)
		return completionCode(h.log, op, err)
	})
	if !finished {
		h.log.Info("chassis control acknowledged; still running", "op", op)
	}
	return nil, cc, nil
}

var controlNames = map[uint8]string{
	controlPowerDown:  "power off",
	controlPowerUp:    "power on",
	controlPowerCycle: "power cycle",
	controlHardReset:  "hard reset",
	controlDiagInt:    "diagnostic interrupt",
	controlSoftOff:    "soft off",
}

// control1 carries out one directive on the machine.
func (h *nodeHandlers) control1(ctx context.Context, directive uint8) error {
	switch directive {
	case controlPowerDown:
		return h.machine.PowerOff(ctx)
	case controlPowerUp, controlPowerCycle:
		f := h.machine.PowerOn
		if directive == controlPowerCycle {
			f = h.machine.PowerCycle
		}
		err := f(ctx)
		if err == nil {
			h.lastPowerOnByCommand.Store(true)
		}
		return err
	case controlHardReset:
		return h.machine.Reset(ctx)
	case controlDiagInt:
		return h.machine.DiagnosticInterrupt(ctx)
	default:
		return h.machine.SoftOff(ctx)
	}
}

// controlDone records the outcome of every Chassis Control carried out.
func (h *nodeHandlers) controlDone(directive uint8, op string, err error) {
	if err != nil {
		h.record(bmc.EventControlFailed, op+": "+err.Error())
		return
	}
	h.record(controlEvents[directive], op)
}

// machinePower records a power change the machine reports (for libvirt,
// made by virsh, the guest or a crash), unless it is the echo of the BMC's
// own control, which controlDone has recorded.
func (h *nodeHandlers) machinePower(s bmc.PowerState) {
	if h.control.own() {
		return
	}
	kind := bmc.EventPowerOff
	if s == bmc.PowerOn {
		kind = bmc.EventPowerOn
	}
	if _, err := h.sel.events.Add(kind, "machine", "seen from the machine"); err != nil {
		h.log.Warn("event log not saved", "err", err)
	}
}

// loginFailed records a login refused for its credentials.
func (h *nodeHandlers) loginFailed(ip string) {
	h.record(bmc.EventLoginFailed, "from "+ip)
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

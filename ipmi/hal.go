package ipmi

import (
	"context"

	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
)

// machineHAL adapts a bmc.Machine to go-ipmi's hardware abstraction, for the
// go-ipmi handlers govbmc keeps (Chassis Identify and anything added later).
// Its storage is the node's SDR repository and FRU (sensors.go, fru.go);
// a virtual machine has no GPIO or I2C, so those are nil, which go-ipmi
// answers with the proper "not present" completion codes. Sensor readings
// are govbmc's own handlers (go-ipmi has no Get Sensor Reading).
type machineHAL struct {
	m bmc.Machine
	h *nodeHandlers // records SOL activations; nil in go-ipmi's own tests
}

var (
	_ hal.HAL        = machineHAL{}
	_ hal.ChassisHAL = machineHAL{}
)

func (h machineHAL) Chassis() hal.ChassisHAL { return h }
func (h machineHAL) Sensors() hal.SensorHAL  { return nil }
func (h machineHAL) Storage() hal.StorageHAL {
	if h.h == nil {
		return nil
	}
	return nodeStorage{h.h}
}
func (h machineHAL) Network() hal.NetworkHAL { return nil }
func (h machineHAL) GPIO() hal.GPIOHAL       { return nil }
func (h machineHAL) I2C() hal.I2CHAL         { return nil }
func (h machineHAL) Console() hal.ConsoleHAL { return consoleHAL{h.m, h.h} }
func (h machineHAL) Close() error            { return nil }

func (h machineHAL) PowerState(ctx context.Context) (bool, error) {
	s, err := h.m.PowerState(ctx)
	return s == bmc.PowerOn, err
}

func (h machineHAL) SetPower(ctx context.Context, on bool) error {
	if on {
		return h.m.PowerOn(ctx)
	}
	return h.m.PowerOff(ctx)
}

func (h machineHAL) PowerCycle(ctx context.Context) error { return h.m.PowerCycle(ctx) }
func (h machineHAL) ColdReset(ctx context.Context) error  { return h.m.Reset(ctx) }

// WarmReset is what go-ipmi calls for the soft-shutdown directive.
func (h machineHAL) WarmReset(ctx context.Context) error { return h.m.SoftOff(ctx) }

// Identify is accepted: a VM has no identify LED to light.
func (h machineHAL) Identify(context.Context, uint8) error { return nil }

func (h machineHAL) IntrusionState(context.Context) (bool, error) {
	return false, hal.ErrNotSupported
}

func (h machineHAL) SetBootFlags(ctx context.Context, f *types.BootOptionParam_BootFlags) error {
	var raw [bootFlagsLen]byte
	copy(raw[:], f.Pack())
	o, ok := overrideFromFlags(raw)
	if !ok {
		return types.CodeRequestDataFieldInvalid
	}
	return h.m.SetBootOverride(ctx, o)
}

func (h machineHAL) GetBootFlags(ctx context.Context) (*types.BootOptionParam_BootFlags, error) {
	o, err := h.m.BootOverride(ctx)
	if err != nil {
		return nil, err
	}
	raw := flagsFromOverride(o)
	var f types.BootOptionParam_BootFlags
	if err := f.Unpack(raw[:]); err != nil {
		return nil, err
	}
	return &f, nil
}

func (h machineHAL) SetBootInfoAcknowledge(context.Context, *types.BootOptionParam_BootInfoAcknowledge) error {
	return hal.ErrNotSupported
}

func (h machineHAL) GetBootInfoAcknowledge(context.Context) (*types.BootOptionParam_BootInfoAcknowledge, error) {
	return nil, hal.ErrNotSupported
}

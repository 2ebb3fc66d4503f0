package ipmi

import (
	"context"
	"sync"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
)

// System boot option parameters govbmc implements (IPMI 2.0 Table 28-14).
const (
	bootParamSetInProgress = 0x00
	bootParamValidBitClear = 0x03
	bootParamInfoAck       = 0x04
	bootParamFlags         = 0x05
	bootParamVersion       = 0x01
)

// bootParams holds the boot option parameters that live in the BMC rather
// than in the machine: set-in-progress, the valid-bit clearing mask and the
// boot info acknowledge bits, plus the last boot flags written so that the
// bits the machine does not model (CMOS clear, verbosity…) read back as
// written while they still describe the machine's override.
type bootParams struct {
	mu            sync.Mutex
	setInProgress byte
	validBitClear byte
	infoAck       byte
	lastFlags     [bootFlagsLen]byte
	haveLastFlags bool
}

// setBootOptions implements Set System Boot Options (0x00/0x08).
func (h *nodeHandlers) setBootOptions(ctx context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 1 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	param, data := req[0]&0x7F, req[1:]
	b := &h.boot
	switch param {
	case bootParamSetInProgress:
		if len(data) < 1 {
			return nil, types.CodeRequestDataLengthInvalid, nil
		}
		if data[0]&0x03 == 0x03 {
			return nil, types.CodeRequestDataFieldInvalid, nil
		}
		b.mu.Lock()
		b.setInProgress = data[0] & 0x03
		b.mu.Unlock()
		return nil, types.CodeOK, nil
	case bootParamValidBitClear:
		if len(data) < 1 {
			return nil, types.CodeRequestDataLengthInvalid, nil
		}
		b.mu.Lock()
		b.validBitClear = data[0] & 0x1F
		b.mu.Unlock()
		return nil, types.CodeOK, nil
	case bootParamInfoAck:
		if len(data) < 2 {
			return nil, types.CodeRequestDataLengthInvalid, nil
		}
		mask, val := data[0], data[1]
		b.mu.Lock()
		b.infoAck = b.infoAck&^mask | val&mask
		b.mu.Unlock()
		return nil, types.CodeOK, nil
	case bootParamFlags:
		if len(data) < bootFlagsLen {
			return nil, types.CodeRequestDataLengthInvalid, nil
		}
		var flags [bootFlagsLen]byte
		copy(flags[:], data)
		o, ok := overrideFromFlags(flags)
		if !ok {
			return nil, types.CodeRequestDataFieldInvalid, nil
		}
		// Hold the lock across the machine call so lastFlags always
		// matches the override the machine stored last.
		b.mu.Lock()
		defer b.mu.Unlock()
		octx, cancel := h.opContext(ctx)
		defer cancel()
		if err := h.machine.SetBootOverride(octx, o); err != nil {
			return nil, completionCode(h.log, "set boot device", err), nil
		}
		b.lastFlags, b.haveLastFlags = flags, true
		h.log.Info("boot device set", "device", o.Device.String(), "persistent", o.Persistent, "efi", o.EFI)
		h.record(bmc.EventBootDeviceChanged, o.Device.String())
		return nil, types.CodeOK, nil
	}
	return nil, types.CodeParameterNotSupported, nil
}

// getBootOptions implements Get System Boot Options (0x00/0x09). Boot flags
// are read from the machine, so they are right even when something other
// than this BMC changed them, and always carry 5 data bytes.
func (h *nodeHandlers) getBootOptions(ctx context.Context, _ *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 1 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	param := req[0] & 0x7F
	b := &h.boot
	resp := []byte{bootParamVersion, param}
	switch param {
	case bootParamSetInProgress:
		b.mu.Lock()
		defer b.mu.Unlock()
		return append(resp, b.setInProgress), types.CodeOK, nil
	case bootParamValidBitClear:
		b.mu.Lock()
		defer b.mu.Unlock()
		return append(resp, b.validBitClear), types.CodeOK, nil
	case bootParamInfoAck:
		b.mu.Lock()
		defer b.mu.Unlock()
		// Data 1, the write mask, reads as 00h.
		return append(resp, 0x00, b.infoAck), types.CodeOK, nil
	case bootParamFlags:
		o, cc := machineRead(ctx, h, "get boot device", h.machine.BootOverride)
		if cc != types.CodeOK {
			return nil, cc, nil
		}
		flags := flagsFromOverride(o)
		b.mu.Lock()
		if b.haveLastFlags {
			if last, ok := overrideFromFlags(b.lastFlags); ok && last == o {
				flags = b.lastFlags
			}
		}
		b.mu.Unlock()
		return append(resp, flags[:]...), types.CodeOK, nil
	}
	return nil, types.CodeParameterNotSupported, nil
}

package bmc

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// MaxKgLen is the length of an IPMI 2.0 BMC key (Kg), in bytes.
const MaxKgLen = 20

// ParseKg reads a BMC key (Kg) written in hex, as `ipmitool -y` and Ironic's
// ipmi_hex_kg_key take it: up to 40 hex digits, an optional 0x prefix; a
// shorter key is padded with zero bytes, as ipmitool pads it. An empty
// string is no key (nil); an all-zero key is refused, because IPMI reads it
// as no key.
func ParseKg(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	if s == "" {
		return nil, nil
	}
	if len(s)%2 != 0 {
		s += "0" // ipmitool reads the digits left to right into the key
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("kg: not hex: %w", ErrInvalidArgument)
	}
	if len(raw) > MaxKgLen {
		return nil, fmt.Errorf("kg: %d bytes, at most %d: %w", len(raw), MaxKgLen, ErrInvalidArgument)
	}
	key := make([]byte, MaxKgLen)
	copy(key, raw)
	for _, b := range key {
		if b != 0 {
			return key, nil
		}
	}
	return nil, fmt.Errorf("kg: all zero: %w", ErrInvalidArgument)
}

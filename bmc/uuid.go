package bmc

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
)

// UUID is a system UUID in RFC 4122 byte order (as written in text).
type UUID [16]byte

// String formats u as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// ParseUUID reads a UUID in its 36-character text form.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("%q is not a UUID (want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", s)
	}
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil {
		return u, fmt.Errorf("%q is not a UUID: %w", s, err)
	}
	copy(u[:], raw)
	return u, nil
}

// uuidNamespace is govbmc's namespace for name-based (version 5) UUIDs.
var uuidNamespace = UUID{0x6b, 0x1c, 0x0e, 0x52, 0x3f, 0x6e, 0x4d, 0x1e, 0x9a, 0x51, 0x5d, 0x6c, 0x2b, 0x0f, 0x7e, 0x11}

// DeriveUUID returns a stable version 5 UUID for a name, so that a simulated
// machine keeps its identity across restarts without configuration.
func DeriveUUID(name string) UUID {
	h := sha1.New()
	h.Write(uuidNamespace[:])
	h.Write([]byte(name))
	var u UUID
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return u
}

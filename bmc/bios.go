package bmc

import (
	"fmt"
	"strconv"
)

// BIOS attribute types, as the Redfish attribute registry names them.
const (
	BIOSEnumeration = "Enumeration"
	BIOSInteger     = "Integer"
	BIOSBoolean     = "Boolean"
	BIOSString      = "String"
)

// BIOSAttribute describes one firmware setup attribute a machine keeps. Values
// travel as strings ("true", "30", "Enabled"); Type says how to read them.
type BIOSAttribute struct {
	// Name is the attribute's name (the key under Bios.Attributes).
	Name string
	// Type is BIOSEnumeration, BIOSInteger, BIOSBoolean or BIOSString.
	Type string
	// Values are the allowed values of an enumeration.
	Values []string
	// Min and Max bound an integer.
	Min, Max int
	// MaxLength bounds a string.
	MaxLength int
	// Default is the value after a BIOS reset; "" for BootMode, which
	// follows the machine's firmware and is left alone by a reset.
	Default string
	// ReadOnly attributes cannot be set.
	ReadOnly bool
}

// BootModeAttribute is the attribute that mirrors the machine's firmware:
// "Uefi" or "Bios". Setting it switches firmware at the next boot.
const BootModeAttribute = "BootMode"

// BIOSRegistry is the small set of setup attributes every machine offers.
var BIOSRegistry = []BIOSAttribute{
	{Name: BootModeAttribute, Type: BIOSEnumeration, Values: []string{"Uefi", "Bios"}},
	{Name: "ProcVirtualization", Type: BIOSEnumeration, Values: []string{"Enabled", "Disabled"}, Default: "Enabled"},
	{Name: "ProcHyperThreading", Type: BIOSEnumeration, Values: []string{"Enabled", "Disabled"}, Default: "Enabled"},
	{Name: "ProcTurboMode", Type: BIOSEnumeration, Values: []string{"Enabled", "Disabled"}, Default: "Enabled"},
	{Name: "SerialConsoleRedirection", Type: BIOSEnumeration, Values: []string{"COM1", "Disabled"}, Default: "COM1"},
	{Name: "QuietBoot", Type: BIOSBoolean, Default: "false"},
	{Name: "PowerOnDelaySeconds", Type: BIOSInteger, Min: 0, Max: 300, Default: "0"},
	{Name: "AssetTag", Type: BIOSString, MaxLength: 32, Default: ""},
}

// LookupBIOSAttribute returns the registry entry of an attribute.
func LookupBIOSAttribute(name string) (BIOSAttribute, bool) {
	for _, a := range BIOSRegistry {
		if a.Name == name {
			return a, true
		}
	}
	return BIOSAttribute{}, false
}

// Check reports whether v is an acceptable value of the attribute; the
// error wraps ErrInvalidArgument.
func (a BIOSAttribute) Check(v string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("BIOS attribute %s: %s: %w", a.Name, fmt.Sprintf(format, args...), ErrInvalidArgument)
	}
	if a.ReadOnly {
		return bad("read-only")
	}
	switch a.Type {
	case BIOSEnumeration:
		for _, ok := range a.Values {
			if v == ok {
				return nil
			}
		}
		return bad("%q is not one of %v", v, a.Values)
	case BIOSInteger:
		n, err := strconv.Atoi(v)
		if err != nil || n < a.Min || n > a.Max {
			return bad("%q is not an integer from %d to %d", v, a.Min, a.Max)
		}
	case BIOSBoolean:
		if v != "true" && v != "false" {
			return bad("%q is not true or false", v)
		}
	case BIOSString:
		if len(v) > a.MaxLength {
			return bad("longer than %d bytes", a.MaxLength)
		}
	}
	return nil
}

// CheckBIOSAttributes checks a set of attributes against the registry.
func CheckBIOSAttributes(attrs map[string]string) error {
	for name, v := range attrs {
		a, ok := LookupBIOSAttribute(name)
		if !ok {
			return fmt.Errorf("unknown BIOS attribute %q: %w", name, ErrInvalidArgument)
		}
		if err := a.Check(v); err != nil {
			return err
		}
	}
	return nil
}

// DefaultBIOSAttributes returns the registry's defaults, BootMode excepted
// (it follows the firmware).
func DefaultBIOSAttributes() map[string]string {
	m := make(map[string]string, len(BIOSRegistry))
	for _, a := range BIOSRegistry {
		if a.Name != BootModeAttribute {
			m[a.Name] = a.Default
		}
	}
	return m
}

// BootModeValue is the BootMode attribute's value for a firmware.
func BootModeValue(efi bool) string {
	if efi {
		return "Uefi"
	}
	return "Bios"
}

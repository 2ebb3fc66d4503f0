package redfish

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/govbmc/govbmc/bmc"
)

// biosRegistryID names the attribute registry the Bios resource uses.
const biosRegistryID = "BiosAttributeRegistry.1.0.0"

// Bios is /redfish/v1/Systems/{id}/Bios: the attributes in effect.
type Bios struct {
	Resource
	AttributeRegistry string         `json:"AttributeRegistry"`
	Attributes        map[string]any `json:"Attributes"`
	Settings          *SettingsLink  `json:"@Redfish.Settings,omitempty"`
	Actions           *BiosActions   `json:"Actions,omitempty"`
}

// SettingsLink points at the resource that takes the pending settings.
type SettingsLink struct {
	ODataType      string `json:"@odata.type"`
	SettingsObject Link   `json:"SettingsObject"`
}

// BiosActions are the Bios resource's actions.
type BiosActions struct {
	ResetBios ActionTarget `json:"#Bios.ResetBios"`
}

// ActionTarget is an action's URI.
type ActionTarget struct {
	Target string `json:"target"`
}

func biosMachine(c *sysCtx, r *http.Request) (bmc.BIOSSettings, error) {
	b, ok := c.sys.Machine.(bmc.BIOSSettings)
	if !ok {
		return nil, errNotFound(r.URL.Path)
	}
	return b, nil
}

// typedAttributes gives attribute values their registry's JSON types.
func typedAttributes(in map[string]string) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = v
		a, ok := bmc.LookupBIOSAttribute(k)
		if !ok {
			continue
		}
		switch a.Type {
		case bmc.BIOSInteger:
			if n, err := strconv.Atoi(v); err == nil {
				out[k] = n
			}
		case bmc.BIOSBoolean:
			out[k] = v == "true"
		}
	}
	return out
}

func (s *Server) getBios(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	b, err := biosMachine(c, r)
	if err != nil {
		return err
	}
	cur, _, err := b.BIOSAttributes(r.Context())
	if err != nil {
		return err
	}
	uri := systemURI(c.sys) + "/Bios"
	s.writeJSON(w, r, http.StatusOK, Bios{
		Resource:          resource(uri, "#Bios.v1_1_0.Bios", "BIOS", "BIOS Configuration Current Settings"),
		AttributeRegistry: biosRegistryID,
		Attributes:        typedAttributes(cur),
		Settings:          &SettingsLink{ODataType: "#Settings.v1_3_0.Settings", SettingsObject: Link{uri + "/Settings"}},
		Actions:           &BiosActions{ResetBios: ActionTarget{uri + "/Actions/Bios.ResetBios"}},
	}, "")
	return nil
}

func (s *Server) biosSettings(r *http.Request, c *sysCtx, b bmc.BIOSSettings) (Bios, error) {
	_, pending, err := b.BIOSAttributes(r.Context())
	if err != nil {
		return Bios{}, err
	}
	return Bios{
		Resource:          resource(systemURI(c.sys)+"/Bios/Settings", "#Bios.v1_1_0.Bios", "Settings", "BIOS Configuration Pending Settings"),
		AttributeRegistry: biosRegistryID,
		Attributes:        typedAttributes(pending),
	}, nil
}

func (s *Server) getBiosSettings(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	b, err := biosMachine(c, r)
	if err != nil {
		return err
	}
	set, err := s.biosSettings(r, c, b)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, set, etagOf(set.Attributes))
	return nil
}

func (s *Server) patchBiosSettings(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	b, err := biosMachine(c, r)
	if err != nil {
		return err
	}
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	set, err := s.biosSettings(r, c, b)
	if err != nil {
		return err
	}
	if err := checkIfMatch(r, etagOf(set.Attributes)); err != nil {
		return err
	}
	patch := map[string]any{}
	if err := splitPatch(body, served(set), []string{"Attributes"}, "", patch); err != nil {
		return err
	}
	raw, ok := patch["Attributes"]
	if !ok {
		s.writeJSON(w, r, http.StatusOK, set, etagOf(set.Attributes))
		return nil
	}
	attrs, ok := raw.(map[string]any)
	if !ok {
		return errValueType("Attributes", fmt.Sprint(raw))
	}
	values, err := attributeStrings(attrs)
	if err != nil {
		return err
	}
	if err := b.SetBIOSAttributes(r.Context(), values); err != nil {
		return machineError(err, "Attributes")
	}
	if set, err = s.biosSettings(r, c, b); err != nil {
		return err
	}
	s.log.Info("redfish: BIOS settings pending", "node", c.sys.Name, "user", c.who.user, "count", len(values))
	s.writeJSON(w, r, http.StatusOK, set, etagOf(set.Attributes))
	return nil
}

// attributeStrings checks attributes against the registry and returns
// them in bmc's string form; errors name the attribute.
func attributeStrings(attrs map[string]any) (map[string]string, error) {
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(map[string]string, len(attrs))
	for _, name := range names {
		v, path := attrs[name], "Attributes/"+name
		a, ok := bmc.LookupBIOSAttribute(name)
		if !ok {
			return nil, errUnknownProperty(path)
		}
		if a.ReadOnly {
			return nil, errNotWritable(path)
		}
		var str string
		switch a.Type {
		case bmc.BIOSInteger:
			n, ok := v.(json.Number)
			if !ok {
				return nil, errValueType(path, fmt.Sprint(v))
			}
			str = n.String()
		case bmc.BIOSBoolean:
			bv, ok := v.(bool)
			if !ok {
				return nil, errValueType(path, fmt.Sprint(v))
			}
			str = strconv.FormatBool(bv)
		default:
			sv, ok := v.(string)
			if !ok {
				return nil, errValueType(path, fmt.Sprint(v))
			}
			str = sv
		}
		if err := a.Check(str); err != nil {
			return nil, propError("PropertyValueNotInList", path, err.Error(), str, path)
		}
		out[name] = str
	}
	return out, nil
}

func (s *Server) postResetBios(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	b, err := biosMachine(c, r)
	if err != nil {
		return err
	}
	// The action takes no parameters; an empty body is fine.
	body, err := s.readOptionalJSON(w, r)
	if err != nil {
		return err
	}
	for k := range body {
		return errorf(http.StatusBadRequest, "ActionParameterUnknown",
			"The action Bios.ResetBios was submitted with the invalid parameter "+k+".", "Bios.ResetBios", k)
	}
	if err := b.ResetBIOS(r.Context()); err != nil {
		return machineError(err, "")
	}
	s.log.Info("redfish: BIOS reset to defaults at next boot", "node", c.sys.Name, "user", c.who.user)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// SecureBoot is /redfish/v1/Systems/{id}/SecureBoot.
type SecureBoot struct {
	Resource
	SecureBootEnable      bool   `json:"SecureBootEnable"`
	SecureBootCurrentBoot string `json:"SecureBootCurrentBoot"`
	SecureBootMode        string `json:"SecureBootMode"`
}

func (s *Server) secureBoot(r *http.Request, c *sysCtx) (SecureBoot, bmc.FirmwareController, error) {
	fc, ok := c.sys.Machine.(bmc.FirmwareController)
	if !ok {
		return SecureBoot{}, nil, errNotFound(r.URL.Path)
	}
	fw, err := fc.Firmware(r.Context())
	if err != nil {
		return SecureBoot{}, nil, err
	}
	sb := SecureBoot{
		Resource:              resource(systemURI(c.sys)+"/SecureBoot", "#SecureBoot.v1_1_0.SecureBoot", "SecureBoot", "UEFI Secure Boot"),
		SecureBootEnable:      fw.SecureBoot,
		SecureBootCurrentBoot: "Disabled",
		SecureBootMode:        "SetupMode",
	}
	if fw.SecureBoot {
		sb.SecureBootCurrentBoot = "Enabled"
		sb.SecureBootMode = "DeployedMode"
	}
	return sb, fc, nil
}

func (s *Server) getSecureBoot(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	sb, _, err := s.secureBoot(r, c)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, sb, etagOf(sb.SecureBootEnable))
	return nil
}

func (s *Server) patchSecureBoot(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	const prop = "SecureBootEnable"
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	sb, fc, err := s.secureBoot(r, c)
	if err != nil {
		return err
	}
	if err := checkIfMatch(r, etagOf(sb.SecureBootEnable)); err != nil {
		return err
	}
	patch := map[string]any{}
	if err := splitPatch(body, served(sb), []string{prop}, "", patch); err != nil {
		return err
	}
	if v, ok := patch[prop]; ok {
		enable, isBool := v.(bool)
		if !isBool {
			return errValueType(prop, fmt.Sprint(v))
		}
		fw, err := fc.Firmware(r.Context())
		if err != nil {
			return err
		}
		if enable && !fw.EFI {
			return propError("PropertyValueConflict", prop,
				"Secure Boot needs UEFI firmware; set Boot/BootSourceOverrideMode to UEFI first.", prop, "BootSourceOverrideMode")
		}
		if enable != fw.SecureBoot {
			if err := fc.SetFirmware(r.Context(), bmc.Firmware{EFI: fw.EFI, SecureBoot: enable}); err != nil {
				if errors.Is(err, bmc.ErrNotSupported) || errors.Is(err, bmc.ErrInvalidArgument) {
					return propError("PropertyValueNotInList", prop, "This system cannot switch Secure Boot: "+reason(err), prop)
				}
				return err
			}
		}
		if sb, _, err = s.secureBoot(r, c); err != nil {
			return err
		}
	}
	s.writeJSON(w, r, http.StatusOK, sb, etagOf(sb.SecureBootEnable))
	return nil
}

// The attribute registry.

// MessageRegistryFile locates a registry.
type MessageRegistryFile struct {
	Resource
	Registry  string             `json:"Registry"`
	Languages []string           `json:"Languages"`
	Location  []RegistryLocation `json:"Location"`
}

// RegistryLocation is where a registry is served.
type RegistryLocation struct {
	Language string `json:"Language"`
	URI      string `json:"Uri"`
}

// AttributeRegistry describes the BIOS attributes.
type AttributeRegistry struct {
	Resource
	Language        string          `json:"Language"`
	OwningEntity    string          `json:"OwningEntity"`
	RegistryVersion string          `json:"RegistryVersion"`
	RegistryEntries RegistryEntries `json:"RegistryEntries"`
}

// RegistryEntries holds the attribute definitions.
type RegistryEntries struct {
	Attributes []RegistryAttribute `json:"Attributes"`
}

// RegistryAttribute defines one attribute.
type RegistryAttribute struct {
	AttributeName string          `json:"AttributeName"`
	Type          string          `json:"Type"`
	DisplayName   string          `json:"DisplayName"`
	ReadOnly      bool            `json:"ReadOnly"`
	ResetRequired bool            `json:"ResetRequired"`
	DefaultValue  any             `json:"DefaultValue,omitempty"`
	Value         []RegistryValue `json:"Value,omitempty"`
	LowerBound    *int            `json:"LowerBound,omitempty"`
	UpperBound    *int            `json:"UpperBound,omitempty"`
	MaxLength     *int            `json:"MaxLength,omitempty"`
}

// RegistryValue is one value of an enumeration.
type RegistryValue struct {
	ValueName string `json:"ValueName"`
}

const registryFileURI = "/redfish/v1/Registries/BiosAttributeRegistry"

func (s *Server) getRegistries(w http.ResponseWriter, r *http.Request, _ *principal) error {
	s.writeJSON(w, r, http.StatusOK, collection("/redfish/v1/Registries", "MessageRegistryFileCollection", "Registry File Collection", []string{registryFileURI}), "")
	return nil
}

func (s *Server) getRegistryFile(w http.ResponseWriter, r *http.Request, _ *principal) error {
	s.writeJSON(w, r, http.StatusOK, MessageRegistryFile{
		Resource:  resource(registryFileURI, "#MessageRegistryFile.v1_1_0.MessageRegistryFile", "BiosAttributeRegistry", "BIOS Attribute Registry File"),
		Registry:  biosRegistryID,
		Languages: []string{"en"},
		Location:  []RegistryLocation{{Language: "en", URI: registryFileURI + "/BiosAttributeRegistry"}},
	}, "")
	return nil
}

func (s *Server) getBiosRegistry(w http.ResponseWriter, r *http.Request, _ *principal) error {
	reg := AttributeRegistry{
		Resource:        resource(registryFileURI+"/BiosAttributeRegistry", "#AttributeRegistry.v1_3_0.AttributeRegistry", biosRegistryID, "govbmc BIOS Attribute Registry"),
		Language:        "en",
		OwningEntity:    "govbmc",
		RegistryVersion: "1.0.0",
	}
	for _, a := range bmc.BIOSRegistry {
		ra := RegistryAttribute{AttributeName: a.Name, Type: a.Type, DisplayName: a.Name, ReadOnly: a.ReadOnly, ResetRequired: true}
		if a.Name != bmc.BootModeAttribute {
			ra.DefaultValue = typedAttributes(map[string]string{a.Name: a.Default})[a.Name]
		}
		for _, v := range a.Values {
			ra.Value = append(ra.Value, RegistryValue{ValueName: v})
		}
		switch a.Type {
		case bmc.BIOSInteger:
			lo, hi := a.Min, a.Max
			ra.LowerBound, ra.UpperBound = &lo, &hi
		case bmc.BIOSString:
			ml := a.MaxLength
			ra.MaxLength = &ml
		}
		reg.RegistryEntries.Attributes = append(reg.RegistryEntries.Attributes, ra)
	}
	s.writeJSON(w, r, http.StatusOK, reg, "")
	return nil
}

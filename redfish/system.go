package redfish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/govbmc/govbmc/bmc"
)

// ComputerSystem is /redfish/v1/Systems/{id}.
type ComputerSystem struct {
	Resource
	SystemType         string            `json:"SystemType"`
	UUID               string            `json:"UUID"`
	Manufacturer       string            `json:"Manufacturer,omitempty"`
	Model              string            `json:"Model,omitempty"`
	PowerState         string            `json:"PowerState"`
	Status             Status            `json:"Status"`
	Boot               Boot              `json:"Boot"`
	ProcessorSummary   *ProcessorSummary `json:"ProcessorSummary,omitempty"`
	MemorySummary      *MemorySummary    `json:"MemorySummary,omitempty"`
	Processors         *Link             `json:"Processors,omitempty"`
	Memory             *Link             `json:"Memory,omitempty"`
	EthernetInterfaces *Link             `json:"EthernetInterfaces,omitempty"`
	SimpleStorage      *Link             `json:"SimpleStorage,omitempty"`
	Bios               *Link             `json:"Bios,omitempty"`
	SecureBoot         *Link             `json:"SecureBoot,omitempty"`
	VirtualMedia       *Link             `json:"VirtualMedia,omitempty"`
	Links              SystemLinks       `json:"Links"`
	Actions            SystemActions     `json:"Actions"`
}

// Boot is the system's boot override.
type Boot struct {
	BootSourceOverrideEnabled          string   `json:"BootSourceOverrideEnabled"`
	BootSourceOverrideEnabledAllowable []string `json:"BootSourceOverrideEnabled@Redfish.AllowableValues"`
	BootSourceOverrideTarget           string   `json:"BootSourceOverrideTarget"`
	BootSourceOverrideTargetAllowable  []string `json:"BootSourceOverrideTarget@Redfish.AllowableValues"`
	BootSourceOverrideMode             string   `json:"BootSourceOverrideMode"`
	BootSourceOverrideModeAllowable    []string `json:"BootSourceOverrideMode@Redfish.AllowableValues"`
	// HttpBootUri is the image a UefiHttp override boots (null when none).
	HttpBootUri *string `json:"HttpBootUri"`
}

// ProcessorSummary sums up the processors.
type ProcessorSummary struct {
	Count  int    `json:"Count"`
	Model  string `json:"Model,omitempty"`
	Status Status `json:"Status"`
}

// MemorySummary sums up the memory.
type MemorySummary struct {
	TotalSystemMemoryGiB float64 `json:"TotalSystemMemoryGiB"`
	Status               Status  `json:"Status"`
}

// SystemLinks are the system's related resources.
type SystemLinks struct {
	Chassis   []Link `json:"Chassis"`
	ManagedBy []Link `json:"ManagedBy"`
}

// SystemActions are the system's actions.
type SystemActions struct {
	Reset ResetAction `json:"#ComputerSystem.Reset"`
}

// ResetAction is #ComputerSystem.Reset.
type ResetAction struct {
	Target             string   `json:"target"`
	ResetTypeAllowable []string `json:"ResetType@Redfish.AllowableValues"`
}

// The values Boot and Reset accept.
var (
	enabledValues = []string{"Disabled", "Once", "Continuous"}
	targetValues  = []string{"None", "Pxe", "Hdd", "Cd", "Floppy", "BiosSetup", "UefiHttp"}
	modeValues    = []string{"UEFI", "Legacy"}
	resetValues   = []string{"On", "ForceOn", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "PowerCycle", "Nmi"}
)

var targetOf = map[bmc.BootDevice]string{
	bmc.BootNone:         "None",
	bmc.BootPXE:          "Pxe",
	bmc.BootDisk:         "Hdd",
	bmc.BootDiskSafe:     "Hdd",
	bmc.BootRemoteDisk:   "Hdd",
	bmc.BootDiagnostic:   "Diags",
	bmc.BootCDROM:        "Cd",
	bmc.BootRemoteCDROM:  "Cd",
	bmc.BootBIOSSetup:    "BiosSetup",
	bmc.BootFloppy:       "Floppy",
	bmc.BootRemoteFloppy: "Floppy",
	bmc.BootRemoteMedia:  "RemoteDrive",
}

var deviceOf = map[string]bmc.BootDevice{
	"None":      bmc.BootNone,
	"Pxe":       bmc.BootPXE,
	"Hdd":       bmc.BootDisk,
	"Cd":        bmc.BootCDROM,
	"Floppy":    bmc.BootFloppy,
	"BiosSetup": bmc.BootBIOSSetup,
	"UefiHttp":  bmc.BootPXE, // a UEFI network boot
}

func systemURI(sys System) string  { return "/redfish/v1/Systems/" + sys.ID }
func managerURI(sys System) string { return "/redfish/v1/Managers/" + sys.ID }
func chassisURI(sys System) string { return "/redfish/v1/Chassis/" + sys.ID }

// bootState is a system's boot override as Redfish shows it.
type bootState struct {
	override bmc.BootOverride
	efi      bool // the firmware (or the override's EFI bit without a FirmwareController)
	boot     Boot
}

// bootRaw is what a machine says about booting.
type bootRaw struct {
	o   bmc.BootOverride
	efi bool
}

func fetchBoot(ctx context.Context, m bmc.Machine) (bootRaw, error) {
	o, err := m.BootOverride(ctx)
	if err != nil {
		return bootRaw{}, err
	}
	raw := bootRaw{o: o, efi: o.EFI}
	if fc, ok := m.(bmc.FirmwareController); ok {
		fw, err := fc.Firmware(ctx)
		if err != nil {
			return bootRaw{}, err
		}
		raw.efi = fw.EFI
	}
	return raw, nil
}

// readBoot reads the boot override: from the machine when direct (for a
// change), else through the read cache.
func (s *Server) readBoot(r *http.Request, sys System, direct bool) (bootState, error) {
	var raw bootRaw
	if direct {
		var err error
		if raw, err = fetchBoot(r.Context(), sys.Machine); err != nil {
			return bootState{}, err
		}
		s.reads.put(sys.Machine, "boot", raw)
	} else {
		v, err := s.reads.get(r.Context(), sys.Machine, "boot", func(ctx context.Context) (any, error) { return fetchBoot(ctx, sys.Machine) })
		if err != nil {
			return bootState{}, err
		}
		raw = v.(bootRaw)
	}
	o := raw.o
	st := bootState{override: o, efi: raw.efi}
	b := Boot{
		BootSourceOverrideEnabled:          "Disabled",
		BootSourceOverrideEnabledAllowable: enabledValues,
		BootSourceOverrideTarget:           "None",
		BootSourceOverrideTargetAllowable:  targetValues,
		BootSourceOverrideMode:             "Legacy",
		BootSourceOverrideModeAllowable:    modeValues,
	}
	if st.efi {
		b.BootSourceOverrideMode = "UEFI"
	}
	if o.Active() {
		b.BootSourceOverrideEnabled = "Once"
		if o.Persistent {
			b.BootSourceOverrideEnabled = "Continuous"
		}
		b.BootSourceOverrideTarget = targetOf[o.Device]
	}
	if h, ok := s.liveHTTPBoot(sys, o); ok {
		b.BootSourceOverrideTarget = "UefiHttp"
		if h.uri != "" {
			uri := bmc.RedactURL(h.uri)
			b.HttpBootUri = &uri
		}
	}
	st.boot = b
	return st, nil
}

func (s *Server) renderSystem(r *http.Request, sys System, direct bool) (ComputerSystem, bootState, error) {
	ctx := r.Context()
	type invAnswer struct {
		hw  bmc.Inventory
		ok  bool
		err error
	}
	inv := make(chan invAnswer, 1) // asked meanwhile
	go func() {
		hw, ok, err := s.inventory(r, sys)
		inv <- invAnswer{hw, ok, err}
	}()
	ps, err := sys.Machine.PowerState(ctx)
	if err != nil {
		return ComputerSystem{}, bootState{}, err
	}
	bs, err := s.readBoot(r, sys, direct)
	if err != nil {
		return ComputerSystem{}, bootState{}, err
	}
	uri := systemURI(sys)
	cs := ComputerSystem{
		Resource:   resource(uri, "#ComputerSystem.v1_13_0.ComputerSystem", sys.ID, sys.Name),
		SystemType: "Physical",
		UUID:       sys.ID,
		PowerState: "Off",
		Status:     okStatus(),
		Boot:       bs.boot,
		Links: SystemLinks{
			Chassis:   []Link{{chassisURI(sys)}},
			ManagedBy: []Link{{managerURI(sys)}},
		},
		Actions: SystemActions{Reset: ResetAction{Target: uri + "/Actions/ComputerSystem.Reset", ResetTypeAllowable: resetValues}},
	}
	if ps == bmc.PowerOn {
		cs.PowerState = "On"
	}
	if _, err := bmc.ParseUUID(sys.ID); err != nil {
		// The fleet knows no UUID for it (yet): ask the machine.
		if u, err := sys.Machine.UUID(ctx); err == nil {
			cs.UUID = u.String()
		}
	}
	if a := <-inv; a.err != nil {
		return ComputerSystem{}, bootState{}, a.err
	} else if a.ok {
		hw := a.hw
		cs.Manufacturer, cs.Model = hw.Manufacturer, hw.Model
		cs.ProcessorSummary = &ProcessorSummary{Count: hw.CPUs, Model: hw.CPUModel, Status: okStatus()}
		cs.MemorySummary = &MemorySummary{TotalSystemMemoryGiB: float64(hw.MemoryMiB) / 1024, Status: okStatus()}
		cs.Processors = &Link{uri + "/Processors"}
		cs.Memory = &Link{uri + "/Memory"}
		cs.EthernetInterfaces = &Link{uri + "/EthernetInterfaces"}
		cs.SimpleStorage = &Link{uri + "/SimpleStorage"}
	}
	if _, ok := sys.Machine.(bmc.BIOSSettings); ok {
		cs.Bios = &Link{uri + "/Bios"}
	}
	if _, ok := sys.Machine.(bmc.FirmwareController); ok {
		cs.SecureBoot = &Link{uri + "/SecureBoot"}
	}
	cs.VirtualMedia = mediaLink("Systems", sys)
	return cs, bs, nil
}

func bootETag(b Boot) string { return etagOf(b) }

func (s *Server) getSystem(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	cs, bs, err := s.renderSystem(r, c.sys, false)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, cs, bootETag(bs.boot))
	return nil
}

// served is a resource as a JSON object, to tell read-only properties
// from unknown ones in a PATCH.
func served(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// splitPatch checks a PATCH body against the resource it changes: every
// leaf must be one of writable (paths like "Boot/BootSourceOverrideTarget");
// a property the resource has is refused as read-only, any other as unknown.
func splitPatch(body, current map[string]any, writable []string, prefix string, out map[string]any) error {
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, path := body[k], prefix+k
		if slices.Contains(writable, path) {
			out[path] = v
			continue
		}
		cur, known := current[k]
		if !known {
			return errUnknownProperty(path)
		}
		sub, isObj := v.(map[string]any)
		curSub, curObj := cur.(map[string]any)
		under := slices.ContainsFunc(writable, func(w string) bool { return strings.HasPrefix(w, path+"/") })
		if under && !isObj {
			return errValueType(path, fmt.Sprint(v))
		}
		if isObj && curObj && under {
			if err := splitPatch(sub, curSub, writable, path+"/", out); err != nil {
				return err
			}
			continue
		}
		return errNotWritable(path)
	}
	return nil
}

// enumValue reads a string property that must be one of values.
func enumValue(patch map[string]any, path string, values []string) (string, bool, error) {
	v, ok := patch[path]
	if !ok {
		return "", false, nil
	}
	str, isStr := v.(string)
	if !isStr {
		return "", false, errValueType(path, fmt.Sprint(v))
	}
	if !slices.Contains(values, str) {
		return "", false, errNotInList(path, str)
	}
	return str, true, nil
}

func (s *Server) patchSystem(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	cs, bs, err := s.renderSystem(r, c.sys, true)
	if err != nil {
		return err
	}
	if err := checkIfMatch(r, bootETag(bs.boot)); err != nil {
		return err
	}
	const (
		pEnabled = "Boot/BootSourceOverrideEnabled"
		pTarget  = "Boot/BootSourceOverrideTarget"
		pMode    = "Boot/BootSourceOverrideMode"
		pURI     = "Boot/HttpBootUri"
	)
	patch := map[string]any{}
	if err := splitPatch(body, served(cs), []string{pEnabled, pTarget, pMode, pURI}, "", patch); err != nil {
		return err
	}
	var uri *string // nil: not in the PATCH; "": cleared
	if v, ok := patch[pURI]; ok {
		str, isStr := v.(string)
		if v != nil && !isStr {
			return errValueType(pURI, fmt.Sprint(v))
		}
		uri = &str
	}
	enabled, setEnabled, err := enumValue(patch, pEnabled, enabledValues)
	if err != nil {
		return err
	}
	target, setTarget, err := enumValue(patch, pTarget, targetValues)
	if err != nil {
		return err
	}
	mode, setMode, err := enumValue(patch, pMode, modeValues)
	if err != nil {
		return err
	}
	if setEnabled || setTarget || setMode || uri != nil {
		if r, err = s.setBoot(w, r, c, bs, enabled, target, mode, uri); err != nil {
			return err
		}
	}
	cs, bs, err = s.renderSystem(r, c.sys, true)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, cs, bootETag(bs.boot))
	return nil
}

// setBoot applies a Boot PATCH; empty arguments (and a nil uri) keep the
// current value. It returns the request to go on with: r, or r with a
// fresh machine bound after an HttpBootUri's download.
func (s *Server) setBoot(w http.ResponseWriter, r *http.Request, c *sysCtx, cur bootState, enabled, target, mode string, uri *string) (*http.Request, error) {
	ctx, sys := r.Context(), c.sys
	if target == "" {
		target = cur.boot.BootSourceOverrideTarget
	}
	if enabled == "" {
		enabled = cur.boot.BootSourceOverrideEnabled
		if enabled == "Disabled" && target != "None" {
			// Choosing a device without saying how long: the next boot.
			enabled = "Once"
		}
	}
	efi := cur.efi
	if mode != "" {
		efi = mode == "UEFI"
	}
	dev, ok := deviceOf[target]
	if !ok {
		return r, errNotInList("Boot/BootSourceOverrideTarget", target)
	}
	if target == "UefiHttp" && !efi {
		return r, propError("PropertyValueConflict", "Boot/BootSourceOverrideTarget",
			"The target UefiHttp needs BootSourceOverrideMode UEFI.", "BootSourceOverrideTarget", "BootSourceOverrideMode")
	}
	httpURI, err := s.httpBootURI(sys, target, uri)
	if err != nil {
		return r, err
	}
	if httpURI != "" {
		dev = bmc.BootCDROM // the image goes into the CD drive
	}
	if mode != "" && efi != cur.efi {
		if err := s.setMode(r, sys, efi); err != nil {
			return r, err
		}
	}
	o := bmc.BootOverride{Device: dev, Persistent: enabled == "Continuous", EFI: efi}
	if enabled == "Disabled" {
		o.Device = bmc.BootNone
	}
	if !o.Active() {
		o.Persistent = false
	}
	inserted, err := s.prepareHTTPBoot(w, r, c, httpURI, o.Active())
	if err != nil {
		return r, err
	}
	if inserted {
		r = s.renew(r, c)
		ctx = r.Context()
	}
	if err := sys.Machine.SetBootOverride(ctx, o); err != nil {
		if inserted {
			// Take the image out again, even if the request has ended.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.MachineTimeout)
			if derr := s.dropHTTPBootMedia(cctx, c, httpURI); derr != nil {
				s.log.Warn("redfish: could not eject an HttpBootUri image after the boot override failed", "node", sys.Name, "err", derr)
			}
			cancel()
		}
		return r, machineError(err, "Boot/BootSourceOverrideTarget")
	}
	s.recordHTTPBoot(ctx, sys, target == "UefiHttp" && o.Active(), httpURI)
	return r, nil
}

// setMode switches the machine's firmware between UEFI and legacy BIOS.
func (s *Server) setMode(r *http.Request, sys System, efi bool) error {
	const prop = "Boot/BootSourceOverrideMode"
	ctx := r.Context()
	fc, ok := sys.Machine.(bmc.FirmwareController)
	if !ok {
		// The override's EFI bit is all there is; the PATCH of the override
		// that follows carries it. A machine that ignores it is caught by
		// reading back.
		o, err := sys.Machine.BootOverride(ctx)
		if err != nil {
			return err
		}
		o.EFI = efi
		if err := sys.Machine.SetBootOverride(ctx, o); err != nil {
			return machineError(err, prop)
		}
		if back, err := sys.Machine.BootOverride(ctx); err == nil && back.EFI != efi {
			return propError("PropertyValueNotInList", prop, "This system cannot switch its firmware between UEFI and Legacy.", prop)
		}
		return nil
	}
	fw, err := fc.Firmware(ctx)
	if err != nil {
		return err
	}
	next := bmc.Firmware{EFI: efi, SecureBoot: efi && fw.SecureBoot}
	if err := fc.SetFirmware(ctx, next); err != nil {
		if errors.Is(err, bmc.ErrNotSupported) || errors.Is(err, bmc.ErrInvalidArgument) {
			return propError("PropertyValueNotInList", prop, "This system cannot switch its firmware: "+reason(err), prop)
		}
		return err
	}
	return nil
}

// ResetRequest is the body of #ComputerSystem.Reset.
func (s *Server) postReset(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	args := actionArgs{action: "ComputerSystem.Reset", body: body}
	if err := args.only("ResetType"); err != nil {
		return err
	}
	rt, ok, err := args.str("ResetType")
	if err != nil {
		return err
	}
	if !ok {
		return errActionParamMissing(args.action, "ResetType")
	}
	if !slices.Contains(resetValues, rt) {
		return errActionParamNotInList(args.action, "ResetType", rt)
	}
	m, ctx := c.sys.Machine, r.Context()
	if err := s.settleHTTPBoot(ctx, c); err != nil {
		return err
	}
	switch rt {
	case "On", "ForceOn":
		err = m.PowerOn(ctx)
	case "ForceOff":
		err = m.PowerOff(ctx)
	case "GracefulShutdown":
		err = m.SoftOff(ctx)
	case "GracefulRestart":
		if gr, ok := m.(bmc.GracefulRebooter); ok {
			err = gr.GracefulReboot(ctx)
		} else {
			err = m.Reset(ctx)
		}
	case "ForceRestart":
		err = m.Reset(ctx)
	case "PowerCycle":
		err = m.PowerCycle(ctx)
	case "Nmi":
		err = m.DiagnosticInterrupt(ctx)
	}
	if err != nil {
		return machineError(err, "")
	}
	s.log.Info("redfish: reset", "node", c.sys.Name, "type", rt, "user", c.who.user)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

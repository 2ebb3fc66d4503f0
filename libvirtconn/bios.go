package libvirtconn

import (
	"context"
	"encoding/xml"
	"fmt"
	"maps"
	"sort"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

// biosNS names govbmc's BIOS settings element in a domain's <metadata>:
// the setup attributes live with the domain, on whichever host defines it.
const (
	biosNS  = "https://github.com/govbmc/govbmc/xmlns/bios/1"
	biosKey = "govbmc-bios"
)

type biosAttrXML struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// biosXML is the metadata element: the attributes in effect, and those
// pending with the domain run (its ID; -1 when it was off) during which
// they were set. They apply when the domain next starts.
type biosXML struct {
	XMLName    xml.Name      `xml:"bios"`
	Attributes []biosAttrXML `xml:"attribute"`
	Pending    *struct {
		Run        int32         `xml:"run,attr"`
		Attributes []biosAttrXML `xml:"attribute"`
	} `xml:"pending"`
}

type biosState struct {
	current map[string]string // without BootMode
	pending map[string]string // nil: none
	run     int32
}

func toMap(attrs []biosAttrXML) map[string]string {
	m := make(map[string]string, len(attrs))
	for _, a := range attrs {
		m[a.Name] = a.Value
	}
	return m
}

func toAttrs(m map[string]string) []biosAttrXML {
	out := make([]biosAttrXML, 0, len(m))
	for k, v := range m {
		out = append(out, biosAttrXML{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func loadBIOS(lv *libvirt.Libvirt, dom libvirt.Domain) (biosState, error) {
	st := biosState{current: bmc.DefaultBIOSAttributes()}
	doc, err := lv.DomainGetMetadata(dom, int32(libvirt.DomainMetadataElement), libvirt.OptString{biosNS}, libvirt.DomainAffectConfig)
	if err != nil {
		if isNoMetadata(err) {
			return st, nil
		}
		return st, err
	}
	var b biosXML
	if err := xml.Unmarshal([]byte(doc), &b); err != nil {
		return st, fmt.Errorf("govbmc BIOS metadata: %w", err)
	}
	maps.Copy(st.current, toMap(b.Attributes))
	if b.Pending != nil {
		st.pending, st.run = toMap(b.Pending.Attributes), b.Pending.Run
	}
	return st, nil
}

func isNoMetadata(err error) bool {
	for err != nil {
		if e, ok := err.(libvirt.Error); ok {
			return e.Code == uint32(libvirt.ErrNoDomainMetadata)
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func saveBIOS(lv *libvirt.Libvirt, dom libvirt.Domain, st biosState) error {
	b := biosXML{Attributes: toAttrs(st.current)}
	if st.pending != nil {
		b.Pending = &struct {
			Run        int32         `xml:"run,attr"`
			Attributes []biosAttrXML `xml:"attribute"`
		}{Run: st.run, Attributes: toAttrs(st.pending)}
	}
	raw, err := xml.Marshal(b)
	if err != nil {
		return err
	}
	return lv.DomainSetMetadata(dom, int32(libvirt.DomainMetadataElement), libvirt.OptString{string(raw)},
		libvirt.OptString{biosKey}, libvirt.OptString{biosNS}, libvirt.DomainAffectConfig)
}

// biosLocked loads the settings and applies pending ones when the domain
// has started since they were set (it runs, under another domain ID).
// d.mu must be held.
func (d *Domain) biosLocked(lv *libvirt.Libvirt, dom libvirt.Domain) (biosState, error) {
	st, err := loadBIOS(lv, dom)
	if err != nil || st.pending == nil {
		return st, err
	}
	if dom.ID == -1 || dom.ID == st.run {
		return st, nil
	}
	on, err := domainOn(lv, dom)
	if err != nil || !on {
		return st, err
	}
	maps.Copy(st.current, st.pending)
	st.pending = nil
	if err := saveBIOS(lv, dom, st); err != nil {
		return st, err
	}
	d.log.Info("pending BIOS settings applied by the boot")
	return st, nil
}

func bootMode(lv *libvirt.Libvirt, dom libvirt.Domain) (string, error) {
	f, _, err := inactiveFirmware(lv, dom)
	if err != nil {
		return "", err
	}
	return bmc.BootModeValue(f.EFI), nil
}

// BIOSAttributes returns the attributes in effect (BootMode from the
// domain's firmware) and those pending for its next start. It does not
// wait behind a slow operation of this machine (a power on): pending
// settings a start has made current are then shown as such and written
// down by a later call.
func (d *Domain) BIOSAttributes(ctx context.Context) (current, pending map[string]string, err error) {
	err = d.do(ctx, "read BIOS settings", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		var st biosState
		var err error
		if d.mu.TryLock() {
			st, err = d.biosLocked(lv, dom)
			d.mu.Unlock()
		} else if st, err = loadBIOS(lv, dom); err == nil && st.pending != nil && dom.ID != -1 && dom.ID != st.run {
			maps.Copy(st.current, st.pending)
			st.pending = nil
		}
		if err != nil {
			return err
		}
		mode, err := bootMode(lv, dom)
		if err != nil {
			return err
		}
		current, pending = st.current, st.pending
		current[bmc.BootModeAttribute] = mode
		return nil
	})
	return current, pending, err
}

// SetBIOSAttributes records attributes for the domain's next start (a
// hard reset during this run restarts it, so they apply, as they would on a
// physical server). BootMode cannot change here (SetFirmware switches the
// firmware); setting it to the current mode is accepted.
func (d *Domain) SetBIOSAttributes(ctx context.Context, attrs map[string]string) error {
	if err := bmc.CheckBIOSAttributes(attrs); err != nil {
		return err
	}
	return d.exclusive(ctx, "set BIOS settings", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		st, err := d.biosLocked(lv, dom)
		if err != nil {
			return err
		}
		attrs = maps.Clone(attrs)
		if want, ok := attrs[bmc.BootModeAttribute]; ok {
			mode, err := bootMode(lv, dom)
			if err != nil {
				return err
			}
			if want != mode {
				return fmt.Errorf("BootMode %s: the firmware (now %s) is switched with the boot mode (Redfish Boot.BootSourceOverrideMode), not as a BIOS setting: %w", want, mode, bmc.ErrNotSupported)
			}
			delete(attrs, bmc.BootModeAttribute)
		}
		if st.pending == nil {
			st.pending = map[string]string{}
		}
		maps.Copy(st.pending, attrs)
		return d.savePendingLocked(lv, dom, st)
	})
}

// ResetBIOS restores the default attributes at the domain's next start.
func (d *Domain) ResetBIOS(ctx context.Context) error {
	return d.exclusive(ctx, "reset BIOS settings", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		st, err := d.biosLocked(lv, dom)
		if err != nil {
			return err
		}
		st.pending = bmc.DefaultBIOSAttributes()
		return d.savePendingLocked(lv, dom, st)
	})
}

func (d *Domain) savePendingLocked(lv *libvirt.Libvirt, dom libvirt.Domain, st biosState) error {
	st.run = dom.ID
	if err := saveBIOS(lv, dom, st); err != nil {
		return err
	}
	d.boot.changed(dom.ID)
	return nil
}

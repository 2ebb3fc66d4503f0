package libvirtconn

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

// firmwareSpans are the places of a domain XML that choose its firmware.
type firmwareSpans struct {
	osTag       span   // the <os …> start tag
	osEnd       int64  // offset of </os>
	osChildren  []span // <loader>, <nvram> and <firmware> under <os>
	machine     string // <os><type machine=…>
	features    *span  // the <features> element
	featuresEnd int64  // offset of </features>
	smm         bool   // <features><smm state='on'> present
	acpi        bool   // <features><acpi/> present
	osElemEnd   int64  // offset just past </os>
}

func scanFirmware(doc string) (*firmwareSpans, error) {
	f := &firmwareSpans{osEnd: -1, featuresEnd: -1, osElemEnd: -1}
	err := walkXML(doc, func(st *xmlStep) {
		path := st.Path
		switch t := st.Tok.(type) {
		case xml.StartElement:
			switch {
			case pathIs(path, "domain", "os"):
				f.osTag = span{st.Off, st.End}
			case pathIs(path, "domain", "os", "type"):
				f.machine = attr(t, "machine")
			case pathIs(path, "domain", "features", "smm"):
				f.smm = attr(t, "state") != "off"
			case pathIs(path, "domain", "features", "acpi"):
				f.acpi = true
			}
		case xml.EndElement:
			switch {
			case pathIs(path, "domain", "os"):
				f.osEnd = st.Off
				f.osElemEnd = st.End
			case pathIs(path, "domain", "os", "loader"), pathIs(path, "domain", "os", "nvram"), pathIs(path, "domain", "os", "firmware"):
				f.osChildren = append(f.osChildren, st.Elem)
			case pathIs(path, "domain", "features"):
				sp := st.Elem
				f.features = &sp
				f.featuresEnd = st.Off
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if f.osEnd < 0 {
		return nil, fmt.Errorf("domain XML: no <os> element")
	}
	return f, nil
}

var firmwareAttr = regexp.MustCompile(`\s+firmware\s*=\s*('[^']*'|"[^"]*")`)

// withFirmware returns the domain XML set up for firmware auto-selection
// of f: <os firmware='efi'> with the secure-boot feature on or off for
// UEFI, no firmware attribute for legacy BIOS; explicit loader, NVRAM and
// firmware feature elements go (libvirt picks the images and a fresh NVRAM
// from the firmware descriptors). UEFI needs ACPI and Secure Boot a q35
// machine and SMM: ACPI and SMM are switched on.
func withFirmware(doc string, f bmc.Firmware) (string, error) {
	s, err := scanFirmware(doc)
	if err != nil {
		return "", err
	}
	if f.SecureBoot && !strings.Contains(s.machine, "q35") {
		return "", fmt.Errorf("secure boot needs a q35 machine type (this domain's is %q): %w", s.machine, bmc.ErrNotSupported)
	}
	type edit struct {
		s    span
		text string
	}
	var edits []edit
	tag := firmwareAttr.ReplaceAllString(doc[s.osTag.start:s.osTag.end], "")
	if f.EFI {
		tag = strings.TrimSuffix(tag, ">") + " firmware='efi'>"
	}
	edits = append(edits, edit{s.osTag, tag})
	for _, c := range s.osChildren {
		edits = append(edits, edit{wholeLine(doc, c), ""})
	}
	if f.EFI {
		on := "no"
		if f.SecureBoot {
			on = "yes"
		}
		fw := "  <firmware>\n      <feature enabled='" + on + "' name='secure-boot'/>\n"
		if f.SecureBoot {
			fw += "      <feature enabled='yes' name='enrolled-keys'/>\n"
		}
		fw += "    </firmware>\n  "
		edits = append(edits, edit{span{s.osEnd, s.osEnd}, fw})
	}
	// UEFI on x86 needs ACPI; Secure Boot needs SMM.
	var feats string
	if f.EFI && !s.acpi {
		feats += "<acpi/>"
	}
	if f.SecureBoot && !s.smm {
		feats += "<smm state='on'/>"
	}
	if feats != "" {
		if s.features != nil {
			edits = append(edits, edit{span{s.featuresEnd, s.featuresEnd}, "  " + feats + "\n  "})
		} else {
			edits = append(edits, edit{span{s.osElemEnd, s.osElemEnd}, "\n  <features>\n    " + feats + "\n  </features>"})
		}
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].s.start > edits[j].s.start })
	for _, e := range edits {
		doc = doc[:e.s.start] + e.text + doc[e.s.end:]
	}
	return doc, nil
}

// SetFirmware switches the domain between legacy BIOS and UEFI (with or
// without Secure Boot) for its next start, through libvirt's firmware
// auto-selection; a hard reset during this run restarts the domain so it
// applies. Secure Boot needs a q35 machine: otherwise, and when libvirt
// refuses the definition, the error wraps ErrNotSupported.
func (d *Domain) SetFirmware(ctx context.Context, f bmc.Firmware) error {
	if f.SecureBoot && !f.EFI {
		return fmt.Errorf("secure boot needs UEFI firmware: %w", bmc.ErrInvalidArgument)
	}
	return d.exclusive(ctx, "set firmware", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		now, cur, err := inactiveFirmware(lv, dom)
		if err != nil {
			return err
		}
		if now == f {
			return nil
		}
		next, err := withFirmware(cur, f)
		if err != nil {
			return err
		}
		if _, err := lv.DomainDefineXML(next); err != nil {
			var lerr libvirt.Error
			if errors.As(err, &lerr) {
				return fmt.Errorf("libvirt refused %s: %v: %w", describeFirmware(f), err, bmc.ErrNotSupported)
			}
			return err
		}
		d.boot.changed(dom.ID)
		d.log.Info("firmware switched for the next start", "firmware", describeFirmware(f))
		return nil
	})
}

// inactiveFirmware reads the firmware of the domain's persistent
// definition, and returns that definition's text too (for edits that
// splice it).
func inactiveFirmware(lv *libvirt.Libvirt, dom libvirt.Domain) (bmc.Firmware, string, error) {
	doc, err := inactiveXML(lv, dom)
	if err != nil {
		return bmc.Firmware{}, "", err
	}
	h, err := parseHardware(doc)
	if err != nil {
		return bmc.Firmware{}, "", err
	}
	return firmwareOf(h), doc, nil
}

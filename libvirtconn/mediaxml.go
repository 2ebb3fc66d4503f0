package libvirtconn

import (
	"encoding/xml"
	"fmt"
	"html"
	"strings"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

// mediaNS names govbmc's element in a domain's <metadata> that records, per
// slot, the URL an image came from (the volume is in the disk's source).
const mediaNS = "https://github.com/govbmc/govbmc/xmlns/media/1"

// mediaKey is the namespace prefix of that element.
const mediaKey = "govbmcmedia"

// addedAlias marks a device govbmc added (user aliases survive in the
// definition), so that an eject removes it again; a CD-ROM the domain had
// is only emptied.
const addedAlias = "ua-govbmc-"

// domainDisks is what virtual media needs from a domain XML.
type domainDisks struct {
	OS struct {
		Type struct {
			Machine string `xml:"machine,attr"`
		} `xml:"type"`
	} `xml:"os"`
	Disks []diskElem `xml:"devices>disk"`
}

type diskElem struct {
	Type   string `xml:"type,attr"`
	Device string `xml:"device,attr"`
	Source struct {
		File string `xml:"file,attr"`
		Dev  string `xml:"dev,attr"`
	} `xml:"source"`
	Target struct {
		Dev string `xml:"dev,attr"`
		Bus string `xml:"bus,attr"`
	} `xml:"target"`
	ReadOnly *struct{} `xml:"readonly"`
	Alias    struct {
		Name string `xml:"name,attr"`
	} `xml:"alias"`
}

// readDisks reads the disks of the definition (DomainXMLInactive) or of
// the running domain (0).
func readDisks(lv *libvirt.Libvirt, dom libvirt.Domain, flags libvirt.DomainXMLFlags) (*domainDisks, error) {
	doc, err := lv.DomainGetXMLDesc(dom, flags)
	if err != nil {
		return nil, err
	}
	return parseDisks(doc)
}

func parseDisks(doc string) (*domainDisks, error) {
	var d domainDisks
	if err := xml.Unmarshal([]byte(doc), &d); err != nil {
		return nil, fmt.Errorf("domain XML: %w", err)
	}
	return &d, nil
}

// q35 reports whether the machine type is Q35 (SATA, no IDE).
func (d *domainDisks) q35() bool { return strings.Contains(d.OS.Type.Machine, "q35") }

// cdrom is the domain's first CD-ROM drive: the one Cd is and a cdrom boot
// override boots.
func (d *domainDisks) cdrom() *diskElem {
	for i := range d.Disks {
		if d.Disks[i].Device == "cdrom" {
			return &d.Disks[i]
		}
	}
	return nil
}

// byAlias finds the device govbmc added for slot.
func (d *domainDisks) byAlias(slot bmc.MediaSlot) *diskElem {
	for i := range d.Disks {
		if d.Disks[i].Alias.Name == aliasOf(slot) {
			return &d.Disks[i]
		}
	}
	return nil
}

// slotDisk is the device that backs slot, nil when there is none.
func (d *domainDisks) slotDisk(slot bmc.MediaSlot) *diskElem {
	if slot == bmc.SlotCD {
		return d.cdrom()
	}
	return d.byAlias(slot)
}

// sources are the files the domain's disks use.
func (d *domainDisks) sources() map[string]bool {
	m := map[string]bool{}
	for _, k := range d.Disks {
		if k.Source.File != "" {
			m[k.Source.File] = true
		}
	}
	return m
}

func aliasOf(slot bmc.MediaSlot) string {
	return addedAlias + strings.ToLower(string(slot))
}

// freeTarget is the first target name with the prefix (hd, sd) no disk uses.
func (d *domainDisks) freeTarget(prefix string, from byte) string {
	used := map[string]bool{}
	for _, k := range d.Disks {
		used[k.Target.Dev] = true
	}
	for c := from; c <= 'z'; c++ {
		if t := prefix + string(c); !used[t] {
			return t
		}
	}
	return ""
}

// newDiskXML is the device for slot: a CD-ROM on the machine type's bus
// (SATA on Q35, IDE on i440fx), or a USB disk.
func (d *domainDisks) newDiskXML(slot bmc.MediaSlot, file string, readOnly bool) (string, error) {
	var device, bus, target string
	switch {
	case slot == bmc.SlotCD && d.q35():
		device, bus, target = "cdrom", "sata", d.freeTarget("sd", 'a')
	case slot == bmc.SlotCD:
		device, bus, target = "cdrom", "ide", d.freeTarget("hd", 'c')
	default:
		device, bus, target = "disk", "usb", d.freeTarget("sd", 'a')
	}
	if target == "" {
		return "", fmt.Errorf("no free %s target for %s: %w", bus, slot, bmc.ErrNotSupported)
	}
	return diskXML(device, file, target, bus, aliasOf(slot), readOnly || device == "cdrom"), nil
}

// diskXML is a file-backed disk device (an empty drive when file is "").
func diskXML(device, file, target, bus, alias string, readOnly bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<disk type='file' device='%s'><driver name='qemu' type='raw'/>", device)
	if file != "" {
		fmt.Fprintf(&b, "<source file='%s'/>", html.EscapeString(file))
	}
	fmt.Fprintf(&b, "<target dev='%s' bus='%s'/>", target, bus)
	if readOnly {
		b.WriteString("<readonly/>")
	}
	if alias != "" {
		fmt.Fprintf(&b, "<alias name='%s'/>", alias)
	}
	b.WriteString("</disk>")
	return b.String()
}

// mediaRecord is what govbmc keeps about a slot in the domain's metadata.
type mediaRecord struct {
	Slot           string `xml:"slot,attr"`
	URL            string `xml:"url,attr"`
	Volume         string `xml:"volume,attr"`
	Size           int64  `xml:"size,attr"`
	WriteProtected bool   `xml:"write-protected,attr"`
}

type mediaMeta struct {
	XMLName xml.Name      `xml:"media"`
	Slots   []mediaRecord `xml:"slot"`
}

func parseMediaMeta(doc string) (mediaMeta, error) {
	var m mediaMeta
	if strings.TrimSpace(doc) == "" {
		return m, nil
	}
	err := xml.Unmarshal([]byte(doc), &m)
	return m, err
}

func (m mediaMeta) get(slot bmc.MediaSlot) (mediaRecord, bool) {
	for _, r := range m.Slots {
		if r.Slot == string(slot) {
			return r, true
		}
	}
	return mediaRecord{}, false
}

// with returns m with slot's record replaced by r (removed when r is nil).
func (m mediaMeta) with(slot bmc.MediaSlot, r *mediaRecord) mediaMeta {
	var out mediaMeta
	for _, x := range m.Slots {
		if x.Slot != string(slot) {
			out.Slots = append(out.Slots, x)
		}
	}
	if r != nil {
		out.Slots = append(out.Slots, *r)
	}
	return out
}

func (m mediaMeta) String() string {
	b, _ := xml.Marshal(m)
	return string(b)
}

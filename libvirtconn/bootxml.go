package libvirtconn

import (
	"encoding/xml"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// bootConfig is what a domain's XML says about booting.
type bootConfig struct {
	// Devices are the <os><boot dev=…> entries, in order.
	Devices []string
	// DeviceOrder reports whether any device carries a per-device <boot order=…>.
	DeviceOrder bool
	// EFI is whether the domain boots UEFI firmware.
	EFI bool
	// Restore is set when govbmc marked a next-boot override in the
	// definition: the <os><boot> devices to put back after that boot.
	Restore *[]string
}

// nextBootNS names govbmc's element in a domain's <metadata>, which marks a
// pending next-boot override and what to restore after it, so that the
// override stays one-shot across vbmcd restarts.
const nextBootNS = "https://github.com/govbmc/govbmc/xmlns/next-boot/1"

// span is a byte range of the XML text.
type span struct{ start, end int64 }

// scanned is a domain XML with the places boot configuration lives.
type scanned struct {
	bootConfig
	osBoots    []span // <os><boot …/> elements
	devBoots   []span // <devices><*><boot order=…/> elements
	osEndStart int64  // offset of the </os> end tag
	mark       *span  // govbmc's <next-boot> element in <metadata>
	meta       *span  // the <metadata> element
	metaEnd    int64  // offset of the </metadata> end tag, or -1
	domainEnd  int64  // offset of the </domain> end tag
	// startMarked: the definition carries govbmc's paused-start mark.
	startMarked bool
}

// scanDomainXML finds the boot elements of a domain XML without rewriting
// anything else: edits splice the original text, so namespaces, comments and
// every field govbmc does not know survive byte for byte.
func scanDomainXML(doc string) (*scanned, error) {
	s := &scanned{osEndStart: -1, metaEnd: -1, domainEnd: -1}
	err := walkXML(doc, func(st *xmlStep) {
		path := st.Path
		switch t := st.Tok.(type) {
		case xml.StartElement:
			switch {
			case pathIs(path, "domain", "os"):
				if attr(t, "firmware") == "efi" {
					s.EFI = true
				}
			case pathIs(path, "domain", "os", "loader"):
				if attr(t, "type") == "pflash" {
					s.EFI = true
				}
			case pathIs(path, "domain", "os", "boot"):
				s.Devices = append(s.Devices, attr(t, "dev"))
			case len(path) == 4 && path[0] == "domain" && path[1] == "devices" && t.Name.Local == "boot":
				s.DeviceOrder = true
			case pathIs(path, "domain", "metadata", "next-boot") && t.Name.Space == nextBootNS:
				s.Restore = &[]string{}
			case pathIs(path, "domain", "metadata", "paused-start") && t.Name.Space == startMarkNS:
				s.startMarked = true
			case len(path) == 4 && pathIs(path[:3], "domain", "metadata", "next-boot") && t.Name.Local == "restore" && s.Restore != nil:
				*s.Restore = append(*s.Restore, attr(t, "dev"))
			}
		case xml.CharData:
			if pathIs(path, "domain", "os", "loader") {
				l := strings.ToLower(string(t))
				if strings.Contains(l, "ovmf") || strings.Contains(l, "edk2") || strings.Contains(l, "efi") {
					s.EFI = true
				}
			}
		case xml.EndElement:
			sp, off := st.Elem, st.Off
			switch {
			case pathIs(path, "domain", "os", "boot"):
				s.osBoots = append(s.osBoots, sp)
			case len(path) == 4 && path[0] == "domain" && path[1] == "devices" && path[3] == "boot":
				s.devBoots = append(s.devBoots, sp)
			case pathIs(path, "domain", "os"):
				s.osEndStart = off
			case pathIs(path, "domain", "metadata", "next-boot") && t.Name.Space == nextBootNS:
				s.mark = &sp
			case pathIs(path, "domain", "metadata"):
				s.metaEnd = off
				s.meta = &sp
			case pathIs(path, "domain"):
				s.domainEnd = off
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if s.osEndStart < 0 {
		return nil, fmt.Errorf("domain XML has no <os> element")
	}
	return s, nil
}

func pathIs(path []string, want ...string) bool {
	if len(path) != len(want) {
		return false
	}
	for i := range want {
		if path[i] != want[i] {
			return false
		}
	}
	return true
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// withBootDevices returns the domain XML booting from devs, in order: every
// per-device <boot order> and every <os><boot> is removed (libvirt refuses
// both at once) and one <os><boot dev=…/> per device goes before </os>.
func withBootDevices(doc string, devs []string) (string, error) {
	s, err := scanDomainXML(doc)
	if err != nil {
		return "", err
	}
	cuts := append(append([]span{}, s.osBoots...), s.devBoots...)
	for i := range cuts {
		cuts[i] = wholeLine(doc, cuts[i])
	}
	sort.Slice(cuts, func(i, j int) bool { return cuts[i].start < cuts[j].start })
	var b strings.Builder
	var pos int64
	insert := func(at int64) {
		b.WriteString(doc[pos:at])
		for _, dev := range devs {
			fmt.Fprintf(&b, "<boot dev='%s'/>", dev)
		}
		pos = at
	}
	inserted := false
	for _, c := range cuts {
		if !inserted && s.osEndStart <= c.start {
			insert(s.osEndStart)
			inserted = true
		}
		b.WriteString(doc[pos:c.start])
		pos = c.end
	}
	if !inserted {
		insert(s.osEndStart)
	}
	b.WriteString(doc[pos:])
	return b.String(), nil
}

// withNextBootMark returns the XML with govbmc's pending-override mark set
// to restore devs (replacing a previous mark).
func withNextBootMark(doc string, devs []string) (string, error) {
	doc, err := withoutNextBootMark(doc)
	if err != nil {
		return "", err
	}
	s, err := scanDomainXML(doc)
	if err != nil {
		return "", err
	}
	var mark strings.Builder
	fmt.Fprintf(&mark, "<govbmc:next-boot xmlns:govbmc='%s'>", nextBootNS)
	for _, d := range devs {
		fmt.Fprintf(&mark, "<govbmc:restore dev='%s'/>", d)
	}
	mark.WriteString("</govbmc:next-boot>")
	// libvirt writes an emptied <metadata> as <metadata/> (after a paused
	// start's mark or media records went): the mark goes inside it.
	if s.meta != nil && strings.HasSuffix(doc[s.meta.start:s.meta.end], "/>") {
		return doc[:s.meta.start] + "<metadata>" + mark.String() + "</metadata>" + doc[s.meta.end:], nil
	}
	if s.metaEnd >= 0 {
		return doc[:s.metaEnd] + mark.String() + doc[s.metaEnd:], nil
	}
	if s.domainEnd < 0 {
		return "", fmt.Errorf("domain XML has no </domain>")
	}
	return doc[:s.domainEnd] + "<metadata>" + mark.String() + "</metadata>" + doc[s.domainEnd:], nil
}

// withoutNextBootMark returns the XML without govbmc's mark.
func withoutNextBootMark(doc string) (string, error) {
	s, err := scanDomainXML(doc)
	if err != nil {
		return "", err
	}
	if s.mark == nil {
		return doc, nil
	}
	c := wholeLine(doc, *s.mark)
	doc = doc[:c.start] + doc[c.end:]
	// A <metadata> left empty goes too, so the definition is as before.
	if s, err = scanDomainXML(doc); err != nil || s.meta == nil {
		return doc, err
	}
	switch interTagSpace.ReplaceAllString(doc[s.meta.start:s.meta.end], "><") {
	case "<metadata></metadata>", "<metadata/>":
		c := wholeLine(doc, *s.meta)
		doc = doc[:c.start] + doc[c.end:]
	}
	return doc, nil
}

// wholeLine widens a cut to its whole line when the element stands alone
// on it, so removing it leaves no blank line.
func wholeLine(doc string, c span) span {
	start := c.start
	for start > 0 && (doc[start-1] == ' ' || doc[start-1] == '\t') {
		start--
	}
	if start > 0 && doc[start-1] != '\n' {
		return c
	}
	end := c.end
	for end < int64(len(doc)) && (doc[end] == ' ' || doc[end] == '\t' || doc[end] == '\r') {
		end++
	}
	if end < int64(len(doc)) && doc[end] == '\n' {
		return span{start, end + 1}
	}
	return c
}

var interTagSpace = regexp.MustCompile(`>\s+<`)

// withoutBoot returns the XML with every boot element removed and the
// layout between tags dropped, to compare two versions of a domain apart
// from their boot configuration.
func withoutBoot(doc string) (string, error) {
	doc, err := withoutNextBootMark(doc)
	if err != nil {
		return "", err
	}
	out, err := withBootDevices(doc, nil)
	return interTagSpace.ReplaceAllString(out, "><"), err
}

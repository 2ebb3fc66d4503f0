package libvirtconn

import (
	"encoding/xml"
	"fmt"
	"log/slog"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// startMarkNS names govbmc's element in a domain's <metadata> that marks a
// start the BMC made paused (to open the console before the guest runs)
// and has not resumed yet. A vbmcd killed inside that window leaves the
// domain paused; the next one finds the mark and resumes it. A domain
// paused without the mark was paused by someone else and is left alone.
const startMarkNS = "https://github.com/govbmc/govbmc/xmlns/paused-start/1"

// startMarkPrefix is the namespace prefix the mark is written with.
const startMarkPrefix = "govbmc"

// startMark is the mark's element.
type startMark struct {
	XMLName xml.Name `xml:"paused-start"`
	Since   string   `xml:"since,attr"`
}

// setStartMark writes the mark where impact says (the definition of an
// inactive domain: libvirt copies it into the running one at the start).
func setStartMark(lv *libvirt.Libvirt, dom libvirt.Domain, impact libvirt.DomainModificationImpact) error {
	mark, err := xml.Marshal(startMark{Since: time.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	err = lv.DomainSetMetadata(dom, int32(libvirt.DomainMetadataElement), libvirt.OptString{string(mark)},
		libvirt.OptString{startMarkPrefix}, libvirt.OptString{startMarkNS}, impact)
	if err != nil {
		return fmt.Errorf("mark the paused start in the domain's metadata: %w", err)
	}
	return nil
}

// clearStartMark removes the mark where impact says.
func clearStartMark(lv *libvirt.Libvirt, dom libvirt.Domain, impact libvirt.DomainModificationImpact) error {
	err := lv.DomainSetMetadata(dom, int32(libvirt.DomainMetadataElement), nil, nil, libvirt.OptString{startMarkNS}, impact)
	if err != nil {
		return fmt.Errorf("clear the paused-start mark from the domain's metadata: %w", err)
	}
	return nil
}

// liveStartMark returns the running domain's mark, if it has one.
func liveStartMark(lv *libvirt.Libvirt, dom libvirt.Domain) (*startMark, error) {
	raw, err := lv.DomainGetMetadata(dom, int32(libvirt.DomainMetadataElement), libvirt.OptString{startMarkNS}, libvirt.DomainAffectLive)
	if hasCode(err, libvirt.ErrNoDomainMetadata, libvirt.ErrNoSupport, libvirt.ErrArgumentUnsupported) {
		return nil, nil // none, or a driver without metadata, which never had one
	}
	if err != nil {
		return nil, fmt.Errorf("read the domain's paused-start mark: %w", err)
	}
	var m startMark
	if err := xml.Unmarshal([]byte(raw), &m); err != nil {
		return nil, fmt.Errorf("the domain's paused-start mark %q: %w", raw, err)
	}
	return &m, nil
}

// markedStart starts a domain for captureBoot. A paused start carries the
// mark in the running domain from its first instant until finish, once the
// domain runs: the mark is written into the definition (the only place an
// inactive domain has), the start copies it into the running domain, and
// the definition loses it again at once.
type markedStart struct {
	lv     *libvirt.Libvirt
	dom    libvirt.Domain
	log    *slog.Logger
	marked bool // the running domain carries the mark
}

// start starts the domain, paused when asked.
func (m *markedStart) start(paused bool) error {
	if !paused {
		return m.lv.DomainCreate(m.dom)
	}
	if err := setStartMark(m.lv, m.dom, libvirt.DomainAffectConfig); err != nil {
		// Unmarked, a paused start would stay paused for good if vbmcd died
		// inside it: start running, the console following.
		m.log.Warn("starting without capturing the boot on the console", "err", err)
		return fmt.Errorf("%w: %w", errCannotStartPaused, err)
	}
	_, err := m.lv.DomainCreateWithFlags(m.dom, uint32(libvirt.DomainStartPaused))
	m.marked = err == nil
	if cerr := clearStartMark(m.lv, m.dom, libvirt.DomainAffectConfig); cerr != nil {
		// The next first use of the domain clears it.
		m.log.Warn("paused-start mark left in the domain's definition", "err", cerr)
	}
	return err
}

// finish clears the running domain's mark once the paused start is over.
func (m *markedStart) finish() {
	if !m.marked {
		return
	}
	if err := clearStartMark(m.lv, m.dom, libvirt.DomainAffectLive); err != nil {
		if on, _ := domainOn(m.lv, m.dom); on {
			// Harmless while it runs; the next vbmcd clears it.
			m.log.Warn("paused-start mark left on the running domain", "err", err)
		}
	}
}

// recoverStartLocked finishes a paused start an earlier vbmcd was killed
// inside: a paused domain carrying the mark is resumed. A mark left on a
// domain that runs, or in the definition (configMarked), is cleared. A
// domain paused without the mark is not touched. d.mu must be held.
func (d *Domain) recoverStartLocked(lv *libvirt.Libvirt, dom libvirt.Domain, configMarked bool) error {
	if configMarked {
		if err := clearStartMark(lv, dom, libvirt.DomainAffectConfig); err != nil {
			return err
		}
		d.log.Info("cleared a paused-start mark an interrupted power on left in the domain's definition")
	}
	state, _, err := lv.DomainGetState(dom, 0)
	if err != nil || !isOn(state) {
		return err
	}
	mark, err := liveStartMark(lv, dom)
	if err != nil || mark == nil {
		return err
	}
	if libvirt.DomainState(state) == libvirt.DomainPaused {
		if err := lv.DomainResume(dom); err != nil {
			return fmt.Errorf("resume the domain an interrupted power on left paused: %w", err)
		}
		d.console.want()
		d.log.Info("resumed the domain an interrupted power on left paused", "paused_since", mark.Since)
	}
	return clearStartMark(lv, dom, libvirt.DomainAffectLive)
}

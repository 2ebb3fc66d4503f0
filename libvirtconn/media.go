package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

var _ bmc.VirtualMedia = (*Domain)(nil)

// mediaSlots are the slots a domain offers: its first CD-ROM (added when
// it has none) and a USB disk.
var mediaSlots = []bmc.MediaSlot{bmc.SlotCD, bmc.SlotUSB}

// cleanupTimeout bounds the removal of what a failed or cancelled insert
// left, which runs after the insert's own context has ended.
const cleanupTimeout = 30 * time.Second

// cleanupRetry is how often a removal waiting for the connection retries.
const cleanupRetry = 250 * time.Millisecond

// domainMedia is a Domain's virtual media bookkeeping. It lives beside the
// Domain (keyed weakly by it) rather than in its struct, which this file
// does not own; it goes when the Domain does.
type domainMedia struct {
	tracker bmc.MediaTracker
	// mu serialises attach, detach and the orphan sweep of one domain.
	mu      sync.Mutex
	fetcher *bmc.MediaFetcher
	swept   bool
}

var (
	mediaStateMu sync.Mutex
	mediaState   = map[weak.Pointer[Domain]]*domainMedia{}
)

func (d *Domain) media() *domainMedia {
	k := weak.Make(d)
	mediaStateMu.Lock()
	defer mediaStateMu.Unlock()
	if m, ok := mediaState[k]; ok {
		return m
	}
	m := &domainMedia{}
	mediaState[k] = m
	runtime.AddCleanup(d, func(k weak.Pointer[Domain]) {
		mediaStateMu.Lock()
		delete(mediaState, k)
		mediaStateMu.Unlock()
	}, k)
	return m
}

// SetMediaFetcher makes the domain download images with f instead of the
// daemon-wide bmc.DefaultMediaFetcher.
func (d *Domain) SetMediaFetcher(f *bmc.MediaFetcher) {
	m := d.media()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fetcher = f
}

func (m *domainMedia) fetcherOrDefault() *bmc.MediaFetcher {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fetcher != nil {
		return m.fetcher
	}
	return bmc.DefaultMediaFetcher()
}

func checkSlot(slot bmc.MediaSlot) error {
	for _, s := range mediaSlots {
		if s == slot {
			return nil
		}
	}
	return fmt.Errorf("virtual media slot %q: %w", slot, bmc.ErrNotSupported)
}

// MediaSlots lists the domain's virtual media slots: Cd and USBStick.
func (d *Domain) MediaSlots(context.Context) ([]bmc.MediaSlot, error) {
	return append([]bmc.MediaSlot(nil), mediaSlots...), nil
}

// Media reports what a slot holds, read from the domain's definition.
func (d *Domain) Media(ctx context.Context, slot bmc.MediaSlot) (bmc.MediaStatus, error) {
	st := bmc.MediaStatus{Slot: slot}
	if err := checkSlot(slot); err != nil {
		return st, err
	}
	m := d.media()
	if err := d.sweep(ctx, m); err != nil {
		return st, err
	}
	st.Inserting = m.tracker.Inserting(slot)
	err := d.do(ctx, "virtual media status", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		var err error
		st, err = slotStatus(lv, dom, slot, st)
		return err
	})
	return st, err
}

// slotStatus fills st from the inactive definition and govbmc's metadata.
func slotStatus(lv *libvirt.Libvirt, dom libvirt.Domain, slot bmc.MediaSlot, st bmc.MediaStatus) (bmc.MediaStatus, error) {
	disks, err := readDisks(lv, dom, libvirt.DomainXMLInactive)
	if err != nil {
		return st, err
	}
	k := disks.slotDisk(slot)
	if k == nil || k.Source.File == "" && k.Source.Dev == "" {
		return st, nil
	}
	st.Inserted = true
	st.WriteProtected = k.ReadOnly != nil
	file := k.Source.File + k.Source.Dev
	st.Image, st.ImageName = file, path.Base(file)
	meta, err := readMediaMeta(lv, dom)
	if err != nil {
		return st, err
	}
	if r, ok := meta.get(slot); ok && path.Base(file) == r.Volume {
		st.Image, st.ImageName, st.Size = r.URL, bmc.ImageNameOf(r.URL), r.Size
	}
	return st, nil
}

func readMediaMeta(lv *libvirt.Libvirt, dom libvirt.Domain) (mediaMeta, error) {
	doc, err := lv.DomainGetMetadata(dom, int32(libvirt.DomainMetadataElement), libvirt.OptString{mediaNS}, libvirt.DomainAffectConfig)
	if isLibvirtErr(err, libvirt.ErrNoDomainMetadata) {
		return mediaMeta{}, nil
	}
	if err != nil {
		return mediaMeta{}, fmt.Errorf("read media metadata: %w", err)
	}
	m, err := parseMediaMeta(doc)
	if err != nil {
		return mediaMeta{}, fmt.Errorf("media metadata: %w", err)
	}
	return m, nil
}

func writeMediaMeta(lv *libvirt.Libvirt, dom libvirt.Domain, m mediaMeta) error {
	var doc libvirt.OptString
	if len(m.Slots) > 0 {
		doc = libvirt.OptString{m.String()}
	}
	err := lv.DomainSetMetadata(dom, int32(libvirt.DomainMetadataElement), doc,
		libvirt.OptString{mediaKey}, libvirt.OptString{mediaNS}, libvirt.DomainAffectConfig)
	if err != nil {
		return fmt.Errorf("write media metadata: %w", err)
	}
	return nil
}

// InsertMedia streams the image at req.URL into a new volume on the
// domain's hypervisor and attaches it to slot: Cd as a read-only CD-ROM
// (the domain's first; one is added when it has none), USBStick as a USB
// disk, read-only when write-protected. The definition is changed and,
// while the domain runs, the running domain too (a CD media change, a USB
// hot-plug); a device the running domain cannot take live (a new IDE or
// SATA CD-ROM) appears at the next power on, or at a BMC reset, which then
// restarts the domain. Nothing is left behind when it fails.
func (d *Domain) InsertMedia(ctx context.Context, slot bmc.MediaSlot, req bmc.MediaRequest) error {
	if err := checkSlot(slot); err != nil {
		return err
	}
	if err := bmc.CheckMediaRequest(req); err != nil {
		return err
	}
	m := d.media()
	if err := d.sweep(ctx, m); err != nil {
		return err
	}
	ictx, end, err := m.tracker.Begin(ctx, slot)
	if err != nil {
		return err
	}
	defer end()
	log := d.log.With("slot", slot, "url", bmc.LogURL(req.URL))
	start := time.Now()
	size, err := d.insert(ictx, m, slot, req)
	if err != nil {
		err = bmc.InsertCause(ictx, err)
		log.Warn("virtual media insert failed", "err", err)
		return fmt.Errorf("insert %s into %s of domain %q: %w", bmc.RedactURL(req.URL), slot, d.ref, err)
	}
	log.Info("virtual media inserted", "bytes", size, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// insert downloads, uploads and attaches; on failure it removes the volume.
func (d *Domain) insert(ctx context.Context, m *domainMedia, slot bmc.MediaSlot, req bmc.MediaRequest) (int64, error) {
	var (
		dom    libvirt.Domain
		busy   bool
		prefix string
	)
	err := d.do(ctx, "virtual media insert", func(lv *libvirt.Libvirt, dm libvirt.Domain) error {
		st, err := slotStatus(lv, dm, slot, bmc.MediaStatus{Slot: slot})
		dom, busy, prefix = dm, st.Inserted, volumePrefix(dm.Name, dm.UUID)
		return err
	})
	if err != nil {
		return 0, err
	}
	if busy {
		return 0, fmt.Errorf("slot %s holds an image; eject it first: %w", slot, bmc.ErrMediaBusy)
	}
	dl, err := m.fetcherOrDefault().Open(ctx, req)
	if err != nil {
		return 0, err
	}
	defer dl.Close()

	capacity := dl.Size
	if capacity < 0 {
		// Unknown length: a sparse volume as large as the cap, shrunk to
		// what arrived once the upload is complete.
		capacity = m.fetcherOrDefault().MaxSize()
	}
	name := volumeName(prefix, slot, time.Now().UnixNano())
	var (
		vol libvirt.StorageVol
		// poolName is set before the create is sent; Do may return (its
		// context ended) while fn still runs, so it is read atomically.
		poolName atomic.Pointer[string]
	)
	err = d.conn.Do(ctx, func(lv *libvirt.Libvirt) error {
		pool, _, err := mediaPool(lv, true)
		if err != nil {
			return err
		}
		poolName.Store(&pool.Name)
		doc := fmt.Sprintf(`<volume><name>%s</name><capacity unit='bytes'>%d</capacity><allocation unit='bytes'>0</allocation>`+
			`<target><format type='raw'/><permissions><mode>0644</mode></permissions></target></volume>`, name, capacity)
		vol, err = lv.StorageVolCreateXML(pool, doc, 0)
		if err != nil {
			return fmt.Errorf("create volume %s (%d bytes) in pool %s: %w", name, capacity, pool.Name, err)
		}
		return nil
	})
	if err != nil {
		if p := poolName.Load(); p != nil && (ctx.Err() != nil || errors.Is(err, ErrUnavailable)) {
			// The call was cut off, not refused: libvirtd lists a volume
			// before it has built it, so the create may have happened
			// after all. Remove it by name (a volume is found by pool and
			// name), and have the next use sweep too: a create still on
			// its way may land after this delete.
			m.mu.Lock()
			m.swept = false
			m.mu.Unlock()
			d.deleteVolumes(m, true, libvirt.StorageVol{Pool: *p, Name: name})
		}
		return 0, err
	}
	attached := false
	defer func() {
		if !attached {
			d.deleteVolumes(m, true, vol)
		}
	}()
	length := uint64(0)
	if dl.Size >= 0 {
		length = uint64(dl.Size)
	}
	err = d.conn.stream(ctx, dl, func(lv *libvirt.Libvirt, r io.Reader) error {
		return lv.StorageVolUpload(vol, r, 0, length, 0)
	})
	if err != nil {
		// The download's own failure says more than the aborted stream.
		var fe *bmc.MediaFetchError
		if errors.As(err, &fe) || ctx.Err() != nil {
			return 0, err
		}
		return 0, fmt.Errorf("upload into volume %s: %w", name, err)
	}
	got := dl.Done()
	// Once uploaded, the attach completes even if ctx ends meanwhile: a
	// Do abandoned by its context would attach in the background after
	// the volume had been deleted. An eject waits for it, then detaches.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	err = d.conn.Do(actx, func(lv *libvirt.Libvirt) error {
		if dl.Size < 0 {
			if err := lv.StorageVolResize(vol, uint64(got), libvirt.StorageVolResizeShrink); err != nil {
				return fmt.Errorf("shrink volume %s to %d bytes: %w", name, got, err)
			}
		}
		file, err := lv.StorageVolGetPath(vol)
		if err != nil {
			return fmt.Errorf("path of volume %s: %w", name, err)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		rec := &mediaRecord{Slot: string(slot), URL: bmc.RedactURL(req.URL), Volume: name, Size: got, WriteProtected: req.WriteProtected || slot == bmc.SlotCD}
		return d.attach(lv, dom, slot, file, rec)
	})
	if err != nil {
		return 0, err
	}
	attached = true
	return got, nil
}

// attach puts file into slot's device in the definition and, while the
// domain runs, in the running domain, then records where it came from.
func (d *Domain) attach(lv *libvirt.Libvirt, dom libvirt.Domain, slot bmc.MediaSlot, file string, rec *mediaRecord) error {
	// Hold the machine lock: a boot override rewrites the same definition.
	d.mu.Lock()
	defer d.mu.Unlock()
	disks, err := readDisks(lv, dom, libvirt.DomainXMLInactive)
	if err != nil {
		return err
	}
	on, err := domainOn(lv, dom)
	if err != nil {
		return err
	}
	meta, err := readMediaMeta(lv, dom)
	if err != nil {
		return err
	}
	if err := writeMediaMeta(lv, dom, meta.with(slot, rec)); err != nil {
		return err
	}
	if k := disks.slotDisk(slot); slot == bmc.SlotCD && k != nil {
		// A media change in the domain's CD-ROM drive.
		x := diskXML("cdrom", file, k.Target.Dev, k.Target.Bus, "", true)
		if on {
			if err := lv.DomainUpdateDeviceFlags(dom, x, libvirt.DomainDeviceModifyLive|libvirt.DomainDeviceModifyConfig); err == nil {
				return nil
			} else {
				d.log.Info("CD media change not possible live; it applies at the next boot", "err", err)
			}
		}
		if err := lv.DomainUpdateDeviceFlags(dom, x, libvirt.DomainDeviceModifyConfig); err != nil {
			return d.undoMeta(lv, dom, meta, fmt.Errorf("change the CD-ROM's media: %w", err))
		}
		d.boot.changed(runID(on, dom))
		return nil
	}
	x, err := disks.newDiskXML(slot, file, rec.WriteProtected)
	if err != nil {
		return d.undoMeta(lv, dom, meta, err)
	}
	if err := lv.DomainAttachDeviceFlags(dom, x, uint32(libvirt.DomainDeviceModifyConfig)); err != nil {
		return d.undoMeta(lv, dom, meta, fmt.Errorf("add the %s device: %w", slot, err))
	}
	if on {
		if err := lv.DomainAttachDeviceFlags(dom, x, uint32(libvirt.DomainDeviceModifyLive)); err != nil {
			d.log.Info("virtual media device cannot be hot-plugged; it appears at the next boot", "slot", slot, "err", err)
			d.boot.changed(dom.ID)
		}
	}
	return nil
}

// runID is the domain ID to mark the boot configuration changed during
// (-1 when the domain is off).
func runID(on bool, dom libvirt.Domain) int32 {
	if on {
		return dom.ID
	}
	return -1
}

func (d *Domain) undoMeta(lv *libvirt.Libvirt, dom libvirt.Domain, meta mediaMeta, err error) error {
	if uerr := writeMediaMeta(lv, dom, meta); uerr != nil {
		d.log.Warn("could not restore the media metadata", "err", uerr)
	}
	return err
}

// EjectMedia cancels an insert into slot under way, detaches the slot's
// image (empties the CD-ROM drive, removing it when govbmc added it;
// removes the USB disk), in the definition and the running domain, and
// deletes the slot's volumes.
func (d *Domain) EjectMedia(ctx context.Context, slot bmc.MediaSlot) error {
	if err := checkSlot(slot); err != nil {
		return err
	}
	m := d.media()
	if cancelled, err := m.tracker.Cancel(ctx, slot); err != nil {
		return err
	} else if cancelled {
		d.log.Info("virtual media insert cancelled by an eject", "slot", slot)
	}
	if err := d.sweep(ctx, m); err != nil {
		return err
	}
	var vols []libvirt.StorageVol
	err := d.do(ctx, "virtual media eject", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if err := d.detach(lv, dom, slot); err != nil {
			return err
		}
		var err error
		vols, err = orphans(lv, dom, func(s bmc.MediaSlot) bool { return s == slot })
		return err
	})
	if err != nil {
		return err
	}
	d.deleteVolumes(m, false, vols...)
	d.log.Info("virtual media ejected", "slot", slot, "volumes", len(vols))
	return nil
}

// detach takes slot's image out of the definition and the running domain.
func (d *Domain) detach(lv *libvirt.Libvirt, dom libvirt.Domain, slot bmc.MediaSlot) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	on, err := domainOn(lv, dom)
	if err != nil {
		return err
	}
	for _, flag := range []libvirt.DomainDeviceModifyFlags{libvirt.DomainDeviceModifyConfig, libvirt.DomainDeviceModifyLive} {
		xmlFlags := libvirt.DomainXMLInactive
		if flag == libvirt.DomainDeviceModifyLive {
			if !on {
				continue
			}
			xmlFlags = 0
		}
		disks, err := readDisks(lv, dom, xmlFlags)
		if err != nil {
			return err
		}
		k := disks.slotDisk(slot)
		if k == nil {
			continue
		}
		if k.Device == "cdrom" && (flag == libvirt.DomainDeviceModifyLive || k.Alias.Name != aliasOf(slot)) {
			// Empty the drive (forced: a guest may have locked the tray).
			if k.Source.File == "" && k.Source.Dev == "" {
				continue
			}
			x := diskXML("cdrom", "", k.Target.Dev, k.Target.Bus, "", true)
			if err := lv.DomainUpdateDeviceFlags(dom, x, flag|libvirt.DomainDeviceModifyForce); err != nil {
				return fmt.Errorf("empty the CD-ROM drive %s: %w", k.Target.Dev, err)
			}
			continue
		}
		x := diskXML(k.Device, k.Source.File, k.Target.Dev, k.Target.Bus, k.Alias.Name, k.ReadOnly != nil)
		if err := lv.DomainDetachDeviceFlags(dom, x, uint32(flag)); err != nil {
			return fmt.Errorf("remove the %s device %s: %w", slot, k.Target.Dev, err)
		}
	}
	meta, err := readMediaMeta(lv, dom)
	if err != nil {
		return err
	}
	if _, ok := meta.get(slot); ok {
		return writeMediaMeta(lv, dom, meta.with(slot, nil))
	}
	return nil
}

// orphans lists the domain's volumes for the slots match selects that
// neither its definition nor the running domain uses.
func orphans(lv *libvirt.Libvirt, dom libvirt.Domain, match func(bmc.MediaSlot) bool) ([]libvirt.StorageVol, error) {
	pool, ok, err := mediaPool(lv, false)
	if err != nil || !ok {
		return nil, err
	}
	used := map[string]bool{}
	for _, flags := range []libvirt.DomainXMLFlags{libvirt.DomainXMLInactive, 0} {
		disks, err := readDisks(lv, dom, flags)
		if err != nil {
			return nil, err
		}
		for f := range disks.sources() {
			used[path.Base(f)] = true
		}
	}
	// Best effort: libvirtd refuses a refresh while an upload into the
	// pool runs, and knows the volumes created through it anyway.
	_ = lv.StoragePoolRefresh(pool, 0)
	vols, _, err := lv.StoragePoolListAllVolumes(pool, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("list volumes of pool %s: %w", pool.Name, err)
	}
	prefix := volumePrefix(dom.Name, dom.UUID)
	var out []libvirt.StorageVol
	for _, v := range vols {
		if s := slotOfVolume(prefix, v.Name); s != "" && match(s) && !used[v.Name] {
			out = append(out, v)
		}
	}
	return out, nil
}

// sweep deletes, once per Domain, the volumes of this domain its
// definition does not use: what a vbmcd killed during an upload left, or
// a create cut off. The volume of an insert under way in another slot is
// not attached yet either: its slot is left for a later sweep.
func (d *Domain) sweep(ctx context.Context, m *domainMedia) error {
	m.mu.Lock()
	swept := m.swept
	m.mu.Unlock()
	if swept {
		return nil
	}
	var (
		vols    []libvirt.StorageVol
		skipped bool
	)
	err := d.do(ctx, "find orphaned media volumes", func(lv *libvirt.Libvirt, dom libvirt.Domain) error {
		var err error
		skipped = false
		vols, err = orphans(lv, dom, func(s bmc.MediaSlot) bool {
			busy := m.tracker.Inserting(s)
			skipped = skipped || busy
			return !busy
		})
		return err
	})
	if err != nil {
		return err
	}
	for _, v := range vols {
		d.log.Warn("deleting an orphaned virtual media volume", "volume", v.Name, "pool", v.Pool)
	}
	m.mu.Lock()
	m.swept = !skipped
	m.mu.Unlock()
	d.deleteVolumes(m, false, vols...)
	return nil
}

// deleteVolumes deletes volumes; what cannot go yet (the connection stays
// down, libvirtd still finishing a dead upload) is tried again by the
// domain's next virtual media use. waitBusy: see deleteVolume.
func (d *Domain) deleteVolumes(m *domainMedia, waitBusy bool, vols ...libvirt.StorageVol) {
	for _, v := range vols {
		if !d.deleteVolume(v, waitBusy) {
			m.mu.Lock()
			m.swept = false
			m.mu.Unlock()
		}
	}
}

// deleteVolume removes a volume, with a context of its own: it runs when
// the insert's has ended, possibly because the connection was lost, so it
// waits (up to cleanupTimeout) for the connection to come back; with
// waitBusy (the insert's own volume) also while libvirtd still builds the
// volume or finishes a dead upload into it. It reports whether the volume
// is gone.
func (d *Domain) deleteVolume(v libvirt.StorageVol, waitBusy bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	for {
		err := d.conn.Do(ctx, func(lv *libvirt.Libvirt) error { return lv.StorageVolDelete(v, 0) })
		if err == nil || isLibvirtErr(err, libvirt.ErrNoStorageVol) {
			return true
		}
		// ErrOperationInvalid: libvirtd is still building the volume or
		// finishing an upload into it; it frees it shortly.
		busy := waitBusy && isLibvirtErr(err, libvirt.ErrOperationInvalid)
		if !(busy || errors.Is(err, ErrUnavailable)) || ctx.Err() != nil {
			d.log.Error("could not delete a virtual media volume; it is removed at the next start", "volume", v.Name, "pool", v.Pool, "err", err)
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(cleanupRetry):
		}
	}
}

package bmc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

var _ VirtualMedia = (*SimMachine)(nil)

// simMediaSlots are the simulated machine's virtual media slots.
var simMediaSlots = []MediaSlot{SlotCD, SlotUSB, SlotFloppy}

// simMedia is a simulated machine's virtual media: it fetches an image
// through the daemon's MediaFetcher like a libvirt domain does, keeps its
// size and SHA-256 (not its bytes) and boots "from" it.
type simMedia struct {
	tracker MediaTracker

	mu      sync.Mutex
	fetcher *MediaFetcher
	images  map[MediaSlot]simImage
}

type simImage struct {
	status MediaStatus
	sha256 string
	// bootable is true for an ISO 9660 image with an El Torito boot record.
	bootable bool
}

// isoHead is how much of an image tells whether it is a bootable ISO 9660
// image: its primary volume descriptor (sector 16) and boot record (17).
const isoHead = 18 * 2048

// SetMediaFetcher makes the machine download images with f instead of the
// daemon-wide DefaultMediaFetcher.
func (m *SimMachine) SetMediaFetcher(f *MediaFetcher) {
	m.media.mu.Lock()
	defer m.media.mu.Unlock()
	m.media.fetcher = f
}

func (s *simMedia) fetcherOrDefault() *MediaFetcher {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetcher != nil {
		return s.fetcher
	}
	return DefaultMediaFetcher()
}

func checkSimSlot(slot MediaSlot) error {
	for _, s := range simMediaSlots {
		if s == slot {
			return nil
		}
	}
	return fmt.Errorf("virtual media slot %q: %w", slot, ErrNotSupported)
}

// MediaSlots lists Cd, USBStick and Floppy.
func (m *SimMachine) MediaSlots(ctx context.Context) ([]MediaSlot, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	m.mu.Unlock()
	return append([]MediaSlot(nil), simMediaSlots...), nil
}

// Media reports what a slot holds.
func (m *SimMachine) Media(ctx context.Context, slot MediaSlot) (MediaStatus, error) {
	if err := checkSimSlot(slot); err != nil {
		return MediaStatus{Slot: slot}, err
	}
	if err := m.begin(ctx); err != nil {
		return MediaStatus{Slot: slot}, err
	}
	m.mu.Unlock()
	m.media.mu.Lock()
	defer m.media.mu.Unlock()
	st := MediaStatus{Slot: slot}
	if img, ok := m.media.images[slot]; ok {
		st = img.status
	}
	st.Inserting = m.media.tracker.Inserting(slot)
	return st, nil
}

// InsertMedia downloads the whole image, checks its size and computes its
// SHA-256 (logged), and inserts it.
func (m *SimMachine) InsertMedia(ctx context.Context, slot MediaSlot, req MediaRequest) error {
	if err := checkSimSlot(slot); err != nil {
		return err
	}
	if err := CheckMediaRequest(req); err != nil {
		return err
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	m.mu.Unlock()
	ictx, end, err := m.media.tracker.Begin(ctx, slot)
	if err != nil {
		return err
	}
	defer end()
	log := slog.Default().With("node", m.name, "slot", slot, "url", LogURL(req.URL))
	img, err := m.fetchImage(ictx, slot, req)
	if err != nil {
		err = InsertCause(ictx, err)
		log.Warn("virtual media insert failed", "err", err)
		return fmt.Errorf("insert %s into %s of %q: %w", RedactURL(req.URL), slot, m.name, err)
	}
	m.media.mu.Lock()
	defer m.media.mu.Unlock()
	if _, busy := m.media.images[slot]; busy {
		return fmt.Errorf("slot %s holds an image; eject it first: %w", slot, ErrMediaBusy)
	}
	if m.media.images == nil {
		m.media.images = map[MediaSlot]simImage{}
	}
	m.media.images[slot] = img
	log.Info("virtual media inserted", "bytes", img.status.Size, "sha256", img.sha256, "bootable_iso", img.bootable)
	return nil
}

func (m *SimMachine) fetchImage(ctx context.Context, slot MediaSlot, req MediaRequest) (simImage, error) {
	m.media.mu.Lock()
	_, busy := m.media.images[slot]
	m.media.mu.Unlock()
	if busy {
		return simImage{}, fmt.Errorf("slot %s holds an image; eject it first: %w", slot, ErrMediaBusy)
	}
	dl, err := m.media.fetcherOrDefault().Open(ctx, req)
	if err != nil {
		return simImage{}, err
	}
	defer dl.Close()
	sum := sha256.New()
	head := &headWriter{max: isoHead}
	if _, err := io.Copy(io.MultiWriter(sum, head), dl); err != nil {
		return simImage{}, err
	}
	return simImage{
		status: MediaStatus{
			Slot: slot, Inserted: true, Image: RedactURL(req.URL), ImageName: ImageNameOf(req.URL),
			WriteProtected: req.WriteProtected || slot == SlotCD, Size: dl.Done(),
		},
		sha256:   hex.EncodeToString(sum.Sum(nil)),
		bootable: bootableISO(head.buf.Bytes()),
	}, nil
}

// headWriter keeps the first max bytes written to it.
type headWriter struct {
	buf bytes.Buffer
	max int
}

func (h *headWriter) Write(p []byte) (int, error) {
	if room := h.max - h.buf.Len(); room > 0 {
		h.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// bootableISO reports whether head starts an ISO 9660 image with an El
// Torito boot record.
func bootableISO(head []byte) bool {
	pvd, boot := 16*2048, 17*2048
	return len(head) >= boot+32 &&
		string(head[pvd+1:pvd+6]) == "CD001" &&
		head[boot] == 0 && string(head[boot+1:boot+6]) == "CD001" &&
		bytes.HasPrefix(head[boot+7:], []byte("EL TORITO SPECIFICATION"))
}

// EjectMedia cancels an insert under way and empties the slot.
func (m *SimMachine) EjectMedia(ctx context.Context, slot MediaSlot) error {
	if err := checkSimSlot(slot); err != nil {
		return err
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	m.mu.Unlock()
	if _, err := m.media.tracker.Cancel(ctx, slot); err != nil {
		return err
	}
	m.media.mu.Lock()
	defer m.media.mu.Unlock()
	if img, ok := m.media.images[slot]; ok {
		delete(m.media.images, slot)
		slog.Default().Info("virtual media ejected", "node", m.name, "slot", slot, "url", LogURL(img.status.Image))
	}
	return nil
}

// mediaBootLocked prints, on a boot from a virtual media device, the image
// it boots (or that the drive is empty). m.mu is held.
func (m *SimMachine) mediaBootLocked(dev BootDevice) {
	var slots []MediaSlot
	switch dev {
	case BootCDROM, BootRemoteCDROM, BootRemoteMedia:
		slots = []MediaSlot{SlotCD}
	case BootFloppy, BootRemoteFloppy:
		slots = []MediaSlot{SlotFloppy, SlotUSB}
	default:
		return
	}
	m.media.mu.Lock()
	defer m.media.mu.Unlock()
	for _, s := range slots {
		if img, ok := m.media.images[s]; ok {
			m.consolef("Booting virtual media %s: %s (%d bytes, sha256 %s)\r\n", s, img.status.ImageName, img.status.Size, img.sha256)
			if s == SlotCD && !img.bootable {
				m.consolef("Boot failed: %s is not a bootable ISO 9660 image\r\n", img.status.ImageName)
			}
			return
		}
	}
	m.consolef("Boot failed: no virtual media in %s\r\n", slots[0])
}

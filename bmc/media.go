package bmc

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sync"
)

// MediaSlot names a virtual media device of a machine, in Redfish's terms
// (the VirtualMedia resource's Id).
type MediaSlot string

// The virtual media slots a machine may offer.
const (
	SlotCD     MediaSlot = "Cd"
	SlotUSB    MediaSlot = "USBStick"
	SlotFloppy MediaSlot = "Floppy"
)

// MediaRequest is an image to insert into a slot.
type MediaRequest struct {
	// URL is the image's http or https URL; credentials in it are used and
	// never reported or logged.
	URL string
	// Username and Password are HTTP basic credentials, when the server wants them.
	Username, Password string
	// WriteProtected attaches the image read-only (a CD is always read-only).
	WriteProtected bool
	// InsecureTLS skips the verification of an https server's certificate.
	InsecureTLS bool
}

// MediaStatus is what a slot holds.
type MediaStatus struct {
	// Slot is the slot described.
	Slot MediaSlot
	// Inserted is true once an image is attached.
	Inserted bool
	// Inserting is true while an insert is downloading into the slot.
	Inserting bool
	// Image is the inserted image's URL without credentials ("" when empty).
	Image string
	// ImageName is the last path element of Image.
	ImageName string
	// WriteProtected is whether the image is attached read-only.
	WriteProtected bool
	// Size is the image's size in bytes (0 when unknown or empty).
	Size int64
}

// VirtualMedia is a machine that can attach images fetched by URL, the way
// a BMC's virtual media does (Redfish VirtualMedia, Ironic's
// redfish-virtual-media boot). The state lives with the machine (a libvirt
// domain's definition), so it survives a BMC restart.
type VirtualMedia interface {
	// MediaSlots lists the slots the machine offers, in a stable order.
	MediaSlots(ctx context.Context) ([]MediaSlot, error)
	// Media reports what a slot holds; an error wrapping ErrNotSupported
	// for a slot the machine lacks.
	Media(ctx context.Context, slot MediaSlot) (MediaStatus, error)
	// InsertMedia downloads the image and attaches it, returning once it
	// is attached (or failed, leaving nothing behind). Errors: wrapping
	// ErrInvalidArgument (bad URL), ErrNotSupported (slot), ErrMediaBusy
	// (slot not empty), ErrMediaEjected (an eject cancelled it), a
	// *MediaFetchError (the download failed) or a backend failure.
	InsertMedia(ctx context.Context, slot MediaSlot, req MediaRequest) error
	// EjectMedia detaches the slot's image and removes what the insert
	// created; an insert in progress is cancelled. Ejecting an empty slot
	// succeeds.
	EjectMedia(ctx context.Context, slot MediaSlot) error
}

// Errors of virtual media beyond the Machine ones.
var (
	// ErrMediaBusy: the slot holds an image or an insert is under way; eject first.
	ErrMediaBusy = errors.New("media slot busy")
	// ErrMediaEjected: an eject cancelled the insert.
	ErrMediaEjected = errors.New("insert cancelled by an eject")
	// ErrMediaFetch: the image could not be downloaded (*MediaFetchError says why).
	ErrMediaFetch = errors.New("media download failed")
)

// RedactURL returns raw without user information (credentials), for
// reporting; a URL that does not parse is reported as "<invalid URL>".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	u.User = nil
	return u.String()
}

// LogURL returns raw without credentials and without its query (which may
// carry a signature, as Swift temporary URLs do), for log lines.
func LogURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment = ""
	return u.String()
}

// ImageNameOf is the last path element of an image URL ("" when none).
func ImageNameOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." {
		return ""
	}
	return name
}

// CheckMediaRequest validates a request's URL: http or https with a host.
func CheckMediaRequest(req MediaRequest) error {
	u, err := url.Parse(req.URL)
	if err != nil {
		return fmt.Errorf("image URL does not parse: %w", ErrInvalidArgument)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("image URL scheme %q: only http and https are supported: %w", u.Scheme, ErrInvalidArgument)
	}
	if u.Host == "" {
		return fmt.Errorf("image URL %s has no host: %w", RedactURL(req.URL), ErrInvalidArgument)
	}
	return nil
}

// MediaTracker keeps the inserts under way on one machine's slots, one at a
// time per slot, so that an eject can cancel an insert and wait for it to
// have cleaned up. Backends embed one per machine.
type MediaTracker struct {
	mu       sync.Mutex
	inflight map[MediaSlot]*mediaInsert
}

type mediaInsert struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// Begin registers an insert into slot and returns its context, cancelled
// (with cause ErrMediaEjected) by Cancel; end must be called when the
// insert has finished, successfully or not. ErrMediaBusy when another
// insert into the slot is under way.
func (t *MediaTracker) Begin(ctx context.Context, slot MediaSlot) (context.Context, func(), error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, busy := t.inflight[slot]; busy {
		return nil, nil, fmt.Errorf("slot %s: an insert is under way: %w", slot, ErrMediaBusy)
	}
	if t.inflight == nil {
		t.inflight = map[MediaSlot]*mediaInsert{}
	}
	ictx, cancel := context.WithCancelCause(ctx)
	in := &mediaInsert{cancel: cancel, done: make(chan struct{})}
	t.inflight[slot] = in
	end := func() {
		t.mu.Lock()
		if t.inflight[slot] == in {
			delete(t.inflight, slot)
		}
		t.mu.Unlock()
		cancel(nil)
		close(in.done)
	}
	return ictx, end, nil
}

// Inserting reports whether an insert into slot is under way.
func (t *MediaTracker) Inserting(slot MediaSlot) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.inflight[slot]
	return ok
}

// Cancel cancels an insert into slot under way and waits (within ctx) for
// it to have finished; it reports whether there was one.
func (t *MediaTracker) Cancel(ctx context.Context, slot MediaSlot) (bool, error) {
	t.mu.Lock()
	in, ok := t.inflight[slot]
	t.mu.Unlock()
	if !ok {
		return false, nil
	}
	in.cancel(ErrMediaEjected)
	select {
	case <-in.done:
		return true, nil
	case <-ctx.Done():
		return true, fmt.Errorf("slot %s: waiting for the cancelled insert: %w", slot, ctx.Err())
	}
}

// InsertCause is the error to report for an insert whose context ended:
// ErrMediaEjected when an eject cancelled it, else err.
func InsertCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrMediaEjected) && !errors.Is(err, ErrMediaEjected) {
		return fmt.Errorf("%w (%v)", ErrMediaEjected, err)
	}
	return err
}

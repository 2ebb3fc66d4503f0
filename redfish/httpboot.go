package redfish

import (
	"context"
	"net/http"

	"github.com/govbmc/govbmc/bmc"
)

// UefiHttp with an HttpBootUri (Ironic's redfish-https boot) is served as
// sushy-tools serves it: the URI is inserted into the Cd virtual media
// device and the override boots the CD. The image stays in the drive while
// the override is in place and during the boot it makes (the booted system
// may read it); once a Once override has been consumed, HttpBootUri reads
// null and the image is ejected before the next Redfish reset, or when the
// boot override or the Cd device is next changed.

// httpBoot is an override set as UefiHttp.
type httpBoot struct {
	override bmc.BootOverride // what the machine stores for it
	uri      string           // HttpBootUri; "" for a plain UEFI network boot
	spent    bool             // the override was consumed; the image is to go
}

// liveHTTPBoot returns the UefiHttp override in place, given the machine's
// override o; a record whose override is gone is forgotten, or marked spent
// while its image is still in the drive.
func (s *Server) liveHTTPBoot(sys System, o bmc.BootOverride) (httpBoot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.httpBoots[sys.Name]
	if !ok || h.spent {
		return httpBoot{}, false
	}
	if o.Active() && o == h.override {
		return h, true
	}
	if h.uri == "" {
		delete(s.httpBoots, sys.Name)
	} else {
		h.spent = true
		s.httpBoots[sys.Name] = h
	}
	return httpBoot{}, false
}

// httpBootURI is the image a Boot PATCH boots: uri when given, else the
// one in place; "" when the target is not UefiHttp or there is none.
func (s *Server) httpBootURI(sys System, target string, uri *string) (string, error) {
	const prop = "Boot/HttpBootUri"
	if target != "UefiHttp" {
		if uri != nil && *uri != "" {
			return "", propError("PropertyValueConflict", prop,
				"HttpBootUri needs BootSourceOverrideTarget UefiHttp.", "HttpBootUri", "BootSourceOverrideTarget")
		}
		return "", nil
	}
	if uri == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if h, ok := s.httpBoots[sys.Name]; ok && !h.spent {
			return h.uri, nil
		}
		return "", nil
	}
	if *uri == "" {
		return "", nil
	}
	if err := bmc.CheckMediaRequest(bmc.MediaRequest{URL: *uri}); err != nil {
		return "", httpBootParams.invalid("HttpBootUri", bmc.RedactURL(*uri), reason(err))
	}
	if _, ok := bmc.As[bmc.VirtualMedia](sys.Machine); !ok {
		return "", propError("PropertyValueNotInList", prop, "This system has no virtual media to boot an HttpBootUri from.", prop)
	}
	return *uri, nil
}

// httpBootParams names an HttpBootUri insert's image in errors.
var httpBootParams = mediaParams{prefix: "Boot/", image: "HttpBootUri"}

// prepareHTTPBoot puts the image of uri into the Cd device for an override
// about to be set (active), after ejecting an earlier HttpBootUri's image
// unless it is that one; inserted reports a fresh insert.
func (s *Server) prepareHTTPBoot(w http.ResponseWriter, r *http.Request, c *sysCtx, uri string, active bool) (inserted bool, err error) {
	s.mu.Lock()
	prev, had := s.httpBoots[c.sys.Name]
	s.mu.Unlock()
	keep := had && !prev.spent && prev.uri != "" && prev.uri == uri && active
	if had && prev.uri != "" && !keep {
		if err := s.dropHTTPBootMedia(r.Context(), c, prev.uri); err != nil {
			return false, err
		}
	}
	if uri == "" || keep || !active {
		return false, nil
	}
	vm, _ := bmc.As[bmc.VirtualMedia](c.sys.Machine)
	req := bmc.MediaRequest{URL: uri, WriteProtected: true, InsecureTLS: !s.verifyCertificate(c.sys, bmc.SlotCD)}
	if err := s.insert(w, c, vm, bmc.SlotCD, req, httpBootParams); err != nil {
		return false, err
	}
	return true, nil
}

// dropHTTPBootMedia ejects the image of an HttpBootUri from the Cd device
// when it is still there, and forgets the HttpBootUri.
func (s *Server) dropHTTPBootMedia(ctx context.Context, c *sysCtx, uri string) error {
	s.mu.Lock()
	delete(s.httpBoots, c.sys.Name)
	s.mu.Unlock()
	vm, ok := bmc.As[bmc.VirtualMedia](c.sys.Machine)
	if !ok {
		return nil
	}
	st, err := vm.Media(ctx, bmc.SlotCD)
	if err != nil {
		return mediaError(err, mediaParams{})
	}
	if !st.Inserted || st.Image != bmc.RedactURL(uri) {
		return nil // ejected or replaced meanwhile
	}
	return s.eject(ctx, c, vm, bmc.SlotCD)
}

// recordHTTPBoot remembers an override just set as UefiHttp (live), to
// show UefiHttp and its HttpBootUri while the machine keeps it; any other
// override forgets it.
func (s *Server) recordHTTPBoot(ctx context.Context, sys System, live bool, uri string) {
	if !live {
		s.mu.Lock()
		delete(s.httpBoots, sys.Name)
		s.mu.Unlock()
		return
	}
	got, err := sys.Machine.BootOverride(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.httpBoots, sys.Name)
		return
	}
	s.httpBoots[sys.Name] = httpBoot{override: got, uri: uri}
}

// settleHTTPBoot ejects, before a reset, the image of an HttpBootUri whose
// one-time boot has happened, so that the next boot does not find it.
func (s *Server) settleHTTPBoot(ctx context.Context, c *sysCtx) error {
	s.mu.Lock()
	h, ok := s.httpBoots[c.sys.Name]
	s.mu.Unlock()
	if !ok || h.uri == "" {
		return nil
	}
	if !h.spent {
		o, err := c.sys.Machine.BootOverride(ctx)
		if err != nil {
			return err
		}
		if o.Active() && o == h.override {
			return nil
		}
	}
	return s.dropHTTPBootMedia(ctx, c, h.uri)
}

package redfish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// VirtualMedia is one virtual media device of a system, served at both
// /redfish/v1/Managers/{id}/VirtualMedia/{slot} and
// /redfish/v1/Systems/{id}/VirtualMedia/{slot}.
type VirtualMedia struct {
	Resource
	MediaTypes           []string            `json:"MediaTypes"`
	Image                *string             `json:"Image"`
	ImageName            *string             `json:"ImageName"`
	Inserted             bool                `json:"Inserted"`
	WriteProtected       bool                `json:"WriteProtected"`
	ConnectedVia         string              `json:"ConnectedVia"`
	TransferProtocolType *string             `json:"TransferProtocolType"`
	TransferMethod       *string             `json:"TransferMethod"`
	VerifyCertificate    bool                `json:"VerifyCertificate"`
	Status               Status              `json:"Status"`
	Actions              VirtualMediaActions `json:"Actions"`
}

// VirtualMediaActions are a virtual media device's actions.
type VirtualMediaActions struct {
	InsertMedia ActionTarget `json:"#VirtualMedia.InsertMedia"`
	EjectMedia  ActionTarget `json:"#VirtualMedia.EjectMedia"`
}

// The actions of a virtual media device, as errors name them.
const (
	actInsertMedia = "VirtualMedia.InsertMedia"
	actEjectMedia  = "VirtualMedia.EjectMedia"
)

// mediaTypesOf are what each slot takes, in Redfish's MediaTypes.
var mediaTypesOf = map[bmc.MediaSlot][]string{
	bmc.SlotCD:     {"CD", "DVD"},
	bmc.SlotUSB:    {"USBStick"},
	bmc.SlotFloppy: {"Floppy"},
}

// Values the insert parameters accept.
var (
	transferProtocols = []string{"HTTP", "HTTPS"}
	transferMethods   = []string{"Stream", "Upload"}
)

func (s *Server) mediaRoutes() {
	h := s.mux.Handle
	for _, kind := range []string{"Managers", "Systems"} {
		base := "/redfish/v1/" + kind + "/{id}/VirtualMedia"
		h("GET "+base, s.system(RoleReadOnly, s.getMediaCollection(kind)))
		h("GET "+base+"/{slot}", s.system(RoleReadOnly, s.getMedia(kind)))
		h("PATCH "+base+"/{slot}", s.system(RoleOperator, s.patchMedia(kind)))
		h("POST "+base+"/{slot}/Actions/"+actInsertMedia, s.system(RoleOperator, s.postInsertMedia))
		h("POST "+base+"/{slot}/Actions/"+actEjectMedia, s.system(RoleOperator, s.postEjectMedia))
	}
}

func mediaURI(kind string, sys System) string {
	return "/redfish/v1/" + kind + "/" + sys.ID + "/VirtualMedia"
}

// mediaLink is the VirtualMedia link of a Manager or a System, nil when
// the machine has no virtual media.
func mediaLink(kind string, sys System) *Link {
	if _, ok := bmc.As[bmc.VirtualMedia](sys.Machine); !ok {
		return nil
	}
	return &Link{mediaURI(kind, sys)}
}

// virtualMedia returns the system's virtual media and, when the path names
// one, the slot; 404 for a machine without media or a slot it lacks.
func virtualMedia(r *http.Request, sys System) (bmc.VirtualMedia, []bmc.MediaSlot, bmc.MediaSlot, error) {
	vm, ok := bmc.As[bmc.VirtualMedia](sys.Machine)
	if !ok {
		return nil, nil, "", errNotFound(r.URL.Path)
	}
	slots, err := vm.MediaSlots(r.Context())
	if err != nil {
		return nil, nil, "", err
	}
	slot := bmc.MediaSlot(r.PathValue("slot"))
	if slot != "" && !slices.Contains(slots, slot) {
		return nil, nil, "", errNotFound(r.URL.Path)
	}
	return vm, slots, slot, nil
}

func (s *Server) getMediaCollection(kind string) sysHandler {
	return func(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
		_, slots, _, err := virtualMedia(r, c.sys)
		if err != nil {
			return err
		}
		uri := mediaURI(kind, c.sys)
		links := make([]string, len(slots))
		for i, sl := range slots {
			links[i] = uri + "/" + string(sl)
		}
		s.writeJSON(w, r, http.StatusOK, collection(uri, "VirtualMediaCollection", "Virtual Media Collection", links), "")
		return nil
	}
}

// renderMedia reads a slot into its resource.
func (s *Server) renderMedia(ctx context.Context, kind string, c *sysCtx, vm bmc.VirtualMedia, slot bmc.MediaSlot) (VirtualMedia, error) {
	st, err := vm.Media(ctx, slot)
	if err != nil {
		return VirtualMedia{}, err
	}
	uri := mediaURI(kind, c.sys) + "/" + string(slot)
	v := VirtualMedia{
		Resource:          resource(uri, "#VirtualMedia.v1_4_0.VirtualMedia", string(slot), "Virtual "+string(slot)),
		MediaTypes:        mediaTypesOf[slot],
		Inserted:          st.Inserted,
		WriteProtected:    st.WriteProtected || slot == bmc.SlotCD,
		ConnectedVia:      "NotConnected",
		VerifyCertificate: s.verifyCertificate(c.sys, slot),
		Status:            okStatus(),
		Actions: VirtualMediaActions{
			InsertMedia: ActionTarget{uri + "/Actions/" + actInsertMedia},
			EjectMedia:  ActionTarget{uri + "/Actions/" + actEjectMedia},
		},
	}
	if v.MediaTypes == nil {
		v.MediaTypes = []string{}
	}
	if st.Inserting {
		v.Status.State = "Updating"
	}
	if st.Inserted {
		image, name := st.Image, st.ImageName
		v.Image, v.ImageName = &image, &name
		v.ConnectedVia = "URI"
		method := "Upload" // the BMC copies the whole image first
		v.TransferMethod = &method
		if u, err := url.Parse(st.Image); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			proto := strings.ToUpper(u.Scheme)
			v.TransferProtocolType = &proto
		}
	}
	return v, nil
}

// mediaETag covers what a PATCH of the device changes.
func mediaETag(v VirtualMedia) string {
	return etagOf([]any{v.Image, v.Inserted, v.WriteProtected, v.VerifyCertificate})
}

func (s *Server) getMedia(kind string) sysHandler {
	return func(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
		vm, _, slot, err := virtualMedia(r, c.sys)
		if err != nil {
			return err
		}
		v, err := s.renderMedia(r.Context(), kind, c, vm, slot)
		if err != nil {
			return err
		}
		s.writeJSON(w, r, http.StatusOK, v, mediaETag(v))
		return nil
	}
}

// verifyCertificate is the slot's VerifyCertificate: whether an https
// image server's certificate is checked (Options.MediaVerifyCertificate
// until a PATCH says otherwise).
func (s *Server) verifyCertificate(sys System, slot bmc.MediaSlot) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.mediaVerify[sys.Name+"/"+string(slot)]; ok {
		return v
	}
	return s.opts.MediaVerifyCertificate
}

// mediaParams names the parameters of a media request in errors: those of
// an action, or the properties of a PATCH (under prefix).
type mediaParams struct {
	action string
	prefix string
	image  string // the image's name when not "Image"
}

// imageParam names the image URL.
func (p mediaParams) imageParam() string {
	if p.image != "" {
		return p.image
	}
	return "Image"
}

func (p mediaParams) typeError(name string, v any) error {
	shown := fmt.Sprint(v)
	if name == "Password" {
		shown = "(hidden)"
	}
	if p.action != "" {
		return errActionParamType(p.action, name, shown)
	}
	return errValueType(p.prefix+name, shown)
}

func (p mediaParams) notInList(name, value string) error {
	if p.action != "" {
		return errActionParamNotInList(p.action, name, value)
	}
	return errNotInList(p.prefix+name, value)
}

// invalid refuses a value of the right type that cannot be used, saying why.
func (p mediaParams) invalid(name, value, why string) error {
	if p.action != "" {
		e := errorf(http.StatusBadRequest, "ActionParameterValueFormatError",
			"The value "+value+" for the parameter "+name+" in the action "+p.action+" cannot be used: "+why+".", value, name, p.action)
		e.property = name
		return e
	}
	prop := p.prefix + name
	return propError("PropertyValueFormatError", prop, "The value "+value+" for the property "+prop+" cannot be used: "+why+".", value, prop)
}

// conflict refuses name's value because of other's.
func (p mediaParams) conflict(name, other, why string) error {
	return propError("PropertyValueConflict", p.prefix+name, why, p.prefix+name, p.prefix+other)
}

// mediaInput is an insert as a client asked for it.
type mediaInput struct {
	image          string
	inserted       *bool
	writeProtected *bool
	protocol       string // TransferProtocolType
	method         string // TransferMethod
	user, password string
}

// request checks the input and makes it a request for the machine.
func (in mediaInput) request(p mediaParams, verify bool) (bmc.MediaRequest, error) {
	shown := bmc.RedactURL(in.image)
	if err := bmc.CheckMediaRequest(bmc.MediaRequest{URL: in.image}); err != nil {
		return bmc.MediaRequest{}, p.invalid(p.imageParam(), shown, reason(err))
	}
	if in.inserted != nil && !*in.inserted {
		return bmc.MediaRequest{}, p.conflict("Inserted", "Image",
			"Inserted false (an image attached but not inserted) is not supported: an image is inserted at once.")
	}
	if in.protocol != "" {
		if !slices.Contains(transferProtocols, in.protocol) {
			return bmc.MediaRequest{}, p.notInList("TransferProtocolType", in.protocol)
		}
		u, _ := url.Parse(in.image)
		if !strings.EqualFold(u.Scheme, in.protocol) {
			return bmc.MediaRequest{}, p.conflict("TransferProtocolType", "Image",
				"The TransferProtocolType "+in.protocol+" does not match the scheme of the Image URL ("+u.Scheme+").")
		}
	}
	if in.method != "" && !slices.Contains(transferMethods, in.method) {
		return bmc.MediaRequest{}, p.notInList("TransferMethod", in.method)
	}
	return bmc.MediaRequest{
		URL:            in.image,
		Username:       in.user,
		Password:       in.password,
		WriteProtected: in.writeProtected == nil || *in.writeProtected,
		InsecureTLS:    !verify,
	}, nil
}

// mediaInputFrom reads the insert parameters from an action's body or a
// PATCH's properties; image reports whether Image was given (null counts).
func mediaInputFrom(values map[string]any, p mediaParams) (in mediaInput, image bool, err error) {
	strs := map[string]*string{"TransferProtocolType": &in.protocol, "TransferMethod": &in.method, "UserName": &in.user, "Password": &in.password}
	for name, dst := range strs {
		if v, ok := values[p.prefix+name]; ok && v != nil {
			str, isStr := v.(string)
			if !isStr {
				return in, false, p.typeError(name, v)
			}
			*dst = str
		}
	}
	bools := map[string]**bool{"Inserted": &in.inserted, "WriteProtected": &in.writeProtected}
	for name, dst := range bools {
		if v, ok := values[p.prefix+name]; ok {
			b, isBool := v.(bool)
			if !isBool {
				return in, false, p.typeError(name, v)
			}
			*dst = &b
		}
	}
	v, image := values[p.prefix+"Image"]
	if image && v != nil {
		str, isStr := v.(string)
		if !isStr {
			return in, false, p.typeError("Image", v)
		}
		in.image = str
	}
	return in, image, nil
}

func (s *Server) postInsertMedia(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	body, err := s.readOptionalJSON(w, r)
	if err != nil {
		return err
	}
	args := actionArgs{action: actInsertMedia, body: body}
	if err := args.only("Image", "Inserted", "WriteProtected", "TransferProtocolType", "TransferMethod", "UserName", "Password"); err != nil {
		return err
	}
	p := mediaParams{action: actInsertMedia}
	in, given, err := mediaInputFrom(body, p)
	if err != nil {
		return err
	}
	if !given || in.image == "" {
		return errActionParamMissing(actInsertMedia, "Image")
	}
	vm, _, slot, err := virtualMedia(r, c.sys)
	if err != nil {
		return err
	}
	req, err := in.request(p, s.verifyCertificate(c.sys, slot))
	if err != nil {
		return err
	}
	if err := s.insert(w, c, vm, slot, req, p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) postEjectMedia(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	body, err := s.readOptionalJSON(w, r)
	if err != nil {
		return err
	}
	if err := (actionArgs{action: actEjectMedia, body: body}).only(); err != nil {
		return err
	}
	vm, _, slot, err := virtualMedia(r, c.sys)
	if err != nil {
		return err
	}
	if err := s.eject(r.Context(), c, vm, slot); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// patchMedia is the older way to insert and eject: PATCH Image and
// Inserted (and WriteProtected, credentials) of the device.
func (s *Server) patchMedia(kind string) sysHandler {
	return func(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
		body, err := s.readJSON(w, r)
		if err != nil {
			return err
		}
		vm, _, slot, err := virtualMedia(r, c.sys)
		if err != nil {
			return err
		}
		cur, err := s.renderMedia(r.Context(), kind, c, vm, slot)
		if err != nil {
			return err
		}
		if err := checkIfMatch(r, mediaETag(cur)); err != nil {
			return err
		}
		patch := map[string]any{}
		writable := []string{"Image", "Inserted", "WriteProtected", "TransferProtocolType", "TransferMethod", "UserName", "Password", "VerifyCertificate"}
		if err := splitPatch(body, served(cur), writable, "", patch); err != nil {
			return err
		}
		p := mediaParams{}
		verify, setVerify := s.verifyCertificate(c.sys, slot), false
		if v, ok := patch["VerifyCertificate"]; ok {
			b, isBool := v.(bool)
			if !isBool {
				return p.typeError("VerifyCertificate", v)
			}
			verify, setVerify = b, true
		}
		in, imageGiven, err := mediaInputFrom(patch, p)
		if err != nil {
			return err
		}
		curImage := ""
		if cur.Image != nil {
			curImage = *cur.Image
		}
		switch {
		case imageGiven && in.image == "" && in.inserted != nil && *in.inserted:
			return p.conflict("Inserted", "Image", "Inserted true needs an Image.")
		case (imageGiven && in.image == "") || (!imageGiven && in.inserted != nil && !*in.inserted):
			if err := s.eject(r.Context(), c, vm, slot); err != nil {
				return err
			}
		case imageGiven && cur.Inserted && bmc.RedactURL(in.image) == curImage &&
			(in.writeProtected == nil || *in.writeProtected == cur.WriteProtected):
			// That image is in already.
		case imageGiven:
			req, err := in.request(p, verify)
			if err != nil {
				return err
			}
			if err := s.insert(w, c, vm, slot, req, p); err != nil {
				return err
			}
			r = s.renew(r, c)
		case in.inserted != nil && *in.inserted && !cur.Inserted:
			return p.conflict("Inserted", "Image", "Inserted true needs an Image.")
		case in.writeProtected != nil && *in.writeProtected != cur.WriteProtected:
			return p.conflict("WriteProtected", "Image", "WriteProtected changes only with an insert: eject, then insert with the new value.")
		}
		if setVerify { // only once the rest of the PATCH has been applied
			s.mu.Lock()
			s.mediaVerify[c.sys.Name+"/"+string(slot)] = verify
			s.mu.Unlock()
		}
		v, err := s.renderMedia(r.Context(), kind, c, vm, slot)
		if err != nil {
			return err
		}
		s.writeJSON(w, r, http.StatusOK, v, mediaETag(v))
		return nil
	}
}

// mediaTimeout bounds a request that downloads an image: the download's
// own deadline plus the time to attach it.
func (s *Server) mediaTimeout() time.Duration {
	if s.opts.MediaTimeout > 0 {
		return s.opts.MediaTimeout
	}
	return bmc.DefaultMediaFetcher().Deadline() + s.opts.MachineTimeout
}

// longRequest gives a request that waits for a download its own bound in
// place of MachineTimeout, and moves the HTTP server's read and write
// deadlines (NewHTTPServer's ReadTimeout and WriteTimeout) past it, so
// that neither cuts the answer off nor cancels the request meanwhile.
func (s *Server) longRequest(w http.ResponseWriter, c *sysCtx) (context.Context, context.CancelFunc) {
	d := s.mediaTimeout()
	rc := http.NewResponseController(w)
	until := time.Now().Add(d + time.Minute)
	for _, set := range []func(time.Time) error{rc.SetReadDeadline, rc.SetWriteDeadline} {
		if err := set(until); err != nil && !errors.Is(err, http.ErrNotSupported) {
			s.log.Warn("redfish: cannot extend the connection's deadline for a virtual media insert", "node", c.sys.Name, "err", err)
		}
	}
	return context.WithTimeout(c.base, d)
}

// insert downloads and attaches an image, answering once it is attached;
// it holds nothing of the node meanwhile.
func (s *Server) insert(w http.ResponseWriter, c *sysCtx, vm bmc.VirtualMedia, slot bmc.MediaSlot, req bmc.MediaRequest, p mediaParams) error {
	ctx, cancel := s.longRequest(w, c)
	defer cancel()
	log := s.log.With("node", c.sys.Name, "slot", string(slot), "url", bmc.LogURL(req.URL), "user", c.who.user)
	log.Info("redfish: virtual media insert")
	if err := vm.InsertMedia(ctx, slot, req); err != nil {
		// The error names the URL with its query, which may carry a
		// signature: the log has it without.
		log.Warn("redfish: virtual media insert failed",
			"err", strings.ReplaceAll(err.Error(), bmc.RedactURL(req.URL), bmc.LogURL(req.URL)))
		return mediaError(err, p)
	}
	log.Info("redfish: virtual media inserted")
	return nil
}

// eject empties a slot (and forgets an HttpBootUri it held).
func (s *Server) eject(ctx context.Context, c *sysCtx, vm bmc.VirtualMedia, slot bmc.MediaSlot) error {
	if err := vm.EjectMedia(ctx, slot); err != nil {
		s.log.Warn("redfish: virtual media eject failed", "node", c.sys.Name, "slot", string(slot), "err", err)
		return mediaError(err, mediaParams{})
	}
	if slot == bmc.SlotCD {
		s.mu.Lock()
		if h, ok := s.httpBoots[c.sys.Name]; ok && h.uri != "" {
			delete(s.httpBoots, c.sys.Name)
		}
		s.mu.Unlock()
	}
	s.log.Info("redfish: virtual media ejected", "node", c.sys.Name, "slot", string(slot), "user", c.who.user)
	return nil
}

// mediaError turns a virtual media failure into the client's answer, with
// its cause (never credentials: the machine's errors carry none).
func mediaError(err error, p mediaParams) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return err
	}
	var fe *bmc.MediaFetchError
	switch {
	case errors.Is(err, bmc.ErrMediaBusy):
		return errorf(http.StatusConflict, "ResourceInUse",
			"The change to the requested resource failed because the resource is in use or in transition: "+reason(err)+".")
	case errors.Is(err, bmc.ErrMediaEjected):
		return errorf(http.StatusConflict, "OperationFailed", "The insert was cancelled by an eject of the same device.")
	case errors.As(err, &fe):
		return fetchError(fe, p)
	case errors.Is(err, bmc.ErrInvalidArgument):
		return p.invalid(p.imageParam(), "", reason(err))
	case errors.Is(err, bmc.ErrNotSupported), errors.Is(err, bmc.ErrPoweredOff):
		return machineError(err, "")
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusGatewayTimeout, "OperationTimeout", "The virtual media operation did not finish in time.")
	case errors.Is(err, context.Canceled):
		// The client went away (or the daemon stops): nobody reads the
		// answer. Bare, so that the log line does not carry the URL,
		// whose query may hold a signature.
		return context.Canceled
	}
	return errorf(http.StatusServiceUnavailable, "ServiceTemporarilyUnavailable",
		"The virtual media operation failed: "+reason(err)+".").with("Retry-After", "5")
}

// fetchError says why an image could not be downloaded: the image server's
// or the URL's fault is a 4xx, a transfer that stalled or broke off a 5xx
// (which Ironic retries).
func fetchError(fe *bmc.MediaFetchError, p mediaParams) error {
	cause := fe.Err.Error()
	switch fe.Kind {
	case bmc.FetchUnreachable:
		return errorf(http.StatusBadRequest, "CouldNotEstablishConnection",
			"The service failed to establish a connection with the URI "+fe.URL+": "+cause+".", fe.URL)
	case bmc.FetchTLS:
		return errorf(http.StatusBadRequest, "CouldNotEstablishConnection",
			"The service failed to establish a connection with the URI "+fe.URL+": the server's certificate was refused ("+cause+"); "+
				"give the daemon the CA, or PATCH VerifyCertificate false.", fe.URL)
	case bmc.FetchHTTPStatus:
		switch {
		case fe.StatusCode == http.StatusNotFound || fe.StatusCode == http.StatusGone:
			return errorf(http.StatusBadRequest, "ResourceMissingAtURI",
				"The resource at the URI "+fe.URL+" was not found (the image server answered "+cause+").", fe.URL)
		case fe.StatusCode == http.StatusUnauthorized || fe.StatusCode == http.StatusForbidden:
			return errorf(http.StatusBadRequest, "ResourceAtUriUnauthorized",
				"While accessing the resource at "+fe.URL+", the service received an authorization error "+cause+".", fe.URL, cause)
		case fe.StatusCode >= 500:
			return errorf(http.StatusBadGateway, "OperationFailed",
				"The image server at "+fe.URL+" answered "+cause+".")
		}
		return errorf(http.StatusBadRequest, "CouldNotEstablishConnection",
			"The image server at "+fe.URL+" answered "+cause+".", fe.URL)
	case bmc.FetchTooLarge:
		return p.invalid(p.imageParam(), fe.URL, "the image is too large: "+cause)
	case bmc.FetchStalled, bmc.FetchDeadline:
		return errorf(http.StatusGatewayTimeout, "OperationTimeout",
			"The download of "+fe.URL+" timed out: "+cause+".")
	}
	return errorf(http.StatusBadGateway, "OperationFailed", "The download of "+fe.URL+" failed: "+cause+".")
}

package redfish

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Resource holds the properties every resource carries.
type Resource struct {
	ODataContext string `json:"@odata.context"`
	ODataID      string `json:"@odata.id"`
	ODataType    string `json:"@odata.type"`
	ID           string `json:"Id,omitempty"`
	Name         string `json:"Name"`
}

// resource fills a Resource; the context is derived from the type
// ("#ComputerSystem.v1_13_0.ComputerSystem" → $metadata#ComputerSystem.ComputerSystem).
func resource(uri, odataType, id, name string) Resource {
	return Resource{ODataContext: contextOf(odataType), ODataID: uri, ODataType: odataType, ID: id, Name: name}
}

func contextOf(odataType string) string {
	t := strings.TrimPrefix(odataType, "#")
	parts := strings.Split(t, ".")
	if len(parts) >= 2 {
		t = parts[0] + "." + parts[len(parts)-1]
	}
	return "/redfish/v1/$metadata#" + t
}

// Link is a reference to another resource.
type Link struct {
	ODataID string `json:"@odata.id"`
}

// Status is a resource's state and health.
type Status struct {
	State  string `json:"State"`
	Health string `json:"Health,omitempty"`
}

func okStatus() Status { return Status{State: "Enabled", Health: "OK"} }

// Collection is a resource collection.
type Collection struct {
	Resource
	Members      []Link `json:"Members"`
	MembersCount int    `json:"Members@odata.count"`
}

func collection(uri, kind, name string, members []string) Collection {
	c := Collection{
		Resource:     resource(uri, "#"+kind+"."+kind, "", name),
		Members:      make([]Link, len(members)),
		MembersCount: len(members),
	}
	for i, m := range members {
		c.Members[i] = Link{m}
	}
	return c
}

// ServiceRoot is /redfish/v1.
type ServiceRoot struct {
	Resource
	RedfishVersion string `json:"RedfishVersion"`
	UUID           string `json:"UUID"`
	Product        string `json:"Product"`
	Vendor         string `json:"Vendor"`
	Systems        Link   `json:"Systems"`
	Managers       Link   `json:"Managers"`
	Chassis        Link   `json:"Chassis"`
	SessionService Link   `json:"SessionService"`
	Registries     Link   `json:"Registries"`
	Links          struct {
		Sessions Link `json:"Sessions"`
	} `json:"Links"`
}

func (s *Server) getVersions(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"v1": "/redfish/v1/"}, "")
	return nil
}

func (s *Server) getRoot(w http.ResponseWriter, r *http.Request) error {
	root := ServiceRoot{
		Resource:       resource("/redfish/v1", "#ServiceRoot.v1_5_0.ServiceRoot", "RootService", "Root Service"),
		RedfishVersion: "1.8.0",
		UUID:           s.opts.ServiceUUID,
		Product:        "govbmc",
		Vendor:         "govbmc",
		Systems:        Link{"/redfish/v1/Systems"},
		Managers:       Link{"/redfish/v1/Managers"},
		Chassis:        Link{"/redfish/v1/Chassis"},
		SessionService: Link{"/redfish/v1/SessionService"},
		Registries:     Link{"/redfish/v1/Registries"},
	}
	root.Links.Sessions = Link{sessionsURI}
	s.writeJSON(w, r, http.StatusOK, root, "")
	return nil
}

// ODataService is the OData service document.
type ODataService struct {
	ODataContext string         `json:"@odata.context"`
	Value        []ODataElement `json:"value"`
}

// ODataElement names one top-level resource in the service document.
type ODataElement struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	URL  string `json:"url"`
}

func (s *Server) getODataService(w http.ResponseWriter, r *http.Request) error {
	doc := ODataService{ODataContext: "/redfish/v1/$metadata", Value: []ODataElement{
		{"Service", "Singleton", "/redfish/v1/"},
		{"Systems", "Singleton", "/redfish/v1/Systems"},
		{"Chassis", "Singleton", "/redfish/v1/Chassis"},
		{"Managers", "Singleton", "/redfish/v1/Managers"},
		{"SessionService", "Singleton", "/redfish/v1/SessionService"},
		{"Sessions", "Singleton", sessionsURI},
	}}
	s.writeJSON(w, r, http.StatusOK, doc, "")
	return nil
}

func (s *Server) getSystems(w http.ResponseWriter, r *http.Request, p *principal) error {
	s.writeFleetCollection(w, r, p, "/redfish/v1/Systems", "ComputerSystemCollection", "Computer System Collection")
	return nil
}

func (s *Server) getManagers(w http.ResponseWriter, r *http.Request, p *principal) error {
	s.writeFleetCollection(w, r, p, "/redfish/v1/Managers", "ManagerCollection", "Manager Collection")
	return nil
}

func (s *Server) getChassisCollection(w http.ResponseWriter, r *http.Request, p *principal) error {
	s.writeFleetCollection(w, r, p, "/redfish/v1/Chassis", "ChassisCollection", "Chassis Collection")
	return nil
}

// collectionFlush is how much of a fleet-wide collection is gathered
// before it is written out.
const collectionFlush = 16 << 10

// collectionBufs are the buffers fleet-wide collections are written through.
var collectionBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2*collectionFlush); return &b }}

// writeFleetCollection answers the collection at uri of every system the
// principal may log into (a member uri/ID each): the same JSON as
// writeJSON of collection(...), written as the fleet is walked. With
// 10,000 nodes, building it first (a filtered copy of the fleet, a link
// string per member, the encoded document) left about 4 MiB of garbage per
// GET, which the GC let pile up to twice the live heap.
func (s *Server) writeFleetCollection(w http.ResponseWriter, r *http.Request, p *principal, uri, kind, name string) {
	head, err := marshalJSON(resource(uri, "#"+kind+"."+kind, "", name))
	if err != nil {
		s.encodingFailed(w, err)
		return
	}
	jsonHeader(w, "")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	bp := collectionBufs.Get().(*[]byte)
	buf := bytes.TrimSuffix(bytes.TrimSpace(head), []byte("}"))
	buf = append(append((*bp)[:0], buf...), `,"Members":[`...)
	prefix := uri + "/"
	n := 0
	for _, sys := range s.fleet.Systems() {
		if p.roleOn(sys) == RoleNone {
			continue
		}
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(append(buf, `{"@odata.id":`...), prefix, sys.ID)
		buf = append(buf, '}')
		n++
		if len(buf) >= collectionFlush {
			if _, err := w.Write(buf); err != nil {
				break // the client is gone
			}
			buf = buf[:0]
		}
	}
	buf = append(strconv.AppendInt(append(buf, `],"Members@odata.count":`...), int64(n), 10), "}\n"...)
	_, _ = w.Write(buf)
	*bp = buf[:0]
	collectionBufs.Put(bp)
}

// appendJSONString appends prefix+str as a JSON string, as writeJSON
// writes it.
func appendJSONString(buf []byte, prefix, str string) []byte {
	if !plainJSON(prefix) || !plainJSON(str) {
		raw, _ := marshalJSON(prefix + str) // a string always encodes
		return append(buf, bytes.TrimSuffix(raw, []byte("\n"))...)
	}
	return append(append(append(append(buf, '"'), prefix...), str...), '"')
}

// plainJSON reports whether str is printable ASCII that JSON takes as it is.
func plainJSON(str string) bool {
	for i := 0; i < len(str); i++ {
		if c := str[i]; c < 0x20 || c > 0x7E || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// marshalJSON encodes v as writeJSON sends it: HTML characters as they
// are, a newline at the end.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return buf.Bytes(), err
}

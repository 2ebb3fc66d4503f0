package redfish

import (
	"net/http"
	"strings"
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

// visible returns the systems a principal may log into.
func (s *Server) visible(p *principal) []System {
	all := s.fleet.Systems()
	out := all[:0:0]
	for _, sys := range all {
		if p.roleOn(sys) != RoleNone {
			out = append(out, sys)
		}
	}
	return out
}

func (s *Server) memberLinks(p *principal, prefix string) []string {
	vis := s.visible(p)
	out := make([]string, len(vis))
	for i, sys := range vis {
		out[i] = prefix + sys.ID
	}
	return out
}

func (s *Server) getSystems(w http.ResponseWriter, r *http.Request, p *principal) error {
	s.writeJSON(w, r, http.StatusOK, collection("/redfish/v1/Systems", "ComputerSystemCollection", "Computer System Collection", s.memberLinks(p, "/redfish/v1/Systems/")), "")
	return nil
}

func (s *Server) getManagers(w http.ResponseWriter, r *http.Request, p *principal) error {
	s.writeJSON(w, r, http.StatusOK, collection("/redfish/v1/Managers", "ManagerCollection", "Manager Collection", s.memberLinks(p, "/redfish/v1/Managers/")), "")
	return nil
}

func (s *Server) getChassisCollection(w http.ResponseWriter, r *http.Request, p *principal) error {
	s.writeJSON(w, r, http.StatusOK, collection("/redfish/v1/Chassis", "ChassisCollection", "Chassis Collection", s.memberLinks(p, "/redfish/v1/Chassis/")), "")
	return nil
}

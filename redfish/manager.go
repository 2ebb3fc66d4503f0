package redfish

import (
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// Manager is the BMC of one system.
type Manager struct {
	Resource
	ManagerType         string       `json:"ManagerType"`
	UUID                string       `json:"UUID"`
	Model               string       `json:"Model"`
	FirmwareVersion     string       `json:"FirmwareVersion"`
	DateTime            string       `json:"DateTime"`
	DateTimeLocalOffset string       `json:"DateTimeLocalOffset"`
	PowerState          string       `json:"PowerState"`
	Status              Status       `json:"Status"`
	NetworkProtocol     Link         `json:"NetworkProtocol"`
	VirtualMedia        *Link        `json:"VirtualMedia,omitempty"`
	Links               ManagerLinks `json:"Links"`
}

// ManagerLinks are what a manager manages.
type ManagerLinks struct {
	ManagerForServers []Link `json:"ManagerForServers"`
	ManagerForChassis []Link `json:"ManagerForChassis"`
}

// NetworkProtocol is the manager's network services.
type NetworkProtocol struct {
	Resource
	Status Status   `json:"Status"`
	IPMI   Protocol `json:"IPMI"`
	HTTPS  Protocol `json:"HTTPS"`
	HTTP   Protocol `json:"HTTP"`
}

// Protocol is one network service.
type Protocol struct {
	ProtocolEnabled bool `json:"ProtocolEnabled"`
	Port            int  `json:"Port,omitempty"`
}

// Chassis is the enclosure of one system.
type Chassis struct {
	Resource
	ChassisType  string       `json:"ChassisType"`
	Manufacturer string       `json:"Manufacturer,omitempty"`
	Model        string       `json:"Model,omitempty"`
	PowerState   string       `json:"PowerState"`
	Status       Status       `json:"Status"`
	Links        ChassisLinks `json:"Links"`
}

// ChassisLinks relate a chassis to its system and manager.
type ChassisLinks struct {
	ComputerSystems []Link `json:"ComputerSystems"`
	ManagedBy       []Link `json:"ManagedBy"`
}

var offsetRE = regexp.MustCompile(`^[+-]([01][0-9]|2[0-3]):[0-5][0-9]$`)

func zoneOf(offset string) *time.Location {
	if offset == "" || offset == "+00:00" || offset == "-00:00" {
		return time.UTC
	}
	t, err := time.Parse("-07:00", offset)
	if err != nil {
		return time.UTC
	}
	_, secs := t.Zone()
	return time.FixedZone(offset, secs)
}

func (s *Server) clock(name string) managerClock {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clocks[name]
	if c.zone == "" {
		c.zone = "+00:00"
	}
	return c
}

func (s *Server) renderManager(sys System) Manager {
	c := s.clock(sys.Name)
	now := s.opts.Now().Add(c.offset).In(zoneOf(c.zone))
	return Manager{
		Resource:            resource(managerURI(sys), "#Manager.v1_10_0.Manager", sys.ID, "Manager of "+sys.Name),
		ManagerType:         "BMC",
		UUID:                bmc.DeriveUUID("manager:" + sys.Name).String(),
		Model:               "govbmc",
		FirmwareVersion:     s.opts.FirmwareVersion,
		DateTime:            now.Format("2006-01-02T15:04:05-07:00"),
		DateTimeLocalOffset: c.zone,
		PowerState:          "On",
		Status:              okStatus(),
		NetworkProtocol:     Link{managerURI(sys) + "/NetworkProtocol"},
		VirtualMedia:        mediaLink("Managers", sys),
		Links: ManagerLinks{
			ManagerForServers: []Link{{systemURI(sys)}},
			ManagerForChassis: []Link{{chassisURI(sys)}},
		},
	}
}

// managerETag covers what a PATCH changes, not the ticking clock.
func managerETag(m Manager) string { return etagOf(m.DateTimeLocalOffset) }

func (s *Server) getManager(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	m := s.renderManager(c.sys)
	s.writeJSON(w, r, http.StatusOK, m, managerETag(m))
	return nil
}

func (s *Server) patchManager(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	const pDate, pOffset = "DateTime", "DateTimeLocalOffset"
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	m := s.renderManager(c.sys)
	if err := checkIfMatch(r, managerETag(m)); err != nil {
		return err
	}
	patch := map[string]any{}
	if err := splitPatch(body, served(m), []string{pDate, pOffset}, "", patch); err != nil {
		return err
	}
	clk := s.clock(c.sys.Name)
	if v, ok := patch[pOffset]; ok {
		str, isStr := v.(string)
		if !isStr {
			return errValueType(pOffset, fmt.Sprint(v))
		}
		if str == "Z" {
			str = "+00:00"
		}
		if !offsetRE.MatchString(str) {
			return propError("PropertyValueFormatError", pOffset, "The value "+str+" for the property "+pOffset+" is of a different format than the property can accept (+HH:MM).", str, pOffset)
		}
		clk.zone = str
	}
	if v, ok := patch[pDate]; ok {
		str, isStr := v.(string)
		if !isStr {
			return errValueType(pDate, fmt.Sprint(v))
		}
		t, err := time.Parse(time.RFC3339, str)
		if err != nil {
			return propError("PropertyValueFormatError", pDate, "The value "+str+" for the property "+pDate+" is of a different format than the property can accept (RFC 3339).", str, pDate)
		}
		clk.offset = t.Sub(s.opts.Now())
		// Within a second of the real clock is the real clock.
		if clk.offset > -time.Second && clk.offset < time.Second {
			clk.offset = 0
		}
	}
	s.mu.Lock()
	s.clocks[c.sys.Name] = clk
	s.mu.Unlock()
	m = s.renderManager(c.sys)
	s.writeJSON(w, r, http.StatusOK, m, managerETag(m))
	return nil
}

func (s *Server) getNetworkProtocol(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	np := NetworkProtocol{
		Resource: resource(managerURI(c.sys)+"/NetworkProtocol", "#ManagerNetworkProtocol.v1_5_0.ManagerNetworkProtocol", "NetworkProtocol", "Manager Network Protocol"),
		Status:   okStatus(),
		IPMI:     Protocol{ProtocolEnabled: c.sys.IPMIPort > 0, Port: c.sys.IPMIPort},
		HTTPS:    Protocol{ProtocolEnabled: s.opts.TLS},
		HTTP:     Protocol{ProtocolEnabled: !s.opts.TLS},
	}
	if s.opts.TLS {
		np.HTTPS.Port = s.opts.Port
	} else {
		np.HTTP.Port = s.opts.Port
	}
	s.writeJSON(w, r, http.StatusOK, np, "")
	return nil
}

func (s *Server) getChassis(w http.ResponseWriter, r *http.Request, c *sysCtx) error {
	ps, err := c.sys.Machine.PowerState(r.Context())
	if err != nil {
		return err
	}
	ch := Chassis{
		Resource:    resource(chassisURI(c.sys), "#Chassis.v1_10_0.Chassis", c.sys.ID, "Chassis of "+c.sys.Name),
		ChassisType: "RackMount",
		PowerState:  "Off",
		Status:      okStatus(),
		Links: ChassisLinks{
			ComputerSystems: []Link{{systemURI(c.sys)}},
			ManagedBy:       []Link{{managerURI(c.sys)}},
		},
	}
	if ps == bmc.PowerOn {
		ch.PowerState = "On"
	}
	if hw, ok, err := s.inventory(r, c.sys); err == nil && ok {
		ch.Manufacturer, ch.Model = hw.Manufacturer, hw.Model
	}
	s.writeJSON(w, r, http.StatusOK, ch, "")
	return nil
}

// Package redfish is govbmc's Redfish front end: one HTTP(S) handler that
// serves every node of the fleet as /redfish/v1/Systems/{id}, with a
// Manager and a Chassis per system, over the same bmc.Machine the IPMI
// front end drives. Credentials are the nodes' own users; their IPMI
// privileges map to Redfish roles.
//
// It imports only bmc and the standard library.
package redfish

import "github.com/govbmc/govbmc/bmc"

// System is one node as the Redfish front end sees it.
type System struct {
	// ID is the system's resource ID: the machine's UUID in text form
	// (what sushy-tools uses), or the node name when the UUID is unknown.
	ID string
	// Name is the node's name; it is accepted as an ID too.
	Name string
	// Users are the node's accounts; their privileges give their roles.
	Users []bmc.User
	// IPMIAddress and IPMIPort are where the node's IPMI listener is.
	IPMIAddress string
	IPMIPort    int
	// Machine is the node's running machine.
	Machine bmc.Machine
}

// Fleet is what the front end needs of the daemon's nodes. Implementations
// must be safe for concurrent use and should answer System in time
// independent of the fleet's size.
type Fleet interface {
	// Systems returns every node that has a running machine, sorted by name.
	Systems() []System
	// System finds a running node by its ID (machine UUID) or its name.
	System(id string) (System, bool)
}

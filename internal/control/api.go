// Package control is the management channel between vbmc and vbmcd: HTTP
// with JSON bodies over a unix socket (mode 0600) in the config directory,
// so that only the socket's owner can manage BMCs.
package control

import (
	"os"
	"path/filepath"

	"github.com/govbmc/govbmc/bmc"
)

// SocketName is the control socket's file name in the config directory.
const SocketName = "vbmcd.sock"

// Masked stands for a secret in everything the API returns.
const Masked = bmc.Masked

// NodeInfo is one BMC as the API reports it: its configuration with every
// secret masked, and its state.
type NodeInfo struct {
	Node     bmc.Node   `json:"node"`
	Status   bmc.Status `json:"status"`
	Reason   string     `json:"reason,omitempty"`
	Active   bool       `json:"active"`
	ReadOnly bool       `json:"read_only"`
}

// AddRequest asks the daemon to register a BMC.
type AddRequest struct {
	Node bmc.Node `json:"node"`
}

// DomainsRequest asks for the machines backend settings reach.
type DomainsRequest struct {
	Backend bmc.Backend `json:"backend"`
}

// DomainsResponse lists the domains of a hypervisor.
type DomainsResponse struct {
	Domains []string `json:"domains"`
}

// VersionResponse is the daemon's version.
type VersionResponse struct {
	Version string `json:"version"`
}

// errorResponse carries a refusal's message.
type errorResponse struct {
	Error string `json:"error"`
}

// info builds the masked view of a node status.
func info(st bmc.NodeStatus) NodeInfo {
	n := st.Node
	users := make([]bmc.User, len(n.Users))
	for i, u := range n.Users {
		u.Password = Masked
		users[i] = u
	}
	n.Users = users
	n.Backend = n.Backend.Redacted()
	return NodeInfo{Node: n, Status: st.Status, Reason: st.Reason, Active: st.Active, ReadOnly: st.ReadOnly}
}

// DefaultConfigDir is where vbmcd keeps its files and socket, and where vbmc
// looks for them: $VBMC_CONFIG_DIR, else ~/.vbmc (VirtualBMC's place).
func DefaultConfigDir() string {
	if d := os.Getenv("VBMC_CONFIG_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".vbmc"
	}
	return filepath.Join(home, ".vbmc")
}

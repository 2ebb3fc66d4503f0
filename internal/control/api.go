// Package control is the management channel between vbmc and vbmcd: HTTP
// with JSON bodies over a unix socket (mode 0600) in the config directory,
// so that only the socket's owner can manage BMCs.
package control

import (
	"errors"
	"net/http"

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
	// RedfishURL is the node's ComputerSystem on the daemon's Redfish
	// service, when Redfish is on; in the answers about one node (show,
	// add, start, stop), not in list's.
	RedfishURL string `json:"redfish_url,omitempty"`
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

// ErrorCode says, machine-readably, which refusal an error response is.
type ErrorCode string

// The codes an error response carries; Client maps them back to the
// manager's typed errors.
const (
	CodeNotFound           ErrorCode = "not_found"           // bmc.ErrNotFound
	CodeExists             ErrorCode = "exists"              // bmc.ErrExists
	CodeReadOnly           ErrorCode = "read_only"           // bmc.ErrReadOnly
	CodePortInUse          ErrorCode = "port_in_use"         // *bmc.PortInUseError
	CodeInvalid            ErrorCode = "invalid"             // *bmc.FieldError
	CodeMachineUnavailable ErrorCode = "machine_unavailable" // *bmc.MachineError
	CodeBadRequest         ErrorCode = "bad_request"         // the request did not decode
	CodeFailed             ErrorCode = "failed"              // anything else
)

// errorResponse carries a refusal: its message, its code and what the
// code's typed error holds.
type errorResponse struct {
	Error  string       `json:"error"`
	Code   ErrorCode    `json:"code,omitempty"`
	Detail *ErrorDetail `json:"detail,omitempty"`
}

// ErrorDetail is what a typed error holds beyond its message.
type ErrorDetail struct {
	// Node is the node refused.
	Node string `json:"node,omitempty"`
	// Field is the field at fault (CodeInvalid) and Reason what is wrong with it.
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Address, Port and Holder are the listen address taken and the node
	// holding it, "" for another process (CodePortInUse).
	Address string `json:"address,omitempty"`
	Port    int    `json:"port,omitempty"`
	Holder  string `json:"holder,omitempty"`
}

// sentinels pairs the codes of plain sentinel errors with their errors and
// HTTP statuses; encode and decode both read it.
var sentinels = []struct {
	code   ErrorCode
	err    error
	status int
}{
	{CodeNotFound, bmc.ErrNotFound, http.StatusNotFound},
	{CodeExists, bmc.ErrExists, http.StatusConflict},
	{CodeReadOnly, bmc.ErrReadOnly, http.StatusConflict},
	{CodePortInUse, bmc.ErrPortInUse, http.StatusConflict},
	{CodeMachineUnavailable, bmc.ErrMachineUnavailable, http.StatusBadRequest},
}

// encodeError is the status and body for a manager error.
func encodeError(err error) (int, errorResponse) {
	resp := errorResponse{Error: err.Error(), Code: CodeFailed}
	status := http.StatusInternalServerError
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			resp.Code, status = s.code, s.status
			break
		}
	}
	var fe *bmc.FieldError
	var pe *bmc.PortInUseError
	var me *bmc.MachineError
	switch {
	case errors.As(err, &pe):
		resp.Detail = &ErrorDetail{Node: pe.Node, Address: pe.Address, Port: pe.Port, Holder: pe.Holder}
	case errors.As(err, &me):
		resp.Detail = &ErrorDetail{Node: me.Node, Reason: me.Err.Error()}
	case resp.Code == CodeFailed && errors.As(err, &fe):
		resp.Code, status = CodeInvalid, http.StatusBadRequest
		resp.Detail = &ErrorDetail{Node: fe.Node, Field: fe.Field, Reason: fe.Err.Error()}
	}
	return status, resp
}

// decodeError is the typed error a response's code stands for, nil for
// CodeFailed and unknown codes.
func decodeError(resp errorResponse) error {
	d := resp.Detail
	if d == nil {
		d = &ErrorDetail{}
	}
	switch resp.Code {
	case CodePortInUse:
		return &bmc.PortInUseError{Node: d.Node, Address: d.Address, Port: d.Port, Holder: d.Holder}
	case CodeMachineUnavailable:
		return &bmc.MachineError{Node: d.Node, Err: errors.New(d.Reason)}
	case CodeInvalid:
		return &bmc.FieldError{Node: d.Node, Field: d.Field, Err: errors.New(d.Reason)}
	}
	for _, s := range sentinels {
		if s.code == resp.Code {
			return s.err
		}
	}
	return nil
}

// info builds the view of a node status the API answers: every secret
// masked unless show_passwords says otherwise.
func (s *Server) info(st bmc.NodeStatus) NodeInfo {
	n := st.Node
	if !s.showPasswords {
		users := make([]bmc.User, len(n.Users))
		for i, u := range n.Users {
			u.Password = Masked
			users[i] = u
		}
		n.Users = users
		n.Backend = n.Backend.Redacted()
		if n.Kg != "" {
			n.Kg = Masked
		}
	}
	return NodeInfo{Node: n, Status: st.Status, Reason: st.Reason, Active: st.Active, ReadOnly: st.ReadOnly}
}

package bmc

import (
	"errors"
	"fmt"
	"net"
)

// Errors the manager returns; match them with errors.Is (and
// *PortInUseError, *MachineError, *FieldError with errors.As).
var (
	// ErrNotFound: no node of that name.
	ErrNotFound = errors.New("no such node")
	// ErrExists: a node of that name is already there.
	ErrExists = errors.New("already exists")
	// ErrReadOnly: the node comes from a fleet file and cannot be changed.
	ErrReadOnly = errors.New("is defined in the fleet file and is read-only")
	// ErrPortInUse: the node's listen address is taken; see PortInUseError.
	ErrPortInUse = errors.New("port in use")
	// ErrMachineUnavailable: the machine a node is added for is not there
	// or cannot be reached; see MachineError.
	ErrMachineUnavailable = errors.New("machine unavailable")
)

// PortInUseError is a node whose listen address another node or another
// process holds. It is ErrPortInUse.
type PortInUseError struct {
	// Node is the node refused.
	Node string
	// Address and Port are what it would listen on.
	Address string
	Port    int
	// Holder is the node that holds the port, "" for another process.
	Holder string
	// Err is why binding failed, when another process holds the port.
	Err error
}

// Error names the node, the port and its holder.
func (e *PortInUseError) Error() string {
	if e.Holder != "" {
		return fmt.Sprintf("port %d on %s for %q is already used by the BMC of %q", e.Port, e.Address, e.Node, e.Holder)
	}
	msg := fmt.Sprintf("%q: port %d on %s is already in use by another process", e.Node, e.Port, e.Address)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrPortInUse) true.
func (e *PortInUseError) Is(target error) bool { return target == ErrPortInUse }

// Unwrap returns the bind error.
func (e *PortInUseError) Unwrap() error { return e.Err }

// MachineError is a node whose machine could not be found or reached when
// it was added. It is ErrMachineUnavailable.
type MachineError struct {
	// Node is the node refused.
	Node string
	// Err is the backend's reason.
	Err error
}

// Error names the node and the reason.
func (e *MachineError) Error() string { return fmt.Sprintf("cannot add %q: %v", e.Node, e.Err) }

// Is makes errors.Is(err, ErrMachineUnavailable) true.
func (e *MachineError) Is(target error) bool { return target == ErrMachineUnavailable }

// Unwrap returns the backend's reason.
func (e *MachineError) Unwrap() error { return e.Err }

// UDPPortFree reports, as a *PortInUseError, a node's listen address that
// another process holds; it binds the address for an instant.
func UDPPortFree(n Node) error {
	c, err := net.ListenPacket("udp", n.ListenAddr())
	if err != nil {
		return &PortInUseError{Node: n.Name, Address: n.Address, Port: n.Port, Err: err}
	}
	return c.Close()
}

package bmc

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
)

// Limits the IPMI wire format puts on credentials (IPMI 2.0 §22.28, §22.29).
const (
	MaxUsernameLen = 16
	MaxPasswordLen = 20
	maxUsers       = 15 // user IDs 2..16; ID 1 is the anonymous user and is never enabled
	// maxV15PasswordLen is the longest password IPMI 1.5 sessions carry.
	maxV15PasswordLen = 16
)

// DefaultCipherSuites are the RMCP+ cipher suites a node offers when its
// config names none: 3 (SHA1/SHA1-96/AES) and 17 (SHA256/SHA256-128/AES).
var DefaultCipherSuites = []int{3, 17}

// supportedCipherSuites are the suites the IPMI front end can negotiate end
// to end. Suite 0 (no authentication) is deliberately absent: a BMC that
// accepts it lets anyone in who knows a user name.
var supportedCipherSuites = map[int]bool{1: true, 2: true, 3: true, 15: true, 16: true, 17: true}

// Node is the configuration of one virtual BMC: where it listens, who may log
// in, how it speaks IPMI and which machine it manages.
type Node struct {
	// Name identifies the node (backends may default a machine name from it).
	Name string `yaml:"name" json:"name"`
	// Address is the IP address the node's UDP listener binds ("::" or "0.0.0.0" for all).
	Address string `yaml:"address" json:"address"`
	// Port is the UDP port of the node's listener (623 on a real BMC).
	Port int `yaml:"port" json:"port"`
	// Users are the accounts that may open IPMI sessions.
	Users []User `yaml:"users" json:"users"`
	// CipherSuites lists the RMCP+ cipher suite IDs offered; empty means DefaultCipherSuites.
	CipherSuites []int `yaml:"cipher_suites,omitempty" json:"cipher_suites,omitempty"`
	// DisableIPMIv15 turns off IPMI 1.5 (ipmitool -I lan, freeipmi's default) sessions.
	DisableIPMIv15 bool `yaml:"disable_ipmi_v15,omitempty" json:"disable_ipmi_v15,omitempty"`
	// Identity is what Get Device ID and Get System GUID report.
	Identity Identity `yaml:"identity,omitempty" json:"identity,omitempty"`
	// Kg is the BMC key in hex, as `ipmitool -y` takes it: RAKP then
	// derives the session keys from it instead of the user's password
	// (IPMI 2.0 §13.31). Empty: no BMC key.
	Kg string `yaml:"kg,omitempty" json:"kg,omitempty"`
	// Backend selects and configures the managed machine.
	Backend Backend `yaml:"backend" json:"backend"`
}

// User is one IPMI account of a node.
type User struct {
	// Name is the IPMI user name (1 to 16 bytes).
	Name string `yaml:"name" json:"name"`
	// Password is the IPMI password (1 to 20 bytes).
	Password string `yaml:"password" json:"password"`
	// Privilege is the highest privilege level the user may hold.
	Privilege Privilege `yaml:"privilege" json:"privilege"`
}

// Identity is the device identity a node reports.
type Identity struct {
	// ManufacturerID is the IANA enterprise number in Get Device ID (0 means unspecified).
	ManufacturerID uint32 `yaml:"manufacturer_id,omitempty" json:"manufacturer_id,omitempty"`
	// ProductID is the product ID in Get Device ID.
	ProductID uint16 `yaml:"product_id,omitempty" json:"product_id,omitempty"`
	// UUID is the managed system's UUID for simulated machines; empty derives one from the node name.
	UUID string `yaml:"uuid,omitempty" json:"uuid,omitempty"`
}

// FieldError is a configuration error that names the node and the field at fault.
type FieldError struct {
	Node  string
	Field string
	Err   error
}

// Error names the node and the field.
func (e *FieldError) Error() string {
	if e.Node == "" {
		return fmt.Sprintf("%s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("node %q: %s: %v", e.Node, e.Field, e.Err)
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// EffectiveCipherSuites returns the cipher suites the node offers.
func (n *Node) EffectiveCipherSuites() []int {
	if len(n.CipherSuites) == 0 {
		return DefaultCipherSuites
	}
	return n.CipherSuites
}

// ListenAddr returns the host:port the node's UDP listener binds.
func (n *Node) ListenAddr() string {
	return net.JoinHostPort(n.Address, fmt.Sprint(n.Port))
}

// ApplyDefaults fills the fields a config may leave out; the backend's own
// defaults come from its registration.
func (n *Node) ApplyDefaults() {
	n.Backend.applyDefaults(n)
	for i := range n.Users {
		if n.Users[i].Privilege == 0 {
			n.Users[i].Privilege = PrivilegeAdministrator
		}
	}
}

// Validate checks one node on its own and returns a *FieldError naming the
// first field at fault.
func (n *Node) Validate() error {
	fe := func(field string, format string, args ...any) error {
		return &FieldError{Node: n.Name, Field: field, Err: fmt.Errorf(format, args...)}
	}
	if n.Name == "" {
		return fe("name", "missing")
	}
	if !nodeNameRE.MatchString(n.Name) {
		return fe("name", "%q must be 1-63 letters, digits, '.', '_' or '-'", n.Name)
	}
	if n.Address == "" {
		return fe("address", "missing")
	}
	if net.ParseIP(n.Address) == nil {
		return fe("address", "%q is not an IP address", n.Address)
	}
	if n.Port < 1 || n.Port > 65535 {
		return fe("port", "%d is not between 1 and 65535", n.Port)
	}
	if err := n.validateUsers(); err != nil {
		return err
	}
	seen := map[int]bool{}
	for _, cs := range n.CipherSuites {
		if cs == 0 {
			return fe("cipher_suites", "suite 0 (no authentication) is never allowed")
		}
		if !supportedCipherSuites[cs] {
			return fe("cipher_suites", "unknown or unsupported cipher suite %d (supported: 1, 2, 3, 15, 16, 17)", cs)
		}
		if seen[cs] {
			return fe("cipher_suites", "suite %d listed twice", cs)
		}
		seen[cs] = true
	}
	if _, err := ParseKg(n.Kg); err != nil {
		return fe("kg", "%v", err)
	}
	return n.Backend.validate(n)
}

func (n *Node) validateUsers() error {
	if len(n.Users) == 0 {
		return &FieldError{Node: n.Name, Field: "users", Err: errors.New("at least one user is required")}
	}
	if len(n.Users) > maxUsers {
		return &FieldError{Node: n.Name, Field: "users", Err: fmt.Errorf("at most %d users per node", maxUsers)}
	}
	seen := map[string]bool{}
	for i, u := range n.Users {
		field := fmt.Sprintf("users[%d]", i)
		fe := func(sub, format string, args ...any) error {
			return &FieldError{Node: n.Name, Field: field + "." + sub, Err: fmt.Errorf(format, args...)}
		}
		switch {
		case u.Name == "":
			return fe("name", "missing (anonymous users are not allowed)")
		case len(u.Name) > MaxUsernameLen:
			return fe("name", "%q is longer than %d bytes", u.Name, MaxUsernameLen)
		case seen[u.Name]:
			return fe("name", "user %q defined twice", u.Name)
		case u.Password == "":
			return fe("password", "missing for user %q", u.Name)
		case len(u.Password) > MaxPasswordLen:
			return fe("password", "longer than %d bytes for user %q", MaxPasswordLen, u.Name)
		case len(u.Password) > maxV15PasswordLen && !n.DisableIPMIv15:
			return fe("password", "longer than %d bytes for user %q: IPMI 1.5 cannot carry it (shorten it, or set disable_ipmi_v15)", maxV15PasswordLen, u.Name)
		case !u.Privilege.Valid():
			return fe("privilege", "must be user, operator or administrator")
		}
		seen[u.Name] = true
	}
	return nil
}

// ValidateFleet checks every node and the constraints between them: unique
// names and no two nodes whose listeners would collide on a port.
func ValidateFleet(nodes []Node) error {
	names := make(map[string]bool, len(nodes))
	byPort := make(map[int][]*Node, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		if err := n.Validate(); err != nil {
			return err
		}
		if names[n.Name] {
			return &FieldError{Node: n.Name, Field: "name", Err: errors.New("defined twice")}
		}
		names[n.Name] = true
		ip := net.ParseIP(n.Address)
		for _, other := range byPort[n.Port] {
			if bindsOverlap(ip, net.ParseIP(other.Address)) {
				return &FieldError{Node: n.Name, Field: "port", Err: fmt.Errorf("%s collides with node %q on %s", n.ListenAddr(), other.Name, other.ListenAddr())}
			}
		}
		byPort[n.Port] = append(byPort[n.Port], n)
	}
	return nil
}

// bindsOverlap reports whether UDP sockets bound to a and b on the same port
// collide: the same address, "::" (dual-stack, every address), or 0.0.0.0
// and any IPv4 address.
func bindsOverlap(a, b net.IP) bool {
	if a.Equal(b) {
		return true
	}
	v4wild := func(x, y net.IP) bool { return x.Equal(net.IPv4zero) && y.To4() != nil }
	v6wild := func(x net.IP) bool { return x.Equal(net.IPv6unspecified) && x.To4() == nil }
	return v6wild(a) || v6wild(b) || v4wild(a, b) || v4wild(b, a)
}

// Privilege is an IPMI privilege level.
type Privilege uint8

// The privilege levels a user can be given (IPMI 2.0 Table 22-29).
const (
	PrivilegeUser          Privilege = 2
	PrivilegeOperator      Privilege = 3
	PrivilegeAdministrator Privilege = 4
)

// Valid reports whether p is one of the levels a user may be given.
func (p Privilege) Valid() bool {
	return p >= PrivilegeUser && p <= PrivilegeAdministrator
}

// String returns the name ipmitool uses for the level.
func (p Privilege) String() string {
	switch p {
	case PrivilegeUser:
		return "USER"
	case PrivilegeOperator:
		return "OPERATOR"
	case PrivilegeAdministrator:
		return "ADMINISTRATOR"
	}
	return fmt.Sprintf("Privilege(%d)", uint8(p))
}

// ParsePrivilege reads a privilege level name, as ipmitool's -L takes it
// (case-insensitive, "admin" accepted for ADMINISTRATOR).
func ParsePrivilege(s string) (Privilege, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "user":
		return PrivilegeUser, nil
	case "operator":
		return PrivilegeOperator, nil
	case "administrator", "admin":
		return PrivilegeAdministrator, nil
	}
	return 0, fmt.Errorf("unknown privilege %q (want user, operator or administrator)", s)
}

// UnmarshalText lets config decoders read a privilege by name.
func (p *Privilege) UnmarshalText(b []byte) error {
	v, err := ParsePrivilege(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// MarshalText writes a privilege by name.
func (p Privilege) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("invalid privilege %d", uint8(p))
	}
	return []byte(strings.ToLower(p.String())), nil
}

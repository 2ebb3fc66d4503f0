// Package sasl is the client side of the SASL mechanisms libvirtd offers
// for password logins: DIGEST-MD5 (RFC 2831) with its confidentiality
// layer, which libvirtd demands over plain TCP, and SCRAM-SHA-256 /
// SCRAM-SHA-1 (RFC 5802, 7677, on github.com/xdg-go/scram), libvirt's
// recommendation when TLS already encrypts. It knows nothing of libvirt's
// RPC: the caller carries the exchanged messages.
package sasl

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// Client is one SASL authentication exchange, client side.
type Client interface {
	// Mechanism is the IANA name of the mechanism, as sent to the server.
	Mechanism() string
	// Start returns the initial response; nil means the mechanism has
	// none (the server speaks first).
	Start() ([]byte, error)
	// Step answers a server challenge. The server's final message (its
	// proof that it knows the password too) is also given to Step, which
	// then returns nil and Done reports true.
	Step(challenge []byte) ([]byte, error)
	// Done reports whether the server has proven itself.
	Done() bool
	// SSF is the strength in bits of the security layer the exchange
	// negotiated, 0 for none.
	SSF() int
	// Wrap returns conn with the negotiated security layer on it (conn
	// itself when there is none). Call it once, after Done.
	Wrap(conn net.Conn) net.Conn
}

// Options say who logs in, to what, and what protection is needed.
type Options struct {
	Username string
	Password string
	// Service and Host make the DIGEST-MD5 digest-uri "service/host"
	// (libvirt: "libvirt" and the host of the URI).
	Service string
	Host    string
	// MinSSF is the least security-layer strength acceptable: libvirt
	// asks 56 bits over plain TCP and none over TLS or a unix socket.
	MinSSF int
}

// ErrNoMechanism means the server offers nothing this package can use
// with the options given.
var ErrNoMechanism = errors.New("no usable SASL mechanism")

// preference lists the supported mechanisms, best first when no security
// layer is needed. DIGEST-MD5 is the only one that brings a layer.
var preference = []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "DIGEST-MD5"}

// New picks a mechanism from the server's list (space or comma separated,
// as libvirt's AuthSaslInit returns it) and starts a client for it.
func New(offered string, o Options) (Client, error) {
	if o.Username == "" {
		return nil, errors.New("sasl: no username")
	}
	have := map[string]bool{}
	for _, m := range strings.FieldsFunc(offered, func(r rune) bool { return r == ' ' || r == ',' }) {
		have[strings.ToUpper(m)] = true
	}
	for _, m := range preference {
		if !have[m] {
			continue
		}
		switch {
		case m == "DIGEST-MD5":
			return newDigestMD5(o), nil
		case o.MinSSF > 0:
			// SCRAM has no security layer.
		case m == "SCRAM-SHA-256", m == "SCRAM-SHA-1":
			return newSCRAM(m, o)
		}
	}
	need := ""
	if o.MinSSF > 0 {
		need = fmt.Sprintf(" with a security layer of at least %d bits (only DIGEST-MD5 has one)", o.MinSSF)
	}
	return nil, fmt.Errorf("%w: the server offers %q, need one of %s%s", ErrNoMechanism, offered, strings.Join(preference, ", "), need)
}

package sasl

import (
	"fmt"
	"net"

	"github.com/xdg-go/scram"
)

// scramClient adapts github.com/xdg-go/scram's conversation (SASLprep,
// nonces, proofs, the server signature check) to Client. SCRAM brings no
// security layer: it is for connections TLS already protects.
type scramClient struct {
	name string
	conv *scram.ClientConversation
}

func newSCRAM(mech string, o Options) (*scramClient, error) {
	hash := scram.SHA256
	if mech == "SCRAM-SHA-1" {
		hash = scram.SHA1
	}
	c, err := hash.NewClient(o.Username, o.Password, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mech, err)
	}
	return &scramClient{name: mech, conv: c.NewConversation()}, nil
}

func (s *scramClient) Mechanism() string { return s.name }

// Start is the client-first message: SCRAM's client speaks first.
func (s *scramClient) Start() ([]byte, error) { return s.Step(nil) }

func (s *scramClient) Step(challenge []byte) ([]byte, error) {
	out, err := s.conv.Step(string(challenge))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	if s.conv.Done() {
		if !s.conv.Valid() {
			return nil, fmt.Errorf("%s: the server did not prove it knows the password", s.name)
		}
		return nil, nil
	}
	return []byte(out), nil
}

func (s *scramClient) Done() bool { return s.conv.Done() && s.conv.Valid() }

func (s *scramClient) SSF() int { return 0 }

func (s *scramClient) Wrap(conn net.Conn) net.Conn { return conn }

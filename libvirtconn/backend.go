package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/govbmc/govbmc/bmc"
)

// BackendType is the libvirt backend's name: a node's backend "type".
const BackendType = "libvirt"

// DefaultURI is the hypervisor a libvirt node manages when it names none.
const DefaultURI = "qemu:///system"

// Config is a libvirt node's backend settings, written flat beside "type"
// in fleet files and stored nodes.
type Config struct {
	// URI is the libvirt connection URI; empty means DefaultURI.
	URI string `yaml:"uri,omitempty" json:"uri,omitempty"`
	// Domain is the libvirt domain name or UUID; empty means the node name.
	Domain string `yaml:"domain,omitempty" json:"domain,omitempty"`
	// Keyfile is the SSH private key for qemu+ssh URIs (a keyfile
	// parameter in the URI wins).
	Keyfile string `yaml:"keyfile,omitempty" json:"keyfile,omitempty"`
	// KnownHosts is the known_hosts file for qemu+ssh URIs (a known_hosts
	// parameter in the URI wins).
	KnownHosts string `yaml:"known_hosts,omitempty" json:"known_hosts,omitempty"`
	// SASLUsername is the SASL user for qemu+tcp and qemu+tls URIs.
	SASLUsername string `yaml:"sasl_username,omitempty" json:"sasl_username,omitempty"`
	// SASLPassword is the SASL password for qemu+tcp and qemu+tls URIs.
	SASLPassword string `yaml:"sasl_password,omitempty" json:"sasl_password,omitempty"`
}

var _ bmc.Prober = (*Domain)(nil)

func init() {
	bmc.RegisterBackend(bmc.BackendSpec[Config]{
		Name: BackendType,
		Defaults: func(n *bmc.Node, c Config) Config {
			if c.URI == "" {
				c.URI = DefaultURI
			}
			if c.Domain == "" {
				c.Domain = n.Name
			}
			return c
		},
		Validate: func(_ *bmc.Node, c Config) error { return c.Validate() },
		Redact: func(c Config) Config {
			if c.SASLPassword != "" {
				c.SASLPassword = bmc.Masked
			}
			if u, err := url.Parse(c.URI); err == nil {
				c.URI = u.Redacted()
			}
			return c
		},
		New: func(log *slog.Logger) bmc.Driver { return &driver{pool: NewPool(log, 0), log: log} },
	})
}

// Validate checks the settings without connecting; a *bmc.FieldError names
// the field at fault.
func (c Config) Validate() error {
	fe := func(field string, err error) error { return &bmc.FieldError{Field: "backend." + field, Err: err} }
	if c.URI == "" {
		return fe("uri", errors.New("missing"))
	}
	if (c.SASLUsername == "") != (c.SASLPassword == "") {
		return fe("sasl_username", errors.New("sasl_username and sasl_password go together"))
	}
	if _, err := c.ParseURI(); err != nil {
		return fe("uri", err)
	}
	return nil
}

// ParseURI reads the settings' URI, with Keyfile and KnownHosts applied
// where the URI has no parameter of its own.
func (c Config) ParseURI() (*URI, error) {
	u, err := ParseURI(c.URI)
	if err != nil {
		return nil, err
	}
	for _, p := range []struct {
		name, value string
		field       *string
	}{{"keyfile", c.Keyfile, &u.Keyfile}, {"known_hosts", c.KnownHosts, &u.KnownHosts}} {
		if p.value == "" || *p.field != "" {
			continue
		}
		if !allowedParams[u.Transport][p.name] {
			return nil, fmt.Errorf("libvirt URI %s: %s not supported with transport %s", redacted(c.URI), p.name, u.Transport)
		}
		*p.field = p.value
	}
	return u, nil
}

// Credentials are the settings' SASL credentials.
func (c Config) Credentials() Credentials {
	return Credentials{SASLUsername: c.SASLUsername, SASLPassword: c.SASLPassword}
}

// Connect returns the pool's shared connection for the settings; each one
// is matched by a Release.
func (c Config) Connect(p *Pool) (*Conn, error) {
	u, err := c.ParseURI()
	if err != nil {
		return nil, err
	}
	return p.GetURI(u, c.Credentials())
}

// driver is the libvirt backend in one process: nodes on the same
// hypervisor share one connection from its pool.
type driver struct {
	pool *Pool
	log  *slog.Logger
}

var _ bmc.MachineLister = (*driver)(nil)

func settings(b bmc.Backend) (Config, error) {
	c, ok := b.Config.(Config)
	if !ok {
		return Config{}, fmt.Errorf("backend %q: settings of type %T, want libvirtconn.Config", b.Type, b.Config)
	}
	return c, nil
}

// NewMachine returns the Domain of node n.
func (d *driver) NewMachine(_ context.Context, n bmc.Node) (bmc.Machine, error) {
	c, err := settings(n.Backend)
	if err != nil {
		return nil, err
	}
	conn, err := c.Connect(d.pool)
	if err != nil {
		return nil, err
	}
	return NewDomain(conn, c.Domain, d.log.With("node", n.Name)), nil
}

// ListMachines names the domains of the hypervisor b reaches.
func (d *driver) ListMachines(ctx context.Context, b bmc.Backend) ([]string, error) {
	c, err := settings(b)
	if err != nil {
		return nil, err
	}
	conn, err := c.Connect(d.pool)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	return conn.Domains(ctx)
}

// Close closes every connection of the pool.
func (d *driver) Close() error { return d.pool.Close() }

package bmc

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// BackendSim is the built-in backend: a simulated server in memory.
const BackendSim = "sim"

// DefaultSoftOffDelay is how long a simulated guest takes to shut down after
// an ACPI soft-off request.
const DefaultSoftOffDelay = time.Second

// SimConfig is the settings of a BackendSim node.
type SimConfig struct {
	// SoftOffDelay is how long the simulated guest takes to honour a soft off.
	SoftOffDelay time.Duration `yaml:"soft_off_delay,omitempty" json:"soft_off_delay,omitempty"`
}

func init() {
	RegisterBackend(BackendSpec[SimConfig]{
		Name: BackendSim,
		Defaults: func(_ *Node, c SimConfig) SimConfig {
			if c.SoftOffDelay == 0 {
				c.SoftOffDelay = DefaultSoftOffDelay
			}
			return c
		},
		Validate: func(n *Node, c SimConfig) error {
			if c.SoftOffDelay < 0 {
				return &FieldError{Field: "backend.soft_off_delay", Err: errors.New("must not be negative")}
			}
			if n.Identity.UUID != "" {
				if _, err := ParseUUID(n.Identity.UUID); err != nil {
					return &FieldError{Field: "identity.uuid", Err: err}
				}
			}
			return nil
		},
		New: func(*slog.Logger) Driver { return simDriver{} },
	})
}

// simDriver builds simulated machines; they share nothing.
type simDriver struct{}

func (simDriver) NewMachine(_ context.Context, n Node) (Machine, error) { return NewSimMachine(n) }

func (simDriver) Close() error { return nil }

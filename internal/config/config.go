// Package config reads vbmcd's declarative fleet file (YAML) into nodes,
// refusing unknown keys and invalid nodes with a message naming the node
// and the field.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/govbmc/govbmc/bmc"
	"go.yaml.in/yaml/v3"
)

// Fleet is the top level of a fleet file.
type Fleet struct {
	// Nodes are the BMCs to serve.
	Nodes []bmc.Node `yaml:"nodes"`
}

// Load reads and validates a fleet file.
func Load(path string) ([]bmc.Node, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	nodes, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return nodes, nil
}

// Parse decodes and validates fleet YAML, applying defaults.
func Parse(raw []byte) ([]bmc.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var f Fleet
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty config: no nodes")
		}
		return nil, fmt.Errorf("parse: %w", err)
	}
	if len(f.Nodes) == 0 {
		return nil, errors.New("no nodes defined (want a top-level 'nodes:' list)")
	}
	for i := range f.Nodes {
		f.Nodes[i].ApplyDefaults()
	}
	if err := bmc.ValidateFleet(f.Nodes); err != nil {
		return nil, err
	}
	return f.Nodes, nil
}

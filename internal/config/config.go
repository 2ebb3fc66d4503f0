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
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/govbmc/govbmc/bmc"
	"go.yaml.in/yaml/v3"
)

// Fleet is the top level of a fleet file.
type Fleet struct {
	// MetricsAddress is where vbmcd serves Prometheus metrics (host:port);
	// empty means off. vbmcd's --metrics-address wins.
	MetricsAddress string `yaml:"metrics_address,omitempty"`
	// Redfish turns on the daemon's Redfish listener for every node.
	Redfish Redfish `yaml:"redfish,omitempty"`
	// VirtualMedia bounds the daemon's virtual media downloads.
	VirtualMedia VirtualMedia `yaml:"virtual_media,omitempty"`
	// Nodes are the BMCs to serve.
	Nodes []bmc.Node `yaml:"nodes"`
}

// Load reads and validates a fleet file's nodes.
func Load(path string) ([]bmc.Node, error) {
	f, err := LoadFleet(path)
	return f.Nodes, err
}

// LoadFleet reads and validates a fleet file. Relative file names in it
// are taken from the file's directory.
func LoadFleet(path string) (Fleet, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Fleet{}, fmt.Errorf("read config: %w", err)
	}
	f, err := ParseFleet(raw)
	if err != nil {
		return Fleet{}, fmt.Errorf("config %s: %w", path, err)
	}
	f.resolvePaths(filepath.Dir(path))
	return f, nil
}

// Parse decodes and validates fleet YAML's nodes; see ParseFleet.
func Parse(raw []byte) ([]bmc.Node, error) {
	f, err := ParseFleet(raw)
	return f.Nodes, err
}

// ParseFleet decodes and validates fleet YAML, applying defaults. Each
// node's backend settings are read and checked by the backend its type
// names, so a program registers its backends (imports their packages)
// first.
func ParseFleet(raw []byte) (Fleet, error) {
	var tree yaml.Node
	if err := yaml.Unmarshal(raw, &tree); err != nil {
		return Fleet{}, fmt.Errorf("parse: %w", err)
	}
	items := nodeItems(&tree)
	if err := checkPrivileges(items); err != nil {
		return Fleet{}, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var f Fleet
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return Fleet{}, errors.New("empty config: no nodes")
		}
		return Fleet{}, locate(err, items)
	}
	if len(f.Nodes) == 0 {
		return Fleet{}, errors.New("no nodes defined (want a top-level 'nodes:' list)")
	}
	if err := f.checkDaemon(); err != nil {
		return Fleet{}, err
	}
	for i := range f.Nodes {
		f.Nodes[i].ApplyDefaults()
	}
	if err := bmc.ValidateFleet(f.Nodes); err != nil {
		return Fleet{}, err
	}
	return f, nil
}

// nodeItems returns the YAML nodes of the entries of the top-level "nodes" list.
func nodeItems(doc *yaml.Node) []*yaml.Node {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if v := mapValue(root, "nodes"); v != nil && v.Kind == yaml.SequenceNode {
		return v.Content
	}
	return nil
}

// mapValue returns the value of key in a YAML mapping, or nil.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func itemName(item *yaml.Node) string {
	if v := mapValue(item, "name"); v != nil {
		return v.Value
	}
	return ""
}

// checkPrivileges validates users[].privilege with its location: the YAML
// decoder reports a bad value from a text unmarshaler without any.
func checkPrivileges(items []*yaml.Node) error {
	for _, item := range items {
		users := mapValue(item, "users")
		if users == nil || users.Kind != yaml.SequenceNode {
			continue
		}
		for i, u := range users.Content {
			p := mapValue(u, "privilege")
			if p == nil {
				continue
			}
			if _, err := bmc.ParsePrivilege(p.Value); err != nil {
				return &bmc.FieldError{Node: itemName(item), Field: fmt.Sprintf("users[%d].privilege", i), Err: fmt.Errorf("line %d: %w", p.Line, err)}
			}
		}
	}
	return nil
}

var lineRE = regexp.MustCompile(`line (\d+):`)

// locate prefixes a decoding error with the node whose entry holds the line
// the decoder names.
func locate(err error, items []*yaml.Node) error {
	m := lineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("parse: %w", err)
	}
	line, _ := strconv.Atoi(m[1])
	name := ""
	for _, item := range items {
		if item.Line > line {
			break
		}
		name = itemName(item)
	}
	if name == "" {
		return fmt.Errorf("parse: %w", err)
	}
	return fmt.Errorf("node %q: %w", name, err)
}

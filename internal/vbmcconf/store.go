package vbmcconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/libvirtconn"
)

// FromNode is the VirtualBMC file of a node VirtualBMC itself could serve:
// a libvirt node with one administrator and none of the settings only
// govbmc has (cipher suites, identity, a BMC key, SSH key files, more
// users). ok is
// false for any other node. ToNode reads the file back as the same node.
func FromNode(n bmc.Node, active bool) (nf NodeFile, ok bool) {
	lv, isLibvirt := n.Backend.Config.(libvirtconn.Config)
	if n.Backend.Type != libvirtconn.BackendType || !isLibvirt || len(n.Users) != 1 ||
		n.Users[0].Privilege != bmc.PrivilegeAdministrator || len(n.CipherSuites) > 0 ||
		n.Identity != (bmc.Identity{}) || n.Kg != "" || lv.Keyfile != "" || lv.KnownHosts != "" ||
		n.DisableIPMIv15 != (len(n.Users[0].Password) > maxV15Password) {
		return NodeFile{}, false
	}
	nf = NodeFile{
		Name: n.Name, Username: n.Users[0].Name, Password: n.Users[0].Password,
		Address: n.Address, Port: n.Port, DomainName: lv.Domain, LibvirtURI: lv.URI,
		LibvirtSASLUsername: lv.SASLUsername, LibvirtSASLPassword: lv.SASLPassword, Active: active,
	}
	// configparser strips what surrounds a value and ends it at a line break.
	for _, v := range []string{nf.Username, nf.Password, nf.Address, nf.DomainName, nf.LibvirtURI, nf.LibvirtSASLUsername, nf.LibvirtSASLPassword} {
		if strings.TrimSpace(v) != v || strings.ContainsAny(v, "\r\n") {
			return NodeFile{}, false
		}
	}
	return nf, true
}

// WriteNode writes a node's folder and file (atomically) as VirtualBMC's
// `vbmc add` does: configparser's layout, "%" escaped as "%%", the SASL
// keys only when set, active as True or False.
func WriteNode(dir string, nf NodeFile) error {
	folder := filepath.Join(dir, nf.Name)
	if err := os.MkdirAll(folder, 0o750); err != nil {
		return fmt.Errorf("write %s: %w", folder, err)
	}
	var b strings.Builder
	b.WriteString("[" + NodeSection + "]\n")
	line := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, strings.ReplaceAll(v, "%", "%%")) }
	line("username", nf.Username)
	line("password", nf.Password)
	line("address", nf.Address)
	line("port", fmt.Sprint(nf.Port))
	line("domain_name", nf.DomainName)
	line("libvirt_uri", nf.LibvirtURI)
	if nf.LibvirtSASLUsername != "" {
		line("libvirt_sasl_username", nf.LibvirtSASLUsername)
		line("libvirt_sasl_password", nf.LibvirtSASLPassword)
	}
	line("active", pyBool(nf.Active))
	b.WriteString("\n")
	return bmc.WriteFileAtomic(folder, NodePath(dir, nf.Name), []byte(b.String()))
}

// pyBool is str(bool) in Python: "True" or "False".
func pyBool(v bool) string {
	if v {
		return "True"
	}
	return "False"
}

// Store keeps the nodes vbmc adds: one VirtualBMC could serve in its
// VirtualBMC file (<dir>/<name>/config, so that VirtualBMC reads the same
// directory), any other in govbmc's own store beside it.
type Store struct {
	dir  string
	json *bmc.Store
}

// NewStore returns the store of dir, falling back to json.
func NewStore(dir string, json *bmc.Store) *Store { return &Store{dir: dir, json: json} }

var _ bmc.Persister = (*Store)(nil)

// Save writes a new node's file, or rewrites the active line of a node
// already in its VirtualBMC file.
func (s *Store) Save(sn bmc.StoredNode) error {
	nf, ok := FromNode(sn.Node, sn.Active)
	if !ok {
		return s.json.Save(sn)
	}
	if _, err := os.Stat(NodePath(s.dir, nf.Name)); err == nil {
		return SetActive(s.dir, nf.Name, sn.Active)
	}
	return WriteNode(s.dir, nf)
}

// Delete removes the node's folder and govbmc's file, whichever it has.
func (s *Store) Delete(name string) error {
	if _, err := os.Stat(NodePath(s.dir, name)); err == nil {
		if err := Delete(s.dir, name); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete %q: %w", name, err)
	}
	return s.json.Delete(name)
}

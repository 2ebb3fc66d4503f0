// Package vbmcconf reads and writes OpenStack VirtualBMC's configuration as
// VirtualBMC itself does: the daemon's virtualbmc.conf (found through
// $VIRTUALBMC_CONFIG, ~/.vbmc/virtualbmc.conf, /etc/virtualbmc/virtualbmc.conf)
// and one INI file per node, <config_dir>/<name>/config, section
// [VirtualBMC]. Files written by VirtualBMC, by metal3-dev-env's templates or
// by hand are read unchanged, and the only change govbmc ever makes to one
// is its active line, so a user can go back to VirtualBMC with the same
// directory.
package vbmcconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"

	"github.com/govbmc/govbmc/bmc"
)

// EnvConfig names the environment variable that points at virtualbmc.conf.
const EnvConfig = "VIRTUALBMC_CONFIG"

// NodeSection is the INI section of a node's config file.
const NodeSection = "VirtualBMC"

// KeyKg is the [VirtualBMC] key govbmc reads a node's BMC key (Kg, hex)
// from; VirtualBMC ignores it.
const KeyKg = "kg"

// NodeFileName is the name of a node's config file inside its folder.
const NodeFileName = "config"

// loadOptions read INI the way Python's configparser does: keys are
// case-insensitive, a '#' or ';' inside a value is part of the value, and
// quotes around a value are kept.
var loadOptions = ini.LoadOptions{
	InsensitiveKeys:         true,
	IgnoreInlineComment:     true,
	PreserveSurroundedQuote: true,
	// configparser accepts "key: value" as well as "key = value"; ini.v1
	// does by default. Keys without a value are a configparser error too.
}

// DaemonConfig is what virtualbmc.conf says, with VirtualBMC's defaults for
// what it leaves out.
type DaemonConfig struct {
	// Path is the file read; empty when none exists (defaults only).
	Path string
	// ConfigDir is [default] config_dir: the folder of node folders.
	ConfigDir string
	// PIDFile is [default] pid_file.
	PIDFile string
	// ShowPasswords is [default] show_passwords: vbmc show prints passwords.
	ShowPasswords bool
	// ServerPort is [default] server_port, VirtualBMC's ZeroMQ control
	// port; govbmc reads it only to say it is not used.
	ServerPort int
	// LogFile is [log] logfile; empty logs to stderr (foreground) or the default file.
	LogFile string
	// Debug is [log] debug.
	Debug bool
	// SessionTimeout is [ipmi] session_timeout, and SessionTimeoutSet
	// whether the file gives it (else VirtualBMC's default of 1 s).
	SessionTimeout    time.Duration
	SessionTimeoutSet bool
}

// Locate returns the virtualbmc.conf VirtualBMC would read: the first of
// $VIRTUALBMC_CONFIG, ~/.vbmc/virtualbmc.conf and
// /etc/virtualbmc/virtualbmc.conf that exists, or "" when none does.
func Locate() string {
	candidates := []string{os.Getenv(EnvConfig)}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, ".vbmc", "virtualbmc.conf"))
	}
	candidates = append(candidates, "/etc/virtualbmc/virtualbmc.conf")
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Defaults returns VirtualBMC's defaults: everything under ~/.vbmc.
func Defaults() DaemonConfig {
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/"
	}
	return DaemonConfig{
		ConfigDir:      filepath.Join(home, ".vbmc"),
		PIDFile:        filepath.Join(home, ".vbmc", "master.pid"),
		ServerPort:     50891,
		SessionTimeout: time.Second,
	}
}

// LoadDaemonConfig reads virtualbmc.conf at path over VirtualBMC's
// defaults; path "" gives the defaults. A value that does not parse is an
// error naming the file, section and key.
func LoadDaemonConfig(path string) (DaemonConfig, error) {
	c := Defaults()
	if path == "" {
		return c, nil
	}
	f, err := ini.LoadSources(loadOptions, path)
	if err != nil {
		return c, fmt.Errorf("read %s: %w", path, err)
	}
	c.Path = path
	get := func(section, key string) (string, bool) {
		s, err := f.GetSection(section)
		if err != nil || !s.HasKey(key) {
			return "", false
		}
		return unescape(s.Key(key).String()), true
	}
	bad := func(section, key string, err error) error {
		return fmt.Errorf("%s: [%s] %s: %w", path, section, key, err)
	}
	if v, ok := get("default", "config_dir"); ok && v != "" {
		c.ConfigDir = expandHome(v)
	}
	if v, ok := get("default", "pid_file"); ok && v != "" {
		c.PIDFile = expandHome(v)
	}
	if v, ok := get("default", "show_passwords"); ok {
		if c.ShowPasswords, err = ParseBool(v); err != nil {
			return c, bad("default", "show_passwords", err)
		}
	}
	if v, ok := get("default", "server_port"); ok {
		if c.ServerPort, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
			return c, bad("default", "server_port", err)
		}
	}
	if v, ok := get("log", "logfile"); ok {
		c.LogFile = expandHome(v)
	}
	if v, ok := get("log", "debug"); ok {
		if c.Debug, err = ParseBool(v); err != nil {
			return c, bad("log", "debug", err)
		}
	}
	if v, ok := get("ipmi", "session_timeout"); ok {
		secs, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || secs < 0 {
			return c, bad("ipmi", "session_timeout", fmt.Errorf("%q is not a whole number of seconds", v))
		}
		c.SessionTimeout, c.SessionTimeoutSet = time.Duration(secs)*time.Second, true
	}
	return c, nil
}

// NodeFile is one node's [VirtualBMC] section.
type NodeFile struct {
	// Name is the node's folder name (VirtualBMC's key: the domain name).
	Name string
	// Path is the config file read.
	Path                string
	Username, Password  string
	Address             string
	Port                int
	DomainName          string
	LibvirtURI          string
	LibvirtSASLUsername string
	LibvirtSASLPassword string
	// Active is whether the BMC should run.
	Active bool
	// Extra holds keys VirtualBMC does not know, kept for features it lacks.
	Extra map[string]string
}

// knownKeys are the [VirtualBMC] keys VirtualBMC reads.
var knownKeys = map[string]bool{
	"username": true, "password": true, "address": true, "port": true,
	"domain_name": true, "libvirt_uri": true, "libvirt_sasl_username": true,
	"libvirt_sasl_password": true, "active": true,
}

// ErrNoConfig is returned for a folder in the config directory that holds
// no config file: VirtualBMC skips it, and so does the scan.
var ErrNoConfig = errors.New("no config file")

// NodePath returns the config file of the node named name under dir.
func NodePath(dir, name string) string { return filepath.Join(dir, name, NodeFileName) }

// ReadNode reads the node folder name under dir. Errors name the file.
func ReadNode(dir, name string) (NodeFile, error) {
	p := NodePath(dir, name)
	nf := NodeFile{Name: name, Path: p}
	st, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nf, fmt.Errorf("%s: %w", p, ErrNoConfig)
	case err != nil:
		return nf, fmt.Errorf("%s: %w", p, err)
	case st.IsDir():
		return nf, fmt.Errorf("%s: is a directory, not a config file", p)
	case !st.Mode().IsRegular():
		// A FIFO or device would block or never end the read.
		return nf, fmt.Errorf("%s: is not a regular file (%v)", p, st.Mode().Type())
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		return nf, fmt.Errorf("%s: %w", p, err)
	}
	f, err := ini.LoadSources(loadOptions, raw)
	if err != nil {
		return nf, fmt.Errorf("%s: %w", p, err)
	}
	s, err := f.GetSection(NodeSection)
	if err != nil {
		return nf, fmt.Errorf("%s: no [%s] section", p, NodeSection)
	}
	vals := map[string]string{}
	for _, k := range s.Keys() {
		v := unescape(k.String())
		if knownKeys[k.Name()] {
			vals[k.Name()] = v
			continue
		}
		if nf.Extra == nil {
			nf.Extra = map[string]string{}
		}
		nf.Extra[k.Name()] = v
	}
	nf.Username, nf.Password = vals["username"], vals["password"]
	nf.Address, nf.DomainName, nf.LibvirtURI = vals["address"], vals["domain_name"], vals["libvirt_uri"]
	nf.LibvirtSASLUsername, nf.LibvirtSASLPassword = none(vals["libvirt_sasl_username"]), none(vals["libvirt_sasl_password"])
	port, ok := vals["port"]
	if !ok {
		return nf, fmt.Errorf("%s: [%s] port: missing", p, NodeSection)
	}
	if nf.Port, err = strconv.Atoi(strings.TrimSpace(port)); err != nil || nf.Port < 1 || nf.Port > 65535 {
		return nf, fmt.Errorf("%s: [%s] port: %q is not a port number", p, NodeSection, port)
	}
	if nf.DomainName == "" {
		return nf, fmt.Errorf("%s: [%s] domain_name: missing", p, NodeSection)
	}
	// VirtualBMC reads a missing or unreadable active as false.
	if v, ok := vals["active"]; ok {
		if nf.Active, err = ParseBool(v); err != nil {
			return nf, fmt.Errorf("%s: [%s] active: %w", p, NodeSection, err)
		}
	}
	return nf, nil
}

// NodeError is a node folder Scan could not read: its name, and why (the
// error names the file).
type NodeError struct {
	// Name is the folder's name.
	Name string
	// Err is why it was skipped; errors.Is(err, ErrNoConfig) for a folder
	// without a config file.
	Err error
}

// Error is the reason, naming the file.
func (e *NodeError) Error() string { return e.Err.Error() }

// Unwrap returns the reason.
func (e *NodeError) Unwrap() error { return e.Err }

// Scan reads every node folder under dir, sorted by name. A folder whose
// config cannot be read (or that has none) is reported in problems as a
// *NodeError naming its file, and skipped, as VirtualBMC skips it; plain
// files (govbmc's own, the control socket) and hidden folders are not
// node folders.
func Scan(dir string) (nodes []NodeFile, problems []*NodeError) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, []*NodeError{{Err: fmt.Errorf("read config directory: %w", err)}}
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		nf, err := ReadNode(dir, e.Name())
		if err != nil {
			problems = append(problems, &NodeError{Name: e.Name(), Err: err})
			continue
		}
		nodes = append(nodes, nf)
	}
	return nodes, problems
}

// SetActive rewrites the node's active line, atomically, leaving every
// other byte of the file as it was (comments, spacing, key order): the
// active line of the [VirtualBMC] section gets VirtualBMC's str(bool), or
// one is added at the section's end when it has none.
func SetActive(dir, name string, active bool) error {
	p := NodePath(dir, name)
	raw, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	// The file must read as a node file before and after.
	if _, err := ReadNode(dir, name); err != nil {
		return err
	}
	lines := strings.SplitAfter(string(raw), "\n")
	section, at, end := "", -1, -1
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			section = t[1 : len(t)-1]
			continue
		}
		if section != NodeSection {
			continue
		}
		if t != "" && !strings.HasPrefix(t, "#") && !strings.HasPrefix(t, ";") {
			end = i
		}
		if key, _, ok := strings.Cut(strings.NewReplacer(":", "=").Replace(t), "="); ok && strings.EqualFold(strings.TrimSpace(key), "active") {
			at = i
		}
	}
	if end < 0 && at < 0 {
		return fmt.Errorf("%s: no [%s] section", p, NodeSection)
	}
	line := "active = " + pyBool(active) + "\n"
	if at >= 0 {
		lines[at] = line
	} else {
		if !strings.HasSuffix(lines[end], "\n") {
			lines[end] += "\n"
		}
		lines = append(lines[:end+1], append([]string{line}, lines[end+1:]...)...)
	}
	return bmc.WriteFileAtomic(filepath.Dir(p), p, []byte(strings.Join(lines, "")))
}

// Delete removes a node's folder, as `vbmc delete` does in VirtualBMC.
func Delete(dir, name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return fmt.Errorf("delete %q: not a node folder name", name)
	}
	if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("delete %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// ParseBool reads a boolean as configparser's getboolean does, in any case:
// true/false, yes/no, on/off, 1/0.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (want True or False)", s)
}

// none reads Python's str(None), which VirtualBMC's vbmc add may write
// for SASL settings it was not given, as unset.
func none(s string) string {
	if s == "None" {
		return ""
	}
	return s
}

// unescape undoes configparser's interpolation escape: "%%" reads as "%".
func unescape(s string) string { return strings.ReplaceAll(s, "%%", "%") }

// expandHome expands a leading "~/" as Python's os.path.expanduser does for
// the paths VirtualBMC's templates write.
func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

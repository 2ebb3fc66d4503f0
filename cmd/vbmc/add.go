package main

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/control"
	"github.com/govbmc/govbmc/libvirtconn"
	"github.com/spf13/cobra"
)

// addOptions are vbmc add's flags: VirtualBMC's, with its defaults, and
// govbmc's additions.
type addOptions struct {
	username, password string
	port               int
	address            string
	libvirtURI         string
	saslUser, saslPass string
	sshKey             string
	users              []string
	cipherSuites       string
	kg                 string
	backend            string
	all                bool
	portRange          string
	format             string
}

func (a *app) addCommand() *cobra.Command {
	var o addOptions
	cmd := &cobra.Command{
		Use:   "add DOMAIN_NAME",
		Short: "Add a new virtual BMC",
		Long: `Add a new virtual BMC for a domain (VirtualBMC's vbmc add).

With --all, add one for every domain of the hypervisor that has none yet,
on the next free ports of --port-range.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if o.all {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			tmpl, err := o.node(cmd)
			if err != nil {
				return err
			}
			if o.all {
				return a.addAll(cmd, o, tmpl)
			}
			tmpl.Name = args[0]
			ctx, cancel := a.ctx()
			defer cancel()
			if _, err := a.client().Add(ctx, tmpl); err != nil {
				return a.describe(tmpl.Name, err, true)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.username, "username", "admin", `The BMC username; defaults to "admin"`)
	f.StringVar(&o.password, "password", "password", `The BMC password; defaults to "password"`)
	f.IntVar(&o.port, "port", 623, "Port to listen on; defaults to 623")
	f.StringVar(&o.address, "address", "::", "The address to bind to (IPv4 and IPv6 are supported); defaults to ::")
	f.StringVar(&o.libvirtURI, "libvirt-uri", libvirtconn.DefaultURI, `The libvirt URI; defaults to "`+libvirtconn.DefaultURI+`"`)
	f.StringVar(&o.saslUser, "libvirt-sasl-username", "", "The libvirt SASL username; defaults to None")
	f.StringVar(&o.saslPass, "libvirt-sasl-password", "", "The libvirt SASL password; defaults to None")
	f.StringVar(&o.sshKey, "libvirt-ssh-key", "", "SSH private key file for a qemu+ssh libvirt URI")
	f.StringArrayVar(&o.users, "user", nil, "a BMC account NAME:PASSWORD:PRIVILEGE (user, operator or administrator); repeatable")
	f.StringVar(&o.cipherSuites, "cipher-suites", "", "RMCP+ cipher suites offered, e.g. 3,17 (default 3,17; 0 is never allowed)")
	f.StringVar(&o.kg, "kg", "", "the BMC key (Kg) in hex, as ipmitool -y and Ironic's ipmi_hex_kg_key take it; default none")
	f.StringVar(&o.backend, "backend", libvirtconn.BackendType, "what the BMC drives: libvirt or sim (a simulated server)")
	f.BoolVar(&o.all, "all", false, "add a BMC for every domain of --libvirt-uri that has none")
	f.StringVar(&o.portRange, "port-range", "", "with --all: the ports to use, FIRST-LAST (e.g. 6230-6299)")
	f.StringVarP(&o.format, "format", "f", "table", "with --all: output format of the added BMCs: table, json, yaml, value or csv")
	return cmd
}

// node builds the node every flag describes, checking each flag on its own
// so that an error names it.
func (o *addOptions) node(cmd *cobra.Command) (bmc.Node, error) {
	var n bmc.Node
	if o.port < 1 || o.port > 65535 {
		return n, fmt.Errorf("--port %d: must be between 1 and 65535", o.port)
	}
	if net.ParseIP(o.address) == nil {
		return n, fmt.Errorf("--address %q: not an IP address", o.address)
	}
	if (o.saslUser == "") != (o.saslPass == "") {
		return n, errors.New("A password and username are required to use Libvirt's SASL authentication")
	}
	if !slices.Contains(bmc.BackendTypes(), o.backend) {
		return n, fmt.Errorf("--backend %q: want %s", o.backend, strings.Join(bmc.BackendTypes(), " or "))
	}
	users, err := o.accounts(cmd)
	if err != nil {
		return n, err
	}
	suites, err := parseSuites(o.cipherSuites)
	if err != nil {
		return n, err
	}
	n = bmc.Node{Address: o.address, Port: o.port, Users: users, CipherSuites: suites, Kg: o.kg, Backend: bmc.Backend{Type: o.backend}}
	if o.backend == libvirtconn.BackendType {
		// The domain defaults to the node's name, given later.
		n.Backend.Config = libvirtconn.Config{URI: o.libvirtURI, Keyfile: o.sshKey, SASLUsername: o.saslUser, SASLPassword: o.saslPass}
	}
	return n, nil
}

// accounts are the --user specs, plus --username/--password when no --user
// is given or when they were given explicitly.
func (o *addOptions) accounts(cmd *cobra.Command) ([]bmc.User, error) {
	var users []bmc.User
	if len(o.users) == 0 || cmd.Flags().Changed("username") || cmd.Flags().Changed("password") {
		if o.password == "" {
			return nil, errors.New("--password: must not be empty")
		}
		if o.username == "" {
			return nil, errors.New("--username: must not be empty")
		}
		users = append(users, bmc.User{Name: o.username, Password: o.password, Privilege: bmc.PrivilegeAdministrator})
	}
	for _, spec := range o.users {
		// Errors name the user, never the password.
		name, rest, ok1 := strings.Cut(spec, ":")
		i := strings.LastIndex(rest, ":")
		if !ok1 || i < 0 || name == "" || rest[:i] == "" {
			return nil, fmt.Errorf("--user %q…: want NAME:PASSWORD:PRIVILEGE", name)
		}
		priv, err := bmc.ParsePrivilege(rest[i+1:])
		if err != nil {
			return nil, fmt.Errorf("--user %q: %w", name, err)
		}
		users = append(users, bmc.User{Name: name, Password: rest[:i], Privilege: priv})
	}
	return users, nil
}

func parseSuites(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("--cipher-suites %q: %q is not a number", s, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parsePortRange(s string) (first, last int, err error) {
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.Atoi(a)
	last, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
		return 0, 0, fmt.Errorf("--port-range %q: want FIRST-LAST between 1 and 65535", s)
	}
	return first, last, nil
}

// addAll registers a BMC for every domain of the hypervisor without one,
// each on the next port of the range that no BMC and no process holds.
func (a *app) addAll(cmd *cobra.Command, o addOptions, tmpl bmc.Node) error {
	if o.portRange == "" {
		return errors.New("--all needs --port-range FIRST-LAST")
	}
	if o.backend != libvirtconn.BackendType {
		return errors.New("--all lists the domains of --libvirt-uri: it needs --backend libvirt")
	}
	first, last, err := parsePortRange(o.portRange)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx()
	defer cancel()
	c := a.client()
	domains, err := c.Domains(ctx, tmpl.Backend)
	if err != nil {
		return a.explain(err)
	}
	existing, err := c.List(ctx)
	if err != nil {
		return a.explain(err)
	}
	have := map[string]bool{}
	used := map[int]bool{}
	for _, n := range existing {
		have[n.Node.Name] = true
		used[n.Node.Port] = true
	}
	var added []control.NodeInfo
	port := first
	for _, d := range domains {
		if have[d] {
			continue
		}
		for {
			for port <= last && used[port] {
				port++
			}
			if port > last {
				return fmt.Errorf("--port-range %s: no free port left for %q (%d BMCs added)", o.portRange, d, len(added))
			}
			n := tmpl
			n.Name, n.Port = d, port
			used[port] = true
			info, err := c.Add(ctx, n)
			if errors.Is(err, bmc.ErrPortInUse) {
				continue // held by another process: try the next port
			}
			if err != nil {
				return a.explain(err)
			}
			added = append(added, info)
			break
		}
	}
	return writeList(cmd.OutOrStdout(), o.format, added)
}

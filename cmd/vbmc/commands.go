package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/control"
	"github.com/govbmc/govbmc/libvirtconn"
	"github.com/spf13/cobra"
)

// notFound is VirtualBMC's message for an unknown BMC, kept verbatim: start
// and stop say it plainly, show and delete as a failed command.
func notFound(name string, failed bool) string {
	if failed {
		return "Command failed: No domain with matching name " + name + " was found"
	}
	return "No domain with matching name " + name + " was found"
}

// vbmcError is a daemon-side failure, printed as VirtualBMC prints them:
// "(rc): message".
func vbmcError(msg string) error { return fmt.Errorf("(1): %s", msg) }

// describe turns a client error on name into what VirtualBMC would print.
func (a *app) describe(name string, err error, failed bool) error {
	if errors.Is(err, bmc.ErrNotFound) {
		return vbmcError(notFound(name, failed))
	}
	var ae *control.APIError
	if errors.As(err, &ae) {
		return vbmcError(ae.Message)
	}
	return a.explain(err)
}

// forEach runs op on every name. delete stops at the first failure; start
// and stop go through every name and report every failure, as VirtualBMC
// does.
func (a *app) forEach(names []string, stopAtFirst, failed bool, op func(name string) error) error {
	var msgs []string
	for _, name := range names {
		if err := op(name); err != nil {
			err = a.describe(name, err, failed)
			if stopAtFirst || errors.Is(err, control.ErrNoDaemon) {
				return err
			}
			msgs = append(msgs, strings.TrimPrefix(err.Error(), "(1): "))
		}
	}
	if len(msgs) > 0 {
		return vbmcError(strings.Join(msgs, "\n"))
	}
	return nil
}

func (a *app) deleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete DOMAIN_NAME...",
		Short: "Delete a virtual BMC",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, names []string) error {
			ctx, cancel := a.ctx()
			defer cancel()
			return a.forEach(names, true, true, func(name string) error { return a.client().Delete(ctx, name) })
		},
		ValidArgsFunction: a.completeNames,
	}
}

func (a *app) startCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "start DOMAIN_NAME...",
		Short: "Start a virtual BMC",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, names []string) error {
			ctx, cancel := a.ctx()
			defer cancel()
			return a.forEach(names, false, false, func(name string) error {
				_, err := a.client().Start(ctx, name)
				return err
			})
		},
		ValidArgsFunction: a.completeNames,
	}
}

func (a *app) stopCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "stop DOMAIN_NAME...",
		Short: "Stop a virtual BMC",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, names []string) error {
			ctx, cancel := a.ctx()
			defer cancel()
			return a.forEach(names, false, false, func(name string) error {
				_, err := a.client().Stop(ctx, name)
				return err
			})
		},
		ValidArgsFunction: a.completeNames,
	}
}

// writeList writes BMCs as `vbmc list -f format` does.
func writeList(w io.Writer, format string, nodes []control.NodeInfo) error {
	o := newOutputOptions(listFormats)
	o.format = format
	return o.emit(w, listTable(nodes))
}

func (a *app) listCommand() *cobra.Command {
	var o *outputOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List all virtual BMCs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.ctx()
			defer cancel()
			nodes, err := a.client().List(ctx)
			if err != nil {
				return a.explain(err)
			}
			sort.Slice(nodes, func(i, j int) bool { return nodes[i].Node.Name < nodes[j].Node.Name })
			return o.emit(cmd.OutOrStdout(), listTable(nodes))
		},
	}
	o = addListFlags(cmd)
	return cmd
}

// showProperties are VirtualBMC's show rows (its names, sorted), plus
// govbmc's own settings.
func showProperties(n control.NodeInfo) map[string]any {
	none := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	nd := n.Node
	lv, _ := nd.Backend.Config.(libvirtconn.Config)
	p := map[string]any{
		"active":                n.Active,
		"address":               nd.Address,
		"domain_name":           nd.Name,
		"port":                  nd.Port,
		"status":                string(n.Status),
		"backend":               nd.Backend.Type,
		"cipher_suites":         joinInts(nd.EffectiveCipherSuites()),
		"ipmi_v15":              !nd.DisableIPMIv15,
		"read_only":             n.ReadOnly,
		"libvirt_uri":           none(lv.URI),
		"libvirt_sasl_username": none(lv.SASLUsername),
		"libvirt_sasl_password": none(lv.SASLPassword),
		"libvirt_ssh_key":       none(lv.Keyfile),
		"status_reason":         none(n.Reason),
	}
	// govbmc's own row, there only when vbmcd serves Redfish.
	if n.RedfishURL != "" {
		p["redfish_url"] = n.RedfishURL
	}
	if nd.Backend.Type == libvirtconn.BackendType && lv.Domain != nd.Name {
		p["libvirt_domain"] = lv.Domain
	}
	// Passwords come masked unless vbmcd's show_passwords says otherwise.
	if len(nd.Users) > 0 {
		p["username"] = nd.Users[0].Name
		p["password"] = nd.Users[0].Password
	}
	users := make([]string, len(nd.Users))
	for i, u := range nd.Users {
		users[i] = fmt.Sprintf("%s:%s:%s", u.Name, u.Password, strings.ToLower(u.Privilege.String()))
	}
	p["users"] = strings.Join(users, ", ")
	return p
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

func (a *app) showCommand() *cobra.Command {
	var o *outputOptions
	cmd := &cobra.Command{
		Use:   "show DOMAIN_NAME",
		Short: "Show a virtual BMC",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.ctx()
			defer cancel()
			n, err := a.client().Show(ctx, args[0])
			if err != nil {
				return a.describe(args[0], err, true)
			}
			return o.emit(cmd.OutOrStdout(), showTable(showProperties(n)))
		},
		ValidArgsFunction: a.completeNames,
	}
	o = addShowFlags(cmd)
	return cmd
}

// completeNames offers the BMC names for shell completion.
func (a *app) completeNames(_ *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	ctx, cancel := a.ctx()
	defer cancel()
	nodes, err := a.client().List(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Node.Name
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

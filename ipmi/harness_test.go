package ipmi_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/ipmi"
)

// Accounts every test node has.
var (
	admin    = bmc.User{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}
	operator = bmc.User{Name: "oper", Password: "operpass", Privilege: bmc.PrivilegeOperator}
	viewer   = bmc.User{Name: "viewer", Password: "viewpass", Privilege: bmc.PrivilegeUser}
)

const (
	toolTimeout      = 30 * time.Second
	toolTimeoutShort = 5 * time.Second
)

// testNode is a node served on a loopback port for one test, in front of a
// simulated machine.
type testNode struct {
	t    testing.TB
	cfg  bmc.Node
	sim  *bmc.SimMachine
	port string
	logs *testtool.Buffer
}

// startNode serves a simulated node on 127.0.0.1 with an ephemeral port.
func startNode(t testing.TB, edit ...func(*bmc.Node)) *testNode {
	t.Helper()
	return startNodeWith(t, ipmi.Options{}, edit...)
}

// startNodeWith is startNode with server options.
func startNodeWith(t testing.TB, opts ipmi.Options, edit ...func(*bmc.Node)) *testNode {
	t.Helper()
	cfg := bmc.Node{
		Name:    "node-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()),
		Address: "127.0.0.1",
		Users:   []bmc.User{admin, operator, viewer},
		Backend: bmc.Backend{Type: bmc.BackendSim, Config: bmc.SimConfig{SoftOffDelay: 200 * time.Millisecond}},
	}
	for _, e := range edit {
		e(&cfg)
	}
	sim, err := bmc.NewSimMachine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testtool.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Logger = log
	srv, err := ipmi.New(cfg, sim, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	n := &testNode{t: t, cfg: cfg, sim: sim, port: fmt.Sprint(srv.Addr().Port), logs: logs}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = sim.Close()
		if t.Failed() {
			t.Logf("node log:\n%s", logs.String())
		}
	})
	return n
}

// ipmitool runs ipmitool against the node with the given interface args.
func (n *testNode) ipmitool(args ...string) (string, error) {
	n.t.Helper()
	return testtool.Run(n.t, toolTimeout, "ipmitool", append([]string{"-H", "127.0.0.1", "-p", n.port}, args...)...)
}

// lanplus runs an admin ipmitool -I lanplus command.
func (n *testNode) lanplus(args ...string) string {
	n.t.Helper()
	out, err := n.ipmitool(append([]string{"-I", "lanplus", "-U", admin.Name, "-P", admin.Password}, args...)...)
	if err != nil {
		n.t.Fatalf("ipmitool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// power reads the simulated machine's power state.
func (n *testNode) power() bmc.PowerState {
	n.t.Helper()
	s, err := n.sim.PowerState(context.Background())
	if err != nil {
		n.t.Fatal(err)
	}
	return s
}

// setPower puts the machine in a state directly, to set up a case.
func (n *testNode) setPower(s bmc.PowerState) {
	n.t.Helper()
	var err error
	if s == bmc.PowerOn {
		err = n.sim.PowerOn(context.Background())
	} else {
		err = n.sim.PowerOff(context.Background())
	}
	if err != nil {
		n.t.Fatal(err)
	}
}

// override reads the simulated machine's boot override.
func (n *testNode) override() bmc.BootOverride {
	n.t.Helper()
	o, err := n.sim.BootOverride(context.Background())
	if err != nil {
		n.t.Fatal(err)
	}
	return o
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	testtool.Eventually(t, within, what, cond)
}

// passwordFile writes a password to a file for ipmitool -f, as Ironic does.
func passwordFile(t *testing.T, password string) string {
	t.Helper()
	return testtool.WriteFile(t, "pw", password)
}

func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

package control_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/control"
)

// nopFrontend stands in for an IPMI listener.
type nopFrontend struct{ closed chan struct{} }

func (f *nopFrontend) Serve(ctx context.Context) error {
	select {
	case <-f.closed:
	case <-ctx.Done():
	}
	return nil
}

func (f *nopFrontend) Close() error { close(f.closed); return nil }

// serve runs the API over a manager of simulated nodes on a private socket.
func serve(t *testing.T, domains control.DomainLister) (*bmc.Manager, *control.Client) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	frontends := func(n bmc.Node, _ bmc.Machine) (bmc.Frontend, error) {
		if n.Name == "unbindable" {
			return nil, errors.New("address already in use")
		}
		return &nopFrontend{closed: make(chan struct{})}, nil
	}
	backends := bmc.NewBackends(log)
	mgr := bmc.NewManager(backends.NewMachine, frontends, log)
	mgr.UseAddChecks(bmc.AddChecks{Port: bmc.UDPPortFree, Machine: true})
	if domains == nil {
		domains = backends.ListMachines
	}
	sock := filepath.Join(t.TempDir(), control.SocketName)
	l, err := control.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: control.NewServer(mgr, domains, "test", log)}
	go srv.Serve(l)
	t.Cleanup(func() {
		_ = srv.Close()
		_ = mgr.Close()
		_ = backends.Close()
	})
	return mgr, control.NewClient(sock)
}

func simNode(name string, port int) bmc.Node {
	return bmc.Node{Name: name, Address: "127.0.0.1", Port: port,
		Users: []bmc.User{{Name: "admin", Password: "secret", Privilege: bmc.PrivilegeAdministrator}}, Backend: bmc.Backend{Type: bmc.BackendSim}}
}

// TestErrorsCrossTheSocket: each refusal reaches the client as the
// manager's typed error, with the daemon's message.
func TestErrorsCrossTheSocket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mgr, c := serve(t, nil)
	if _, err := c.Add(ctx, simNode("a", 7100)); err != nil {
		t.Fatal(err)
	}
	if err := mgr.AddReadOnly(ctx, simNode("fleet", 7101)); err != nil {
		t.Fatal(err)
	}
	squat, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	taken := squat.LocalAddr().(*net.UDPAddr).Port
	noUsers := simNode("b", 7102)
	noUsers.Users = nil

	tests := []struct {
		name   string
		call   func() error
		code   control.ErrorCode
		is     error
		holder string
		field  string
	}{
		{"show unknown", func() error { _, err := c.Show(ctx, "ghost"); return err }, control.CodeNotFound, bmc.ErrNotFound, "", ""},
		{"start unknown", func() error { _, err := c.Start(ctx, "ghost"); return err }, control.CodeNotFound, bmc.ErrNotFound, "", ""},
		{"stop unknown", func() error { _, err := c.Stop(ctx, "ghost"); return err }, control.CodeNotFound, bmc.ErrNotFound, "", ""},
		{"delete unknown", func() error { return c.Delete(ctx, "ghost") }, control.CodeNotFound, bmc.ErrNotFound, "", ""},
		{"add duplicate", func() error { _, err := c.Add(ctx, simNode("a", 7103)); return err }, control.CodeExists, bmc.ErrExists, "", ""},
		{"add on a BMC's port", func() error { _, err := c.Add(ctx, simNode("b", 7100)); return err }, control.CodePortInUse, bmc.ErrPortInUse, "a", ""},
		{"add on a process's port", func() error { _, err := c.Add(ctx, simNode("b", taken)); return err }, control.CodePortInUse, bmc.ErrPortInUse, "", ""},
		{"add invalid", func() error { _, err := c.Add(ctx, noUsers); return err }, control.CodeInvalid, nil, "", "users"},
		{"start read-only", func() error { _, err := c.Start(ctx, "fleet"); return err }, control.CodeReadOnly, bmc.ErrReadOnly, "", ""},
		{"stop read-only", func() error { _, err := c.Stop(ctx, "fleet"); return err }, control.CodeReadOnly, bmc.ErrReadOnly, "", ""},
		{"delete read-only", func() error { return c.Delete(ctx, "fleet") }, control.CodeReadOnly, bmc.ErrReadOnly, "", ""},
		{"list machines of sim", func() error { _, err := c.Domains(ctx, bmc.Backend{Type: bmc.BackendSim}); return err }, control.CodeFailed, nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae *control.APIError
			if !errors.As(err, &ae) || ae.Code != tc.code {
				t.Fatalf("error %v, want an *APIError with code %q", err, tc.code)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			var pe *bmc.PortInUseError
			if errors.Is(err, bmc.ErrPortInUse) && (!errors.As(err, &pe) || pe.Holder != tc.holder || pe.Node != "b") {
				t.Errorf("port error %+v, want node b held by %q", pe, tc.holder)
			}
			var fe *bmc.FieldError
			if tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field || fe.Node != "b") {
				t.Errorf("field error %+v, want node b field %s", fe, tc.field)
			}
		})
	}
}

func TestNodeLifecycleOverTheSocket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, c := serve(t, nil)
	added, err := c.Add(ctx, simNode("a", 7110))
	if err != nil {
		t.Fatal(err)
	}
	if added.Status != bmc.StatusDown || added.Node.Users[0].Password != control.Masked || added.Node.Backend.Config != (bmc.SimConfig{SoftOffDelay: bmc.DefaultSoftOffDelay}) {
		t.Errorf("added %+v, want down, masked, with the sim defaults", added)
	}
	if st, err := c.Start(ctx, "a"); err != nil || st.Status != bmc.StatusRunning || !st.Active {
		t.Errorf("start: %+v, %v", st, err)
	}
	if st, err := c.Show(ctx, "a"); err != nil || st.Status != bmc.StatusRunning {
		t.Errorf("show: %+v, %v", st, err)
	}
	if st, err := c.Stop(ctx, "a"); err != nil || st.Status != bmc.StatusDown || st.Active {
		t.Errorf("stop: %+v, %v", st, err)
	}
	if _, err := c.Add(ctx, simNode("unbindable", 7111)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Start(ctx, "unbindable")
	var ae *control.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || !strings.Contains(ae.Message, "address already in use") {
		t.Errorf("failed start: %v, want a 502 with the reason", err)
	}
	if err := c.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if l, err := c.List(ctx); err != nil || len(l) != 1 || l[0].Node.Name != "unbindable" || l[0].Status != bmc.StatusError {
		t.Errorf("list: %+v, %v", l, err)
	}
}

// TestDomainsSendsSettingsInTheBody: the backend settings, password
// included, reach the lister whole; nothing rides in the URL.
func TestDomainsSendsSettingsInTheBody(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := bmc.Backend{Type: bmc.BackendSim, Config: bmc.SimConfig{SoftOffDelay: 3 * time.Second}}
	var got bmc.Backend
	_, c := serve(t, func(_ context.Context, b bmc.Backend) ([]string, error) {
		got = b
		return []string{"x", "y"}, nil
	})
	names, err := c.Domains(ctx, want)
	if err != nil || strings.Join(names, ",") != "x,y" {
		t.Fatalf("Domains = %v, %v", names, err)
	}
	if got != want {
		t.Errorf("lister got %+v, want %+v", got, want)
	}
}

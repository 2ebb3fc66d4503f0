package e2e

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
	"github.com/govbmc/govbmc/libvirtconn"
)

var admin = bmc.User{Name: "admin", Password: "password", Privilege: bmc.PrivilegeAdministrator}

// node is a BMC served on loopback in front of a libvirt domain.
type node struct {
	t    *testing.T
	name string
	port string
	logs *testtool.Buffer
}

// serveDomain starts a BMC for domain on conn.
func serveDomain(t *testing.T, conn *libvirtconn.Conn, domain string) *node {
	t.Helper()
	logs := &testtool.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	name := "bmc-" + domain
	cfg := bmc.Node{Name: name, Address: "127.0.0.1", Users: []bmc.User{admin}}
	srv, err := ipmi.New(cfg, libvirtconn.NewDomain(conn, domain, log.With("node", name)), ipmi.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("BMC %s log:\n%s", name, logs.String())
		}
	})
	return &node{t: t, name: name, port: fmt.Sprint(srv.Addr().Port), logs: logs}
}

// ipmitool runs an admin ipmitool -I lanplus command, returning its output.
func (n *node) ipmitool(args ...string) (string, error) {
	n.t.Helper()
	base := []string{"-I", "lanplus", "-H", "127.0.0.1", "-p", n.port, "-U", admin.Name, "-P", admin.Password}
	return testtool.Run(n.t, 60*time.Second, "ipmitool", append(base, args...)...)
}

// must runs an ipmitool command that has to succeed.
func (n *node) must(args ...string) string {
	n.t.Helper()
	out, err := n.ipmitool(args...)
	if err != nil {
		n.t.Fatalf("ipmitool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pool returns a connection pool closed at the end of the test.
func pool(t *testing.T) *libvirtconn.Pool {
	p := libvirtconn.NewPool(nil, 0)
	t.Cleanup(func() { p.Close() })
	return p
}

func get(t *testing.T, p *libvirtconn.Pool, uri string) *libvirtconn.Conn {
	t.Helper()
	c, err := p.Get(uri, libvirtconn.Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

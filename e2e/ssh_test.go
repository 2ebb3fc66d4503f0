package e2e

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/govbmc/govbmc/libvirtconn"
)

// sshURI is a driver+ssh libvirt URI through the test's sshd, logging in
// as root with the test's key file and checking its known_hosts.
func sshURI(s *testtool.Sshd, driver, path, knownHosts string) string {
	q := url.Values{"keyfile": {s.ClientKey}, "known_hosts": {knownHosts}}
	return fmt.Sprintf("%s+ssh://root@127.0.0.1:%d%s?%s", driver, s.Port, path, q.Encode())
}

// TestSSHOneTunnelForManyNodes: 100 ipmitool commands across 10 nodes on one
// host through qemu+ssh-style URIs use a single SSH connection.
func TestSSHOneTunnelForManyNodes(t *testing.T) {
	testtool.SystemLibvirtd(t)
	sshd := testtool.StartSshd(t)
	p := pool(t)
	c := get(t, p, sshURI(sshd, "test", "/default", sshd.KnownHosts))
	var nodes []*node
	var names []string
	for i := 0; i < 10; i++ {
		name := testtool.DomainName(t, fmt.Sprint("-", i))
		testtool.DefineDomain(t, c, name, testDomain)
		names = append(names, name)
		nodes = append(nodes, serveDomain(t, c, name))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i, n := range nodes {
		wg.Add(1)
		go func(i int, n *node) {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				args := []string{"power", "status"}
				switch j {
				case 3:
					args = []string{"power", "on"}
				case 6:
					args = []string{"chassis", "bootdev", "pxe", "options=persistent"}
				case 8:
					args = []string{"power", "off"}
				}
				if out, err := n.ipmitool(args...); err != nil {
					errs <- fmt.Errorf("node %d %v: %v\n%s", i, args, err, out)
					return
				}
			}
		}(i, n)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, name := range names {
		if !strings.Contains(testtool.InactiveXML(t, c, name), "<boot dev='network'/>") {
			t.Errorf("%s: boot device not set through the tunnel", name)
		}
	}
	if got := c.SSHDials.Load(); got != 1 {
		t.Errorf("%d SSH clients opened, want 1", got)
	}
	if got := sshd.Logins(); got != 1 {
		t.Errorf("sshd accepted %d logins, want 1\n%s", got, sshd.Log())
	}
}

// qemuNodeOverSSH defines a real (powered-off) VM on the system libvirtd
// reached through a loopback sshd of the test's own, and serves its BMC.
func qemuNodeOverSSH(t *testing.T) (*testtool.Sshd, *libvirtconn.Conn, string, *node) {
	t.Helper()
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	sshd := testtool.StartSshd(t)
	c := get(t, pool(t), sshURI(sshd, "qemu", "/system", sshd.KnownHosts))
	name := testtool.DomainName(t, "")
	logPath := serialLog(t)
	blank := logPath + ".iso"
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	testtool.DefineDomain(t, c, name, qemuDomain, testtool.VirtType(), logPath, blank)
	n := serveDomain(t, c, name)
	mustContain(t, n.must("power", "status"), "Chassis Power is off")
	return sshd, c, name, n
}

// TestQemuOverSSH: the power commands against a real VM through qemu+ssh.
func TestQemuOverSSH(t *testing.T) {
	_, c, name, n := qemuNodeOverSSH(t)
	n.must("chassis", "bootdev", "pxe")
	n.must("power", "on")
	testtool.WaitDomainState(t, c, name, libvirt.DomainRunning, "the VM runs after the power on")
	mustContain(t, n.must("power", "status"), "Chassis Power is on")
	n.must("power", "reset")
	n.must("power", "off")
	testtool.WaitDomainState(t, c, name, libvirt.DomainShutoff, "the VM is off after the power off")
}

// TestSSHHostKeys: a changed host key is refused even with no_verify=1; an
// unknown host is refused unless no_verify=1.
func TestSSHHostKeys(t *testing.T) {
	testtool.SystemLibvirtd(t)
	sshd := testtool.StartSshd(t)
	other := testtool.StartSshd(t) // a different host key
	kh, err := os.ReadFile(other.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	changed := testtool.WriteFile(t, "changed_known_hosts", strings.Replace(string(kh), fmt.Sprint(other.Port), fmt.Sprint(sshd.Port), 1))
	empty := testtool.WriteFile(t, "empty_known_hosts", "")

	cases := []struct {
		name       string
		knownHosts string
		extra      string
		wantErr    string
	}{
		{"changed key", changed, "", "changed"},
		{"changed key with no_verify", changed, "&no_verify=1", "changed"},
		{"unknown host", empty, "", "not in"},
		{"unknown host with no_verify", empty, "&no_verify=1", ""},
		{"known host", sshd.KnownHosts, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := get(t, pool(t), sshURI(sshd, "test", "/default", tc.knownHosts)+tc.extra)
			_, err := libvirtconn.NewDomain(c, "test", nil).PowerState(ctxFor(t))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, libvirtconn.ErrUnavailable) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err=%v, want a refusal mentioning %q", err, tc.wantErr)
			}
		})
	}
}

// TestSSHKeySources: rsa and ecdsa key files, a key held by ssh-agent, and
// the user's default key when the URI names none.
func TestSSHKeySources(t *testing.T) {
	testtool.SystemLibvirtd(t)
	sshd := testtool.StartSshd(t)
	dir := t.TempDir()
	works := func(t *testing.T, uri string) {
		t.Helper()
		c := get(t, pool(t), uri)
		if _, err := libvirtconn.NewDomain(c, "test", nil).PowerState(ctxFor(t)); err != nil {
			t.Fatalf("%s: %v", uri, err)
		}
	}
	base := fmt.Sprintf("test+ssh://root@127.0.0.1:%d/default", sshd.Port)
	for _, kt := range []string{"rsa", "ecdsa"} {
		t.Run(kt, func(t *testing.T) {
			k := testtool.NewKey(t, dir, kt)
			sshd.Authorize(k + ".pub")
			works(t, base+"?"+url.Values{"keyfile": {k}, "known_hosts": {sshd.KnownHosts}}.Encode())
		})
	}
	t.Run("agent", func(t *testing.T) {
		testtool.Require(t, "ssh-agent")
		k := testtool.NewKey(t, t.TempDir(), "ed25519")
		sshd.Authorize(k + ".pub")
		sock := dir + "/agent.sock"
		agent := exec.Command("ssh-agent", "-D", "-a", sock)
		if err := agent.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = agent.Process.Kill(); _ = agent.Wait() }()
		testtool.Eventually(t, 5*time.Second, "ssh-agent socket", func() bool { _, err := os.Stat(sock); return err == nil })
		add := exec.Command("ssh-add", k)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add: %v: %s", err, out)
		}
		t.Setenv("SSH_AUTH_SOCK", sock)
		t.Setenv("HOME", t.TempDir()) // no default keys: only the agent can log in
		works(t, base+"?"+url.Values{"known_hosts": {sshd.KnownHosts}}.Encode())
	})
	t.Run("default key", func(t *testing.T) {
		home := t.TempDir()
		if err := os.MkdirAll(home+"/.ssh", 0o700); err != nil {
			t.Fatal(err)
		}
		k := testtool.NewKey(t, home+"/.ssh", "ed25519")
		sshd.Authorize(k + ".pub")
		t.Setenv("HOME", home)
		t.Setenv("SSH_AUTH_SOCK", "")
		works(t, base+"?"+url.Values{"known_hosts": {sshd.KnownHosts}}.Encode())
	})
}

// TestSSHTunnelDropRecovers: when the SSH connection dies, commands get 0xC0
// and a new tunnel is opened on its own; the old SSH client is closed.
func TestSSHTunnelDropRecovers(t *testing.T) {
	testtool.SystemLibvirtd(t)
	sshd := testtool.StartSshd(t)
	c := get(t, pool(t), sshURI(sshd, "test", "/default", sshd.KnownHosts))
	n := serveDomain(t, c, "test")
	mustContain(t, n.must("power", "status"), "Chassis Power is on")
	sshd.DropConnections()
	testtool.Eventually(t, 20*time.Second, "a new tunnel after the drop", func() bool {
		out, err := n.ipmitool("power", "status")
		return err == nil && strings.Contains(out, "Chassis Power is on") && c.SSHDials.Load() == 2
	})
	if got := sshd.Logins(); got != 2 {
		t.Fatalf("%d SSH logins, want 2 (the first and the reconnection)", got)
	}
}

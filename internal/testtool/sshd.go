package testtool

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Sshd is an OpenSSH server of the test's own on a loopback port, with a
// generated host key and one authorised client key for root.
type Sshd struct {
	t   testing.TB
	dir string
	bin string // the sshd program
	cfg string // its configuration file
	cmd *exec.Cmd
	// Port is the port it listens on (127.0.0.1).
	Port int
	// ClientKey is the private key file root logs in with.
	ClientKey string
	// KnownHosts holds the server's host key for [127.0.0.1]:Port.
	KnownHosts string

	log Buffer
}

// StartSshd starts sshd for the test; it is stopped at cleanup.
func StartSshd(t testing.TB) *Sshd {
	t.Helper()
	RequireRoot(t, "an sshd that root logs in to")
	Require(t, "ssh-keygen")
	sshd := "/usr/sbin/sshd"
	if _, err := os.Stat(sshd); err != nil {
		sshd = Require(t, "sshd")
	}
	dir := t.TempDir()
	s := &Sshd{t: t, dir: dir, ClientKey: filepath.Join(dir, "client_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts")}
	hostKey := filepath.Join(dir, "host_ed25519")
	for _, k := range []string{hostKey, s.ClientKey} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(s.ClientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	s.Port = freeTCPPort(t)
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(hostPub))
	kh := fmt.Sprintf("[127.0.0.1]:%d %s %s\n", s.Port, fields[0], fields[1])
	if err := os.WriteFile(s.KnownHosts, []byte(kh), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowStreamLocalForwarding yes
LogLevel VERBOSE
`, s.Port, hostKey, filepath.Join(dir, "sshd.pid"), authorized)
	cfgFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	s.bin, s.cfg = sshd, cfgFile
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start runs sshd with the test's configuration and waits for its port.
func (s *Sshd) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-D", "-e", "-f", s.cfg)
	s.cmd.Stderr = &s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start sshd: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sshd did not listen: %v\n%s", err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Sshd) stop() {
	if s.cmd != nil && s.cmd.Process != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		_ = s.cmd.Wait()
	}
}

// Kill kills sshd with SIGKILL, together with every process it started
// (the per-connection processes that carry open SSH sessions), the way a
// crash or an OOM kill of the service takes it down: the listener is gone
// and every tunnel through it drops.
func (s *Sshd) Kill() {
	s.t.Helper()
	if s.cmd == nil || s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	master := s.cmd.Process.Pid
	// Stop the master first so that it starts nothing new, then its
	// descendants, deepest first, then the master itself.
	_ = syscall.Kill(master, syscall.SIGSTOP)
	pids := descendants(master)
	for i := len(pids) - 1; i >= 0; i-- {
		_ = syscall.Kill(pids[i], syscall.SIGKILL)
	}
	_ = syscall.Kill(master, syscall.SIGKILL)
	_ = s.cmd.Wait()
}

// Restart starts sshd again, on the same port with the same host key and
// authorised keys, after Kill.
func (s *Sshd) Restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

// descendants lists the processes below pid, parents before children.
func descendants(pid int) []int {
	var out []int
	raw, _ := exec.Command("pgrep", "-P", fmt.Sprint(pid)).Output()
	for _, f := range strings.Fields(string(raw)) {
		var child int
		if _, err := fmt.Sscan(f, &child); err == nil {
			out = append(out, child)
			out = append(out, descendants(child)...)
		}
	}
	return out
}

// Log is what sshd has logged.
func (s *Sshd) Log() string { return s.log.String() }

// Logins counts the accepted SSH logins so far.
func (s *Sshd) Logins() int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(s.Log()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Accepted publickey") {
			n++
		}
	}
	return n
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Authorize lets root log in with one more public key.
func (s *Sshd) Authorize(pubKeyFile string) {
	s.t.Helper()
	pub, err := os.ReadFile(pubKeyFile)
	if err != nil {
		s.t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(pub); err != nil {
		s.t.Fatal(err)
	}
}

// DropConnections kills the per-connection sshd processes, cutting every
// open SSH session while the listener stays up.
func (s *Sshd) DropConnections() {
	s.t.Helper()
	out, _ := exec.Command("pgrep", "-P", fmt.Sprint(s.cmd.Process.Pid)).Output()
	for _, pid := range strings.Fields(string(out)) {
		_ = exec.Command("kill", "-9", pid).Run()
	}
}

// NewKey generates a private key of the given ssh-keygen type in dir.
func NewKey(t testing.TB, dir, keyType string) string {
	t.Helper()
	k := filepath.Join(dir, "id_"+keyType)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", keyType, "-N", "", "-f", k).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -t %s: %v: %s", keyType, err, out)
	}
	return k
}

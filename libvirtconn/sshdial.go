package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshDialTimeout bounds the TCP connect and SSH handshake.
const sshDialTimeout = 10 * time.Second

// defaultKeyFiles are the user's keys tried when the URI names no keyfile,
// as ssh(1) does.
var defaultKeyFiles = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// dialSSH opens the SSH client for a qemu+ssh URI: keys from the URI's
// keyfile, else from a running ssh-agent and the user's default keys; the
// host key checked against known_hosts. go-libvirt's own SSH dialer is not
// used: it never closes its SSH client, leaking one per connection.
func dialSSH(ctx context.Context, u *URI) (*ssh.Client, error) {
	cfg, done, err := sshClientConfig(u)
	if err != nil {
		return nil, err
	}
	defer done() // the agent is needed for the handshake only
	d := net.Dialer{Timeout: sshDialTimeout}
	ctx, cancel := context.WithTimeout(ctx, sshDialTimeout)
	defer cancel()
	tcp, err := d.DialContext(ctx, "tcp", u.Addr())
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", u.Addr(), err)
	}
	_ = tcp.SetDeadline(time.Now().Add(sshDialTimeout))
	c, chans, reqs, err := ssh.NewClientConn(tcp, u.Addr(), cfg)
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("ssh %s@%s: %w", cfg.User, u.Addr(), err)
	}
	_ = tcp.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// sshClientConfig builds the client configuration; done releases the
// ssh-agent connection it may hold, once the handshake is over.
func sshClientConfig(u *URI) (cfg *ssh.ClientConfig, done func(), err error) {
	name := u.User
	if name == "" {
		cur, err := user.Current()
		if err != nil {
			return nil, nil, fmt.Errorf("ssh: no user in the URI and no current user: %w", err)
		}
		name = cur.Username
	}
	hostKeys, err := hostKeyCallback(u)
	if err != nil {
		return nil, nil, err
	}
	auth, done, err := sshAuthMethods(u)
	if err != nil {
		return nil, nil, err
	}
	return &ssh.ClientConfig{User: name, Auth: auth, HostKeyCallback: hostKeys, Timeout: sshDialTimeout}, done, nil
}

func sshAuthMethods(u *URI) ([]ssh.AuthMethod, func(), error) {
	nothing := func() {}
	if u.Keyfile != "" {
		signer, err := readKey(u.Keyfile)
		if err != nil {
			return nil, nil, err
		}
		return []ssh.AuthMethod{ssh.PublicKeys(signer)}, nothing, nil
	}
	var signers []ssh.Signer
	done := nothing
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.DialTimeout("unix", sock, time.Second); err == nil {
			// Agent signers sign through this connection during the handshake.
			done = func() { conn.Close() }
			if s, err := agent.NewClient(conn).Signers(); err == nil {
				signers = append(signers, s...)
			}
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		for _, f := range defaultKeyFiles {
			if s, err := readKey(filepath.Join(home, ".ssh", f)); err == nil {
				signers = append(signers, s)
			}
		}
	}
	if len(signers) == 0 {
		done()
		return nil, nil, errors.New("ssh: no key: give keyfile= in the URI, run an ssh-agent, or create ~/.ssh/id_ed25519")
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, done, nil
}

func readKey(path string) (ssh.Signer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ssh key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("ssh key %s: %w", path, err)
	}
	return s, nil
}

// hostKeyCallback verifies host keys against known_hosts. With no_verify=1
// an unknown host is accepted, as libvirt does; a host whose key changed is
// refused either way.
func hostKeyCallback(u *URI) (ssh.HostKeyCallback, error) {
	file := u.KnownHosts
	if file == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("ssh known_hosts: %w", err)
		}
		file = filepath.Join(home, ".ssh", "known_hosts")
	}
	check, err := knownhosts.New(file)
	if err != nil {
		if !(u.NoVerify && errors.Is(err, os.ErrNotExist)) {
			return nil, fmt.Errorf("ssh known_hosts: %w (no_verify=1 accepts unknown hosts)", err)
		}
		check = func(string, net.Addr, ssh.PublicKey) error {
			return &knownhosts.KeyError{}
		}
	}
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := check(host, remote, key)
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			if len(ke.Want) > 0 {
				return fmt.Errorf("ssh: host key for %s changed (known_hosts %s): refusing: %w", host, file, err)
			}
			if u.NoVerify {
				return nil
			}
			return fmt.Errorf("ssh: host %s is not in %s (add it, or no_verify=1): %w", host, file, err)
		}
		return err
	}, nil
}

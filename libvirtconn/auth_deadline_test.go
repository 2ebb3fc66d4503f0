package libvirtconn

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// noDeadlineConn is a stream without deadlines, as an SSH channel is
// (golang.org/x/crypto/ssh answers "ssh: tcpChan: deadline not supported").
type noDeadlineConn struct{ net.Conn }

func (noDeadlineConn) SetDeadline(time.Time) error { return errors.New("deadline not supported") }

// TestAuthenticateOverStreamWithoutDeadlines: the authentication phase
// works on a qemu+ssh tunnel (it refused every SSH connection with "set
// deadline: ssh: tcpChan: deadline not supported"), and still gives up when
// its context ends on a libvirtd that does not answer.
func TestAuthenticateOverStreamWithoutDeadlines(t *testing.T) {
	u := &URI{Transport: TransportSSH}
	t.Run("answers", func(t *testing.T) {
		client, server := net.Pipe()
		defer server.Close()
		go func() {
			var hdr [rpcHeaderLen]byte
			if _, err := io.ReadFull(server, hdr[:]); err != nil {
				return
			}
			serial := binary.BigEndian.Uint32(hdr[20:])
			var reply []byte
			for _, v := range []uint32{rpcHeaderLen + 8, remoteProgram, remoteVersion, procAuthList, msgTypeReply, serial, statusOK, 1, authTypeNone} {
				reply = binary.BigEndian.AppendUint32(reply, v)
			}
			_, _ = server.Write(reply)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		nc, err := authenticate(ctx, noDeadlineConn{client}, u, Credentials{})
		if err != nil {
			t.Fatalf("authenticate over a stream without deadlines: %v", err)
		}
		cancel()
		// The stream stays open after the phase, for go-libvirt.
		go func() { _, _ = server.Write([]byte{1}) }()
		if _, err := nc.Read(make([]byte, 1)); err != nil {
			t.Fatalf("stream closed after authentication: %v", err)
		}
	})
	t.Run("silent", func(t *testing.T) {
		client, server := net.Pipe()
		defer server.Close()
		go func() { _, _ = io.Copy(io.Discard, server) }()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := authenticate(ctx, noDeadlineConn{client}, u, Credentials{}); err == nil {
			t.Fatal("authenticate succeeded against a silent libvirtd")
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("gave up after %v, want about the context's 200ms", took)
		}
	})
}

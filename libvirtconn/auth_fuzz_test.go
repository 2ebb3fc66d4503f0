package libvirtconn

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// authReply frames a reply of the authentication phase.
func authReply(proc, serial uint32, body []byte) []byte {
	var b []byte
	for _, v := range []uint32{uint32(rpcHeaderLen + len(body)), remoteProgram, remoteVersion, proc, msgTypeReply, serial, statusOK} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return append(b, body...)
}

// FuzzAuthenticate plays any byte stream as libvirtd's side of the
// authentication phase (AuthList, SASL init, start, steps): the client
// logs in, or fails with an error, within its deadline — it never panics,
// hangs or loops. Seeds are a SASL exchange as libvirtd begins it.
func FuzzAuthenticate(f *testing.F) {
	var w xdrWriter
	w.string("DIGEST-MD5")
	init := w.b
	w = xdrWriter{}
	w.uint32(0) // not complete
	w.saslData([]byte(`realm="r",nonce="abc",qop="auth-conf",cipher="rc4",maxbuf=65536,charset=utf-8,algorithm=md5-sess`))
	start := w.b
	var seed []byte
	seed = append(seed, authReply(procAuthList, 1, []byte{0, 0, 0, 1, 0, 0, 0, authTypeSASL})...)
	seed = append(seed, authReply(procAuthSASLInit, 2, init)...)
	seed = append(seed, authReply(procAuthSASLStart, 3, start)...)
	f.Add(seed)
	f.Add(authReply(procAuthList, 1, []byte{0, 0, 0, 1, 0, 0, 0, authTypeNone}))
	f.Add(authReply(procAuthList, 1, []byte{0xFF, 0xFF, 0xFF, 0xFF}))
	u := &URI{Transport: TransportTCP, Host: "hv1"}
	creds := Credentials{SASLUsername: "govbmc", SASLPassword: "pw"}
	f.Fuzz(func(t *testing.T, stream []byte) {
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()
		go func() { _, _ = io.Copy(io.Discard, server) }()
		go func() { _, _ = server.Write(stream); _ = server.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, _ = authenticate(ctx, client, u, creds)
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("authenticate took %v", took)
		}
	})
}

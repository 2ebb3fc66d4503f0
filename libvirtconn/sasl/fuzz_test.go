package sasl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"testing"
)

// FuzzDigestMD5Challenge: any server challenge, then any second message,
// gives an answer or an error — never a panic — and a client that did not
// get the server's proof of the password never reports Done.
func FuzzDigestMD5Challenge(f *testing.F) {
	for _, v := range rfc2831 {
		f.Add([]byte(v.challenge), []byte(v.rspauth))
	}
	f.Add([]byte(`realm="r",nonce="n",qop="auth-conf",cipher="rc4,3des",maxbuf=65536,algorithm=md5-sess`), []byte("rspauth=00"))
	f.Add([]byte(`nonce="unterminated`), []byte(""))
	f.Fuzz(func(t *testing.T, challenge, final []byte) {
		d := newDigestMD5(Options{Username: "u", Password: "p", Service: "libvirt", Host: "h", MinSSF: 56})
		if _, err := d.Step(challenge); err != nil {
			return
		}
		_, err := d.Step(final)
		if d.Done() && (err != nil || !bytes.HasPrefix(final, []byte("rspauth="))) {
			t.Fatalf("done after %q (err %v)", final, err)
		}
	})
}

// FuzzLayerOpen: any frame body offered to the receiving half of the
// security layer is refused as tampered, or opens to a message — only one
// sealed with the session's key and the right sequence number does.
func FuzzLayerOpen(f *testing.F) {
	ha1 := md5.Sum([]byte("session key"))
	for i := range cipherSpecs {
		sealed := newLayer(ha1, &cipherSpecs[i], true).send.seal(nil, []byte("DomainGetState"))
		f.Add(uint8(i), sealed[4:])
	}
	f.Add(uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		c := &cipherSpecs[int(which)%len(cipherSpecs)]
		want := newLayer(ha1, c, true).send.seal(nil, []byte("DomainGetState"))[4:]
		msg, err := newLayer(ha1, c, false).recv.open(append([]byte(nil), body...))
		switch {
		case err != nil && !errors.Is(err, ErrTampered):
			t.Fatalf("error %v is not ErrTampered", err)
		case err == nil && !bytes.Equal(body, want):
			t.Fatalf("a frame not sealed by the peer opened to %q", msg)
		}
	})
}

package sasl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// The two exchanges of RFC 2831 §4 (user chris, password secret).
var rfc2831 = []struct {
	service, challenge, cnonce, response, rspauth string
}{
	{
		service:   "imap",
		challenge: `realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8`,
		cnonce:    "OA6MHXh6VqTrRk",
		response:  `charset=utf-8,username="chris",realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",nc=00000001,cnonce="OA6MHXh6VqTrRk",digest-uri="imap/elwood.innosoft.com",response=d388dad90d4bbd760a152321f2143af7,qop=auth`,
		rspauth:   "rspauth=ea40f60335c427b5527b84dbabcdfffd",
	},
	{
		service:   "acap",
		challenge: `realm="elwood.innosoft.com",nonce="OA9BSXrbuRhWay",qop="auth",algorithm=md5-sess,charset=utf-8`,
		cnonce:    "OA9BSuZWMSpW8m",
		response:  `charset=utf-8,username="chris",realm="elwood.innosoft.com",nonce="OA9BSXrbuRhWay",nc=00000001,cnonce="OA9BSuZWMSpW8m",digest-uri="acap/elwood.innosoft.com",response=6084c6db3fede7352c551284490fd0fc,qop=auth`,
		rspauth:   "rspauth=2f0b3d7c3c2e486600ef710726aa2eae",
	},
}

func TestDigestMD5RFC2831Vectors(t *testing.T) {
	for _, v := range rfc2831 {
		t.Run(v.service, func(t *testing.T) {
			d := newDigestMD5(Options{Username: "chris", Password: "secret", Service: v.service, Host: "elwood.innosoft.com"})
			d.cnonce = v.cnonce
			if first, err := d.Start(); err != nil || first != nil {
				t.Fatalf("Start = %q, %v; DIGEST-MD5 has no initial response", first, err)
			}
			resp, err := d.Step([]byte(v.challenge))
			if err != nil {
				t.Fatal(err)
			}
			if string(resp) != v.response {
				t.Fatalf("response\n got %s\nwant %s", resp, v.response)
			}
			if d.Done() {
				t.Fatal("done before the server proved itself")
			}
			if out, err := d.Step([]byte(v.rspauth)); err != nil || out != nil {
				t.Fatalf("rspauth: %q, %v", out, err)
			}
			if !d.Done() || d.SSF() != 0 {
				t.Fatalf("done=%v ssf=%d after rspauth", d.Done(), d.SSF())
			}
		})
	}
}

func TestDigestMD5RejectsWrongServerProof(t *testing.T) {
	v := rfc2831[0]
	// Another password gives another response, and the server's proof
	// for the right password no longer matches.
	d := newDigestMD5(Options{Username: "chris", Password: "wrong", Service: v.service, Host: "elwood.innosoft.com"})
	d.cnonce = v.cnonce
	resp, err := d.Step([]byte(v.challenge))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(resp), "d388dad90d4bbd760a152321f2143af7") {
		t.Fatal("the response does not depend on the password")
	}
	if _, err := d.Step([]byte(v.rspauth)); err == nil || d.Done() {
		t.Fatal("a server proof for another password was accepted")
	}
}

func TestDigestMD5ChoosesLayer(t *testing.T) {
	const base = `realm="host",nonce="abc",algorithm=md5-sess,charset=utf-8,maxbuf=4096,`
	cases := []struct {
		name, challenge string
		minSSF          int
		wantQop         string
		wantCipher      string
		wantErr         string
	}{
		{"no layer needed", base + `qop="auth,auth-int,auth-conf",cipher="rc4,3des"`, 0, "auth", "", ""},
		{"strongest cipher", base + `qop="auth,auth-int,auth-conf",cipher="rc4-40,rc4-56,des,3des,rc4"`, 56, "auth-conf", "rc4", ""},
		{"3des when no rc4", base + `qop="auth-conf",cipher="des,3des"`, 56, "auth-conf", "3des", ""},
		{"des is 55 bits", base + `qop="auth-conf",cipher="des,rc4-40"`, 56, "", "", "no cipher of at least 56 bits"},
		{"no conf offered", base + `qop="auth,auth-int"`, 56, "", "", "no confidentiality layer"},
		{"qop defaults to auth", `nonce="n",algorithm=md5-sess`, 0, "auth", "", ""},
		{"no nonce", `realm="r",algorithm=md5-sess`, 0, "", "", "without a nonce"},
		{"old algorithm", `nonce="n",algorithm=md5`, 0, "", "", `algorithm "md5"`},
		{"unterminated", `nonce="n,algorithm=md5-sess`, 0, "", "", "unterminated"},
		{"bad maxbuf", `nonce="n",algorithm=md5-sess,maxbuf=x`, 0, "", "", "bad maxbuf"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newDigestMD5(Options{Username: "u", Password: "p", Host: "h", MinSSF: c.minSSF})
			resp, err := d.Step([]byte(c.challenge))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f, err := parseDirectives(resp)
			if err != nil {
				t.Fatal(err)
			}
			if one(f, "qop") != c.wantQop || one(f, "cipher") != c.wantCipher {
				t.Fatalf("qop=%q cipher=%q, want %q %q (%s)", one(f, "qop"), one(f, "cipher"), c.wantQop, c.wantCipher, resp)
			}
			if one(f, "digest-uri") != "libvirt/h" {
				t.Fatalf("digest-uri %q", one(f, "digest-uri"))
			}
		})
	}
}

func TestParseDirectivesQuoting(t *testing.T) {
	f, err := parseDirectives([]byte(` realm="a\"b",realm="c\\d" , nonce=x ,qop="auth,auth-conf"`))
	if err != nil {
		t.Fatal(err)
	}
	if r := f["realm"]; len(r) != 2 || r[0] != `a"b` || r[1] != `c\d` {
		t.Fatalf("realms %q", r)
	}
	if one(f, "nonce") != "x" || one(f, "qop") != "auth,auth-conf" {
		t.Fatalf("%q", f)
	}
	if quote(`a"b\c`) != `"a\"b\\c"` {
		t.Fatal(quote(`a"b\c`))
	}
}

// pipeLayer connects a client-side and a server-side sealed stream.
func pipeLayer(t *testing.T, c *cipherSpec, maxbuf int) (client, server net.Conn) {
	t.Helper()
	ha1 := md5.Sum([]byte("session key"))
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return newSealedConn(a, newLayer(ha1, c, true), maxbuf), newSealedConn(b, newLayer(ha1, c, false), maxbuf)
}

// TestLayerRoundTrip: every cipher carries messages of every length both
// ways, frame after frame (the cipher state runs on), and splits writes
// larger than the peer's maxbuf.
func TestLayerRoundTrip(t *testing.T) {
	for i := range cipherSpecs {
		c := &cipherSpecs[i]
		t.Run(c.name, func(t *testing.T) {
			client, server := pipeLayer(t, c, 256)
			for n := 0; n < 600; n += 37 {
				msg := bytes.Repeat([]byte{byte(n)}, n)
				msg = append(msg, "end"...)
				for _, dir := range [][2]net.Conn{{client, server}, {server, client}} {
					errc := make(chan error, 1)
					go func() { _, err := dir[0].Write(msg); errc <- err }()
					got := make([]byte, len(msg))
					if _, err := io.ReadFull(dir[1], got); err != nil {
						t.Fatal(err)
					}
					if err := <-errc; err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, msg) {
						t.Fatalf("%d bytes came out different", n)
					}
				}
			}
		})
	}
}

// TestLayerFrames: what goes on the wire is encrypted, and a frame that is
// altered, replayed or out of order is refused and ends the stream.
func TestLayerFrames(t *testing.T) {
	ha1 := md5.Sum([]byte("session key"))
	secret := []byte("DomainCreate compute-1, please")
	for i := range cipherSpecs {
		c := &cipherSpecs[i]
		t.Run(c.name, func(t *testing.T) {
			cl := newLayer(ha1, c, true)
			f1 := cl.send.seal(nil, secret)
			f2 := cl.send.seal(nil, secret)
			if bytes.Contains(f1, secret[:8]) || bytes.Equal(f1, f2) {
				t.Fatal("the message is visible on the wire, or two frames are alike")
			}
			open := func(frames ...[]byte) error {
				sv := newLayer(ha1, c, false)
				for _, f := range frames {
					body := append([]byte(nil), f[4:]...)
					if _, err := sv.recv.open(body); err != nil {
						return err
					}
				}
				return nil
			}
			if err := open(f1, f2); err != nil {
				t.Fatalf("in order: %v", err)
			}
			flipped := append([]byte(nil), f1...)
			flipped[6] ^= 0x40
			for name, frames := range map[string][][]byte{
				"replayed": {f1, f1}, "reordered": {f2, f1}, "altered": {flipped}, "truncated": {f1[:12]},
			} {
				if err := open(frames...); !errors.Is(err, ErrTampered) {
					t.Errorf("%s frame: err = %v, want ErrTampered", name, err)
				}
			}
		})
	}
}

func TestNewChoosesMechanism(t *testing.T) {
	o := Options{Username: "u", Password: "p", Host: "h"}
	cases := []struct {
		offered string
		minSSF  int
		want    string
	}{
		{"DIGEST-MD5 SCRAM-SHA-256", 0, "SCRAM-SHA-256"},
		{"SCRAM-SHA-1,SCRAM-SHA-256", 0, "SCRAM-SHA-256"},
		{"scram-sha-1", 0, "SCRAM-SHA-1"},
		{"DIGEST-MD5 SCRAM-SHA-256", 56, "DIGEST-MD5"},
		{"GSSAPI PLAIN", 0, ""},
		{"SCRAM-SHA-256", 56, ""},
	}
	for _, c := range cases {
		o.MinSSF = c.minSSF
		cl, err := New(c.offered, o)
		switch {
		case c.want == "" && !errors.Is(err, ErrNoMechanism):
			t.Errorf("%q ssf %d: err = %v, want ErrNoMechanism", c.offered, c.minSSF, err)
		case c.want != "" && (err != nil || cl.Mechanism() != c.want):
			t.Errorf("%q ssf %d: got %v, %v; want %s", c.offered, c.minSSF, cl, err, c.want)
		}
	}
}

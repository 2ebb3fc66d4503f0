package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// digestMD5 is the DIGEST-MD5 client (RFC 2831). It is written here, on
// the standard library's MD5, HMAC, RC4 and DES, because no maintained Go
// library implements the RFC's security layer, and libvirtd over plain TCP
// accepts no login without one.
type digestMD5 struct {
	o      Options
	cnonce string // fixed by tests; random otherwise

	stage   int // 0: waiting for the challenge, 1: for rspauth, 2: done
	ha1     [md5.Size]byte
	qop     string
	cipher  *cipherSpec
	maxSend int    // the server's maxbuf: the most plaintext one frame may carry
	rspauth string // what the server must answer
}

const (
	qopAuth     = "auth"
	qopAuthConf = "auth-conf"
	// ourMaxbuf is the largest frame we accept, announced to the server.
	ourMaxbuf      = 65536
	defaultMaxbuf  = 65536
	nonceCount     = "00000001"
	maxChallenge   = 2048 // RFC 2831 §2.1.1
	serviceDefault = "libvirt"
)

func newDigestMD5(o Options) *digestMD5 { return &digestMD5{o: o} }

func (d *digestMD5) Mechanism() string { return "DIGEST-MD5" }

// Start: the server speaks first in DIGEST-MD5.
func (d *digestMD5) Start() ([]byte, error) { return nil, nil }

func (d *digestMD5) Done() bool { return d.stage == 2 }

func (d *digestMD5) SSF() int {
	if d.qop != qopAuthConf || d.cipher == nil {
		return 0
	}
	return d.cipher.ssf
}

func (d *digestMD5) Step(challenge []byte) ([]byte, error) {
	switch d.stage {
	case 0:
		resp, err := d.respond(challenge)
		if err != nil {
			return nil, err
		}
		d.stage = 1
		return resp, nil
	case 1:
		fields, err := parseDirectives(challenge)
		if err != nil {
			return nil, fmt.Errorf("DIGEST-MD5: server's final message: %w", err)
		}
		got := fields["rspauth"]
		if len(got) != 1 || !hmac.Equal([]byte(got[0]), []byte(d.rspauth)) {
			return nil, errors.New("DIGEST-MD5: the server did not prove it knows the password (bad rspauth)")
		}
		d.stage = 2
		return nil, nil
	}
	return nil, errors.New("DIGEST-MD5: exchange already complete")
}

// respond answers the server's digest-challenge (RFC 2831 §2.1.2).
func (d *digestMD5) respond(challenge []byte) ([]byte, error) {
	if len(challenge) > maxChallenge {
		return nil, fmt.Errorf("DIGEST-MD5: challenge of %d bytes (at most %d)", len(challenge), maxChallenge)
	}
	f, err := parseDirectives(challenge)
	if err != nil {
		return nil, fmt.Errorf("DIGEST-MD5: challenge: %w", err)
	}
	nonce := one(f, "nonce")
	if nonce == "" {
		return nil, errors.New("DIGEST-MD5: challenge without a nonce")
	}
	if a := one(f, "algorithm"); a != "md5-sess" {
		return nil, fmt.Errorf("DIGEST-MD5: challenge asks algorithm %q (want md5-sess)", a)
	}
	if err := d.chooseQop(f); err != nil {
		return nil, err
	}
	d.maxSend = defaultMaxbuf
	if m := one(f, "maxbuf"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 16 {
			return nil, fmt.Errorf("DIGEST-MD5: challenge has a bad maxbuf %q", m)
		}
		d.maxSend = n
	}
	realm := one(f, "realm") // the first realm offered; none means ""
	if d.cnonce == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("DIGEST-MD5: cnonce: %w", err)
		}
		d.cnonce = base64.StdEncoding.EncodeToString(b[:])
	}
	service := d.o.Service
	if service == "" {
		service = serviceDefault
	}
	uri := service + "/" + d.o.Host

	inner := md5.Sum([]byte(d.o.Username + ":" + realm + ":" + d.o.Password))
	d.ha1 = md5.Sum(append(inner[:], ":"+nonce+":"+d.cnonce...))
	response := d.digest("AUTHENTICATE:"+uri, nonce)
	d.rspauth = d.digest(":"+uri, nonce)

	var b strings.Builder
	if one(f, "charset") == "utf-8" {
		b.WriteString("charset=utf-8,")
	}
	fmt.Fprintf(&b, "username=%s,", quote(d.o.Username))
	if _, ok := f["realm"]; ok {
		fmt.Fprintf(&b, "realm=%s,", quote(realm))
	}
	fmt.Fprintf(&b, "nonce=%s,nc=%s,cnonce=%s,digest-uri=%s,response=%s,qop=%s",
		quote(nonce), nonceCount, quote(d.cnonce), quote(uri), response, d.qop)
	if d.qop == qopAuthConf {
		fmt.Fprintf(&b, ",maxbuf=%d,cipher=%s", ourMaxbuf, d.cipher.name)
	}
	return []byte(b.String()), nil
}

// chooseQop takes plain authentication when no layer is needed, else the
// strongest cipher offered that is strong enough.
func (d *digestMD5) chooseQop(f map[string][]string) error {
	offered := map[string]bool{}
	for _, q := range splitList(one(f, "qop")) {
		offered[q] = true
	}
	if len(offered) == 0 {
		offered[qopAuth] = true // the RFC's default
	}
	if d.o.MinSSF <= 0 && offered[qopAuth] {
		d.qop = qopAuth
		return nil
	}
	if !offered[qopAuthConf] {
		return fmt.Errorf("DIGEST-MD5: the server offers no confidentiality layer (qop %q), and %d bits are needed", one(f, "qop"), d.o.MinSSF)
	}
	ciphers := map[string]bool{}
	for _, c := range splitList(one(f, "cipher")) {
		ciphers[c] = true
	}
	for i := range cipherSpecs {
		c := &cipherSpecs[i]
		if ciphers[c.name] && c.ssf >= d.o.MinSSF {
			d.qop, d.cipher = qopAuthConf, c
			return nil
		}
	}
	return fmt.Errorf("DIGEST-MD5: no cipher of at least %d bits among %q", d.o.MinSSF, one(f, "cipher"))
}

// digest is RFC 2831's response-value for A2.
func (d *digestMD5) digest(a2, nonce string) string {
	if d.qop == qopAuthConf {
		a2 += ":00000000000000000000000000000000"
	}
	h2 := md5.Sum([]byte(a2))
	kd := md5.Sum([]byte(hex.EncodeToString(d.ha1[:]) + ":" + nonce + ":" + nonceCount + ":" + d.cnonce + ":" + d.qop + ":" + hex.EncodeToString(h2[:])))
	return hex.EncodeToString(kd[:])
}

func (d *digestMD5) Wrap(conn net.Conn) net.Conn {
	if d.SSF() == 0 {
		return conn
	}
	return newSealedConn(conn, newLayer(d.ha1, d.cipher, true), d.maxSend)
}

func one(f map[string][]string, k string) string {
	if v := f[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// parseDirectives reads RFC 2831's comma-separated name=value list, values
// plain or quoted (with backslash escapes); a name may repeat (realm).
func parseDirectives(b []byte) (map[string][]string, error) {
	out := map[string][]string{}
	s := string(b)
	for {
		s = strings.TrimLeft(s, " \t\r\n,")
		if s == "" {
			return out, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("malformed directive near %q", clip(s))
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val bytes.Buffer
		if strings.HasPrefix(s, `"`) {
			i, closed := 1, false
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					val.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					closed = true
					break
				}
				val.WriteByte(s[i])
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quoted value of %s", name)
			}
			s = s[i+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val.WriteString(strings.TrimSpace(s[:end]))
			s = s[end:]
		}
		out[name] = append(out[name], val.String())
	}
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

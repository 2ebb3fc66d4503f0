package sasl

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rc4"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// DIGEST-MD5's confidentiality layer (RFC 2831 §2.4, as Cyrus SASL, which
// libvirtd uses, implements it). Every frame on the wire is a 4-byte
// big-endian length, then CIPHER(Kc, {msg, pad, HMAC(Ki, {seq, msg})[0..9]}),
// the message type 0x0001 and the 4-byte sequence number. The cipher state
// (RC4 key stream, CBC chaining) runs on across frames; each direction has
// its own keys and sequence numbers.

// cipherSpec is one of the RFC's ciphers.
type cipherSpec struct {
	name string
	ssf  int // strength in bits, as Cyrus SASL rates it
	n    int // bytes of H(A1) in the key derivation
	// newStream returns the transform of one direction, and its block
	// size (1 for a stream cipher).
	newStream func(kc []byte, encrypt bool) (func(dst, src []byte), int)
}

// cipherSpecs, strongest first: the order a client prefers them.
var cipherSpecs = []cipherSpec{
	{"rc4", 128, 16, rc4Stream},
	{"3des", 112, 16, desStream(true)},
	{"rc4-56", 56, 7, rc4Stream},
	{"des", 55, 16, desStream(false)},
	{"rc4-40", 40, 5, rc4Stream},
}

func rc4Stream(kc []byte, _ bool) (func(dst, src []byte), int) {
	c, _ := rc4.NewCipher(kc) // a 16-byte key is always valid
	return c.XORKeyStream, 1
}

// desStream is DES or two-key triple DES in CBC mode. The keys are 7-byte
// slices of Kc spread to 8 bytes (parity bits ignored); the IV is Kc[8:16].
func desStream(triple bool) func(kc []byte, encrypt bool) (func(dst, src []byte), int) {
	return func(kc []byte, encrypt bool) (func(dst, src []byte), int) {
		k1 := spread56(kc[0:7])
		var block cipher.Block
		if triple {
			k2 := spread56(kc[7:14])
			block, _ = des.NewTripleDESCipher(append(append(k1, k2...), k1...))
		} else {
			block, _ = des.NewCipher(k1)
		}
		iv := kc[8:16]
		if encrypt {
			return cipher.NewCBCEncrypter(block, iv).CryptBlocks, des.BlockSize
		}
		return cipher.NewCBCDecrypter(block, iv).CryptBlocks, des.BlockSize
	}
}

// spread56 turns 56 key bits into a DES key's 8 bytes of 7 bits each.
func spread56(in []byte) []byte {
	return []byte{
		in[0],
		in[0]<<7 | in[1]>>1,
		in[1]<<6 | in[2]>>2,
		in[2]<<5 | in[3]>>3,
		in[3]<<4 | in[4]>>4,
		in[4]<<3 | in[5]>>5,
		in[5]<<2 | in[6]>>6,
		in[6] << 1,
	}
}

// Magic constants of the key derivation (RFC 2831 §2.3, §2.4).
const (
	sealC2S = "Digest H(A1) to client-to-server sealing key magic constant"
	sealS2C = "Digest H(A1) to server-to-client sealing key magic constant"
	signC2S = "Digest session key to client-to-server signing key magic constant"
	signS2C = "Digest session key to server-to-client signing key magic constant"
)

const (
	macLen       = 10
	trailerLen   = 6 // message type and sequence number
	frameMsgType = 1
	// sealOverhead is what a frame adds to its message at most (Cyrus
	// subtracts the same from the peer's maxbuf).
	sealOverhead = 25
)

// half is one direction of the layer.
type half struct {
	ki        [md5.Size]byte
	transform func(dst, src []byte)
	block     int
	seq       uint32
}

// layer is both directions, from one side's point of view.
type layer struct{ send, recv half }

// newLayer derives the keys from H(A1) for the client's side, or for the
// server's (used by tests to check a client against its peer).
func newLayer(ha1 [md5.Size]byte, c *cipherSpec, client bool) *layer {
	derive := func(key []byte, magic string) [md5.Size]byte {
		return md5.Sum(append(append([]byte(nil), key...), magic...))
	}
	mk := func(seal, sign string, encrypt bool) half {
		kc := derive(ha1[:c.n], seal)
		t, bs := c.newStream(kc[:], encrypt)
		return half{ki: derive(ha1[:], sign), transform: t, block: bs}
	}
	if client {
		return &layer{send: mk(sealC2S, signC2S, true), recv: mk(sealS2C, signS2C, false)}
	}
	return &layer{send: mk(sealS2C, signS2C, true), recv: mk(sealC2S, signC2S, false)}
}

func (h *half) mac(seq uint32, msg []byte) []byte {
	m := hmac.New(md5.New, h.ki[:])
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], seq)
	m.Write(s[:])
	m.Write(msg)
	return m.Sum(nil)[:macLen]
}

// seal appends msg's frame, length prefix included, to dst.
func (h *half) seal(dst, msg []byte) []byte {
	pad := 0
	if h.block > 1 {
		pad = h.block - (len(msg)+macLen)%h.block
	}
	bodyLen := len(msg) + pad + macLen
	dst = binary.BigEndian.AppendUint32(dst, uint32(bodyLen+trailerLen))
	start := len(dst)
	dst = append(dst, msg...)
	for i := 0; i < pad; i++ {
		dst = append(dst, byte(pad))
	}
	dst = append(dst, h.mac(h.seq, msg)...)
	h.transform(dst[start:], dst[start:])
	dst = binary.BigEndian.AppendUint16(dst, frameMsgType)
	dst = binary.BigEndian.AppendUint32(dst, h.seq)
	h.seq++
	return dst
}

// ErrTampered means a received frame failed its checks: out of sequence,
// wrong MAC or padding. The stream cannot be trusted after it.
var ErrTampered = errors.New("sasl: security layer frame rejected")

// open decrypts and checks one frame body (without its length prefix), in
// place, and returns the message.
func (h *half) open(body []byte) ([]byte, error) {
	if len(body) < macLen+trailerLen {
		return nil, fmt.Errorf("%w: %d-byte frame", ErrTampered, len(body))
	}
	ct := body[:len(body)-trailerLen]
	if t := binary.BigEndian.Uint16(body[len(ct):]); t != frameMsgType {
		return nil, fmt.Errorf("%w: message type %d", ErrTampered, t)
	}
	if seq := binary.BigEndian.Uint32(body[len(ct)+2:]); seq != h.seq {
		return nil, fmt.Errorf("%w: sequence number %d, expected %d", ErrTampered, seq, h.seq)
	}
	if len(ct)%h.block != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of blocks", ErrTampered, len(ct))
	}
	h.transform(ct, ct)
	msg, mac := ct[:len(ct)-macLen], ct[len(ct)-macLen:]
	if h.block > 1 {
		if len(msg) == 0 {
			return nil, fmt.Errorf("%w: no padding", ErrTampered)
		}
		pad := int(msg[len(msg)-1])
		if pad < 1 || pad > h.block || pad > len(msg) {
			return nil, fmt.Errorf("%w: bad padding", ErrTampered)
		}
		for _, b := range msg[len(msg)-pad:] {
			if int(b) != pad {
				return nil, fmt.Errorf("%w: bad padding", ErrTampered)
			}
		}
		msg = msg[:len(msg)-pad]
	}
	if !hmac.Equal(mac, h.mac(h.seq, msg)) {
		return nil, fmt.Errorf("%w: bad MAC", ErrTampered)
	}
	h.seq++
	return msg, nil
}

// sealedConn carries a byte stream through the layer: what is written is
// sealed into frames of at most maxSend bytes of message, what is read is
// opened frame by frame.
type sealedConn struct {
	net.Conn
	maxMsg int

	wmu  sync.Mutex
	send *half
	wbuf []byte

	rmu     sync.Mutex
	recv    *half
	pending []byte // opened, not yet read
	rbuf    []byte
	rerr    error // a rejected frame ends the stream for good
}

func newSealedConn(c net.Conn, l *layer, peerMaxbuf int) *sealedConn {
	return &sealedConn{Conn: c, maxMsg: max(peerMaxbuf-sealOverhead, 1), send: &l.send, recv: &l.recv}
}

func (c *sealedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		n := min(len(p), c.maxMsg)
		c.wbuf = c.send.seal(c.wbuf[:0], p[:n])
		if _, err := c.Conn.Write(c.wbuf); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

func (c *sealedConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.pending) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		var hdr [4]byte
		if _, err := io.ReadFull(c.Conn, hdr[:]); err != nil {
			return 0, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > ourMaxbuf {
			c.rerr = fmt.Errorf("%w: %d-byte frame exceeds our maxbuf %d", ErrTampered, n, ourMaxbuf)
			continue
		}
		if cap(c.rbuf) < int(n) {
			c.rbuf = make([]byte, n)
		}
		body := c.rbuf[:n]
		if _, err := io.ReadFull(c.Conn, body); err != nil {
			return 0, err
		}
		c.pending, c.rerr = c.recv.open(body)
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

package libvirtconn

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/govbmc/govbmc/libvirtconn/sasl"
)

// libvirt's authentication phase, run on a fresh stream before it is handed
// to go-libvirt. go-libvirt generates the AuthSasl* calls, but its connect
// path only knows "none" and polkit, and its calls can only be made once
// ConnectToURI has run, which opens the driver before any SASL could
// happen. So the four calls of this phase are framed here, in libvirt's
// RPC format (docs: kbase/internals/rpc), and go-libvirt then finds an
// authenticated stream: its own AuthList answers "none" and it goes on.

// The remote program and the procedures of the authentication phase
// (remote_protocol.x).
const (
	remoteProgram     = 0x20008086
	remoteVersion     = 1
	procAuthList      = 66
	procAuthSASLInit  = 67
	procAuthSASLStart = 68
	procAuthSASLStep  = 69

	authTypeNone   = 0
	authTypeSASL   = 1
	authTypePolkit = 2

	msgTypeCall  = 0
	msgTypeReply = 1
	statusOK     = 0

	rpcHeaderLen   = 28
	maxAuthReply   = 1 << 20 // far above any authentication reply
	maxSASLData    = 65536   // REMOTE_AUTH_SASL_DATA_MAX
	maxSASLSteps   = 16
	tcpSASLMinSSF  = 56 // what libvirt demands of SASL without TLS
	libvirtService = "libvirt"
)

// ErrAuth means libvirtd refused the credentials, or wants credentials
// that were not given. Retrying does not help until the settings change.
var ErrAuth = errors.New("libvirt authentication failed")

// authenticate runs the authentication libvirtd asks for on nc and returns
// the stream to use from then on: nc itself, or nc under the SASL security
// layer. It gives up when ctx ends.
func authenticate(ctx context.Context, nc net.Conn, u *URI, creds Credentials) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok && nc.SetDeadline(dl) == nil {
		defer nc.SetDeadline(time.Time{})
		return authPhase(nc, u, creds)
	}
	// A stream without deadlines (an SSH channel, qemu+ssh: "ssh: tcpChan:
	// deadline not supported") is closed if ctx ends first.
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	secured, err := authPhase(nc, u, creds)
	if !stop() {
		// ctx ended and the stream is closed, whatever the phase said.
		if err == nil {
			err = errors.New("stream closed")
		}
		return nil, fmt.Errorf("authentication phase: %w: %v", ctx.Err(), err)
	}
	return secured, err
}

// authPhase runs the calls of the authentication phase on nc.
func authPhase(nc net.Conn, u *URI, creds Credentials) (net.Conn, error) {
	r := &authRPC{nc: nc}
	types, err := r.authList()
	if err != nil {
		return nil, fmt.Errorf("auth list: %w", err)
	}
	wantSASL := false
	for _, t := range types {
		switch t {
		case authTypeNone, authTypePolkit:
			return nc, nil // go-libvirt handles both
		case authTypeSASL:
			wantSASL = true
		}
	}
	if !wantSASL {
		return nil, fmt.Errorf("%w: libvirtd asks for authentication of types %v, none of which govbmc speaks", ErrAuth, types)
	}
	if creds.SASLUsername == "" {
		return nil, fmt.Errorf("%w: libvirtd asks for SASL authentication; give a SASL username and password (--libvirt-sasl-username, --libvirt-sasl-password)", ErrAuth)
	}
	return r.saslLogin(u, creds)
}

// saslLogin is libvirt's remoteAuthSASL: pick a mechanism from libvirtd's
// list, exchange messages until both sides are done, check the strength
// of the security layer, and put it on the stream.
func (r *authRPC) saslLogin(u *URI, creds Credentials) (net.Conn, error) {
	mechs, err := r.saslInit()
	if err != nil {
		return nil, fmt.Errorf("SASL init: %w", err)
	}
	minSSF := 0
	if u.Transport == TransportTCP {
		minSSF = tcpSASLMinSSF
	}
	cl, err := sasl.New(mechs, sasl.Options{Username: creds.SASLUsername, Password: creds.SASLPassword,
		Service: libvirtService, Host: u.Host, MinSSF: minSSF})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAuth, err)
	}
	login := func(err error) error {
		return fmt.Errorf("%w: SASL %s login as %q: %w", ErrAuth, cl.Mechanism(), creds.SASLUsername, err)
	}
	out, err := cl.Start()
	if err != nil {
		return nil, login(err)
	}
	complete, in, err := r.saslStart(cl.Mechanism(), out)
	for step := 0; err == nil; step++ {
		if complete {
			// libvirtd is done; its last data (if any) proves it knows
			// the password too, which the client must check.
			if len(in) > 0 || !cl.Done() {
				_, err = cl.Step(in)
			}
			if err == nil && !cl.Done() {
				err = errors.New("libvirtd ended the exchange before proving itself")
			}
			break
		}
		if step == maxSASLSteps {
			err = fmt.Errorf("no end after %d steps", step)
			break
		}
		if out, err = cl.Step(in); err == nil {
			complete, in, err = r.saslStep(out)
		}
	}
	if err != nil {
		return nil, login(err)
	}
	if ssf := cl.SSF(); ssf < minSSF {
		return nil, login(fmt.Errorf("security layer of %d bits, %d needed", ssf, minSSF))
	}
	return cl.Wrap(r.nc), nil
}

// authRPC makes the calls of the authentication phase. Nothing else runs
// on the stream meanwhile, so a call is a write and a read.
type authRPC struct {
	nc     net.Conn
	serial uint32
}

// RemoteError is an error libvirtd answered a call with.
type RemoteError struct {
	Code    uint32
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

func (r *authRPC) call(proc uint32, args []byte) (*xdrReader, error) {
	r.serial++
	pkt := make([]byte, 0, rpcHeaderLen+len(args))
	for _, v := range []uint32{uint32(rpcHeaderLen + len(args)), remoteProgram, remoteVersion, proc, msgTypeCall, r.serial, statusOK} {
		pkt = binary.BigEndian.AppendUint32(pkt, v)
	}
	if _, err := r.nc.Write(append(pkt, args...)); err != nil {
		return nil, err
	}
	var hdr [rpcHeaderLen]byte
	if _, err := io.ReadFull(r.nc, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("libvirtd closed the connection")
		}
		return nil, err
	}
	f := make([]uint32, 7)
	for i := range f {
		f[i] = binary.BigEndian.Uint32(hdr[4*i:])
	}
	n, prog, gotProc, typ, serial, status := f[0], f[1], f[3], f[4], f[5], f[6]
	if n < rpcHeaderLen || n > maxAuthReply || prog != remoteProgram || gotProc != proc || typ != msgTypeReply || serial != r.serial {
		return nil, fmt.Errorf("unexpected reply (length %d, program %#x, procedure %d, type %d, serial %d)", n, prog, gotProc, typ, serial)
	}
	body := make([]byte, n-rpcHeaderLen)
	if _, err := io.ReadFull(r.nc, body); err != nil {
		return nil, err
	}
	rd := &xdrReader{b: body}
	if status != statusOK {
		// remote_error: code, domain, message (an optional string), …
		code, _ := rd.uint32()
		rd.uint32()
		msg := "libvirtd refused the call"
		if present, _ := rd.uint32(); present != 0 {
			if s, err := rd.string(); err == nil {
				msg = s
			}
		}
		return nil, &RemoteError{Code: code, Message: msg}
	}
	return rd, nil
}

func (r *authRPC) authList() ([]uint32, error) {
	rd, err := r.call(procAuthList, nil)
	if err != nil {
		return nil, err
	}
	n, err := rd.uint32()
	if err != nil || n > 20 {
		return nil, fmt.Errorf("malformed auth list")
	}
	types := make([]uint32, n)
	for i := range types {
		if types[i], err = rd.uint32(); err != nil {
			return nil, err
		}
	}
	return types, nil
}

func (r *authRPC) saslInit() (string, error) {
	rd, err := r.call(procAuthSASLInit, nil)
	if err != nil {
		return "", err
	}
	return rd.string()
}

func (r *authRPC) saslStart(mech string, data []byte) (bool, []byte, error) {
	var w xdrWriter
	w.string(mech)
	w.saslData(data)
	return r.saslReply(r.call(procAuthSASLStart, w.b))
}

func (r *authRPC) saslStep(data []byte) (bool, []byte, error) {
	var w xdrWriter
	w.saslData(data)
	return r.saslReply(r.call(procAuthSASLStep, w.b))
}

// saslReply reads remote_auth_sasl_start_ret / _step_ret.
func (r *authRPC) saslReply(rd *xdrReader, err error) (bool, []byte, error) {
	if err != nil {
		return false, nil, err
	}
	complete, err := rd.uint32()
	if err != nil {
		return false, nil, err
	}
	rd.uint32() // nil: whether data is absent rather than empty
	data, err := rd.chars()
	return complete != 0, data, err
}

// xdrWriter encodes the few XDR types the phase needs.
type xdrWriter struct{ b []byte }

func (w *xdrWriter) uint32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }

func (w *xdrWriter) string(s string) {
	w.uint32(uint32(len(s)))
	w.b = append(w.b, s...)
	w.b = append(w.b, make([]byte, (4-len(s)%4)%4)...)
}

// saslData writes "int nil; char data<>": rpcgen sends each char as a
// 4-byte integer; nil tells NULL data (no initial response) from empty.
func (w *xdrWriter) saslData(d []byte) {
	if d == nil {
		w.uint32(1)
	} else {
		w.uint32(0)
	}
	w.uint32(uint32(len(d)))
	for _, c := range d {
		w.uint32(uint32(int32(int8(c))))
	}
}

// xdrReader decodes them.
type xdrReader struct{ b []byte }

var errShortReply = errors.New("truncated reply")

func (r *xdrReader) uint32() (uint32, error) {
	if len(r.b) < 4 {
		return 0, errShortReply
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, nil
}

func (r *xdrReader) string() (string, error) {
	n, err := r.uint32()
	if err != nil {
		return "", err
	}
	padded := int(n) + (4-int(n)%4)%4
	if n > maxAuthReply || len(r.b) < padded {
		return "", errShortReply
	}
	s := string(r.b[:n])
	r.b = r.b[padded:]
	return s, nil
}

func (r *xdrReader) chars() ([]byte, error) {
	n, err := r.uint32()
	if err != nil {
		return nil, err
	}
	if n > maxSASLData || len(r.b) < 4*int(n) {
		return nil, errShortReply
	}
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(binary.BigEndian.Uint32(r.b[4*i:]))
	}
	r.b = r.b[4*n:]
	return out, nil
}

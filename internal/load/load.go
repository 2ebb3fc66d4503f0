// Package load drives IPMI BMCs the way ipmitool does, one full session
// per command, and measures it: it is the engine of cmd/ipmiload and of
// govbmc's benchmarks. It works against any IPMI BMC.
package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/app"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Target is one BMC address.
type Target struct {
	Host string
	Port int
}

// String returns host:port.
func (t Target) String() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// ParseTargets reads "host:port", "host:first-last" and comma-separated
// lists of them.
func ParseTargets(spec string) ([]Target, error) {
	var out []Target
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		host, ports, err := net.SplitHostPort(part)
		if err != nil {
			return nil, fmt.Errorf("target %q: want HOST:PORT or HOST:FIRST-LAST", part)
		}
		first, last, isRange := strings.Cut(ports, "-")
		a, err1 := strconv.Atoi(first)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(last)
		}
		if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
			return nil, fmt.Errorf("target %q: bad port or range", part)
		}
		for p := a; p <= b; p++ {
			out = append(out, Target{Host: host, Port: p})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no targets")
	}
	return out, nil
}

// Config is one load run.
type Config struct {
	Targets     []Target
	Username    string
	Password    string
	Interface   client.Interface // lanplus (default) or lan
	CipherSuite int              // 0: negotiate like ipmitool (Get Channel Cipher Suites)
	Command     string           // "power-status" (default) or "device-id"
	Concurrency int              // sessions in flight at once
	Sessions    int              // sessions in all (0: one per target)
	Duration    time.Duration    // stop starting sessions after this (0: no limit)
	Timeout     time.Duration    // per-request timeout (default 2 s, ipmitool's)
	// OnSession, when set, hears of every session: its target, when it
	// started and how it ended (soak tests sort errors by time and node).
	OnSession func(t Target, start time.Time, err error)
}

// Result is what a run measured.
type Result struct {
	Sessions  int           `json:"sessions"`
	Errors    int           `json:"errors"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	PerSecond float64       `json:"sessions_per_second"`
	P50       time.Duration `json:"p50_ns"`
	P99       time.Duration `json:"p99_ns"`
	Max       time.Duration `json:"max_ns"`
	// FirstError is an example failure, for the report.
	FirstError string `json:"first_error,omitempty"`
}

// String is the human summary.
func (r Result) String() string {
	s := fmt.Sprintf("%d sessions in %v: %.0f sessions/s, p50 %v, p99 %v, max %v, %d errors",
		r.Sessions, r.Elapsed.Round(time.Millisecond), r.PerSecond, r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond), r.Errors)
	if r.FirstError != "" {
		s += " (first: " + r.FirstError + ")"
	}
	return s
}

// Run performs the load: every session opens like ipmitool (Get Channel
// Authentication Capabilities, Get Channel Cipher Suites, Open Session,
// RAKP 1-4, Set Session Privilege Level), sends the command and closes.
func Run(ctx context.Context, cfg Config) Result {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.Sessions <= 0 {
		cfg.Sessions = len(cfg.Targets)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Interface == "" {
		cfg.Interface = client.InterfaceLanplus
	}
	framing := make(map[Target]*atomic.Int32, len(cfg.Targets))
	for _, t := range cfg.Targets {
		framing[t] = new(atomic.Int32)
	}
	return Loop(ctx, cfg.Concurrency, cfg.Sessions, cfg.Duration, func(ctx context.Context, i int) error {
		t0 := time.Now()
		target := cfg.Targets[i%len(cfg.Targets)]
		err := session(ctx, cfg, target, framing[target])
		if cfg.OnSession != nil && !(err != nil && cutShort(ctx)) {
			cfg.OnSession(target, t0, err)
		}
		return err
	})
}

// Loop runs op n times (i = 0 … n-1), concurrency at once, until n are done
// or duration (0: no limit) or ctx ends, and measures each op: the engine of
// Run, for any request a benchmark times (an HTTP GET, a whole ipmitool).
// An op failing because the run ended is not counted.
func Loop(ctx context.Context, concurrency, n int, duration time.Duration, op func(ctx context.Context, i int) error) Result {
	concurrency = max(concurrency, 1)
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	var (
		next      atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
		errs      int
		firstErr  string
		wg        sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				err := op(ctx, i)
				d := time.Since(t0)
				if err != nil && cutShort(ctx) {
					return // cut short by the end of the run: not a result
				}
				mu.Lock()
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
				} else {
					latencies = append(latencies, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := Result{Sessions: len(latencies) + errs, Errors: errs, Elapsed: elapsed, FirstError: firstErr}
	if len(latencies) > 0 {
		sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
		r.P50 = latencies[len(latencies)/2]
		r.P99 = latencies[min(len(latencies)-1, len(latencies)*99/100)]
		r.Max = latencies[len(latencies)-1]
		r.PerSecond = float64(len(latencies)) / elapsed.Seconds()
	}
	return r
}

// cutShort reports whether the run's context has ended, or all but: a
// client deadline tied to it fires a moment before ctx reports Done.
func cutShort(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && time.Until(d) < 50*time.Millisecond
}

// How a BMC takes Get Channel Cipher Suites outside a session, learnt by a
// target's first session and kept for the run.
const (
	framingUnknown int32 = iota
	framingV15           // IPMI 1.5 session-less packet (what ipmi_sim accepts)
	framingV20           // RMCP+ packet with session ID 0 (what ipmitool sends)
	framingNone          // neither answered: fall back without asking
)

// framingProbeTimeout bounds the wait for the 1.5 form while a target's
// framing is not known yet.
const framingProbeTimeout = 300 * time.Millisecond

func session(ctx context.Context, cfg Config, t Target, framing *atomic.Int32) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", t.String())
	if err != nil {
		return fmt.Errorf("%s: %w", t, err)
	}
	defer conn.Close()
	c, err := client.NewClient(t.Host, t.Port, cfg.Username, cfg.Password)
	if err != nil {
		return err
	}
	// One socket for the whole session, as ipmitool has: the session-less
	// requests below go out on it before go-ipmi's client takes it over.
	c = c.WithInterface(cfg.Interface).WithTimeout(cfg.Timeout).WithRetry(0).
		WithMaxPrivilegeLevel(types.PrivilegeLevelAdministrator).WithUDPProxy(&oneConn{conn: conn})
	if cfg.Interface == client.InterfaceLanplus {
		err = open20(ctx, cfg, c, conn, framing)
	} else {
		err = c.Connect(ctx)
	}
	if err != nil {
		return fmt.Errorf("%s: connect: %w", t, err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	switch cfg.Command {
	case "", "power-status":
		_, err = c.GetChassisStatus(ctx)
	case "device-id":
		_, err = c.GetDeviceID(ctx)
	default:
		return fmt.Errorf("unknown command %q", cfg.Command)
	}
	if err != nil {
		return fmt.Errorf("%s: %s: %w", t, cfg.Command, err)
	}
	return nil
}

// open20 opens an RMCP+ session the way ipmitool does (Get Channel
// Authentication Capabilities, Get Channel Cipher Suites unless a suite is
// given, Open Session, RAKP 1-4, Set Session Privilege Level), with go-ipmi's
// client for every step. It replaces the client's Connect for one reason:
// that sends Get Channel Cipher Suites only as an RMCP+ packet with session
// ID 0, which OpenIPMI's ipmi_sim drops ("No session message failed:
// Invalid authtype: 6"; ipmitool fares no better), so each session waited out
// a timeout. Here the session-less requests go out as IPMI 1.5 packets, the
// format every BMC must take for Get Channel Authentication Capabilities and
// the one go-ipmi already uses for it; a BMC that does not answer Get Channel
// Cipher Suites that way is asked ipmitool's way instead, and a target
// remembers which way worked.
func open20(ctx context.Context, cfg Config, c *client.Client, conn net.Conn, framing *atomic.Int32) error {
	caps := &app.GetChannelAuthenticationCapabilitiesRequest{IPMIv20Extended: true, ChannelNumber: types.ChannelNumberSelf, MaximumPrivilegeLevel: types.PrivilegeLevelAdministrator}
	if err := sessionless(ctx, c, conn, cfg.Timeout, caps, &app.GetChannelAuthenticationCapabilitiesResponse{}); err != nil {
		return fmt.Errorf("Get Channel Authentication Capabilities: %w", err)
	}
	suites := []types.CipherSuiteID{types.CipherSuiteID(cfg.CipherSuite)}
	if cfg.CipherSuite <= 0 {
		suites = cipherSuites(ctx, cfg, c, conn, framing)
	}
	var errs []error
	for _, id := range suites {
		c.WithCipherSuiteID(id)
		_, err := c.OpenSession(ctx)
		if err == nil {
			_, err = c.RAKPMessage1(ctx)
		}
		if err == nil {
			_, err = c.RAKPMessage3(ctx)
		}
		if err == nil {
			if _, err = c.SetSessionPrivilegeLevel(ctx, types.PrivilegeLevelAdministrator); err != nil {
				return fmt.Errorf("Set Session Privilege Level: %w", err)
			}
			return nil
		}
		errs = append(errs, fmt.Errorf("cipher suite %d: %w", id, err))
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// cipherSuites asks the BMC for its cipher suites, best first. Without an
// answer it falls back to go-ipmi's preferences (17, then 3, which the
// specification requires, ...), as ipmitool falls back to 3.
func cipherSuites(ctx context.Context, cfg Config, c *client.Client, conn net.Conn, framing *atomic.Int32) []types.CipherSuiteID {
	how := framing.Load()
	if how == framingUnknown || how == framingV15 {
		probe := cfg
		if how == framingUnknown {
			// Finding out: a BMC that takes the 1.5 form answers as fast as
			// any other request; one that drops it should not cost every
			// client a full timeout.
			probe.Timeout = min(cfg.Timeout, framingProbeTimeout)
		}
		if ids, err := cipherSuitesV15(ctx, probe, c, conn); err == nil {
			framing.Store(framingV15)
			return ids
		}
		if ctx.Err() != nil {
			return types.PreferredCiphers
		}
		if how == framingUnknown {
			how = framingV20
		}
	}
	if how == framingV20 {
		if recs, err := c.GetAllChannelCipherSuites(ctx, types.ChannelNumberSelf); err == nil {
			framing.Store(framingV20)
			return best(recs)
		} else if ctx.Err() == nil && framing.Load() == framingUnknown {
			framing.Store(framingNone)
		}
	}
	return types.PreferredCiphers
}

func cipherSuitesV15(ctx context.Context, cfg Config, c *client.Client, conn net.Conn) ([]types.CipherSuiteID, error) {
	var data []byte
	for i := uint8(0); i < app.MaxCipherSuiteListIndex; i++ {
		res := &app.GetChannelCipherSuitesResponse{}
		req := &app.GetChannelCipherSuitesRequest{ChannelNumber: types.ChannelNumberSelf, PayloadType: types.PayloadTypeIPMI, ListIndex: i}
		if err := sessionless(ctx, c, conn, cfg.Timeout, req, res); err != nil {
			return nil, err
		}
		data = append(data, res.CipherSuiteRecords...)
		if len(res.CipherSuiteRecords) < 16 {
			break
		}
	}
	recs, err := app.ParseCipherSuitesData(data)
	if err != nil {
		return nil, err
	}
	return best(recs), nil
}

func best(recs []types.CipherSuiteRecord) []types.CipherSuiteID {
	ids := make([]types.CipherSuiteID, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, r.CipherSuitID)
	}
	if ids = types.SortCipherSuites(ids); len(ids) == 0 {
		return types.PreferredCiphers
	}
	return ids
}

// sessionless sends req outside any session as an IPMI 1.5 packet
// (authentication type none, session ID 0) and reads its answer, built and
// parsed by go-ipmi's client.
func sessionless(ctx context.Context, c *client.Client, conn net.Conn, timeout time.Duration, req types.Request, res types.Response) error {
	msg, err := c.BuildIPMIRequest(ctx, req)
	if err != nil {
		return err
	}
	payload := msg.Pack()
	pkt := &types.Rmcp{RmcpHeader: types.NewRmcpHeader(), Session15: &types.Session15{
		SessionHeader15: &types.SessionHeader15{AuthType: types.AuthTypeNone, PayloadLength: uint8(len(payload))},
		Payload:         payload,
	}}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	if _, err := conn.Write(pkt.Pack()); err != nil {
		return err
	}
	buf := make([]byte, 1024)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		var r types.Rmcp
		var answer types.IPMIResponse
		if r.Unpack(buf[:n]) != nil || r.Session15 == nil || answer.Unpack(r.Session15.Payload) != nil ||
			answer.RequesterSequence != msg.RequesterSequence || answer.Command != msg.Command {
			continue // not the answer to this request
		}
		return c.ParseRmcpResponse(ctx, buf[:n], req.Command(), res)
	}
}

// oneConn hands go-ipmi's client the session's socket (it takes any
// golang.org/x/net/proxy.Dialer), once.
type oneConn struct {
	mu   sync.Mutex
	conn net.Conn
}

func (d *oneConn) Dial(_, _ string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		return nil, errors.New("session socket already closed")
	}
	c := d.conn
	d.conn = nil
	return c, nil
}

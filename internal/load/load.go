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
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
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
	for w := 0; w < cfg.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= cfg.Sessions {
					return
				}
				t0 := time.Now()
				target := cfg.Targets[i%len(cfg.Targets)]
				err := session(ctx, cfg, target)
				d := time.Since(t0)
				if err != nil && cutShort(ctx) {
					return // cut short by the end of the run: not a result
				}
				if cfg.OnSession != nil {
					cfg.OnSession(target, t0, err)
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

func session(ctx context.Context, cfg Config, t Target) error {
	c, err := client.NewClient(t.Host, t.Port, cfg.Username, cfg.Password)
	if err != nil {
		return err
	}
	c = c.WithInterface(cfg.Interface).WithTimeout(cfg.Timeout).WithRetry(0)
	if cfg.CipherSuite > 0 {
		c = c.WithCipherSuiteID(types.CipherSuiteID(cfg.CipherSuite))
	}
	if err := c.Connect(ctx); err != nil {
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

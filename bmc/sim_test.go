package bmc_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// waitLimit bounds every wait for something asynchronous to happen.
const waitLimit = 3 * time.Second

func newSim(t *testing.T, edit ...func(*bmc.Node)) *bmc.SimMachine {
	t.Helper()
	n := validNode("sim-"+strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), 623)
	for _, e := range edit {
		e(&n)
	}
	m, err := bmc.NewSimMachine(n)
	if err != nil {
		t.Fatalf("NewSimMachine: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func softOffDelay(d time.Duration) func(*bmc.Node) {
	return func(n *bmc.Node) { n.Backend.Config = bmc.SimConfig{SoftOffDelay: d} }
}

func powerState(t *testing.T, m bmc.Machine) bmc.PowerState {
	t.Helper()
	s, err := m.PowerState(context.Background())
	if err != nil {
		t.Fatalf("PowerState: %v", err)
	}
	return s
}

func wantPower(t *testing.T, m bmc.Machine, want bmc.PowerState) {
	t.Helper()
	if got := powerState(t, m); got != want {
		t.Fatalf("power is %v, want %v", got, want)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eventually polls cond until it holds or waitLimit passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// consoleReader collects what a console connection reads, in the background,
// so that tests can wait for text with a bounded deadline.
type consoleReader struct {
	chunks chan []byte
	seen   []byte
}

func readConsole(t *testing.T, c io.ReadWriteCloser) *consoleReader {
	r := &consoleReader{chunks: make(chan []byte, 64)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(r.chunks)
		buf := make([]byte, 256)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				r.chunks <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = c.Close()
		for range r.chunks {
		}
		wg.Wait()
	})
	return r
}

// waitFor returns once everything read so far contains want.
func (r *consoleReader) waitFor(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(waitLimit)
	for !strings.Contains(string(r.seen), want) {
		select {
		case b, ok := <-r.chunks:
			if !ok {
				t.Fatalf("console closed before %q appeared; read %q", want, r.seen)
			}
			r.seen = append(r.seen, b...)
		case <-timeout:
			t.Fatalf("timed out waiting for %q on the console; read %q", want, r.seen)
		}
	}
}

func TestSimStartsOff(t *testing.T) {
	m := newSim(t)
	wantPower(t, m, bmc.PowerOff)
	if b := m.Boots(); len(b) != 0 {
		t.Errorf("Boots() = %v, want none", b)
	}
	o, err := m.BootOverride(context.Background())
	if err != nil || o != (bmc.BootOverride{}) {
		t.Errorf("BootOverride() = %+v, %v; want none", o, err)
	}
}

func TestSimPowerOnBoots(t *testing.T) {
	ctx := context.Background()
	m := newSim(t)
	must(t, "PowerOn", m.PowerOn(ctx))
	wantPower(t, m, bmc.PowerOn)
	boots := m.Boots()
	if len(boots) != 1 || boots[0] != (bmc.BootRecord{Device: bmc.BootDisk}) {
		t.Fatalf("Boots() = %+v, want one legacy boot from disk without override", boots)
	}
	c, err := m.OpenConsole(ctx)
	must(t, "OpenConsole", err)
	r := readConsole(t, c)
	r.waitFor(t, "Booting from Hard Disk")
	if !strings.Contains(string(r.seen), "Legacy BIOS") {
		t.Errorf("console %q does not say Legacy BIOS", r.seen)
	}

	// Powering on a running machine succeeds and does not reboot it.
	must(t, "second PowerOn", m.PowerOn(ctx))
	wantPower(t, m, bmc.PowerOn)
	if n := len(m.Boots()); n != 1 {
		t.Errorf("%d boots after PowerOn of a running machine, want 1", n)
	}
}

func TestSimPowerTransitions(t *testing.T) {
	type op struct {
		name string
		do   func(context.Context, bmc.Machine) error
	}
	var (
		on      = op{"PowerOn", func(ctx context.Context, m bmc.Machine) error { return m.PowerOn(ctx) }}
		off     = op{"PowerOff", func(ctx context.Context, m bmc.Machine) error { return m.PowerOff(ctx) }}
		reset   = op{"Reset", func(ctx context.Context, m bmc.Machine) error { return m.Reset(ctx) }}
		cycle   = op{"PowerCycle", func(ctx context.Context, m bmc.Machine) error { return m.PowerCycle(ctx) }}
		nmi     = op{"DiagnosticInterrupt", func(ctx context.Context, m bmc.Machine) error { return m.DiagnosticInterrupt(ctx) }}
		softOff = op{"SoftOff", func(ctx context.Context, m bmc.Machine) error { return m.SoftOff(ctx) }}
	)
	tests := []struct {
		name      string
		startOn   bool
		op        op
		wantErr   error // nil for success
		wantPower bmc.PowerState
		wantBoots int // boots made by op
		console   string
	}{
		{name: "power off when off", op: off, wantPower: bmc.PowerOff},
		{name: "power off when on", startOn: true, op: off, wantPower: bmc.PowerOff, console: "Power off"},
		{name: "soft off when off", op: softOff, wantPower: bmc.PowerOff},
		{name: "reset when off", op: reset, wantErr: bmc.ErrPoweredOff, wantPower: bmc.PowerOff},
		{name: "reset when on", startOn: true, op: reset, wantPower: bmc.PowerOn, wantBoots: 1, console: "Hard reset"},
		{name: "nmi when off", op: nmi, wantErr: bmc.ErrPoweredOff, wantPower: bmc.PowerOff},
		{name: "nmi when on", startOn: true, op: nmi, wantPower: bmc.PowerOn, console: "NMI received"},
		{name: "cycle when off", op: cycle, wantPower: bmc.PowerOn, wantBoots: 1, console: "Booting from Hard Disk"},
		{name: "cycle when on", startOn: true, op: cycle, wantPower: bmc.PowerOn, wantBoots: 1, console: "Power cycle"},
		{name: "on when on", startOn: true, op: on, wantPower: bmc.PowerOn},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m := newSim(t)
			if tc.startOn {
				must(t, "PowerOn", m.PowerOn(ctx))
			}
			before := len(m.Boots())
			c, err := m.OpenConsole(ctx)
			must(t, "OpenConsole", err)
			r := readConsole(t, c)

			err = tc.op.do(ctx, m)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("%s: %v", tc.op.name, err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("%s = %v, want an error wrapping %v", tc.op.name, err, tc.wantErr)
			}
			wantPower(t, m, tc.wantPower)
			if got := len(m.Boots()) - before; got != tc.wantBoots {
				t.Errorf("%s made %d boots, want %d", tc.op.name, got, tc.wantBoots)
			}
			if tc.console != "" {
				r.waitFor(t, tc.console)
			}
		})
	}
}

func TestSimSoftOffCompletesAfterDelay(t *testing.T) {
	const delay = 100 * time.Millisecond
	ctx := context.Background()
	m := newSim(t, softOffDelay(delay))
	must(t, "PowerOn", m.PowerOn(ctx))
	c, err := m.OpenConsole(ctx)
	must(t, "OpenConsole", err)
	r := readConsole(t, c)

	start := time.Now()
	must(t, "SoftOff", m.SoftOff(ctx))
	wantPower(t, m, bmc.PowerOn) // the guest takes its time
	must(t, "second SoftOff", m.SoftOff(ctx))
	eventually(t, "soft off to complete", func() bool { return powerState(t, m) == bmc.PowerOff })
	if took := time.Since(start); took < delay {
		t.Errorf("soft off completed after %v, before the configured %v", took, delay)
	}
	r.waitFor(t, "ACPI power button pressed")
	r.waitFor(t, "Reached target Power-Off")

	// A later soft off cycle works again.
	must(t, "PowerOn", m.PowerOn(ctx))
	must(t, "SoftOff", m.SoftOff(ctx))
	eventually(t, "second soft off to complete", func() bool { return powerState(t, m) == bmc.PowerOff })
	if n := len(m.Boots()); n != 2 {
		t.Errorf("%d boots, want 2", n)
	}
}

func TestSimSoftOffCancelled(t *testing.T) {
	const delay = 50 * time.Millisecond
	tests := []struct {
		name      string
		between   func(context.Context, *bmc.SimMachine) error
		wantBoots int // boots after the initial one
	}{
		{"power off and on", func(ctx context.Context, m *bmc.SimMachine) error {
			if err := m.PowerOff(ctx); err != nil {
				return err
			}
			return m.PowerOn(ctx)
		}, 1},
		{"reset", func(ctx context.Context, m *bmc.SimMachine) error { return m.Reset(ctx) }, 1},
		{"power cycle", func(ctx context.Context, m *bmc.SimMachine) error { return m.PowerCycle(ctx) }, 1},
	}
	for _, tc := range tests {
		// On synctest's clock: the wait below passes at once, and every
		// timer due by its end has fired and done its work.
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				m := newSim(t, softOffDelay(delay))
				must(t, "PowerOn", m.PowerOn(ctx))
				must(t, "SoftOff", m.SoftOff(ctx))
				must(t, tc.name, tc.between(ctx, m))
				// Past the cancelled soft off's delay: it must not complete.
				time.Sleep(4 * delay)
				synctest.Wait()
				if got := powerState(t, m); got != bmc.PowerOn {
					t.Fatalf("power is %v after %s during a pending soft off, want on", got, tc.name)
				}
				if got := len(m.Boots()) - 1; got != tc.wantBoots {
					t.Errorf("%d boots after the first, want %d", got, tc.wantBoots)
				}
				// A fresh soft off still works after the cancelled one.
				must(t, "SoftOff", m.SoftOff(ctx))
				eventually(t, "new soft off to complete", func() bool { return powerState(t, m) == bmc.PowerOff })
			})
		})
	}
}

// TestSimPowerOnDoesNotAbortShutdown: like a real guest (and libvirt's
// create on a running domain), a power on while the OS is shutting down is a
// no-op: the shutdown completes.
func TestSimPowerOnDoesNotAbortShutdown(t *testing.T) {
	ctx := context.Background()
	m := newSim(t, softOffDelay(50*time.Millisecond))
	must(t, "PowerOn", m.PowerOn(ctx))
	must(t, "SoftOff", m.SoftOff(ctx))
	must(t, "PowerOn", m.PowerOn(ctx))
	eventually(t, "shutdown to complete", func() bool { return powerState(t, m) == bmc.PowerOff })
	if got := len(m.Boots()); got != 1 {
		t.Errorf("%d boots, want 1", got)
	}
}

func TestSimBootOverride(t *testing.T) {
	tests := []struct {
		name      string
		override  bmc.BootOverride
		boots     int
		want      []bmc.BootRecord
		wantAfter bmc.BootOverride
		console   string
	}{
		{
			name:     "next boot pxe",
			override: bmc.BootOverride{Device: bmc.BootPXE},
			boots:    2,
			want:     []bmc.BootRecord{{Device: bmc.BootPXE, Override: true}, {Device: bmc.BootDisk}},
			console:  "Booting from PXE (network)",
		},
		{
			name:     "next boot cdrom efi",
			override: bmc.BootOverride{Device: bmc.BootCDROM, EFI: true},
			boots:    2,
			want:     []bmc.BootRecord{{Device: bmc.BootCDROM, EFI: true, Override: true}, {Device: bmc.BootDisk}},
			console:  "UEFI",
		},
		{
			name:      "persistent pxe",
			override:  bmc.BootOverride{Device: bmc.BootPXE, Persistent: true},
			boots:     3,
			want:      []bmc.BootRecord{{Device: bmc.BootPXE, Override: true}, {Device: bmc.BootPXE, Override: true}, {Device: bmc.BootPXE, Override: true}},
			wantAfter: bmc.BootOverride{Device: bmc.BootPXE, Persistent: true},
		},
		{
			name:      "persistent bios setup efi",
			override:  bmc.BootOverride{Device: bmc.BootBIOSSetup, Persistent: true, EFI: true},
			boots:     2,
			want:      []bmc.BootRecord{{Device: bmc.BootBIOSSetup, EFI: true, Override: true}, {Device: bmc.BootBIOSSetup, EFI: true, Override: true}},
			wantAfter: bmc.BootOverride{Device: bmc.BootBIOSSetup, Persistent: true, EFI: true},
			console:   "Booting from BIOS Setup",
		},
		{
			name:      "persistent efi without device",
			override:  bmc.BootOverride{Persistent: true, EFI: true},
			boots:     2,
			want:      []bmc.BootRecord{{Device: bmc.BootDisk, EFI: true}, {Device: bmc.BootDisk, EFI: true}},
			wantAfter: bmc.BootOverride{Persistent: true, EFI: true},
		},
		{
			name:    "no override",
			boots:   2,
			want:    []bmc.BootRecord{{Device: bmc.BootDisk}, {Device: bmc.BootDisk}},
			console: "Booting from Hard Disk",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m := newSim(t)
			must(t, "SetBootOverride", m.SetBootOverride(ctx, tc.override))
			got, err := m.BootOverride(ctx)
			if err != nil || got != tc.override {
				t.Fatalf("BootOverride() before boot = %+v, %v; want %+v", got, err, tc.override)
			}
			c, err := m.OpenConsole(ctx)
			must(t, "OpenConsole", err)
			r := readConsole(t, c)
			// Boot by alternating the ways a machine can boot.
			for i := 0; i < tc.boots; i++ {
				if i%2 == 0 {
					must(t, "PowerCycle", m.PowerCycle(ctx))
				} else {
					must(t, "Reset", m.Reset(ctx))
				}
			}
			boots := m.Boots()
			if len(boots) != len(tc.want) {
				t.Fatalf("Boots() = %+v, want %+v", boots, tc.want)
			}
			for i := range boots {
				if boots[i] != tc.want[i] {
					t.Errorf("boot %d = %+v, want %+v", i, boots[i], tc.want[i])
				}
			}
			after, err := m.BootOverride(ctx)
			if err != nil || after != tc.wantAfter {
				t.Errorf("BootOverride() after boots = %+v, %v; want %+v", after, err, tc.wantAfter)
			}
			if tc.console != "" {
				r.waitFor(t, tc.console)
			}
		})
	}
}

func TestSimOverrideConsumedByPowerOn(t *testing.T) {
	ctx := context.Background()
	m := newSim(t)
	must(t, "SetBootOverride", m.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootPXE}))
	must(t, "PowerOn", m.PowerOn(ctx))
	if o, err := m.BootOverride(ctx); err != nil || o != (bmc.BootOverride{}) {
		t.Fatalf("BootOverride() after the boot = %+v, %v; want BootOverride{}", o, err)
	}
	// Powering on a running machine boots nothing, so a new override stays pending.
	must(t, "SetBootOverride", m.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootCDROM}))
	must(t, "PowerOn", m.PowerOn(ctx))
	if o, err := m.BootOverride(ctx); err != nil || o.Device != bmc.BootCDROM {
		t.Fatalf("BootOverride() = %+v, %v; want the cdrom override still pending", o, err)
	}
	must(t, "PowerOff", m.PowerOff(ctx))
	if o, _ := m.BootOverride(ctx); o.Device != bmc.BootCDROM {
		t.Fatalf("PowerOff consumed the override: %+v", o)
	}
	must(t, "PowerOn", m.PowerOn(ctx))
	want := []bmc.BootRecord{{Device: bmc.BootPXE, Override: true}, {Device: bmc.BootCDROM, Override: true}}
	if got := m.Boots(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Boots() = %+v, want %+v", got, want)
	}
}

func TestSimSetBootOverrideInvalid(t *testing.T) {
	ctx := context.Background()
	for _, d := range []bmc.BootDevice{-1, bmc.BootFloppy + 1, 99} {
		m := newSim(t)
		keep := bmc.BootOverride{Device: bmc.BootDisk, Persistent: true}
		must(t, "SetBootOverride", m.SetBootOverride(ctx, keep))
		err := m.SetBootOverride(ctx, bmc.BootOverride{Device: d})
		if !errors.Is(err, bmc.ErrInvalidArgument) {
			t.Errorf("SetBootOverride(%v) = %v, want ErrInvalidArgument", d, err)
		}
		if o, _ := m.BootOverride(ctx); o != keep {
			t.Errorf("refused SetBootOverride(%v) changed the override to %+v", d, o)
		}
	}
}

func TestSimFault(t *testing.T) {
	fault := errors.New("hypervisor unreachable")
	ops := []struct {
		name string
		do   func(context.Context, *bmc.SimMachine) error
	}{
		{"PowerState", func(ctx context.Context, m *bmc.SimMachine) error { _, err := m.PowerState(ctx); return err }},
		{"PowerOn", func(ctx context.Context, m *bmc.SimMachine) error { return m.PowerOn(ctx) }},
		{"PowerOff", func(ctx context.Context, m *bmc.SimMachine) error { return m.PowerOff(ctx) }},
		{"SoftOff", func(ctx context.Context, m *bmc.SimMachine) error { return m.SoftOff(ctx) }},
		{"Reset", func(ctx context.Context, m *bmc.SimMachine) error { return m.Reset(ctx) }},
		{"PowerCycle", func(ctx context.Context, m *bmc.SimMachine) error { return m.PowerCycle(ctx) }},
		{"DiagnosticInterrupt", func(ctx context.Context, m *bmc.SimMachine) error { return m.DiagnosticInterrupt(ctx) }},
		{"BootOverride", func(ctx context.Context, m *bmc.SimMachine) error { _, err := m.BootOverride(ctx); return err }},
		{"SetBootOverride", func(ctx context.Context, m *bmc.SimMachine) error {
			return m.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootPXE})
		}},
		{"UUID", func(ctx context.Context, m *bmc.SimMachine) error { _, err := m.UUID(ctx); return err }},
		{"OpenConsole", func(ctx context.Context, m *bmc.SimMachine) error {
			c, err := m.OpenConsole(ctx)
			if c != nil {
				_ = c.Close()
			}
			return err
		}},
	}
	for _, startOn := range []bool{false, true} {
		for _, op := range ops {
			name := op.name + "/off"
			if startOn {
				name = op.name + "/on"
			}
			// On synctest's clock (see the wait for the soft-off delay).
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ctx := context.Background()
					m := newSim(t, softOffDelay(time.Millisecond))
					want := bmc.PowerOff
					if startOn {
						must(t, "PowerOn", m.PowerOn(ctx))
						want = bmc.PowerOn
					}
					boots := len(m.Boots())
					m.SetFault(fault)
					err := op.do(ctx, m)
					if !errors.Is(err, fault) {
						t.Fatalf("%s with a fault = %v, want the fault wrapped", op.name, err)
					}
					m.SetFault(nil)
					if len(m.Boots()) != boots {
						t.Errorf("failed %s booted the machine", op.name)
					}
					if o, err := m.BootOverride(ctx); err != nil || o != (bmc.BootOverride{}) {
						t.Errorf("failed %s left override %+v, %v", op.name, o, err)
					}
					// Past the soft-off delay, every timer due has done its work:
					// a failed SoftOff must not have started one.
					time.Sleep(5 * time.Millisecond)
					synctest.Wait()
					wantPower(t, m, want)
					// Recovered: the operation works again.
					if err := op.do(ctx, m); err != nil && !(errors.Is(err, bmc.ErrPoweredOff) && !startOn) {
						t.Errorf("%s after SetFault(nil) = %v", op.name, err)
					}
				})
			})
		}
	}
}

func TestSimCancelledContext(t *testing.T) {
	m := newSim(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.PowerOn(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("PowerOn with a cancelled context = %v, want context.Canceled", err)
	}
	wantPower(t, m, bmc.PowerOff)
}

func TestSimUUID(t *testing.T) {
	const fixed = "12345678-9abc-def0-1234-56789abcdef0"
	fixedUUID, err := bmc.ParseUUID(fixed)
	must(t, "ParseUUID", err)
	tests := []struct {
		name     string
		node     string
		identity string
		want     bmc.UUID
	}{
		{"derived", "node-a", "", bmc.DeriveUUID("node-a")},
		{"derived other name", "node-b", "", bmc.DeriveUUID("node-b")},
		{"configured", "node-a", fixed, fixedUUID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := validNode(tc.node, 623)
			n.Identity.UUID = tc.identity
			m, err := bmc.NewSimMachine(n)
			must(t, "NewSimMachine", err)
			defer m.Close()
			got, err := m.UUID(context.Background())
			if err != nil || got != tc.want {
				t.Fatalf("UUID() = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if got := fixedUUID.String(); got != fixed {
		t.Errorf("ParseUUID(%q).String() = %q", fixed, got)
	}
	a, b := bmc.DeriveUUID("node-a"), bmc.DeriveUUID("node-b")
	if a == b {
		t.Errorf("DeriveUUID gives %v for two names", a)
	}
	if a != bmc.DeriveUUID("node-a") {
		t.Error("DeriveUUID is not stable")
	}
	if a[6]>>4 != 5 || a[8]>>6 != 2 {
		t.Errorf("DeriveUUID %v is not an RFC 4122 version 5 UUID", a)
	}
}

func TestNewSimMachineBadUUID(t *testing.T) {
	n := validNode("node-x", 623)
	n.Identity.UUID = "nope"
	if _, err := bmc.NewSimMachine(n); err == nil || !strings.Contains(err.Error(), `"node-x"`) {
		t.Fatalf("NewSimMachine with a bad uuid = %v, want an error naming the node", err)
	}
}

func TestSimConsoleBusy(t *testing.T) {
	ctx := context.Background()
	m := newSim(t)
	first, err := m.OpenConsole(ctx)
	must(t, "OpenConsole", err)
	for i := 0; i < 2; i++ {
		if c, err := m.OpenConsole(ctx); !errors.Is(err, bmc.ErrConsoleBusy) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("second OpenConsole = %v, want ErrConsoleBusy", err)
		}
	}
	must(t, "Close", first.Close())
	second, err := m.OpenConsole(ctx)
	must(t, "OpenConsole after Close", err)
	must(t, "Close", second.Close())
}

func TestSimConsoleEcho(t *testing.T) {
	ctx := context.Background()
	m := newSim(t)
	c, err := m.OpenConsole(ctx)
	must(t, "OpenConsole", err)
	r := readConsole(t, c)
	if _, err := io.WriteString(c, "login: root\r\n"); err != nil {
		t.Fatalf("Write: %v", err)
	}
	r.waitFor(t, "login: root\r\n")
	if string(r.seen) != "login: root\r\n" {
		t.Errorf("console read %q, want exactly the echo", r.seen)
	}
	// Output and echo interleave in order.
	must(t, "PowerOn", m.PowerOn(ctx))
	r.waitFor(t, "Booting from Hard Disk")
	if _, err := io.WriteString(c, "ls"); err != nil {
		t.Fatalf("Write: %v", err)
	}
	r.waitFor(t, "Hard Disk...\r\nls")
}

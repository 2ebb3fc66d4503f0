package bmc_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// The simulated machine brings every optional capability a front end checks for.
var (
	_ bmc.Inventoried        = (*bmc.SimMachine)(nil)
	_ bmc.FirmwareController = (*bmc.SimMachine)(nil)
	_ bmc.BIOSSettings       = (*bmc.SimMachine)(nil)
	_ bmc.GracefulRebooter   = (*bmc.SimMachine)(nil)
)

func TestSimInventoryIsStable(t *testing.T) {
	ctx := context.Background()
	m := newSim(t)
	a, err := m.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Inventory(ctx)
	if len(a.NICs) != 1 || a.NICs[0].MAC != b.NICs[0].MAC || len(a.NICs[0].MAC) != 17 {
		t.Fatalf("NICs %+v then %+v", a.NICs, b.NICs)
	}
	if a.CPUs <= 0 || a.MemoryMiB == 0 || len(a.Disks) == 0 {
		t.Fatalf("inventory %+v", a)
	}
}

func TestSimBIOSSettingsApplyAtNextBoot(t *testing.T) {
	ctx := context.Background()
	m := newSim(t)
	if err := m.SetBIOSAttributes(ctx, map[string]string{"ProcTurboMode": "Disabled", bmc.BootModeAttribute: "Uefi"}); err != nil {
		t.Fatal(err)
	}
	cur, pending, _ := m.BIOSAttributes(ctx)
	if cur["ProcTurboMode"] != "Enabled" || cur[bmc.BootModeAttribute] != "Bios" || pending["ProcTurboMode"] != "Disabled" {
		t.Fatalf("before boot: current %v pending %v", cur, pending)
	}
	if err := m.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	cur, pending, _ = m.BIOSAttributes(ctx)
	if cur["ProcTurboMode"] != "Disabled" || cur[bmc.BootModeAttribute] != "Uefi" || len(pending) != 0 {
		t.Fatalf("after boot: current %v pending %v", cur, pending)
	}
	if fw, _ := m.Firmware(ctx); !fw.EFI {
		t.Fatal("BootMode Uefi did not switch the firmware")
	}
	if err := m.ResetBIOS(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if cur, _, _ = m.BIOSAttributes(ctx); cur["ProcTurboMode"] != "Enabled" || cur[bmc.BootModeAttribute] != "Uefi" {
		t.Fatalf("after ResetBIOS and a reset: %v (BootMode follows the firmware)", cur)
	}
	for _, bad := range []map[string]string{{"Nope": "1"}, {"ProcTurboMode": "Maybe"}, {"PowerOnDelaySeconds": "301"}, {"QuietBoot": "yes"}} {
		if err := m.SetBIOSAttributes(ctx, bad); !errors.Is(err, bmc.ErrInvalidArgument) {
			t.Errorf("SetBIOSAttributes(%v) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestSimSecureBootNeedsUEFI(t *testing.T) {
	ctx := context.Background()
	m := newSim(t)
	if err := m.SetFirmware(ctx, bmc.Firmware{SecureBoot: true}); !errors.Is(err, bmc.ErrInvalidArgument) {
		t.Fatalf("secure boot on legacy BIOS: %v", err)
	}
	if err := m.SetFirmware(ctx, bmc.Firmware{EFI: true, SecureBoot: true}); err != nil {
		t.Fatal(err)
	}
	if fw, _ := m.Firmware(ctx); !fw.EFI || !fw.SecureBoot {
		t.Fatalf("firmware %+v", fw)
	}
}

func TestSimGracefulRebootBootsAgain(t *testing.T) {
	ctx := context.Background()
	m := newSim(t, softOffDelay(10e6))
	if err := m.GracefulReboot(ctx); !errors.Is(err, bmc.ErrPoweredOff) {
		t.Fatalf("reboot while off: %v", err)
	}
	_ = m.PowerOn(ctx)
	if err := m.GracefulReboot(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300 && len(m.Boots()) < 2; i++ {
		sleep10ms()
	}
	if len(m.Boots()) != 2 || powerState(t, m) != bmc.PowerOn {
		t.Fatalf("boots %v", m.Boots())
	}
}

func sleep10ms() { <-time.After(10 * time.Millisecond) }

// TestSimShutdownDuringGracefulRebootWins runs on synctest's clock: the
// guest's delays pass at once, and "the reboot never comes back" is checked
// after every timer due has fired and its work has ended.
func TestSimShutdownDuringGracefulRebootWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		m := newSim(t, softOffDelay(20*time.Millisecond))
		_ = m.PowerOn(ctx)
		if err := m.GracefulReboot(ctx); err != nil {
			t.Fatal(err)
		}
		if err := m.SoftOff(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		if powerState(t, m) != bmc.PowerOff {
			t.Fatalf("power %v after the soft-off delay", powerState(t, m))
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if powerState(t, m) != bmc.PowerOff || len(m.Boots()) != 1 {
			t.Fatalf("power %v, boots %v", powerState(t, m), m.Boots())
		}
	})
}

//go:build govbmc_testhooks

package libvirtconn

import (
	"context"
	"log/slog"
	"os"
	"time"
)

// HoldPausedStartEnv, set to 1 in the environment of a binary built with
// -tags govbmc_testhooks (never a release build), makes every power on
// hold its paused start (the domain started paused, its console open, not
// yet resumed) for up to heldStartMax, so that a test can kill vbmcd
// inside that window.
const HoldPausedStartEnv = "GOVBMC_TEST_HOLD_PAUSED_START"

// heldStartMax bounds how long the hook holds a paused start.
const heldStartMax = 2 * time.Minute

func init() {
	if os.Getenv(HoldPausedStartEnv) != "1" {
		return
	}
	testHookHoldPausedStart = func(context.Context) {
		slog.Warn("test hook: holding the paused start", "env", HoldPausedStartEnv, "max", heldStartMax)
		t := time.NewTimer(heldStartMax)
		defer t.Stop()
		<-t.C
	}
}

package redfish

import (
	"errors"
	"fmt"
	"testing"

	"github.com/govbmc/govbmc/bmc"
)

func TestReasonLeavesOutTheBackend(t *testing.T) {
	err := fmt.Errorf(`domain "vm1" on qemu+ssh://root@10.0.0.1/system?keyfile=/root/.ssh/id: set firmware: secure boot needs a q35 machine type (this domain's is "pc"): %w`, bmc.ErrNotSupported)
	if got, want := reason(err), `secure boot needs a q35 machine type (this domain's is "pc"): not supported by this machine`; got != want {
		t.Fatalf("reason %q, want %q", got, want)
	}
	if got := reason(errors.New("plain")); got != "plain" {
		t.Fatalf("reason %q", got)
	}
}

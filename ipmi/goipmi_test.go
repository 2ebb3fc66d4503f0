package ipmi_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Tests that prove a workaround of GOIPMI.md from a client's side, where no
// other test does.

// TestRAKP1NameOverrunIsDropped: a RAKP 1 whose user name length wraps
// go-ipmi's 8-bit bounds check (which would panic and end the daemon) gets
// no answer, and the node goes on serving: the same session's real RAKP 1
// is answered, and ipmitool logs in.
func TestRAKP1NameOverrunIsDropped(t *testing.T) {
	n := startNode(t)
	c := dialFrom(t, n, "127.0.0.1")
	resp := payloadOf(exchange(t, c, openSessionRequest(0xA0A2A3A4)), types.PayloadTypeRmcpOpenSessionResponse)
	if len(resp) < 12 || resp[1] != 0 {
		t.Fatalf("open session: %x", resp)
	}
	bmcID := binary.LittleEndian.Uint32(resp[8:12])
	overrun := rakp1(bmcID, admin.Name)
	overrun[16+27] = 0xE4 // the name length byte: 28+0xE4 wraps to 0 in 8 bits
	if answer := exchange(t, c, overrun); answer != nil {
		t.Fatalf("an overrunning RAKP 1 was answered: % x", answer)
	}
	if r2 := payloadOf(exchange(t, c, rakp1(bmcID, admin.Name)), types.PayloadTypeRAKPMessage2); len(r2) < 2 || r2[1] != 0 {
		t.Fatalf("the real RAKP 1 after it: %x", r2)
	}
	mustContain(t, n.lanplus("power", "status"), "Chassis Power is off")
}

// TestChassisIdentifyNeedsOperator: a USER session may not run Chassis
// Identify (IPMI 2.0 Appendix G); an OPERATOR may.
func TestChassisIdentifyNeedsOperator(t *testing.T) {
	n := startNode(t)
	identify := func(c *client.Client) error {
		_, err := c.RawCommand(context.Background(), types.NetFnChassisRequest, types.CommandChassisIdentify.ID, []byte{5}, "identify")
		return err
	}
	user, err := n.connect(viewer, client.InterfaceLanplus, types.PrivilegeLevelUser)
	if err != nil {
		t.Fatal(err)
	}
	var rerr *types.ResponseError
	if err := identify(user); !errors.As(err, &rerr) || uint8(rerr.CompletionCode()) != 0xD4 {
		t.Fatalf("USER chassis identify: err=%v, want completion code 0xD4", err)
	}
	op, err := n.connect(operator, client.InterfaceLanplus, types.PrivilegeLevelOperator)
	if err != nil {
		t.Fatal(err)
	}
	if err := identify(op); err != nil {
		t.Fatalf("OPERATOR chassis identify: %v", err)
	}
}

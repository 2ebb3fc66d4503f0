package ipmi_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/govbmc/govbmc/bmc"
)

// connect opens a go-ipmi client session to the node.
func (n *testNode) connect(u bmc.User, intf client.Interface, priv types.PrivilegeLevel) (*client.Client, error) {
	n.t.Helper()
	port, _ := strconv.Atoi(n.port)
	c, err := client.NewClient("127.0.0.1", port, u.Name, u.Password)
	if err != nil {
		return nil, err
	}
	c = c.WithInterface(intf).WithMaxPrivilegeLevel(priv).WithTimeout(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	n.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.Close(ctx) // a session the BMC closed already gets no answer
	})
	return c, nil
}

func TestGoIPMIClientMatrix(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	for _, intf := range []client.Interface{client.InterfaceLanplus, client.InterfaceLan} {
		t.Run(string(intf), func(t *testing.T) {
			c, err := n.connect(admin, intf, types.PrivilegeLevelAdministrator)
			if err != nil {
				t.Fatal(err)
			}
			controls := []struct {
				ctl  chassis.ChassisControl
				want bmc.PowerState
			}{
				{chassis.ChassisControlPowerUp, bmc.PowerOn},
				{chassis.ChassisControlPowerCycle, bmc.PowerOn},
				{chassis.ChassisControlHardReset, bmc.PowerOn},
				{chassis.ChassisControlDiagnosticInterrupt, bmc.PowerOn},
				{chassis.ChassisControlPowerDown, bmc.PowerOff},
			}
			for _, tc := range controls {
				if _, err := c.ChassisControl(ctx, tc.ctl); err != nil {
					t.Fatalf("chassis control %d: %v", tc.ctl, err)
				}
				if got := n.power(); got != tc.want {
					t.Fatalf("after control %d power is %v, want %v", tc.ctl, got, tc.want)
				}
				st, err := c.GetChassisStatus(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if st.PowerIsOn != (tc.want == bmc.PowerOn) {
					t.Fatalf("chassis status says on=%v after control %d", st.PowerIsOn, tc.ctl)
				}
			}

			for _, d := range bootDevices {
				for _, persist := range []bool{false, true} {
					bootType := types.BIOSBootTypeLegacy
					if err := c.SetBootDevice(ctx, d.sel, bootType, persist); err != nil {
						t.Fatalf("set boot device %s: %v", d.arg, err)
					}
					resp, err := c.GetSystemBootOptionsParam(ctx, types.BootOptionParamSelector_BootFlags, 0, 0)
					if err != nil {
						t.Fatal(err)
					}
					if len(resp.ParamData) != 5 {
						t.Fatalf("boot flags have %d bytes, want 5", len(resp.ParamData))
					}
					want := bmc.BootOverride{Device: d.dev, Persistent: persist}
					if got := n.override(); got != want {
						t.Fatalf("override %+v, want %+v", got, want)
					}
				}
			}

			// Parameters 0, 3 and 4 are stored and read back.
			for _, p := range []struct {
				sel  types.BootOptionParamSelector
				data []byte
				want []byte
			}{
				{types.BootOptionParamSelector_SetInProgress, []byte{0x01}, []byte{0x01}},
				{types.BootOptionParamSelector_SetInProgress, []byte{0x00}, []byte{0x00}},
				{types.BootOptionParamSelector_BMCBootFlagValidBitClear, []byte{0x08}, []byte{0x08}},
				{types.BootOptionParamSelector_BootInfoAcknowledge, []byte{0x01, 0x01}, []byte{0x00, 0x01}},
			} {
				if _, err := c.RawCommand(ctx, types.NetFnChassisRequest, 0x08, append([]byte{byte(p.sel)}, p.data...), "set boot option"); err != nil {
					t.Fatalf("set param %d: %v", p.sel, err)
				}
				resp, err := c.GetSystemBootOptionsParam(ctx, p.sel, 0, 0)
				if err != nil {
					t.Fatalf("get param %d: %v", p.sel, err)
				}
				if string(resp.ParamData) != string(p.want) {
					t.Fatalf("param %d reads % x, want % x", p.sel, resp.ParamData, p.want)
				}
			}
		})
	}
}

func TestGoIPMIClientPrivileges(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	c, err := n.connect(viewer, client.InterfaceLanplus, types.PrivilegeLevelUser)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetChassisStatus(ctx); err != nil {
		t.Fatalf("USER chassis status: %v", err)
	}
	_, err = c.ChassisControl(ctx, chassis.ChassisControlPowerUp)
	var rerr *types.ResponseError
	if !errors.As(err, &rerr) || uint8(rerr.CompletionCode()) != 0xD4 {
		t.Fatalf("USER chassis control: err=%v, want completion code 0xD4", err)
	}
	if n.power() != bmc.PowerOff {
		t.Fatal("USER powered the machine on")
	}
	if _, err := n.connect(viewer, client.InterfaceLanplus, types.PrivilegeLevelAdministrator); err == nil {
		t.Fatal("USER account got an ADMINISTRATOR session")
	}
	if _, err := n.connect(bmc.User{Name: "admin", Password: "nope"}, client.InterfaceLanplus, types.PrivilegeLevelAdministrator); err == nil {
		t.Fatal("wrong password got a session")
	}
}

// TestMalformedRequestsGetTheRightCompletionCode: bad requests are refused
// with the code the spec names and change nothing.
func TestMalformedRequestsGetTheRightCompletionCode(t *testing.T) {
	n := startNode(t)
	c, err := n.connect(admin, client.InterfaceLanplus, types.PrivilegeLevelAdministrator)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cmd  uint8
		data []byte
		cc   uint8
	}{
		{"chassis control without data", 0x02, nil, 0xC7},
		{"chassis control reserved directive", 0x02, []byte{0x06}, 0xCC},
		{"boot flags too short", 0x08, []byte{0x05, 0x80, 0x04}, 0xC7},
		{"boot flags reserved device", 0x08, []byte{0x05, 0x80, 0x0A << 2, 0, 0, 0}, 0xCC},
		{"set in progress reserved value", 0x08, []byte{0x00, 0x03}, 0xCC},
		{"unsupported boot parameter", 0x08, []byte{0x01, 0x00}, 0x80},
		{"get unsupported boot parameter", 0x09, []byte{0x07, 0, 0}, 0x80},
		{"set boot options without data", 0x08, nil, 0xC7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.RawCommand(context.Background(), types.NetFnChassisRequest, tc.cmd, tc.data, tc.name)
			var rerr *types.ResponseError
			if !errors.As(err, &rerr) || uint8(rerr.CompletionCode()) != tc.cc {
				t.Fatalf("err=%v, want completion code %#02x", err, tc.cc)
			}
		})
	}
	if n.power() != bmc.PowerOff || n.override().Active() {
		t.Fatal("a malformed request changed the machine")
	}
}

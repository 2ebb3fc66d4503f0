package ipmi

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"net"
	"sync"

	gobmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// LAN configuration (IPMI 2.0 §23): what `ipmitool lan print 1` shows is
// true of the virtual BMC. The IP address is the listener's, or for a
// wildcard listener the address this host uses to reach the client (what
// the client reached, unless its routing is asymmetric); the subnet is that
// address's interface's; the MAC is derived from the node's name (locally
// administered, stable); the RMCP port is the listener's; the cipher suites
// and authentication types are those the node offers. A virtual BMC cannot
// take a new address, MAC or VLAN from IPMI: Set LAN Configuration
// Parameters refuses every parameter but "set in progress" as read-only
// (0x82), unknown ones as not supported (0x80).

// LAN configuration parameters (Table 23-4).
const (
	lanSetInProgress    = 0
	lanAuthTypeSupport  = 1
	lanAuthTypeEnables  = 2
	lanIP               = 3
	lanIPSource         = 4
	lanMAC              = 5
	lanSubnet           = 6
	lanIPv4Header       = 7
	lanPrimaryRMCPPort  = 8
	lanARPControl       = 10
	lanGratuitousARP    = 11
	lanGateway          = 12
	lanGatewayMAC       = 13
	lanBackupGateway    = 14
	lanBackupGatewayMAC = 15
	lanCommunity        = 16
	lanVLANID           = 20
	lanVLANPriority     = 21
	lanCipherCount      = 22
	lanCipherSuites     = 23
	lanCipherPrivileges = 24

	lanParamRevision  = 0x11
	ipSourceStatic    = 0x01
	ccParamNotSupport = types.CompletionCode(0x80)
	ccParamReadOnly   = types.CompletionCode(0x82)
	channelSelf       = 0x0E
)

// peers remembers the address each session's requests come from, for the
// IP address of a wildcard listener (go-ipmi's handlers do not see it).
type peers struct {
	mu   sync.Mutex
	addr map[uint64]net.Addr // by session; nil while there is none (lazymap.go)
}

// inbound records a session's address (job 6 of conn).
func (p *peers) inbound(h header, addr net.Addr) {
	if !h.session || h.sessionID == 0 {
		return
	}
	key := uint64(h.sessionID)
	if h.authType != authTypeRMCPP {
		key |= 1 << 32
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	put(&p.addr, key, addr)
}

func (p *peers) forget(id uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	del(&p.addr, uint64(id))
	del(&p.addr, 1<<32|uint64(id))
}

func (p *peers) of(hctx *handlers.HandlerContext) net.Addr {
	key, ok := sessionKey(hctx)
	if !ok {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr[key]
}

// lanIPv4 is the BMC's IPv4 address as this client sees it, and its mask.
func (h *nodeHandlers) lanIPv4(hctx *handlers.HandlerContext) (ip net.IP, mask net.IPMask) {
	ip = h.listen.IP.To4()
	if ip == nil || ip.IsUnspecified() {
		ip = nil
		if peer, ok := h.peers.of(hctx).(*net.UDPAddr); ok {
			// A connected UDP socket sends nothing: it asks the kernel
			// which source address it would use for the peer.
			if c, err := net.DialUDP("udp", nil, peer); err == nil {
				ip = c.LocalAddr().(*net.UDPAddr).IP.To4()
				c.Close()
			}
		}
	}
	if ip == nil {
		return net.IPv4zero.To4(), net.IPv4Mask(0, 0, 0, 0)
	}
	return ip, interfaceMask(ip)
}

// interfaceMask is the mask of the interface address ip is on.
func interfaceMask(ip net.IP) net.IPMask {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) && len(n.Mask) >= 4 {
				return n.Mask[len(n.Mask)-4:]
			}
		}
	}
	return net.IPv4Mask(255, 255, 255, 255)
}

// lanMACOf is the node's MAC: locally administered, unicast, from its name.
func lanMACOf(name string) [6]byte {
	sum := sha256.Sum256([]byte("govbmc-bmc-mac:" + name))
	var mac [6]byte
	copy(mac[:], sum[:6])
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}

// lanChannelOK is channel 1 or "this channel".
func lanChannelOK(b byte) bool {
	ch := b & 0x0F
	return ch == lanChannel || ch == channelSelf
}

// getLanConfig implements Get LAN Configuration Parameters (Transport 0x02).
func (h *nodeHandlers) getLanConfig(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) != 4 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	if !lanChannelOK(req[0]) {
		return nil, types.CodeRequestDataFieldInvalid, nil
	}
	data, cc := h.lanParam(ctx, hctx, req[1])
	if cc != types.CodeOK {
		return nil, cc, nil
	}
	if req[0]&0x80 != 0 {
		return []byte{lanParamRevision}, types.CodeOK, nil
	}
	return append([]byte{lanParamRevision}, data...), types.CodeOK, nil
}

// lanParam is one parameter's data.
func (h *nodeHandlers) lanParam(ctx context.Context, hctx *handlers.HandlerContext, param byte) ([]byte, types.CompletionCode) {
	zeroIP := []byte{0, 0, 0, 0}
	switch param {
	case lanSetInProgress:
		return []byte{0x00}, types.CodeOK
	case lanAuthTypeSupport, lanAuthTypeEnables:
		// go-ipmi's own answer for the types its IPMI 1.5 login accepts.
		resp, cc, _ := registered(goipmiDefaults(), types.CommandGetLanConfigParam).Handle(ctx, hctx, []byte{lanChannel, lanAuthTypeSupport, 0, 0})
		if cc != types.CodeOK || len(resp) < 2 {
			return nil, cc
		}
		if param == lanAuthTypeSupport {
			return resp[1:2], types.CodeOK
		}
		t := resp[1]
		return []byte{t, t, t, t, 0}, types.CodeOK // callback, user, operator, administrator, OEM
	case lanIP:
		ip, _ := h.lanIPv4(hctx)
		return ip, types.CodeOK
	case lanSubnet:
		_, mask := h.lanIPv4(hctx)
		return mask, types.CodeOK
	case lanIPSource:
		return []byte{ipSourceStatic}, types.CodeOK
	case lanMAC:
		return h.mac[:], types.CodeOK
	case lanIPv4Header:
		return []byte{0x40, 0x40, 0x10}, types.CodeOK // TTL 64, don't fragment, normal TOS
	case lanPrimaryRMCPPort:
		return binary.LittleEndian.AppendUint16(nil, uint16(h.listen.Port)), types.CodeOK
	case lanARPControl, lanGratuitousARP:
		return []byte{0x00}, types.CodeOK // a virtual BMC sends no ARP of its own
	case lanGateway, lanBackupGateway:
		return zeroIP, types.CodeOK
	case lanGatewayMAC, lanBackupGatewayMAC:
		return make([]byte, 6), types.CodeOK
	case lanCommunity:
		return append([]byte("public"), make([]byte, 12)...), types.CodeOK
	case lanVLANID:
		return []byte{0x00, 0x00}, types.CodeOK // disabled
	case lanVLANPriority:
		return []byte{0x00}, types.CodeOK
	case lanCipherCount:
		return []byte{byte(len(h.suites))}, types.CodeOK
	case lanCipherSuites:
		out := []byte{0x00}
		for _, s := range h.suites {
			out = append(out, byte(s))
		}
		return out, types.CodeOK
	case lanCipherPrivileges:
		out := make([]byte, 9)
		for i := range h.suites {
			out[1+i/2] |= byte(gobmc.PrivilegeLevelAdministrator) << (4 * (i % 2))
		}
		return out, types.CodeOK
	}
	return nil, ccParamNotSupport
}

// setLanConfig implements Set LAN Configuration Parameters (Transport
// 0x01): nothing a virtual BMC could honour is accepted.
func (h *nodeHandlers) setLanConfig(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 3 {
		return nil, types.CodeRequestDataLengthInvalid, nil
	}
	if !lanChannelOK(req[0]) {
		return nil, types.CodeRequestDataFieldInvalid, nil
	}
	if req[1] == lanSetInProgress {
		return nil, types.CodeOK, nil
	}
	if _, cc := h.lanParam(ctx, hctx, req[1]); cc != types.CodeOK {
		return nil, ccParamNotSupport, nil
	}
	h.log.Info("refused a LAN configuration change: a virtual BMC's network is its listener", "parameter", req[1])
	return nil, ccParamReadOnly, nil
}

package ipmi

import (
	"context"
	"sync"

	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/govbmc/govbmc/bmc"
)

// The node's FRU (Platform Management FRU Information Storage Definition
// v1.0): the builtin FRU device 0 with chassis, board and product areas,
// the serial numbers being the machine's UUID. go-ipmi's own Get FRU
// Inventory Area Info and Read FRU Data serve it from the HAL's FRUStore.
// It is built from the machine once (its UUID and, for a machine that
// describes itself, its inventory) and kept: Get Device ID looks at it in
// every session.

// fruIdentity is what the FRU says of the machine.
type fruIdentity struct {
	manufacturer, product, serial string
}

// defaultIdentity is what a machine that does not describe itself
// (bmc.Inventoried) is: the backend names the product.
func defaultIdentity(node bmc.Node) fruIdentity {
	return fruIdentity{manufacturer: "govbmc", product: node.Backend.Type + " machine"}
}

const (
	fruChassisOther = 0x01 // SMBIOS chassis type: Other
	fruEnd          = 0xC1
	fruASCII        = 0xC0 // type/length byte: 8-bit ASCII + Latin 1
	fruMaxField     = 63
)

// fruField encodes one type/length field.
func fruField(s string) []byte {
	if len(s) > fruMaxField {
		s = s[:fruMaxField]
	}
	return append([]byte{fruASCII | byte(len(s))}, s...)
}

// fruArea closes an area: end marker, padding to 8 bytes, length byte
// (area[1]) and the zero checksum.
func fruArea(area []byte) []byte {
	area = append(area, fruEnd)
	for (len(area)+1)%8 != 0 {
		area = append(area, 0)
	}
	area[1] = byte((len(area) + 1) / 8)
	return append(area, fruChecksum(area))
}

func fruChecksum(b []byte) byte {
	var sum byte
	for _, c := range b {
		sum += c
	}
	return -sum
}

// encodeFRU builds the FRU image.
func encodeFRU(id fruIdentity) []byte {
	chassis := []byte{0x01, 0, fruChassisOther}
	chassis = append(chassis, fruField(id.product)...) // part number
	chassis = append(chassis, fruField(id.serial)...)
	chassis = fruArea(chassis)

	board := []byte{0x01, 0, 0x00, 0, 0, 0} // English; manufacturing date unspecified
	for _, f := range []string{id.manufacturer, id.product, id.serial, id.product, ""} {
		board = append(board, fruField(f)...) // manufacturer, product, serial, part number, FRU file ID
	}
	board = fruArea(board)

	product := []byte{0x01, 0, 0x00}
	for _, f := range []string{id.manufacturer, id.product, id.product, "", id.serial, "", ""} {
		product = append(product, fruField(f)...) // manufacturer, name, part/model, version, serial, asset tag, FRU file ID
	}
	product = fruArea(product)

	header := []byte{0x01, 0, 1, byte(1 + len(chassis)/8), byte(1 + (len(chassis)+len(board))/8), 0, 0}
	header = append(header, fruChecksum(header))
	out := append(header, chassis...)
	out = append(out, board...)
	return append(out, product...)
}

// fruStore is the node's FRU device 0, built on first read.
type fruStore struct {
	h *nodeHandlers

	mu    sync.Mutex
	image []byte
}

var _ hal.FRUStore = (*fruStore)(nil)

func (f *fruStore) Read(ctx context.Context, deviceID uint8) ([]byte, error) {
	if deviceID != 0 {
		return nil, hal.ErrNotFound
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.image != nil {
		return f.image, nil
	}
	ctx, cancel := f.h.opContext(ctx)
	defer cancel()
	u, err := f.h.machine.UUID(ctx)
	if err != nil {
		return nil, err
	}
	id := f.h.fruID
	id.serial = u.String()
	if inv, ok := bmc.As[bmc.Inventoried](f.h.machine); ok {
		if i, err := inv.Inventory(ctx); err == nil {
			if i.Manufacturer != "" {
				id.manufacturer = i.Manufacturer
			}
			if i.Model != "" {
				id.product = i.Model
			}
		}
	}
	f.image = encodeFRU(id)
	return f.image, nil
}

func (*fruStore) Write(context.Context, uint8, []byte) error { return hal.ErrNotSupported }
func (*fruStore) Delete(context.Context, uint8) error        { return hal.ErrNotSupported }
func (*fruStore) DeviceIDs(context.Context) ([]uint8, error) { return []uint8{0}, nil }

package libvirtconn

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
)

// Where virtual media images live on a hypervisor.
//
// An insert streams the image into a storage volume of a pool on the
// domain's own hypervisor. The pool is chosen per connection (per URI):
// libvirt's "default" pool when the hypervisor has one, else govbmc's own
// directory pool MediaPoolName, which govbmc defines (autostarted) at
// MediaPoolPath — under the hypervisor's image directory — the first time
// it needs it. SetMediaPool names another pool instead, for every
// hypervisor (vbmcd's virtual_media: pool, as sushy-tools'
// SUSHY_EMULATOR_STORAGE_POOL).
//
// Volumes are named govbmc-<domain>-<uuid8>-<slot>-<nonce>.<iso|img>: the
// domain's name (sanitised) and the first 8 hex digits of its UUID say
// whose it is, the slot which device it backs, and the nonce keeps two
// inserts into one slot apart. A volume carrying a domain's prefix that
// its definition does not reference is an orphan (vbmcd killed during an
// upload) and is deleted on the domain's first virtual media use.
const (
	// DefaultMediaPool is the pool used when the hypervisor has it.
	DefaultMediaPool = "default"
	// MediaPoolName is the pool govbmc creates when there is no DefaultMediaPool.
	MediaPoolName = "govbmc"
	// MediaPoolPath is MediaPoolName's directory on the hypervisor.
	MediaPoolPath = "/var/lib/libvirt/images/govbmc"
)

// poolMu serialises pool creation in this process (two nodes on one
// hypervisor inserting at once must not both define it).
var poolMu sync.Mutex

// chosenPool is the pool SetMediaPool names, "" for the default choice.
var chosenPool atomic.Value

// SetMediaPool makes virtual media use the storage pool called name on
// every hypervisor, instead of DefaultMediaPool else MediaPoolName; ""
// restores that default. The pool must exist (and is started when it is
// not), unless it is MediaPoolName, which govbmc creates as usual. Volumes
// left in the pool used before are no longer looked after.
func SetMediaPool(name string) { chosenPool.Store(name) }

// mediaPool returns the pool for virtual media volumes, creating and
// starting govbmc's own when create is set and no pool exists; ok is false
// when there is none and create is not set.
func mediaPool(lv *libvirt.Libvirt, create bool) (libvirt.StoragePool, bool, error) {
	poolMu.Lock()
	defer poolMu.Unlock()
	names := []string{DefaultMediaPool, MediaPoolName}
	chosen, _ := chosenPool.Load().(string)
	if chosen != "" {
		names = []string{chosen}
	}
	for _, name := range names {
		p, err := lv.StoragePoolLookupByName(name)
		if isLibvirtErr(err, libvirt.ErrNoStoragePool) {
			continue
		}
		if err != nil {
			return p, false, fmt.Errorf("look up storage pool %s: %w", name, err)
		}
		return p, true, startPool(lv, p)
	}
	if !create {
		return libvirt.StoragePool{}, false, nil
	}
	if chosen != "" && chosen != MediaPoolName {
		return libvirt.StoragePool{}, false, fmt.Errorf("storage pool %s, chosen for virtual media, does not exist on the hypervisor", chosen)
	}
	doc := fmt.Sprintf(`<pool type='dir'><name>%s</name><target><path>%s</path>`+
		`<permissions><mode>0755</mode></permissions></target></pool>`, MediaPoolName, MediaPoolPath)
	p, err := lv.StoragePoolDefineXML(doc, 0)
	if err != nil {
		return p, false, fmt.Errorf("define storage pool %s at %s: %w", MediaPoolName, MediaPoolPath, err)
	}
	if err := lv.StoragePoolBuild(p, 0); err != nil {
		return p, false, fmt.Errorf("build storage pool %s at %s: %w", MediaPoolName, MediaPoolPath, err)
	}
	if err := lv.StoragePoolSetAutostart(p, 1); err != nil {
		return p, false, fmt.Errorf("autostart storage pool %s: %w", MediaPoolName, err)
	}
	return p, true, startPool(lv, p)
}

func startPool(lv *libvirt.Libvirt, p libvirt.StoragePool) error {
	active, err := lv.StoragePoolIsActive(p)
	if err != nil {
		return fmt.Errorf("storage pool %s: %w", p.Name, err)
	}
	if active == 1 {
		return nil
	}
	if err := lv.StoragePoolCreate(p, 0); err != nil && !isLibvirtErr(err, libvirt.ErrOperationInvalid) {
		return fmt.Errorf("start storage pool %s: %w", p.Name, err)
	}
	return nil
}

func isLibvirtErr(err error, code libvirt.ErrorNumber) bool {
	var le libvirt.Error
	return errors.As(err, &le) && le.Code == uint32(code)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.+-]`)

// volumePrefix is the start of the names of a domain's media volumes.
func volumePrefix(name string, uuid libvirt.UUID) string {
	n := unsafeName.ReplaceAllString(name, "_")
	if len(n) > 64 {
		n = n[:64]
	}
	return fmt.Sprintf("govbmc-%s-%x-", n, uuid[:4])
}

// volumeName names a new volume for a slot.
func volumeName(prefix string, slot bmc.MediaSlot, nonce int64) string {
	ext := "img"
	if slot == bmc.SlotCD {
		ext = "iso"
	}
	return fmt.Sprintf("%s%s-%x.%s", prefix, strings.ToLower(string(slot)), nonce, ext)
}

// slotOfVolume is the slot a volume of the domain (by prefix) backs, "" when
// the volume is not one of the domain's.
func slotOfVolume(prefix, vol string) bmc.MediaSlot {
	rest, ok := strings.CutPrefix(vol, prefix)
	if !ok {
		return ""
	}
	s, _, _ := strings.Cut(rest, "-")
	for _, slot := range []bmc.MediaSlot{bmc.SlotCD, bmc.SlotUSB, bmc.SlotFloppy} {
		if strings.ToLower(string(slot)) == s {
			return slot
		}
	}
	return ""
}

package libvirtconn

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/testtool"
)

// mediaDomainXML is testtool's console domain (%[1]s name, %[2]s virt
// type) with %[3]s its machine type and %[4]s more devices, and no boot
// menu wait: SeaBIOS talks on the serial console and boots at once.
var mediaDomainXML = strings.NewReplacer(
	"machine='pc'", "machine='%[3]s'",
	"<bootmenu enable='yes' timeout='10000'/>", "",
	"<devices>", "<devices>%[4]s",
).Replace(testtool.ConsoleDomainXML)

// withCDROMAndBootOrder are devices for mediaDomainXML: an empty IDE
// CD-ROM drive and a disk-less boot order on a second, empty one (libvirt
// refuses <os><boot> with per-device order, so the template's is dropped).
const withCDROMAndBootOrder = `
    <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>
    <disk type='file' device='cdrom'><target dev='hdd' bus='ide'/><readonly/><boot order='1'/></disk>`

// qemuConn is a connection to the system libvirtd's qemu driver.
func qemuConn(t *testing.T) *Conn {
	t.Helper()
	return qemuConnVia(t, false)
}

// qemuConnVia is qemuConn, through qemu+ssh (a test sshd) when ssh is set.
func qemuConnVia(t *testing.T, ssh bool) *Conn {
	t.Helper()
	testtool.SystemLibvirtd(t)
	testtool.Require(t, "qemu-system-x86_64")
	uri := "qemu:///system"
	if ssh {
		sshd := testtool.StartSshd(t)
		q := url.Values{"keyfile": {sshd.ClientKey}, "known_hosts": {sshd.KnownHosts}}
		uri = fmt.Sprintf("qemu+ssh://root@127.0.0.1:%d/system?%s", sshd.Port, q.Encode())
	}
	// The test's own use: each Domain made on c takes one more (newDomain)
	// and gives it back when closed, and the test's cleanup (undefining
	// the domain) needs the connection after that.
	return connTo(t, uri)
}

// newDomain makes a Domain on c with a use of c of its own, as each node
// of a vbmcd gets one from the pool.
func newDomain(c *Conn, name string) *Domain {
	c.pool.mu.Lock()
	c.refs++
	c.pool.mu.Unlock()
	return NewDomain(c, name, nil)
}

// mediaDomain defines a qemu domain for the test and returns its machine,
// with a fetcher of the test's own (1 s idle timeout, 1 MiB cap).
func mediaDomain(t *testing.T, c *Conn, machine string, cfg bmc.MediaFetcherConfig) (*Domain, string) {
	t.Helper()
	return mediaDomainWith(t, c, machine, "", cfg)
}

func mediaDomainWith(t *testing.T, c *Conn, machine, devices string, cfg bmc.MediaFetcherConfig) (*Domain, string) {
	t.Helper()
	tmpl := mediaDomainXML
	if devices != "" {
		tmpl = strings.Replace(tmpl, "<boot dev='hd'/>", "", 1)
	}
	name := testtool.DefineTestDomain(t, c, tmpl, testtool.VirtType(), machine, devices)
	d := newDomain(c, name)
	// Closing a Domain releases the connection's only use: undefine first.
	t.Cleanup(func() {
		_ = testtool.UndefineDomain(c, name)
		d.Close()
	})
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Second
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = 1 << 20
	}
	d.SetMediaFetcher(bmc.NewMediaFetcher(cfg))
	return d, name
}

func mediaCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// captureConsole collects what the domain prints on its serial console
// until the test ends.
func captureConsole(t *testing.T, d *Domain) *testtool.Buffer {
	t.Helper()
	con, err := d.OpenConsole(mediaCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	buf := &testtool.Buffer{}
	go func() { _, _ = io.Copy(buf, con) }()
	t.Cleanup(func() { con.Close() })
	return buf
}

// lastBoot is what the console printed since SeaBIOS last started.
func lastBoot(out string) string {
	if i := strings.LastIndex(out, "SeaBIOS (version"); i >= 0 {
		return out[i:]
	}
	return ""
}

// domainVolumes lists the media volumes of the domain left in the pool.
func domainVolumes(t *testing.T, c *Conn, name string) []string {
	t.Helper()
	var out []string
	err := c.Do(testCtx(t), func(lv *libvirt.Libvirt) error {
		dom, err := lv.DomainLookupByName(name)
		if err != nil {
			return err
		}
		pool, ok, err := mediaPool(lv, false)
		if err != nil || !ok {
			return err
		}
		_ = lv.StoragePoolRefresh(pool, 0) // refused during an upload
		vols, _, err := lv.StoragePoolListAllVolumes(pool, 1, 0)
		for _, v := range vols {
			if strings.HasPrefix(v.Name, volumePrefix(dom.Name, dom.UUID)) {
				out = append(out, v.Name)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertNothingLeft checks that no volume of the domain is left in the
// pool and no trace of virtual media in its definition or running domain:
// no device govbmc added, no volume as a source, no metadata, and only the
// wantDisks disks it was defined with.
func assertNothingLeft(t *testing.T, c *Conn, name string, wantDisks int) {
	t.Helper()
	if vols := domainVolumes(t, c, name); len(vols) > 0 {
		t.Errorf("volumes left in the pool: %v", vols)
	}
	for _, flags := range []libvirt.DomainXMLFlags{libvirt.DomainXMLInactive, 0} {
		doc := testtool.DomainXML(t, c, name, flags)
		if strings.Count(doc, "<disk") != wantDisks || strings.Contains(doc, "/govbmc-") ||
			strings.Contains(doc, addedAlias) || strings.Contains(doc, mediaNS) {
			t.Errorf("virtual media left in the definition (flags %d):\n%s", flags, doc)
		}
	}
}

func uniqueLine(t *testing.T) string {
	return fmt.Sprintf("govbmc virtual media %s %s", t.Name(), rand.Text()[:8])
}

// TestVirtualMediaBootsISO: an ISO served over HTTP or HTTPS is streamed
// into a volume, attached as a CD-ROM and booted by a CD override; after
// the eject the next boot does not boot it, and neither volume nor device
// is left. i440fx and q35 domains without a CD-ROM get one added (IDE,
// SATA); a domain with CD-ROM drives and per-device boot order gets a
// media change in its first drive while it runs, and a BMC reset boots it.
// The same works through qemu+ssh.
func TestVirtualMediaBootsISO(t *testing.T) {
	for _, tc := range []struct {
		name, machine, scheme, bus, devices string
		disks                               int
		running, ssh                        bool
	}{
		{"http-i440fx", "pc", "http", "ide", "", 0, false, false},
		{"https-q35", "q35", "https", "sata", "", 0, false, false},
		{"running-existing-cdrom", "pc", "http", "ide", withCDROMAndBootOrder, 2, true, false},
		{"qemu+ssh", "pc", "https", "ide", "", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := qemuConnVia(t, tc.ssh)
			line := uniqueLine(t)
			iso := testtool.BootISO(t, line)
			body, err := os.ReadFile(iso)
			if err != nil {
				t.Fatal(err)
			}
			srv := testtool.NewMediaServer(t, body)
			url, cfg := srv.HTTP.URL+"/image", bmc.MediaFetcherConfig{}
			if tc.scheme == "https" {
				url, cfg.RootCAs = srv.HTTPS.URL+"/image", srv.RootCAs()
			}
			d, name := mediaDomainWith(t, c, tc.machine, tc.devices, cfg)
			ctx := mediaCtx(t)
			out := captureConsole(t, d)
			if tc.running {
				if err := d.PowerOn(ctx); err != nil {
					t.Fatal(err)
				}
			}

			if err := d.InsertMedia(ctx, bmc.SlotCD, bmc.MediaRequest{URL: url, WriteProtected: true}); err != nil {
				t.Fatal(err)
			}
			st, err := d.Media(ctx, bmc.SlotCD)
			if err != nil {
				t.Fatal(err)
			}
			if !st.Inserted || st.Image != url || st.ImageName != "image" || !st.WriteProtected || st.Size != int64(len(body)) {
				t.Fatalf("status after insert: %+v", st)
			}
			flags := []libvirt.DomainXMLFlags{libvirt.DomainXMLInactive}
			if tc.running {
				flags = append(flags, 0) // a live media change too
			}
			for _, f := range flags {
				doc := testtool.DomainXML(t, c, name, f)
				if !strings.Contains(doc, "device='cdrom'") || !strings.Contains(doc, "bus='"+tc.bus+"'") ||
					!strings.Contains(doc, "<readonly/>") || !strings.Contains(doc, "/govbmc-") {
					t.Fatalf("no read-only %s CD-ROM with the image (flags %d):\n%s", tc.bus, f, doc)
				}
			}
			if err := d.InsertMedia(ctx, bmc.SlotCD, bmc.MediaRequest{URL: url}); !errors.Is(err, bmc.ErrMediaBusy) {
				t.Fatalf("second insert: %v, want ErrMediaBusy", err)
			}

			// Ironic's order: a Once Cd override, then a reset (or power on).
			if err := d.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootCDROM}); err != nil {
				t.Fatal(err)
			}
			boot := d.PowerOn
			if tc.running {
				boot = d.Reset
			}
			if err := boot(ctx); err != nil {
				t.Fatal(err)
			}
			testtool.Eventually(t, 60*time.Second, "the ISO's line on the serial console", func() bool {
				return strings.Contains(lastBoot(out.String()), line)
			})

			// Eject while running: the drive empties (live), a device
			// govbmc added goes from the definition, the volume goes.
			if err := d.EjectMedia(ctx, bmc.SlotCD); err != nil {
				t.Fatal(err)
			}
			if st, err := d.Media(ctx, bmc.SlotCD); err != nil || st.Inserted {
				t.Fatalf("status after eject: %+v, %v", st, err)
			}
			if err := d.PowerOff(ctx); err != nil {
				t.Fatal(err)
			}
			assertNothingLeft(t, c, name, tc.disks)

			// The next boot, with a CD override again, does not boot it.
			if err := d.SetBootOverride(ctx, bmc.BootOverride{Device: bmc.BootCDROM}); err != nil {
				t.Fatal(err)
			}
			if err := d.PowerOn(ctx); err != nil {
				t.Fatal(err)
			}
			testtool.Eventually(t, 60*time.Second, "SeaBIOS gives up booting", func() bool {
				return strings.Contains(lastBoot(out.String()), "No bootable device")
			})
			if strings.Contains(lastBoot(out.String()), line) {
				t.Fatalf("the ejected ISO booted:\n%s", out.String())
			}
			if err := d.PowerOff(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestVirtualMediaFaults: each way a download fails gives its error and
// leaves no volume, device or metadata behind.
func TestVirtualMediaFaults(t *testing.T) {
	c := qemuConn(t)
	image := make([]byte, 256<<10)
	_, _ = rand.Read(image)
	srv := testtool.NewMediaServer(t, image)
	big := testtool.NewMediaServer(t, make([]byte, 2<<20))
	d, name := mediaDomain(t, c, "pc", bmc.MediaFetcherConfig{})
	ctx := mediaCtx(t)
	for _, tc := range []struct {
		what string
		url  string
		kind bmc.MediaFetchKind
	}{
		{"404", srv.HTTP.URL + "/missing", bmc.FetchHTTPStatus},
		{"unreachable", testtool.ClosedPortURL(t), bmc.FetchUnreachable},
		{"self-signed certificate", srv.HTTPS.URL + "/image", bmc.FetchTLS},
		{"stalled server", srv.HTTP.URL + "/stall", bmc.FetchStalled},
		{"connection closed early", srv.HTTP.URL + "/short", bmc.FetchBroken},
		{"over the cap (Content-Length)", big.HTTP.URL + "/image", bmc.FetchTooLarge},
		{"over the cap (chunked)", big.HTTP.URL + "/chunked", bmc.FetchTooLarge},
	} {
		err := d.InsertMedia(ctx, bmc.SlotCD, bmc.MediaRequest{URL: tc.url})
		var fe *bmc.MediaFetchError
		if !errors.As(err, &fe) || fe.Kind != tc.kind || !errors.Is(err, bmc.ErrMediaFetch) {
			t.Errorf("%s: %v, want a %s download error", tc.what, err, tc.kind)
		}
		if st, err := d.Media(ctx, bmc.SlotCD); err != nil || st.Inserted || st.Inserting {
			t.Errorf("%s: status %+v, %v", tc.what, st, err)
		}
		assertNothingLeft(t, c, name, 0)
	}
	for _, bad := range []string{"ftp://example.com/x.iso", "nfs://host/x.iso", "http:///x.iso", "::"} {
		if err := d.InsertMedia(ctx, bmc.SlotCD, bmc.MediaRequest{URL: bad}); !errors.Is(err, bmc.ErrInvalidArgument) {
			t.Errorf("insert %q: %v, want ErrInvalidArgument", bad, err)
		}
	}
	if err := d.InsertMedia(ctx, bmc.SlotFloppy, bmc.MediaRequest{URL: srv.HTTP.URL + "/image"}); !errors.Is(err, bmc.ErrNotSupported) {
		t.Errorf("insert into Floppy: %v, want ErrNotSupported", err)
	}
	// The chunked image under the cap fits: the volume is shrunk to it.
	if err := d.InsertMedia(ctx, bmc.SlotCD, bmc.MediaRequest{URL: srv.HTTP.URL + "/chunked"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.Media(ctx, bmc.SlotCD); st.Size != int64(len(image)) {
		t.Errorf("chunked image: status %+v, want %d bytes", st, len(image))
	}
	if err := d.EjectMedia(ctx, bmc.SlotCD); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, c, name, 0)
}

// blockedInsert defines a domain and starts an insert into its Cd from a
// server's /block, returning once the volume exists and the download is
// stuck; done has the insert's result.
func blockedInsert(t *testing.T) (c *Conn, d *Domain, name string, done <-chan error) {
	t.Helper()
	c = qemuConn(t)
	srv := testtool.NewMediaServer(t, make([]byte, 512<<10))
	d, name = mediaDomain(t, c, "pc", bmc.MediaFetcherConfig{IdleTimeout: 30 * time.Second})
	result := make(chan error, 1)
	go func() {
		result <- d.InsertMedia(mediaCtx(t), bmc.SlotCD, bmc.MediaRequest{URL: srv.HTTP.URL + "/block"})
	}()
	<-srv.Blocked
	testtool.Eventually(t, 10*time.Second, "the volume is created", func() bool { return len(domainVolumes(t, c, name)) == 1 })
	return c, d, name, result
}

// TestVirtualMediaEjectCancelsInsert: an eject while the image is still
// downloading cancels the insert, which reports it, and nothing is left.
func TestVirtualMediaEjectCancelsInsert(t *testing.T) {
	c, d, name, done := blockedInsert(t)
	ctx := mediaCtx(t)
	if st, err := d.Media(ctx, bmc.SlotCD); err != nil || !st.Inserting || st.Inserted {
		t.Fatalf("status while downloading: %+v, %v", st, err)
	}
	if err := d.EjectMedia(ctx, bmc.SlotCD); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, bmc.ErrMediaEjected) {
		t.Fatalf("insert: %v, want ErrMediaEjected", err)
	}
	assertNothingLeft(t, c, name, 0)
}

// TestVirtualMediaUSBStick: a USB stick image is attached read-only on the
// USB bus, hot-plugged into the running domain, and removed by the eject.
func TestVirtualMediaUSBStick(t *testing.T) {
	c := qemuConn(t)
	image := make([]byte, 64<<10)
	copy(image, "govbmc USB stick")
	srv := testtool.NewMediaServer(t, image)
	d, name := mediaDomain(t, c, "pc", bmc.MediaFetcherConfig{})
	ctx := mediaCtx(t)
	if err := d.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	url := srv.HTTP.URL + "/image?token=secret"
	if err := d.InsertMedia(ctx, bmc.SlotUSB, bmc.MediaRequest{URL: url, WriteProtected: true, Username: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	st, err := d.Media(ctx, bmc.SlotUSB)
	if err != nil || !st.Inserted || !st.WriteProtected || st.Image != url || st.ImageName != "image" || st.Size != int64(len(image)) {
		t.Fatalf("status: %+v, %v", st, err)
	}
	for _, flags := range []libvirt.DomainXMLFlags{libvirt.DomainXMLInactive, 0} {
		doc := testtool.DomainXML(t, c, name, flags)
		if !strings.Contains(doc, "bus='usb'") || !strings.Contains(doc, "<readonly/>") || !strings.Contains(doc, "device='disk'") {
			t.Fatalf("no read-only USB disk (flags %d):\n%s", flags, doc)
		}
	}
	if cd, _ := d.Media(ctx, bmc.SlotCD); cd.Inserted {
		t.Fatalf("Cd reports %+v", cd)
	}
	if err := d.EjectMedia(ctx, bmc.SlotUSB); err != nil {
		t.Fatal(err)
	}
	if err := d.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, c, name, 0)
	// Ejecting an empty slot is fine (Ironic ejects everything first).
	if err := d.EjectMedia(ctx, bmc.SlotUSB); err != nil {
		t.Fatal(err)
	}
}

// Environment of the helper process TestVirtualMediaOrphansAfterKill runs
// and kills.
const (
	helperDomainEnv = "GOVBMC_MEDIA_HELPER_DOMAIN"
	helperURLEnv    = "GOVBMC_MEDIA_HELPER_URL"
)

// TestVirtualMediaHelperInsert is not a test of its own: run by
// TestVirtualMediaOrphansAfterKill as a separate vbmcd-like process, it
// inserts an image that never finishes downloading, until it is killed.
func TestVirtualMediaHelperInsert(t *testing.T) {
	name := os.Getenv(helperDomainEnv)
	if name == "" {
		t.Skip("run by TestVirtualMediaOrphansAfterKill")
	}
	c := qemuConn(t)
	d := newDomain(c, name)
	d.SetMediaFetcher(bmc.NewMediaFetcher(bmc.MediaFetcherConfig{IdleTimeout: time.Minute}))
	err := d.InsertMedia(context.Background(), bmc.SlotCD, bmc.MediaRequest{URL: os.Getenv(helperURLEnv)})
	t.Fatalf("insert returned before the kill: %v", err)
}

// TestVirtualMediaOrphansAfterKill: a process killed (SIGKILL) during an
// upload leaves a volume behind; the next Domain for the domain deletes
// it on its first virtual media use, and the media that were inserted
// (state kept in the domain's definition) are still inserted.
func TestVirtualMediaOrphansAfterKill(t *testing.T) {
	c := qemuConn(t)
	srv := testtool.NewMediaServer(t, make([]byte, 512<<10))
	d, name := mediaDomain(t, c, "pc", bmc.MediaFetcherConfig{})
	ctx := mediaCtx(t)
	usbURL := srv.HTTP.URL + "/image"
	if err := d.InsertMedia(ctx, bmc.SlotUSB, bmc.MediaRequest{URL: usbURL}); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestVirtualMediaHelperInsert$", "-test.v")
	cmd.Env = append(os.Environ(), helperDomainEnv+"="+name, helperURLEnv+"="+srv.HTTP.URL+"/block")
	out := &testtool.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	select {
	case <-srv.Blocked:
	case <-time.After(30 * time.Second):
		t.Fatalf("the helper did not start downloading:\n%s", out.String())
	}
	testtool.Eventually(t, 10*time.Second, "the helper's volume exists", func() bool { return len(domainVolumes(t, c, name)) == 2 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	srv.Release()

	// A new Domain, as a restarted vbmcd would make.
	d2 := newDomain(c, name)
	t.Cleanup(func() {
		_ = testtool.UndefineDomain(c, name)
		d2.Close()
	})
	testtool.Eventually(t, 10*time.Second, "the orphaned volume is deleted", func() bool {
		if _, err := d2.Media(ctx, bmc.SlotCD); err != nil {
			t.Fatal(err)
		}
		return len(domainVolumes(t, c, name)) == 1
	})
	if st, err := d2.Media(ctx, bmc.SlotUSB); err != nil || !st.Inserted || st.Image != usbURL {
		t.Fatalf("USB stick after the restart: %+v, %v", st, err)
	}
	if st, err := d2.Media(ctx, bmc.SlotCD); err != nil || st.Inserted || st.Inserting {
		t.Fatalf("Cd after the restart: %+v, %v", st, err)
	}
	if err := d2.EjectMedia(ctx, bmc.SlotUSB); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, c, name, 0)
}

// TestVirtualMediaConnectionLost: the hypervisor connection dropping
// during the upload fails the insert as unavailable; once the connection
// is back, the volume is deleted and nothing is left.
func TestVirtualMediaConnectionLost(t *testing.T) {
	c, _, name, done := blockedInsert(t)
	ctx := mediaCtx(t)
	_, nc, err := c.current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("insert: %v, want ErrUnavailable", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("insert still running after the connection was lost")
	}
	testtool.Eventually(t, 20*time.Second, "the connection is back", func() bool { return c.Health() == nil })
	assertNothingLeft(t, c, name, 0)
}

// TestVirtualMediaChosenPool: with SetMediaPool, images go into that pool
// and come out of it on eject; a chosen pool the hypervisor lacks fails
// the insert, naming it, and leaves nothing behind.
func TestVirtualMediaChosenPool(t *testing.T) {
	c := qemuConn(t)
	pool := "govbmc-test-" + strings.ToLower(rand.Text()[:8])
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	err := c.Do(mediaCtx(t), func(lv *libvirt.Libvirt) error {
		p, err := lv.StoragePoolCreateXML(fmt.Sprintf(`<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>`, pool, dir), 0)
		if err == nil {
			t.Cleanup(func() {
				_ = c.Do(context.Background(), func(lv *libvirt.Libvirt) error { return lv.StoragePoolDestroy(p) })
			})
		}
		return err
	})
	if err != nil {
		t.Fatalf("create pool %s: %v", pool, err)
	}
	t.Cleanup(func() { SetMediaPool("") })
	srv := testtool.NewMediaServer(t, make([]byte, 64<<10))
	d, name := mediaDomain(t, c, "pc", bmc.MediaFetcherConfig{})
	ctx := mediaCtx(t)

	SetMediaPool(pool)
	if err := d.InsertMedia(ctx, bmc.SlotCD, bmc.MediaRequest{URL: srv.HTTP.URL + "/image"}); err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir(dir)
	if len(files) != 1 || !strings.HasPrefix(files[0].Name(), "govbmc-") {
		t.Fatalf("pool %s holds %v, want the image's volume", pool, files)
	}
	if doc := testtool.DomainXML(t, c, name, libvirt.DomainXMLInactive); !strings.Contains(doc, dir+"/"+files[0].Name()) {
		t.Fatalf("the CD-ROM does not use the volume in %s:\n%s", dir, doc)
	}
	if err := d.EjectMedia(ctx, bmc.SlotCD); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, c, name, 0)
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("pool %s keeps %v after the eject", pool, files)
	}

	SetMediaPool(pool + "-missing")
	err = d.InsertMedia(ctx, bmc.SlotCD, bmc.MediaRequest{URL: srv.HTTP.URL + "/image"})
	if err == nil || !strings.Contains(err.Error(), "storage pool "+pool+"-missing") {
		t.Fatalf("insert into a missing pool: %v", err)
	}
	SetMediaPool(pool)
	assertNothingLeft(t, c, name, 0)
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/config"
	"github.com/govbmc/govbmc/internal/testtool"
	"github.com/spf13/pflag"
)

// TestFlagsMatchFleetKeys: every key of the fleet file's redfish: and
// virtual_media: sections has its vbmcd flag.
func TestFlagsMatchFleetKeys(t *testing.T) {
	flags := newRootCommand().Flags()
	for prefix, keys := range map[string][]string{
		redfishFlags: {config.KeyRedfishAddress, config.KeyRedfishCert, config.KeyRedfishKey, config.KeyRedfishInsecureHTTP},
		mediaFlags:   {config.KeyMediaMaxSize, config.KeyMediaIdleTimeout, config.KeyMediaDeadline, config.KeyMediaConcurrentInserts, config.KeyMediaPool},
	} {
		for _, k := range keys {
			if flags.Lookup(flagName(prefix, k)) == nil {
				t.Errorf("no flag --%s for the fleet file's %s", flagName(prefix, k), k)
			}
		}
	}
}

// loadSettings is vbmcd's settings from a fleet file and the given flags
// (name → value, as parsed).
func loadSettings(t *testing.T, fleet string, flags map[string]string) options {
	t.Helper()
	var o options
	fs := pflag.NewFlagSet("vbmcd", pflag.ContinueOnError)
	o.bindFlags(fs)
	var args []string
	for k, v := range flags {
		args = append(args, "--"+k+"="+v)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	o.configFile, o.changed = testtool.WriteFile(t, "fleet.yaml", fleet), fs.Changed
	f, err := config.LoadFleet(o.configFile)
	if err != nil {
		t.Fatal(err)
	}
	o.applyFleet(f)
	return o
}

const simNodeYAML = "nodes:\n  - {name: n, address: 127.0.0.1, port: 7000, users: [{name: admin, password: password}], backend: {type: sim}}\n"

func TestFlagsWinOverTheFleetFile(t *testing.T) {
	const fleet = "redfish: {address: '127.0.0.1:8000', cert: rf.pem, key: rf.key}\nvirtual_media: {max_size: 1MiB, deadline: 5m, pool: isos}\n" + simNodeYAML
	o := loadSettings(t, fleet, nil)
	if o.redfish.Address != "127.0.0.1:8000" || !strings.HasSuffix(o.redfish.Cert, "/rf.pem") || o.media.MaxSize != "1MiB" || o.media.Deadline != "5m" {
		t.Fatalf("fleet settings not taken: %+v %+v", o.redfish, o.media)
	}
	if o.media.Pool != "isos" {
		t.Errorf("pool %q, want the file's", o.media.Pool)
	}
	if args := strings.Join(o.settingArgs(), " "); !strings.Contains(args, "--media-max-size 1MiB") || !strings.Contains(args, "--media-pool isos") || !strings.Contains(args, "--redfish-cert ") {
		t.Errorf("a detached vbmcd would get %s", args)
	}
	o = loadSettings(t, fleet, map[string]string{"redfish-address": "127.0.0.1:9000", "redfish-insecure-http": "true", "media-max-size": "2MiB", "media-pool": "other"})
	if o.redfish.Address != "127.0.0.1:9000" || !o.redfish.InsecureHTTP || o.redfish.Cert != "" || o.redfish.Key != "" {
		t.Errorf("flags did not win over the redfish section: %+v", o.redfish)
	}
	if err := o.redfish.Check(o.keyName(redfishFlags, "redfish")); err != nil {
		t.Errorf("--redfish-insecure-http over a fleet file's certificate: %v", err)
	}
	if o.media.MaxSize != "2MiB" || o.media.Deadline != "5m" || o.media.Pool != "other" {
		t.Errorf("media settings: %+v, want the flag's size and the file's deadline", o.media)
	}
	// A bad flag is named as the flag, a bad key from the file as the key.
	o = loadSettings(t, fleet, map[string]string{"media-idle-timeout": "soon"})
	if err := o.useMediaLimits(slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), `--media-idle-timeout "soon"`) {
		t.Errorf("bad flag: %v", err)
	}
	o = loadSettings(t, fleet, map[string]string{"redfish-key": "other.key"})
	if err := o.redfish.Check(o.keyName(redfishFlags, "redfish")); err == nil || !strings.Contains(err.Error(), "redfish.cert (") || !strings.Contains(err.Error(), "--redfish-key") {
		t.Errorf("a key without its certificate: %v", err)
	}
}

// TestFleetMediaLimitsBoundInserts: the virtual_media: section bounds the
// images every machine of the daemon downloads; a flag raises the cap.
func TestFleetMediaLimitsBoundInserts(t *testing.T) {
	t.Cleanup(func() { bmc.SetDefaultMediaFetcher(nil) })
	srv := testtool.NewMediaServer(t, make([]byte, 256<<10))
	const fleet = "virtual_media: {max_size: 64KiB, idle_timeout: 5s, deadline: 1m, concurrent_inserts: 1}\n" + simNodeYAML
	logs := &testtool.Buffer{}
	insert := func(o options, path string) error {
		t.Helper()
		if err := o.useMediaLimits(slog.New(slog.NewTextHandler(logs, nil))); err != nil {
			t.Fatal(err)
		}
		n, err := config.Parse([]byte(simNodeYAML))
		if err != nil {
			t.Fatal(err)
		}
		m, err := bmc.NewSimMachine(n[0])
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		return m.InsertMedia(context.Background(), bmc.SlotCD, bmc.MediaRequest{URL: srv.HTTP.URL + path})
	}
	o := loadSettings(t, fleet, nil)
	for _, path := range []string{"/image", "/chunked"} {
		err := insert(o, path)
		var fe *bmc.MediaFetchError
		if !errors.As(err, &fe) || fe.Kind != bmc.FetchTooLarge || !strings.Contains(err.Error(), fmt.Sprint(64<<10)) {
			t.Errorf("insert of a 256 KiB image from %s under a 64 KiB cap: %v, want the size error", path, err)
		}
	}
	if !strings.Contains(logs.String(), "max_size_bytes=65536") || !strings.Contains(logs.String(), "concurrent_inserts=1") {
		t.Errorf("the limits are not logged:\n%s", logs)
	}
	o = loadSettings(t, fleet, map[string]string{"media-max-size": "1MiB"})
	if err := insert(o, "/image"); err != nil {
		t.Errorf("insert under --media-max-size 1MiB: %v", err)
	}
}

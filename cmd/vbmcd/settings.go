package main

import (
	"cmp"
	"log/slog"
	"strconv"
	"strings"

	"github.com/govbmc/govbmc/bmc"
	"github.com/govbmc/govbmc/internal/config"
	"github.com/govbmc/govbmc/libvirtconn"
)

// Flag prefixes of the fleet file's daemon sections: the flag of key k of
// section redfish: is --redfish-k, of virtual_media: --media-k (with
// dashes for underscores).
const (
	redfishFlags = "redfish"
	mediaFlags   = "media"
)

// flagName is the flag of a section's key.
func flagName(prefix, key string) string {
	return prefix + "-" + strings.ReplaceAll(key, "_", "-")
}

// given reports whether a flag was on the command line.
func (o *options) given(flag string) bool { return o.changed != nil && o.changed(flag) }

// keyName names a setting for an error: its flag when it came from the
// command line, else its key in the fleet file's section.
func (o *options) keyName(prefix, section string) func(key string) string {
	return func(key string) string {
		if f := flagName(prefix, key); o.given(f) {
			return "--" + f
		}
		return section + "." + key + " (" + o.configFile + ")"
	}
}

// applyFleet takes the fleet file's daemon settings where no flag says
// otherwise. Redfish's TLS settings (cert, key, insecure_http) go
// together: any of their flags replaces all three of the file's.
func (o *options) applyFleet(f config.Fleet) {
	if o.metricsAddress == "" {
		o.metricsAddress = f.MetricsAddress
	}
	rf := func(key string) bool { return !o.given(flagName(redfishFlags, key)) }
	if rf(config.KeyRedfishAddress) {
		o.redfish.Address = f.Redfish.Address
	}
	if rf(config.KeyRedfishCert) && rf(config.KeyRedfishKey) && rf(config.KeyRedfishInsecureHTTP) {
		o.redfish.Cert, o.redfish.Key, o.redfish.InsecureHTTP = f.Redfish.Cert, f.Redfish.Key, f.Redfish.InsecureHTTP
	}
	vm := func(key string) bool { return !o.given(flagName(mediaFlags, key)) }
	if vm(config.KeyMediaMaxSize) {
		o.media.MaxSize = f.VirtualMedia.MaxSize
	}
	if vm(config.KeyMediaIdleTimeout) {
		o.media.IdleTimeout = f.VirtualMedia.IdleTimeout
	}
	if vm(config.KeyMediaDeadline) {
		o.media.Deadline = f.VirtualMedia.Deadline
	}
	if vm(config.KeyMediaConcurrentInserts) {
		o.media.ConcurrentInserts = f.VirtualMedia.ConcurrentInserts
	}
	if vm(config.KeyMediaPool) {
		o.media.Pool = f.VirtualMedia.Pool
	}
}

// useMediaLimits makes the daemon-wide media fetcher that every machine
// downloads images with, bounded as the flags and the fleet file say, and
// chooses libvirt's storage pool for images.
func (o *options) useMediaLimits(log *slog.Logger) error {
	cfg, err := o.media.Fetcher(o.keyName(mediaFlags, "virtual_media"))
	if err != nil {
		return err
	}
	cfg.Log = log
	f := bmc.NewMediaFetcher(cfg)
	bmc.SetDefaultMediaFetcher(f)
	libvirtconn.SetMediaPool(o.media.Pool)
	log.Info("virtual media limits", "max_size_bytes", f.MaxSize(),
		"idle_timeout", cmp.Or(cfg.IdleTimeout, bmc.DefaultMediaIdleTimeout),
		"deadline", cmp.Or(cfg.Deadline, bmc.DefaultMediaDeadline),
		"concurrent_inserts", cmp.Or(cfg.Concurrency, bmc.DefaultMediaConcurrency),
		"libvirt_pool", cmp.Or(o.media.Pool, libvirtconn.DefaultMediaPool+" else "+libvirtconn.MediaPoolName))
	return nil
}

// settingArgs are the flags that give a detached vbmcd the same Redfish,
// virtual media and metrics settings.
func (o *options) settingArgs() []string {
	var a []string
	add := func(flag, v string) {
		if v != "" {
			a = append(a, "--"+flag, v)
		}
	}
	add("metrics-address", o.metricsAddress)
	r, m := o.redfish, o.media
	add(flagName(redfishFlags, config.KeyRedfishAddress), r.Address)
	add(flagName(redfishFlags, config.KeyRedfishCert), r.Cert)
	add(flagName(redfishFlags, config.KeyRedfishKey), r.Key)
	if r.InsecureHTTP {
		a = append(a, "--"+flagName(redfishFlags, config.KeyRedfishInsecureHTTP))
	}
	add(flagName(mediaFlags, config.KeyMediaMaxSize), m.MaxSize)
	add(flagName(mediaFlags, config.KeyMediaIdleTimeout), m.IdleTimeout)
	add(flagName(mediaFlags, config.KeyMediaDeadline), m.Deadline)
	if m.ConcurrentInserts != 0 {
		add(flagName(mediaFlags, config.KeyMediaConcurrentInserts), strconv.Itoa(m.ConcurrentInserts))
	}
	add(flagName(mediaFlags, config.KeyMediaPool), m.Pool)
	return a
}

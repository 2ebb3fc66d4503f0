package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// Redfish is the fleet file's redfish: section, vbmcd's one Redfish
// listener for every node. vbmcd's --redfish-* flags win over it, key by key.
type Redfish struct {
	// Address is where Redfish is served (host:port); empty means off.
	Address string `yaml:"address,omitempty"`
	// Cert and Key are the TLS certificate and private key files (PEM);
	// without them vbmcd generates a self-signed pair in its config
	// directory. In a fleet file, a relative path is taken from the file's
	// directory.
	Cert string `yaml:"cert,omitempty"`
	Key  string `yaml:"key,omitempty"`
	// InsecureHTTP serves plain HTTP instead of HTTPS.
	InsecureHTTP bool `yaml:"insecure_http,omitempty"`
}

// The redfish: section's keys, as Redfish.Check names them.
const (
	KeyRedfishAddress      = "address"
	KeyRedfishCert         = "cert"
	KeyRedfishKey          = "key"
	KeyRedfishInsecureHTTP = "insecure_http"
)

// FileKey names a key of a fleet file section for an error: section.key.
func FileKey(section string) func(key string) string {
	return func(key string) string { return section + "." + key }
}

// Check validates the settings; name turns a key (KeyRedfishAddress…)
// into what the user wrote: redfish.address in a fleet file (FileKey), a
// flag name on the command line.
func (r Redfish) Check(name func(key string) string) error {
	if r.Address != "" {
		if _, _, err := SplitListenAddress(r.Address); err != nil {
			return fmt.Errorf("%s %q: %w", name(KeyRedfishAddress), r.Address, err)
		}
	}
	if (r.Cert == "") != (r.Key == "") {
		return fmt.Errorf("%s and %s go together", name(KeyRedfishCert), name(KeyRedfishKey))
	}
	if r.InsecureHTTP && r.Cert != "" {
		return fmt.Errorf("%s and %s exclude each other", name(KeyRedfishInsecureHTTP), name(KeyRedfishCert))
	}
	return nil
}

// SplitListenAddress splits host:port, the port a number from 0 (any free
// one) to 65535.
func SplitListenAddress(addr string) (host string, port int, err error) {
	host, text, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("want host:port: %w", err)
	}
	port, err = strconv.Atoi(text)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q: want 0 to 65535", text)
	}
	return host, port, nil
}

// VirtualMedia is the fleet file's virtual_media: section: the bounds of
// every virtual media download of the daemon. Empty or zero keys take
// bmc's defaults (8 GiB, 30s idle, 30m overall, 4 at once). vbmcd's
// --media-* flags win over it, key by key.
type VirtualMedia struct {
	// MaxSize caps an image: bytes, or a number with a unit (KiB, MiB,
	// GiB, TiB; KB, MB, GB, TB).
	MaxSize string `yaml:"max_size,omitempty"`
	// IdleTimeout is the longest wait for the next byte (a Go duration: 30s, 2m).
	IdleTimeout string `yaml:"idle_timeout,omitempty"`
	// Deadline bounds a whole download (a Go duration).
	Deadline string `yaml:"deadline,omitempty"`
	// ConcurrentInserts is how many downloads run at once across the
	// daemon; the others queue.
	ConcurrentInserts int `yaml:"concurrent_inserts,omitempty"`
	// Pool is the libvirt storage pool images go into on every hypervisor;
	// empty: "default" where there is one, else govbmc's own.
	Pool string `yaml:"pool,omitempty"`
}

// The virtual_media: section's keys, as VirtualMedia.Fetcher names them.
const (
	KeyMediaMaxSize           = "max_size"
	KeyMediaIdleTimeout       = "idle_timeout"
	KeyMediaDeadline          = "deadline"
	KeyMediaConcurrentInserts = "concurrent_inserts"
	KeyMediaPool              = "pool"
)

// Fetcher checks the settings and returns the download bounds they give
// (zero fields: the defaults), or an error naming the key at fault
// through name (see Redfish.Check).
func (v VirtualMedia) Fetcher(name func(key string) string) (bmc.MediaFetcherConfig, error) {
	var c bmc.MediaFetcherConfig
	var err error
	if v.Pool != "" && (strings.TrimSpace(v.Pool) != v.Pool || strings.Contains(v.Pool, "/")) {
		return c, fmt.Errorf("%s %q: want a storage pool's name", name(KeyMediaPool), v.Pool)
	}
	if v.MaxSize != "" {
		if c.MaxSize, err = ParseSize(v.MaxSize); err != nil {
			return c, fmt.Errorf("%s %q: %w", name(KeyMediaMaxSize), v.MaxSize, err)
		}
	}
	durations := []struct {
		key, text string
		out       *time.Duration
	}{
		{KeyMediaIdleTimeout, v.IdleTimeout, &c.IdleTimeout},
		{KeyMediaDeadline, v.Deadline, &c.Deadline},
	}
	for _, d := range durations {
		if d.text == "" {
			continue
		}
		if *d.out, err = time.ParseDuration(d.text); err != nil || *d.out < 0 {
			return c, fmt.Errorf("%s %q: want a duration such as 30s or 10m", name(d.key), d.text)
		}
	}
	if v.ConcurrentInserts < 0 {
		return c, fmt.Errorf("%s %d: want a positive number (0: the default, %d)", name(KeyMediaConcurrentInserts), v.ConcurrentInserts, bmc.DefaultMediaConcurrency)
	}
	c.Concurrency = v.ConcurrentInserts
	return c, nil
}

var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseSize reads a size in bytes: a number with an optional unit (KiB,
// MiB, GiB, TiB; KB, MB, GB, TB; B), such as 512MiB or 8GiB.
func ParseSize(s string) (int64, error) {
	num, factor := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, factor = strings.TrimSpace(rest), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("want a size in bytes, or with a unit: KiB, MiB, GiB, TiB (or KB, MB, GB, TB)")
	}
	if n > (1<<63-1)/factor {
		return 0, errors.New("too large")
	}
	return n * factor, nil
}

// checkDaemon validates the daemon settings of a fleet file.
func (f *Fleet) checkDaemon() error {
	if f.MetricsAddress != "" {
		if _, _, err := net.SplitHostPort(f.MetricsAddress); err != nil {
			return fmt.Errorf("metrics_address %q: want host:port: %w", f.MetricsAddress, err)
		}
	}
	if err := f.Redfish.Check(FileKey("redfish")); err != nil {
		return err
	}
	if _, err := f.VirtualMedia.Fetcher(FileKey("virtual_media")); err != nil {
		return err
	}
	return nil
}

// resolvePaths makes the relative file names of the daemon settings
// relative to dir, the fleet file's directory.
func (f *Fleet) resolvePaths(dir string) {
	for _, p := range []*string{&f.Redfish.Cert, &f.Redfish.Key} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

package libvirtconn

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// Pool hands out one shared Conn per distinct URI and credentials.
type Pool struct {
	log         *slog.Logger
	callTimeout time.Duration
	obs         bmc.Observer // nil: nothing observed (see SetObserver)

	mu    sync.Mutex
	conns map[poolKey]*Conn
}

type poolKey struct {
	uri                 string
	keyfile, knownHosts string // set apart from the URI's own text
	creds               Credentials
}

// NewPool returns an empty pool; callTimeout bounds each libvirt call (zero
// means DefaultCallTimeout).
func NewPool(log *slog.Logger, callTimeout time.Duration) *Pool {
	if log == nil {
		log = slog.Default()
	}
	return &Pool{log: log, callTimeout: callTimeout, conns: map[poolKey]*Conn{}}
}

// Get returns the shared connection for a URI and credentials, starting it
// when it is the first use. Each Get is matched by a Release.
func (p *Pool) Get(rawURI string, creds Credentials) (*Conn, error) {
	u, err := ParseURI(rawURI)
	if err != nil {
		return nil, err
	}
	return p.GetURI(u, creds)
}

// GetURI is Get for a parsed URI, whose Keyfile and KnownHosts may come from
// a node's settings rather than from its text.
func (p *Pool) GetURI(u *URI, creds Credentials) (*Conn, error) {
	k := poolKey{u.Raw, u.Keyfile, u.KnownHosts, creds}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[k]; ok {
		c.refs++
		return c, nil
	}
	c, err := newConn(u, creds, p.log, p.callTimeout)
	if err != nil {
		return nil, err
	}
	c.pool, c.key, c.refs = p, k, 1
	p.conns[k] = c
	p.observe(c)
	return c, nil
}

// release drops one use of c; the last one closes it, so that no
// connection (and no reconnect loop) outlives the nodes that use it.
func (p *Pool) release(c *Conn) {
	p.mu.Lock()
	c.refs--
	last := c.refs == 0 && p.conns[c.key] == c
	if last {
		delete(p.conns, c.key)
	}
	p.mu.Unlock()
	if last {
		_ = c.Close()
	}
}

// Close closes every connection.
func (p *Pool) Close() error {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[poolKey]*Conn{}
	p.mu.Unlock()
	var errs []error
	for _, c := range conns {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

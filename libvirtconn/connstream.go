package libvirtconn

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// streamGrace is how long a cancelled stream may take to be aborted by
// libvirtd before the connection is closed under it.
const streamGrace = 5 * time.Second

// stream runs a streaming call (a volume upload reading from src) on the
// shared connection. Unlike Do it has no overall call timeout: an upload
// of gigabytes takes as long as it takes. What bounds it is progress: when
// libvirt has not taken a byte from src for the connection's call timeout
// while src has data ready (the connection or libvirtd is stuck), or when
// ctx ended and the abort did not get through within streamGrace, the
// connection is closed under the call, as Do does with a hung call.
func (c *Conn) stream(ctx context.Context, src io.Reader, fn func(lv *libvirt.Libvirt, r io.Reader) error) error {
	lv, nc, err := c.current(ctx)
	if err != nil {
		return err
	}
	c.Calls.Add(1)
	pr := &progressReader{r: src}
	pr.touch()
	done := make(chan error, 1)
	go func() { done <- fn(lv, pr) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ctxDone := ctx.Done()
	var cancelledAt time.Time
	for {
		select {
		case err := <-done:
			if rerr := pr.failure(); err != nil && rerr != nil {
				// libvirtd answers an aborted stream with its own error;
				// why the source failed says more.
				return rerr
			}
			return classify(err)
		case <-ctxDone:
			ctxDone, cancelledAt = nil, time.Now()
		case now := <-tick.C:
			switch {
			case !cancelledAt.IsZero() && now.Sub(cancelledAt) > streamGrace:
				c.abort(nc)
				return fmt.Errorf("%w: stream not aborted within %v of its cancellation", ErrUnavailable, streamGrace)
			case !pr.reading.Load() && now.Sub(time.Unix(0, pr.last.Load())) > c.callTimeout:
				c.abort(nc)
				return fmt.Errorf("%w: libvirt took no data for %v", ErrUnavailable, c.callTimeout)
			}
		}
	}
}

// progressReader records when its reader was last read, and whether a
// Read waits on it (a slow source is not a stuck libvirt).
type progressReader struct {
	r       io.Reader
	last    atomic.Int64 // UnixNano of the last Read's return
	reading atomic.Bool
	n       atomic.Int64
	mu      sync.Mutex
	err     error // the first error other than io.EOF the source returned
}

func (p *progressReader) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *progressReader) touch() { p.last.Store(time.Now().UnixNano()) }

func (p *progressReader) Read(b []byte) (int, error) {
	p.reading.Store(true)
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	p.touch()
	p.reading.Store(false)
	if err != nil && err != io.EOF {
		p.mu.Lock()
		if p.err == nil {
			p.err = err
		}
		p.mu.Unlock()
	}
	return n, err
}

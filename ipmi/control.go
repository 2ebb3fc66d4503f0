package ipmi

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"
)

// Chassis Control is answered like a real BMC answers it: acknowledged within
// a short bound, then carried out. Ironic runs `ipmitool -R 1 -N 1 … power
// off` (one try, a one-second timeout) and then polls the power status
// until it reaches the target, so an answer that waits for a 2 s libvirt
// destroy is a failure on its side, and a retransmission on ours.
//
//   - An operation that ends within the bound is answered with its own
//     completion code (a failure is retryable; a success is cached against
//     retransmission by retransmits).
//   - One still running when the bound passes is acknowledged with success
//     and goes on; its outcome is logged and recorded in the event log.
//     Get Chassis Status keeps reading the machine, so it tells the truth
//     throughout.
//   - Controls are carried out one at a time, in the order they arrived: a
//     different Chassis Control that comes while one is in flight is
//     ordered after it (an Ironic power on right after a power off waits
//     for the off to finish, rather than failing with 0xC0 under -R 1). It
//     is acknowledged like any other once the bound passes. At most
//     maxQueuedControls may wait; beyond that the answer is 0xC0 (busy).
//
// A retransmission of the same request is answered from retransmits' cache
// and never queued twice.

// DefaultAckWithin is how long a Chassis Control may run before it is
// acknowledged and left to finish.
const DefaultAckWithin = 400 * time.Millisecond

// DefaultControlTimeout bounds one Chassis Control that was acknowledged
// before it finished.
const DefaultControlTimeout = 2 * time.Minute

// maxQueuedControls is how many Chassis Controls may be in flight or waiting.
const maxQueuedControls = 4

// controlQueue runs a node's Chassis Controls one at a time, in order.
type controlQueue struct {
	ackWithin time.Duration
	timeout   time.Duration

	mu      sync.Mutex
	tail    chan struct{} // closed when the newest queued control is done
	pending int
	ctx     context.Context // ends when the server closes
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// ownUntil (Unix ns) is until when power changes the machine reports
	// are taken for the BMC's own controls: while one runs, and for
	// ownEcho after it.
	ownUntil atomic.Int64
}

// ownEcho is how long after a control the machine's report of the change
// it made may take to arrive.
const ownEcho = 3 * time.Second

// own reports whether a power change seen now is a control's own.
func (q *controlQueue) own() bool { return time.Now().UnixNano() < q.ownUntil.Load() }

func newControlQueue(ackWithin, timeout time.Duration) *controlQueue {
	ctx, cancel := context.WithCancel(context.Background())
	return &controlQueue{ackWithin: ackWithin, timeout: timeout, ctx: ctx, cancel: cancel}
}

// run queues op and waits for it up to the acknowledgement bound. op
// returns the completion code of its outcome; it runs to its end whether
// or not the caller is still waiting. ok is false when the queue is full.
func (q *controlQueue) run(op func(context.Context) types.CompletionCode) (cc types.CompletionCode, finished bool) {
	q.mu.Lock()
	if q.pending >= maxQueuedControls || q.ctx.Err() != nil {
		q.mu.Unlock()
		return types.CodeNodeBusy, true
	}
	prev, mine := q.tail, make(chan struct{})
	q.tail = mine
	q.pending++
	q.wg.Add(1)
	q.mu.Unlock()

	result := make(chan types.CompletionCode, 1)
	go func() {
		defer q.wg.Done()
		defer func() {
			q.mu.Lock()
			q.pending--
			q.mu.Unlock()
			close(mine)
		}()
		if prev != nil {
			select {
			case <-prev:
			case <-q.ctx.Done():
				result <- types.CodeNodeBusy
				return
			}
		}
		ctx, cancel := context.WithTimeout(q.ctx, q.timeout)
		defer cancel()
		q.ownUntil.Store(math.MaxInt64)
		cc := op(ctx)
		q.ownUntil.Store(time.Now().Add(ownEcho).UnixNano())
		result <- cc
	}()

	t := time.NewTimer(q.ackWithin)
	defer t.Stop()
	select {
	case cc := <-result:
		return cc, true
	case <-t.C:
		return types.CodeOK, false
	}
}

// close abandons waiting controls, cancels the running one and waits for
// them to return.
func (q *controlQueue) close() {
	q.cancel()
	q.wg.Wait()
}

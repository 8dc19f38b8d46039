package wsframe

import (
	"sync"
	"sync/atomic"
	"time"
)

// SmallHolding is how much message memory a connection may hold and still
// draw on a Budget's reserve: small messages keep flowing while large ones
// wait.
const SmallHolding = 64 << 10

// Budget is one memory budget for message data, shared by many
// connections: joined fragments, buffered echoes, and whatever else a
// holder charges to it (inflated data, for one). A holder that asks for
// more than is left waits, for a bounded time, for others to release some.
// The last eighth of the budget (at most 64 MiB) is kept for holders of
// SmallHolding bytes or less.
//
// A nil *Budget has no limit. Budget is safe for concurrent use.
type Budget struct {
	limit, reserve int64

	mu    sync.Mutex
	used  int64
	freed chan struct{} // closed, and cleared, when memory is released while someone waits

	peak    atomic.Int64
	waits   atomic.Int64
	refused atomic.Int64
}

// NewBudget returns a Budget of limit bytes.
func NewBudget(limit int64) *Budget {
	return &Budget{limit: limit, reserve: min(limit/8, 64<<20)}
}

// BudgetStats is a snapshot of a Budget.
type BudgetStats struct {
	Limit   int64 // bytes
	Used    int64 // bytes held now
	Peak    int64 // most bytes held at once
	Waits   int64 // acquisitions that had to wait
	Refused int64 // acquisitions that gave up
}

// Stats returns a snapshot of b's counters; the zero value for a nil b.
func (b *Budget) Stats() BudgetStats {
	if b == nil {
		return BudgetStats{}
	}
	b.mu.Lock()
	used := b.used
	b.mu.Unlock()
	return BudgetStats{Limit: b.limit, Used: used, Peak: b.peak.Load(), Waits: b.waits.Load(), Refused: b.refused.Load()}
}

// Acquire takes n bytes for a holder that will then hold holding bytes in
// all. If they are not free it waits up to wait for them; it reports
// whether it took them, and whether it had to wait. A holder that could
// never fit is refused at once.
func (b *Budget) Acquire(n, holding int64, wait time.Duration) (ok, waited bool) {
	if b == nil {
		return true, false
	}
	limit := b.limit
	if holding > SmallHolding {
		limit -= b.reserve
	}
	if holding > limit {
		b.refused.Add(1)
		return false, false
	}
	var timer *time.Timer
	for {
		b.mu.Lock()
		if b.used+n <= limit {
			b.used += n
			if b.used > b.peak.Load() {
				b.peak.Store(b.used)
			}
			b.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return true, waited
		}
		if b.freed == nil {
			b.freed = make(chan struct{})
		}
		freed := b.freed
		b.mu.Unlock()
		if timer == nil {
			waited = true
			b.waits.Add(1)
			timer = time.NewTimer(wait)
		}
		select {
		case <-freed:
		case <-timer.C:
			b.refused.Add(1)
			return false, true
		}
	}
}

// Release gives back n bytes.
func (b *Budget) Release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.freed != nil {
		close(b.freed)
		b.freed = nil
	}
	b.mu.Unlock()
}

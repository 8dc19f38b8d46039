package wsframe

import (
	"sync"
	"sync/atomic"
	"time"
)

// SmallHolding is how much message memory a holder may have and still draw
// on a Budget's reserve: small messages keep flowing while large ones wait.
const SmallHolding = 64 << 10

// Budget is one memory budget for message data, shared by many holders
// (connections), each with a Hold: joined fragments, buffered echoes, and
// whatever else a holder charges to its Hold (inflated data, for one).
//
// A holder that asks for more than is left waits, for a bounded time, for
// others to release some. If every other holder is waiting too, nothing
// would be released before their waits end, so the one asking is refused
// at once and its release lets the others go on. The last eighth of the
// budget (at most 64 MiB) is kept for holders of SmallHolding bytes or
// less.
//
// A nil *Budget has no limit. Budget is safe for concurrent use.
type Budget struct {
	limit, reserve int64

	mu      sync.Mutex
	used    int64
	holders int           // Holds with memory
	waiters int           // Holds waiting for memory
	freed   chan struct{} // closed, and cleared, when memory is released while someone waits

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
	Waits   int64 // requests that had to wait
	Refused int64 // requests that were refused
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

// Hold is one holder's share of a Budget. Its zero value, or one with a
// nil Budget, has no limit. A Hold is used by one goroutine at a time.
type Hold struct {
	b     *Budget
	n     int64
	waits int
}

// NewHold returns a Hold on b.
func NewHold(b *Budget) Hold { return Hold{b: b} }

// Held returns the bytes h holds.
func (h *Hold) Held() int64 { return h.n }

// Waits returns how many times h has waited for memory.
func (h *Hold) Waits() int { return h.waits }

// Grow takes n more bytes. If they are not free, it waits up to wait for
// them, unless every other holder is waiting too. It reports whether it
// took them; a holding that could never fit is refused at once.
func (h *Hold) Grow(n int64, wait time.Duration) bool {
	b := h.b
	if b == nil || n <= 0 {
		h.n += max(n, 0)
		return true
	}
	holding := h.n + n
	limit := b.limit
	if holding > SmallHolding {
		limit -= b.reserve
	}
	if holding > limit {
		b.refused.Add(1)
		return false
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	b.mu.Lock()
	for {
		if b.used+n <= limit {
			b.used += n
			if h.n == 0 {
				b.holders++
			}
			h.n = holding
			if b.used > b.peak.Load() {
				b.peak.Store(b.used)
			}
			b.mu.Unlock()
			return true
		}
		others := b.holders
		if h.n > 0 {
			others--
		}
		if others <= b.waiters {
			// Every other holder is waiting: none would release anything
			// before its wait ends.
			b.mu.Unlock()
			b.refused.Add(1)
			return false
		}
		if b.freed == nil {
			b.freed = make(chan struct{})
		}
		freed := b.freed
		b.waiters++
		b.mu.Unlock()
		if timer == nil {
			h.waits++
			b.waits.Add(1)
			timer = time.NewTimer(wait)
		}
		var expired bool
		select {
		case <-freed:
		case <-timer.C:
			expired = true
		}
		b.mu.Lock()
		b.waiters--
		if expired {
			b.mu.Unlock()
			b.refused.Add(1)
			return false
		}
	}
}

// Release gives back everything h holds.
func (h *Hold) Release() {
	b := h.b
	if b == nil || h.n == 0 {
		h.n = 0
		return
	}
	b.mu.Lock()
	b.used -= h.n
	b.holders--
	if b.freed != nil {
		close(b.freed)
		b.freed = nil
	}
	b.mu.Unlock()
	h.n = 0
}

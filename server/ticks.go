package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/net/websocket"

	"wsecho/internal/wsframe"
)

// TickEpoch is when tick 0 happened: tick seq covers the interval that
// starts at TickEpoch + seq*interval. Every server started with the same
// -tick-interval and -tick-seed serves the same ticks at the same time.
var TickEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// TickReplay is how many ticks back /ticks?from= and /sse's Last-Event-ID
// may reach: older ticks are refused, never silently skipped.
const TickReplay = 3600

// defaultTickInterval is the tick interval when Options.TickInterval is 0.
const defaultTickInterval = time.Second

// tickSource computes the market ticks: each a pure function of the seed
// and its seq, in integer cents, so that every machine computes the same
// bytes.
type tickSource struct {
	seed     int64
	interval time.Duration
}

// seqAt returns the seq of the tick whose interval holds t.
func (s tickSource) seqAt(t time.Time) int64 {
	return int64(t.Sub(TickEpoch) / s.interval)
}

// timeOf returns when tick seq happened: the start of its interval.
func (s tickSource) timeOf(seq int64) time.Time {
	return TickEpoch.Add(time.Duration(seq) * s.interval)
}

// tick is one candle of the made-up market, prices in cents.
type tick struct {
	seq                    int64
	time                   time.Time
	open, high, low, close int64
}

// mix is SplitMix64's finaliser: a well-spread hash of x.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (s tickSource) hash(seq int64, salt uint64) uint64 {
	return mix(mix(uint64(s.seed)^salt) ^ uint64(seq))
}

// triangle is a triangle wave of the given period and amplitude at x.
func triangle(x, period, amp int64) int64 {
	m := ((x % period) + period) % period
	if m < period/2 {
		return -amp + 4*amp*m/period
	}
	return 3*amp - 4*amp*m/period
}

// price is the price, in cents, at the end of tick seq: three waves whose
// phases come from the seed, plus noise.
func (s tickSource) price(seq int64) int64 {
	p := int64(10000)
	for i, w := range [...]struct{ period, amp int64 }{{600, 1500}, {97, 400}, {23, 120}} {
		phase := int64(s.hash(-1, uint64(i)) % uint64(w.period))
		p += triangle(seq+phase, w.period, w.amp)
	}
	return p + int64(s.hash(seq, 10)%121) - 60
}

// tick returns tick seq: it opens at the previous tick's close.
func (s tickSource) tick(seq int64) tick {
	t := tick{seq: seq, time: s.timeOf(seq), open: s.price(seq - 1), close: s.price(seq)}
	t.high = max(t.open, t.close) + int64(s.hash(seq, 11)%40)
	t.low = min(t.open, t.close) - int64(s.hash(seq, 12)%40)
	return t
}

// appendJSON appends t as JSON:
//
//	{"seq":N,"time":"RFC3339Nano","open":100.12,"high":…,"low":…,"close":…}
//
// padded, if pad is larger, to pad bytes with a "pad" field of spaces.
func (t tick) appendJSON(dst []byte, pad int) []byte {
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, t.seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = t.time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	for _, f := range [...]struct {
		name  string
		cents int64
	}{{"open", t.open}, {"high", t.high}, {"low", t.low}, {"close", t.close}} {
		dst = append(dst, `,"`...)
		dst = append(dst, f.name...)
		dst = append(dst, `":`...)
		dst = fmt.Appendf(dst, "%d.%02d", f.cents/100, f.cents%100)
	}
	const padField = `,"pad":""`
	if n := pad - (len(dst) - start) - len(padField) - 1; n >= 0 {
		dst = append(dst, padField[:len(padField)-1]...)
		for range n {
			dst = append(dst, ' ')
		}
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// serveTicks is /ticks: the echo endpoint's handshake, limits and shutdown,
// with the tick stream instead of the echo.
func (h *Handler) serveTicks(w http.ResponseWriter, r *http.Request) {
	b, err := tickBehaviour(r.URL.RawQuery)
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, rejectParam, "websocket: "+err.Error())
		return
	}
	h.upgrade(w, r, b, h.echo) // converse streams the ticks instead
}

// tickBehaviour reads /ticks's one parameter, from=SEQ.
func tickBehaviour(query string) (*behaviour, error) {
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("bad query: %v", err)
	}
	b := &behaviour{ticks: true, stop: make(chan struct{}), from: -1}
	for name, v := range q {
		switch {
		case name != "from":
			return nil, fmt.Errorf("unknown parameter %q (known: from)", name)
		case len(v) > 1:
			return nil, fmt.Errorf("from: given %d times", len(v))
		}
	}
	if q.Has("from") {
		n, err := strconv.ParseInt(q.Get("from"), 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("from=%s: must be a tick seq (an integer, 0 or more)", q.Get("from"))
		}
		b.from = n
	}
	return b, nil
}

// replayStart returns the first seq to send for a client that asks for from
// (-1: the current tick), or an error if from is out of TickReplay's reach.
func (s tickSource) replayStart(from int64, now time.Time) (int64, error) {
	cur := s.seqAt(now)
	switch {
	case from < 0:
		return cur, nil
	case from < cur-TickReplay:
		return 0, fmt.Errorf("from=%d is older than the oldest tick kept (%d)", from, cur-TickReplay)
	case from > cur+TickReplay:
		return 0, fmt.Errorf("from=%d is too far ahead (now %d)", from, cur)
	}
	return from, nil
}

// streamTicks sends the ticks from the one asked for on, each when it
// happens (at once for past ones), and reads what the client sends until
// the connection ends. A from= out of reach gets Close 1008 with the reason.
func (h *Handler) streamTicks(ws *websocket.Conn, c *conn, b *behaviour) error {
	first, err := h.ticks.replayStart(b.from, time.Now())
	if err != nil {
		b.closeCode, b.reason = wsframe.ClosePolicyViolation, err.Error()
		return c.end(ws)
	}
	p := c.startPusher(ws, h.ticks.timeOf(first), h.ticks.interval, func(k int64) []byte {
		return h.ticks.tick(first+k).appendJSON(nil, 0)
	})
	defer p.stop()
	return h.discard(ws, c)
}

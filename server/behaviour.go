package server

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/net/websocket"

	"wsecho/internal/wsframe"
	"wsecho/internal/wsmsg"
)

// Limits on the behaviours a client may ask for on /echo, so that one
// connection cannot make a shared server do much more than echo.
const (
	MaxDelay       = 30 * time.Second       // delay=: longest wait before an echo
	MinPingPeriod  = 100 * time.Millisecond // ping=: shortest ping interval
	MinPushPeriod  = 100 * time.Millisecond // push=: shortest push interval
	MinPushSize    = 256                    // push-size=: smallest padded tick, in bytes
	MaxPushSize    = 64 << 10               // push-size=: largest padded tick, in bytes
	MaxGreeting    = 1024                   // greeting=: longest greeting, in bytes
	behaviourClose = 2 * time.Second        // after=N&close=: wait for the peer's Close
)

// behaviourParams are the query parameters /echo understands, in the order
// the README lists them.
var behaviourParams = []string{"delay", "fragment", "ping-between", "greeting", "after", "close", "reason", "drop", "ping", "push", "push-size"}

// behaviour is what one connection asked for in its URL: on /echo the
// behaviours, on /ticks the tick stream. A nil *behaviour is a plain echo.
type behaviour struct {
	delay       time.Duration
	fragment    int // 0: echoes go out as one frame
	pingBetween bool
	greeting    *string
	after       int // with closeCode or drop: echoes before the end
	closeCode   int
	reason      string
	drop        bool
	ping        time.Duration // 0: Options.PingInterval
	push        time.Duration
	pushSize    int

	ticks bool  // the connection is a /ticks subscriber
	from  int64 // /ticks: the first seq to send; -1: the current one

	stopOnce sync.Once
	stop     chan struct{} // closed when shutdown begins: delays and pushes end
	echoes   int           // echoes sent, counted by the echo loop
}

func (b *behaviour) ending() bool { return b.closeCode != 0 || b.drop }

// behaviours returns what r asks for, or an error naming the parameter that
// is wrong. On /echo with Options.DisableBehaviours, the query is ignored.
func (h *Handler) behaviours(r *http.Request) (*behaviour, error) {
	if h.opts.DisableBehaviours || r.URL.RawQuery == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("bad query: %v", err)
	}
	for name, v := range q {
		switch {
		case !slices.Contains(behaviourParams, name):
			return nil, fmt.Errorf("unknown parameter %q (known: %s)", name, strings.Join(behaviourParams, ", "))
		case len(v) > 1:
			return nil, fmt.Errorf("%s: given %d times", name, len(v))
		}
	}
	b := &behaviour{stop: make(chan struct{}), from: -1}
	p := params{q: q}
	b.delay = p.duration("delay", time.Nanosecond, MaxDelay)
	b.fragment = p.int("fragment", 1, int(h.opts.MaxMessage))
	b.pingBetween = p.bool("ping-between")
	if q.Has("greeting") {
		g := q.Get("greeting")
		switch {
		case len(g) > MaxGreeting:
			p.fail("greeting", fmt.Sprintf("longer than %d bytes", MaxGreeting))
		case !utf8.ValidString(g):
			p.fail("greeting", "not UTF-8")
		}
		b.greeting = &g
	}
	b.after = p.int("after", 0, 1<<30)
	b.closeCode = p.int("close", 1000, 4999)
	if q.Has("close") && !serverCloseCode(b.closeCode) {
		p.fail("close", "not a code a server may send (1000-1003, 1007-1009, 1011-1014, 3000-4999)")
	}
	b.reason = q.Get("reason")
	switch {
	case len(b.reason) > wsframe.MaxControlPayload-2:
		p.fail("reason", fmt.Sprintf("longer than %d bytes", wsframe.MaxControlPayload-2))
	case !utf8.ValidString(b.reason):
		p.fail("reason", "not UTF-8")
	}
	b.drop = p.bool("drop")
	b.ping = p.duration("ping", MinPingPeriod, 24*time.Hour)
	if idle := h.opts.IdleTimeout; b.ping > 0 && idle > 0 && b.ping >= idle {
		p.fail("ping", fmt.Sprintf("must be shorter than the server's idle timeout (%v)", idle))
	}
	b.push = p.duration("push", MinPushPeriod, 24*time.Hour)
	b.pushSize = p.int("push-size", MinPushSize, MaxPushSize)
	switch {
	case b.pingBetween && b.fragment == 0:
		p.fail("ping-between", "needs fragment=N")
	case q.Has("reason") && !q.Has("close"):
		p.fail("reason", "needs close=CODE")
	case b.closeCode != 0 && b.drop:
		p.fail("drop", "cannot go with close=CODE")
	case q.Has("after") && !b.ending():
		p.fail("after", "needs close=CODE or drop=1")
	case b.pushSize != 0 && b.push == 0:
		p.fail("push-size", "needs push=DURATION")
	}
	if p.err != nil {
		return nil, p.err
	}
	return b, nil
}

// serverCloseCode reports whether a server may send code (RFC 6455, Section
// 7.4.1: 1010 is for clients only; 1004-1006 and 1015 never go on the wire).
func serverCloseCode(code int) bool {
	return wsframe.ValidCloseCode(code) && code != 1010
}

// params reads query parameters, keeping the first error.
type params struct {
	q   url.Values
	err error
}

func (p *params) fail(name, msg string) {
	if p.err == nil {
		p.err = fmt.Errorf("%s=%s: %s", name, p.q.Get(name), msg)
	}
}

// int returns parameter name as an integer in [lo, hi], or 0 if absent.
func (p *params) int(name string, lo, hi int) int {
	if !p.q.Has(name) {
		return 0
	}
	n, err := strconv.Atoi(p.q.Get(name))
	if err != nil || n < lo || n > hi {
		p.fail(name, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
		return 0
	}
	return n
}

// duration returns parameter name as a duration in [lo, hi], or 0 if absent.
func (p *params) duration(name string, lo, hi time.Duration) time.Duration {
	if !p.q.Has(name) {
		return 0
	}
	d, err := time.ParseDuration(p.q.Get(name))
	if err != nil || d < lo || d > hi {
		p.fail(name, fmt.Sprintf("must be a duration (such as 500ms or 2s) from %v to %v", lo, hi))
		return 0
	}
	return d
}

// bool returns parameter name as a boolean (1, true, 0, false), or false if
// absent.
func (p *params) bool(name string) bool {
	if !p.q.Has(name) {
		return false
	}
	v, err := strconv.ParseBool(p.q.Get(name))
	if err != nil {
		p.fail(name, "must be 1 or 0")
	}
	return v
}

// pingInterval is the connection's ping interval: ping= or
// Options.PingInterval.
func (c *conn) pingInterval() time.Duration {
	if c.b != nil && c.b.ping > 0 {
		return c.b.ping
	}
	return c.h.opts.PingInterval
}

// interrupt ends delays and pushes: shutdown has begun.
func (b *behaviour) interrupt() {
	if b != nil {
		b.stopOnce.Do(func() { close(b.stop) })
	}
}

// converse runs a connection once the handshake is done: loop (the echo
// loop, or a broadcast member's), with the behaviours it asked for, or the
// tick stream.
func (h *Handler) converse(ws *websocket.Conn, c *conn, loop loop, log *slog.Logger, st *stats) error {
	b := c.b
	if b == nil {
		return loop(ws, c, log, st)
	}
	if b.fragment > 0 {
		c.wc.SetFragmentation(b.fragment, b.pingBetween)
	}
	if b.ticks {
		return h.streamTicks(ws, c, b)
	}
	if b.greeting != nil {
		if err := h.send(ws, websocket.TextFrame, []byte(*b.greeting)); err != nil {
			return err
		}
	}
	if b.ending() && b.after == 0 {
		return c.end(ws)
	}
	if b.push > 0 {
		p := c.startPusher(ws, time.Now().Add(b.push), b.push, h.pushMessage(b.pushSize))
		defer p.stop()
	}
	return loop(ws, c, log, st)
}

// send writes one message the peer did not ask for (a greeting, a push, a
// tick), counted in the metrics.
func (h *Handler) send(ws *websocket.Conn, typ byte, data []byte) error {
	if err := wsmsg.Codec.Send(ws, &wsmsg.Message{Type: typ, Data: data}); err != nil {
		return err
	}
	h.metrics.msgsOut.Add(1)
	h.metrics.bytesOut.Add(int64(len(data)))
	return nil
}

// pushMessage returns what push= sends: the time as text, or, with
// push-size=N, the current tick as JSON padded to N bytes.
func (h *Handler) pushMessage(size int) func(int64) []byte {
	if size == 0 {
		return func(int64) []byte { return time.Now().UTC().AppendFormat(nil, time.RFC3339Nano) }
	}
	return func(int64) []byte {
		t := h.ticks.tick(h.ticks.seqAt(time.Now()))
		return t.appendJSON(nil, size)
	}
}

// beforeEcho waits out delay=, if asked. The wait counts as a sign of life, so that a delayed echo never trips the
// idle timeout; it ends early when shutdown begins.
func (c *conn) beforeEcho() {
	b := c.b
	if b == nil || b.delay == 0 {
		return
	}
	if c.h.opts.IdleTimeout > 0 {
		c.busyUntil.Store(int64(c.h.clock() + b.delay))
	}
	t := time.NewTimer(b.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-b.stop:
	}
}

// afterEcho counts an echo and ends the connection as after=N asked, with
// an error that tells logEnd how.
func (c *conn) afterEcho(ws *websocket.Conn) error {
	b := c.b
	if b == nil || !b.ending() {
		return nil
	}
	if b.echoes++; b.echoes < b.after {
		return nil
	}
	return c.end(ws)
}

// behaviourEnd is how after=N ended a connection: a Close with code, or a
// drop (code 1006) with no Close frame.
type behaviourEnd struct {
	code int
	why  string // for the log: "close=1013", "drop=1", "from out of reach"
	err  error  // reading the peer's answer to our Close
}

func (e *behaviourEnd) Error() string {
	if e.code == wsframe.CloseAbnormal {
		return "dropped as asked"
	}
	return fmt.Sprintf("closed with %d as asked: %v", e.code, e.err)
}

// end sends the Close asked for and waits, for a bounded time, for the
// peer's answer; or drops the connection: the TCP connection is shut for
// writing with no Close frame, what the peer still sends is read for a
// moment (so that it sees an end of stream rather than a reset), then it is
// closed.
func (c *conn) end(ws *websocket.Conn) error {
	b, wc := c.b, c.wc
	nc := wc.NetConn()
	if b.drop {
		if cw, ok := nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		nc.SetReadDeadline(time.Now().Add(behaviourClose))
		io.Copy(io.Discard, io.LimitReader(nc, 1<<20))
		nc.Close()
		return &behaviourEnd{code: wsframe.CloseAbnormal, why: "drop=1"}
	}
	e := &behaviourEnd{code: b.closeCode, why: "close=" + strconv.Itoa(b.closeCode)}
	if b.ticks {
		e.why = "from out of reach"
	}
	wc.SetWriteDeadline(time.Now().Add(behaviourClose))
	if e.err = wc.WriteClose(b.closeCode, b.reason); e.err != nil {
		return e
	}
	wc.SetReadDeadline(time.Now().Add(behaviourClose))
	e.err = drainUntilClose(wc)
	return e
}

// logEnd logs and counts the end of a connection that after=N ended.
func (e *behaviourEnd) logEnd(log *slog.Logger, m *metrics, attrs []any) {
	if e.code == wsframe.CloseAbnormal {
		m.dropped.Add(1)
	} else {
		m.sent(e.code)
	}
	log.Info("closed", append(attrs, "code", e.code, "by", "server", "reason", e.why)...)
}

// pusher sends messages on its own goroutine: the k-th (from 0) at
// start+k*every, or at once if that time has passed, until stopped, until
// shutdown begins, or until a write fails.
type pusher struct {
	quit chan struct{}
	done chan struct{}
}

func (c *conn) startPusher(ws *websocket.Conn, start time.Time, every time.Duration, msg func(k int64) []byte) *pusher {
	p := &pusher{quit: make(chan struct{}), done: make(chan struct{})}
	typ := byte(websocket.TextFrame)
	go func() {
		defer close(p.done)
		t := time.NewTimer(0)
		defer t.Stop()
		<-t.C
		for k := int64(0); ; k++ {
			if d := time.Until(start.Add(time.Duration(k) * every)); d > 0 {
				t.Reset(d)
				select {
				case <-t.C:
				case <-p.quit:
					return
				case <-c.b.stop:
					return
				}
			}
			select {
			case <-p.quit:
				return
			case <-c.b.stop:
				return
			default:
			}
			if c.h.send(ws, typ, msg(k)) != nil {
				return
			}
		}
	}()
	return p
}

// stop ends the pusher and waits for it. A write it is blocked in ends
// when the connection does (see Options.IdleTimeout).
func (p *pusher) stop() {
	close(p.quit)
	<-p.done
}

// discard reads and drops what a /ticks subscriber sends, until the
// connection ends; the wire layer answers pings and the Close.
func (h *Handler) discard(ws *websocket.Conn, c *conn) error {
	for {
		if _, _, err := c.wc.ReadMessage(); err != nil {
			if c.wc.Drained(err) {
				return h.closeGoingAway(c.wc)
			}
			return err
		}
	}
}

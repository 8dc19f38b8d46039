package server

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"wsecho/internal/wsframe"
)

// idleCloseWait bounds how long a connection closed for being idle (or for
// a message that took too long) waits for its Close frame to go out, and
// then for the peer's answer.
const idleCloseWait = time.Second

// conn is the server's side of one WebSocket connection: the wire layer, the
// keepalive timer, and what the server did to end it.
//
// Keepalive costs no goroutine while a connection is idle and nothing per
// message: the wire layer counts signs of life and message starts and ends
// (wsframe.Conn.Progress), and one timer per connection samples the counts,
// a quarter of the idle timeout (or message timeout) apart, and sends the
// pings. It runs for a moment in a goroutine of its own.
type conn struct {
	h  *Handler
	wc *wsframe.Conn
	b  *behaviour // what the URL asked for; nil: a plain echo

	counted    bool              // in conns_open; used only by the connection's goroutine
	compressed compressionCounts // what it has added to the compression metrics; likewise

	pinging atomic.Bool // a ping write is under way
	forced  atomic.Bool // Shutdown closed the socket when its time was up

	// busyUntil, as h.clock() reports it, is when a delayed echo (delay=)
	// goes out: until then the connection counts as alive.
	busyUntil atomic.Int64

	mu       sync.Mutex
	timer    *time.Timer
	nextPing time.Duration // h.clock() of the next ping
	nextLook time.Duration // h.clock() of the next look at the counters
	life     uint64        // the sign-of-life count last seen
	lifeAt   time.Duration // when it was first seen, as h.clock() reports it
	msgs     uint64        // the message count last seen
	msgAt    time.Duration // when it was first seen
	stopped  bool          // the connection has ended: the timer must not run again
	draining bool          // shutdown has begun: it decides how the connection ends
	ended    *timeout      // the idle or message timeout has closed the connection
}

// timeout is how the server closes a connection that ran out of time.
type timeout struct {
	code   int
	reason string
}

var (
	idleTimeout    = &timeout{wsframe.CloseGoingAway, "idle timeout"}
	messageTimeout = &timeout{wsframe.ClosePolicyViolation, "message timeout"}
)

// newConn puts the wire layer over a hijacked connection; br may hold bytes
// that came with the handshake.
func (h *Handler) newConn(nc net.Conn, br *bufio.Reader) *conn {
	c := &conn{h: h}
	c.wc = wsframe.NewConn(nc, br, wsframe.Server, wsframe.Options{
		MaxMessage: h.opts.MaxMessage,
		Budget:     h.budget,
		MemoryWait: h.opts.MemoryWait,
	})
	return c
}

// look returns the interval between looks at the counters, or 0 if no
// timeout needs them.
func (c *conn) look() time.Duration {
	idle, msg := c.h.opts.IdleTimeout, c.h.opts.MessageTimeout
	switch {
	case idle > 0 && msg > 0:
		return min(idle, msg) / 4
	case idle > 0 || msg > 0:
		return max(idle, msg) / 4
	}
	return 0
}

// startKeepalive arms the timer, if pings or a timeout are configured.
func (c *conn) startKeepalive() {
	ping, look := c.pingInterval(), c.look()
	if ping <= 0 && look <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.draining {
		return
	}
	now := c.h.clock()
	c.life, c.msgs = c.wc.Progress()
	c.lifeAt, c.msgAt = now, now
	c.nextPing, c.nextLook = now+ping, now+look
	c.timer = time.AfterFunc(c.wake()-now, c.tick)
}

// wake returns when the timer must fire next: at the next ping or the next
// look. Called with mu held.
func (c *conn) wake() time.Duration {
	switch ping, look := c.pingInterval(), c.look(); {
	case ping <= 0:
		return c.nextLook
	case look <= 0:
		return c.nextPing
	}
	return min(c.nextPing, c.nextLook)
}

// tick is the timer's function: it closes a connection that has been idle,
// or whose message has taken, too long, or sends a ping when one is due,
// and sets the timer again.
func (c *conn) tick() {
	ping := c.pingInterval()
	c.mu.Lock()
	if c.stopped || c.draining {
		c.mu.Unlock()
		return
	}
	now := c.h.clock()
	if to := c.check(now); to != nil {
		c.ended = to
		c.mu.Unlock()
		c.expire(to)
		return
	}
	sendPing := ping > 0 && now >= c.nextPing
	if sendPing {
		c.nextPing = now + ping
	}
	c.timer.Reset(c.wake() - now)
	c.mu.Unlock()

	// The wire layer writes the ping between x/net's frames, under its write
	// lock, within wsframe.ControlWriteTimeout; meanwhile no second ping
	// piles up behind it.
	if sendPing && c.pinging.CompareAndSwap(false, true) {
		c.wc.WriteControl(wsframe.OpPing, nil) // a failure shows up in the reader
		c.pinging.Store(false)
	}
}

// check samples the wire layer's counters, if a look is due, and returns
// the timeout that has run out, if any. A count that has changed since the
// last look is taken to have changed now. Called with mu held.
func (c *conn) check(now time.Duration) *timeout {
	look := c.look()
	if look <= 0 || now < c.nextLook {
		return nil
	}
	c.nextLook = now + look
	life, msgs := c.wc.Progress()
	if life != c.life || now < time.Duration(c.busyUntil.Load()) {
		c.life, c.lifeAt = life, now
	}
	if msgs != c.msgs {
		c.msgs, c.msgAt = msgs, now
	}
	idle, msg := c.h.opts.IdleTimeout, c.h.opts.MessageTimeout
	switch {
	case msg > 0 && msgs%2 == 1 && now-c.msgAt >= msg:
		return messageTimeout
	case idle > 0 && now-c.lifeAt >= idle:
		return idleTimeout
	}
	return nil
}

// expire closes a connection that ran out of time: a Close, then a bounded
// wait for the peer's answer. Deadlines bound both, so that an echo or ping
// blocked on a peer that stopped reading fails too; the reader then sees
// the answer or the timeout, and the connection ends.
func (c *conn) expire(to *timeout) {
	c.wc.SetWriteDeadline(time.Now().Add(idleCloseWait))
	c.wc.WriteClose(to.code, to.reason)
	c.wc.SetReadDeadline(time.Now().Add(idleCloseWait))
}

// stopKeepalive stops the timer for good; the connection is ending.
func (c *conn) stopKeepalive() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.timer != nil {
		c.timer.Stop()
	}
}

// drain hands the end of the connection to shutdown (see wsframe.Conn.Drain),
// unless a timeout is already closing it. Keepalive stops: shutdown has its
// own deadlines, and the drain's read deadline must not be moved.
func (c *conn) drain(grace time.Duration, end time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended != nil {
		return
	}
	c.draining = true
	c.b.interrupt()
	c.wc.Drain(grace, end)
}

func (c *conn) isDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// timedOut returns the timeout that closed the connection, or nil.
func (c *conn) timedOut() *timeout {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// uncount takes the connection out of conns_open, once.
func (c *conn) uncount() {
	if c.counted {
		c.counted = false
		c.h.metrics.connsOpen.Add(-1)
	}
}

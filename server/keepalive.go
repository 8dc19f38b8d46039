package server

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"wsecho/internal/wsframe"
)

// idleCloseWait bounds how long a connection closed for being idle waits
// for its Close frame to go out, and then for the peer's answer.
const idleCloseWait = time.Second

// conn is the server's side of one WebSocket connection: the wire layer, the
// keepalive timer, and what the server did to end it.
//
// Keepalive costs no goroutine while a connection is idle: one timer per
// connection fires at the next ping or at the idle deadline, whichever
// comes first, and runs for a moment in a goroutine of its own.
type conn struct {
	h  *Handler
	wc *wsframe.Conn
	b  *behaviour // what the URL asked for; nil: a plain echo

	// last is when the peer was last heard from (a frame header, or part of
	// a payload) or an echo last went out, as h.clock() reports it.
	last atomic.Int64

	counted bool // in conns_open; used only by the connection's goroutine

	pinging atomic.Bool // a ping write is under way
	forced  atomic.Bool // Shutdown closed the socket when its time was up

	mu       sync.Mutex
	timer    *time.Timer
	nextPing time.Duration // h.clock() of the next ping
	stopped  bool          // the connection has ended: the timer must not run again
	draining bool          // shutdown has begun: it decides how the connection ends
	idle     bool          // the idle timeout has closed the connection
}

// newConn puts the wire layer over a hijacked connection; br may hold bytes
// that came with the handshake.
func (h *Handler) newConn(nc net.Conn, br *bufio.Reader) *conn {
	c := &conn{h: h}
	opts := wsframe.Options{MaxMessage: h.opts.MaxMessage}
	if h.opts.IdleTimeout > 0 {
		opts.OnFrame = func(byte, int64) { c.touch() } // pongs too
	}
	c.wc = wsframe.NewConn(nc, br, wsframe.Server, opts)
	c.touch()
	return c
}

// Read and Write are the wire layer's, seen by x/net; a read or write that
// moves data counts as a sign of life.
func (c *conn) Read(p []byte) (int, error) {
	n, err := c.wc.Read(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.wc.Write(p)
	if n > 0 {
		c.touch()
	}
	return n, err
}

// touch records a sign of life. It is cheap, but not free, so it is skipped
// when there is no idle timeout to feed.
func (c *conn) touch() {
	if c.h.opts.IdleTimeout > 0 {
		c.last.Store(int64(c.h.clock()))
	}
}

// startKeepalive arms the timer, if pings or an idle timeout are configured.
func (c *conn) startKeepalive() {
	ping, idle := c.pingInterval(), c.h.opts.IdleTimeout
	if ping <= 0 && idle <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.draining {
		return
	}
	now := c.h.clock()
	c.nextPing = now + ping
	c.timer = time.AfterFunc(c.wake()-now, c.tick)
}

// wake returns when the timer must fire next: at the next ping or at the
// idle deadline. Called with mu held.
func (c *conn) wake() time.Duration {
	ping, idle := c.pingInterval(), c.h.opts.IdleTimeout
	var next time.Duration
	if ping > 0 {
		next = c.nextPing
	}
	if idle > 0 {
		if at := time.Duration(c.last.Load()) + idle; ping <= 0 || at < next {
			next = at
		}
	}
	return next
}

// tick is the timer's function: it closes an idle connection, or sends a
// ping when one is due, and sets the timer again.
func (c *conn) tick() {
	ping, idle := c.pingInterval(), c.h.opts.IdleTimeout
	c.mu.Lock()
	if c.stopped || c.draining {
		c.mu.Unlock()
		return
	}
	now := c.h.clock()
	if idle > 0 && now-time.Duration(c.last.Load()) >= idle {
		c.idle = true
		c.mu.Unlock()
		c.expire()
		return
	}
	sendPing := ping > 0 && now >= c.nextPing
	if sendPing {
		c.nextPing = now + ping
	}
	c.timer.Reset(c.wake() - now)
	c.mu.Unlock()

	// The wire layer writes the ping between x/net's frames, under its write
	// lock. A peer that stopped reading can block it until the idle timeout
	// sets a write deadline; meanwhile no second ping piles up behind it.
	if sendPing && c.pinging.CompareAndSwap(false, true) {
		c.wc.WriteControl(wsframe.OpPing, nil) // a failure shows up in the reader
		c.pinging.Store(false)
	}
}

// expire closes an idle connection: Close 1001, then a bounded wait for the
// peer's answer. Deadlines bound both, so that an echo or ping blocked on a
// peer that stopped reading fails too; the reader then sees the answer or
// the timeout, and the connection ends.
func (c *conn) expire() {
	nc := c.wc.NetConn()
	nc.SetWriteDeadline(time.Now().Add(idleCloseWait))
	c.wc.WriteClose(wsframe.CloseGoingAway, "idle timeout")
	nc.SetReadDeadline(time.Now().Add(idleCloseWait))
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
// unless the idle timeout is already closing it. Keepalive stops: shutdown
// has its own deadlines, and the drain's read deadline must not be moved.
func (c *conn) drain(grace time.Duration, end time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle {
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

func (c *conn) isIdle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.idle
}

// uncount takes the connection out of conns_open, once.
func (c *conn) uncount() {
	if c.counted {
		c.counted = false
		c.h.metrics.connsOpen.Add(-1)
	}
}

// Package server is wsecho's WebSocket echo endpoint: an http.Handler that
// performs the opening handshake with golang.org/x/net/websocket and echoes
// every message back whole, with its type.
//
// The wire layer (internal/wsframe) reads every message and enforces RFC
// 6455 where x/net does not; x/net performs the handshake and writes every
// message the server sends, through the wire layer. This package holds the
// policy: who may connect and how many at once (Listener counts them from
// accept), how long a connection may stay idle, what is logged and counted,
// and how connections end on shutdown. Besides the echo it serves broadcast
// rooms (Handler.Broadcast), a tick stream over WebSocket and Server-Sent
// Events, and a browser page (Page); NewMux puts them, the health check and
// the metrics on their routes, and Handler.HTTPServer adds the timeouts of
// the HTTP server around them.
package server

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/net/websocket"

	"wsecho/internal/wsframe"
	"wsecho/internal/wsmsg"
)

// Options configure a Handler. The zero value is ready to use.
type Options struct {
	// CheckOrigin reports whether a handshake may proceed. If nil, requests
	// with no Origin header, or whose Origin host equals Host, are accepted,
	// as by gorilla/websocket's default Upgrader.
	CheckOrigin func(*http.Request) bool

	// MaxMessage is the largest message echoed, in bytes; a larger one fails
	// the connection with close code 1009. If 0, 32 MiB.
	MaxMessage int64

	// MaxConns is how many connections may be open, or in their opening
	// handshake, at once; beyond it a handshake gets 503 with Retry-After
	// and the open connections are unaffected. If 0, no limit. Served
	// through a Listener, it counts connections from accept (see Listener),
	// and the file descriptor limit bounds them too.
	MaxConns int

	// MaxHandshakes bounds, through a Listener, the connections accepted
	// that have not yet sent a request (or sit idle between HTTP requests);
	// when it is reached the one that has waited longest is closed. If 0,
	// 1024.
	MaxHandshakes int

	// MaxConnsPerIP is how many connections one client address may have
	// open, or in their opening handshake, at once; beyond it a handshake
	// gets 429 with Retry-After. If 0, no limit (the right choice behind a
	// proxy, where every connection comes from the proxy's address).
	MaxConnsPerIP int

	// PingInterval is how often each connection gets a ping. If 0, none.
	PingInterval time.Duration

	// IdleTimeout closes, with 1001, a connection from which nothing has
	// arrived for that long: no frame header (data, ping, pong or close;
	// an empty data frame that ends nothing does not count) and no part of
	// a payload, which is read as it arrives. An echo that the peer does
	// not read for that long fails too: the connection is dropped. Keep it
	// longer than PingInterval, or a peer that only answers pings is
	// closed. It is checked a quarter of itself at a time, so the close
	// comes between IdleTimeout and 1.25 times it after the last sign of
	// life. If 0, connections never time out.
	IdleTimeout time.Duration

	// MaxMemory bounds the message data held across all connections, in
	// bytes: message buffers being filled (joined fragments) and echoes
	// being written. A connection whose message needs more than is left
	// stops being read (TCP pushes back on the sender) for up to
	// MemoryWait, then fails with 1013 (try again later); the last eighth
	// of the budget (at most 64 MiB) is kept for messages of 64 KiB or
	// less, so that small messages keep flowing. If 0, DefaultMaxMemory.
	MaxMemory int64

	// MemoryWait is how long a connection waits for MaxMemory to have
	// room. If 0, 10 seconds.
	MemoryWait time.Duration

	// MessageTimeout bounds how long one message may take from its first
	// frame to its last; a connection whose message takes longer is closed
	// with 1008. It is checked a quarter of itself at a time, so the close
	// comes between MessageTimeout and 1.25 times it. If 0, no limit.
	MessageTimeout time.Duration

	// HandshakeTimeout bounds the TLS handshake and reading the upgrade
	// request, in the http.Server that HTTPServer returns. If 0, 10 seconds.
	HandshakeTimeout time.Duration

	// DisableCompression declines every permessage-deflate offer (RFC
	// 7692). By default the first acceptable offer is accepted, and echoes
	// of 112 bytes or more go out compressed.
	DisableCompression bool

	// CompressContextTakeover keeps the compression context of each
	// direction across messages: a better ratio for small similar
	// messages, for about 1.2 MB (our compressor) and 64 KiB (the window
	// of the client's) per connection. By default the server answers with
	// server_no_context_takeover and client_no_context_takeover and an idle
	// connection holds no compression state.
	CompressContextTakeover bool

	// Logger receives one line per connection and per message. If nil,
	// slog.Default().
	Logger *slog.Logger

	// DisableBehaviours makes /echo ignore its query parameters (delay=,
	// fragment=, and the others in behaviour.go): a plain echo.
	DisableBehaviours bool

	// TickInterval is the time between two ticks on /ticks and /sse. If
	// 0, one second.
	TickInterval time.Duration

	// TickSeed chooses the tick stream; servers with the same seed and
	// interval serve the same ticks.
	TickSeed int64
}

// drainGrace is how long a connection must be quiet, once shutdown has
// begun, before it gets its Close 1001.
const drainGrace = 250 * time.Millisecond

// maxCloseReserve is the part of shutdown's time (at most half of it) kept
// for the closing handshake: a peer that never goes quiet for drainGrace is
// echoed until that long before the end, then gets its Close 1001, so that
// it learns of the shutdown rather than seeing the connection drop.
const maxCloseReserve = time.Second

// drainDeadline returns when draining must stop for shutdown to end at end.
func drainDeadline(end time.Time) time.Time {
	return end.Add(-min(maxCloseReserve, time.Until(end)/2))
}

// defaultShutdownWait bounds the closing handshakes when Shutdown's context
// has no deadline.
const defaultShutdownWait = 10 * time.Second

// xnetWriteBuffer is the size of the buffered writer x/net writes frames
// into: a frame header and a short message. A frame that does not fit is
// still sent with one system call (the wire layer joins its parts), so a
// small buffer costs little and saves memory on every connection.
const xnetWriteBuffer = 128

// DefaultMaxMemory is the budget for message data when Options.MaxMemory
// is 0: a quarter of physical memory, at most 1 GiB (1 GiB when physical
// memory is unknown).
var DefaultMaxMemory = defaultMaxMemory()

// Handler is the echo endpoint. It implements http.Handler; mount it on the
// WebSocket path (wsecho uses /echo). It is safe for concurrent use.
type Handler struct {
	opts Options
	log  *slog.Logger

	metrics *metrics
	epoch   time.Time // New's time: h.clock() counts from it
	budget  *wsframe.Budget
	scav    scavenger

	rejectLog *logLimiter // bounds the lines logged for rejected handshakes

	ticks       tickSource
	streamsDone chan struct{} // closed when SSE streams must end
	streamsOnce sync.Once

	mu      sync.Mutex
	closing bool
	end     time.Time // when shutdown gives up on closing handshakes
	drainBy time.Time // when draining stops and the Close 1001 goes out, at the latest
	active  int       // connections counted in by acquire
	conns   map[*conn]struct{}
	wg      sync.WaitGroup

	perIP map[string]int // connections counted in by acquire, by client address; guarded by mu
}

// New returns an echo Handler.
func New(opts Options) *Handler {
	if opts.CheckOrigin == nil {
		opts.CheckOrigin = SameOrigin
	}
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = wsframe.DefaultMaxMessage
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = defaultHandshakeTimeout
	}
	if opts.MaxMemory <= 0 {
		opts.MaxMemory = DefaultMaxMemory
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = defaultTickInterval
	}
	now := time.Now()
	h := &Handler{opts: opts, log: log, epoch: now, conns: make(map[*conn]struct{}), budget: wsframe.NewBudget(opts.MaxMemory),
		perIP: make(map[string]int), rejectLog: newLogLimiter(rejectLogRate),
		ticks: tickSource{seed: opts.TickSeed, interval: opts.TickInterval}, streamsDone: make(chan struct{})}
	h.metrics = newMetrics(now, log, h.budget)
	return h
}

// clock returns the monotonic time since New.
func (h *Handler) clock() time.Duration { return time.Since(h.epoch) }

// SameOrigin accepts a request with no Origin header, or one whose Origin
// host equals the Host header, as gorilla/websocket's default Upgrader does.
func SameOrigin(r *http.Request) bool {
	origin := r.Header["Origin"]
	if len(origin) == 0 {
		return true
	}
	u, err := url.Parse(origin[0])
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// AllowOrigins returns an origin check that accepts what SameOrigin accepts
// and every origin in allowed: full origins ("https://example.com"), bare
// hosts ("example.com:8443"), or "*" for any origin.
func AllowOrigins(allowed []string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		if SameOrigin(r) {
			return true
		}
		origin := strings.TrimSuffix(r.Header.Get("Origin"), "/")
		u, err := url.Parse(origin)
		if err != nil {
			return false
		}
		for _, a := range allowed {
			a = strings.TrimSuffix(strings.TrimSpace(a), "/")
			switch {
			case a == "*":
				return true
			case strings.Contains(a, "://") && strings.EqualFold(a, origin):
				return true
			case !strings.Contains(a, "://") && strings.EqualFold(a, u.Host):
				return true
			}
		}
		return false
	}
}

// ServeHTTP checks the opening handshake (RFC 6455, Section 4.2.1), hijacks
// the connection, hands it to x/net through the wire layer, and echoes until
// the connection ends, with the behaviours the query asks for (behaviour.go).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := h.behaviours(r)
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, rejectParam, "websocket: "+err.Error())
		return
	}
	h.upgrade(w, r, b, h.echo)
}

// loop is what a connection does once open, until it ends: it reads
// messages through c.wc and writes through ws, and returns why it stopped.
type loop func(ws *websocket.Conn, c *conn, log *slog.Logger, st *stats) error

// upgrade checks the opening handshake against the origin policy and the
// limits, hijacks the connection, hands it to x/net through the wire layer,
// and runs loop on it (see serve), with the behaviours b (nil: none).
func (h *Handler) upgrade(w http.ResponseWriter, r *http.Request, b *behaviour, loop loop) {
	if status, reason, msg := h.check(r); status != 0 {
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodGet)
		}
		h.reject(w, r, status, reason, msg)
		return
	}
	ip, ok := h.admit(w, r, "websocket")
	if !ok {
		return
	}

	// Hijack here rather than in x/net, which panics when Hijack fails.
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.release(ip)
		h.log.Error("hijack", "remote", r.RemoteAddr, "err", err)
		h.reject(w, r, http.StatusInternalServerError, rejectHijack, "websocket: cannot take over the connection")
		return
	}
	nc.SetDeadline(time.Time{})
	ended := handOff(r) // the Listener counts it until it ends
	c := h.newConn(nc, socketReader(nc, brw))
	c.b = b
	h.track(c, true)
	if ws := h.handshake(w, r, c); ws != nil {
		// A fresh goroutine, with a small stack: net/http's, which grew
		// while it read the request, ends here, and its stack is freed.
		go h.serve(ws, c, loop, ip, ended)
		return
	}
	c.uncount() // if x/net failed the handshake after the count
	h.track(c, false)
	c.wc.Close()
	ended()
	h.release(ip)
}

// admit counts a connection in from r's address (see acquire), or answers
// 503 (the server is full or shutting down) or 429 (too many from that
// address) with Retry-After, the body's message starting with what. The
// caller releases ip when the connection ends.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, what string) (ip string, ok bool) {
	ip = clientIP(r)
	reason := h.acquire(ip)
	if reason == "" {
		return ip, true
	}
	status, msg, retry := http.StatusServiceUnavailable, "server is shutting down", "1"
	switch reason {
	case rejectLimit:
		msg, retry = "too many connections", "5"
	case rejectPerIP:
		status, msg, retry = http.StatusTooManyRequests, "too many connections from your address", "5"
	}
	w.Header().Set("Retry-After", retry)
	h.reject(w, r, status, reason, what+": "+msg)
	return ip, false
}

// handshake has x/net perform the opening handshake over c and returns its
// *websocket.Conn, or nil if the handshake failed. x/net sees a copy of r
// that is cleared afterwards, with its Config, so that a connection does
// not keep the request's headers for its lifetime.
func (h *Handler) handshake(w http.ResponseWriter, r *http.Request, c *conn) *websocket.Conn {
	var ws *websocket.Conn
	srv := websocket.Server{
		Handshake: func(cfg *websocket.Config, _ *http.Request) error {
			cfg.Protocol = nil // an echo server speaks no subprotocol
			h.negotiate(r, cfg, c.wc)
			// Counted before the 101 goes out, so that a client that has
			// its answer finds itself counted.
			c.counted = true
			h.metrics.connsOpen.Add(1)
			h.metrics.connsTotal.Add(1)
			return nil
		},
		Handler: func(conn *websocket.Conn) { ws = conn },
	}
	xr := &http.Request{Method: r.Method, URL: r.URL, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Header: r.Header, Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: r.RequestURI, TLS: r.TLS}
	// x/net reads and writes through the wire layer. Its deferred Close
	// does nothing: the connection outlives x/net's Handler.
	srv.ServeHTTP(&hijacked{
		ResponseWriter: w,
		conn:           keepOpen{c.wc},
		rw:             bufio.NewReadWriter(bufio.NewReaderSize(c.wc, 16), bufio.NewWriterSize(c.wc, xnetWriteBuffer)),
	}, xr)
	*xr = http.Request{}
	if ws != nil {
		*ws.Config() = websocket.Config{}
	}
	return ws
}

// keepOpen is the connection x/net sees: its Close does nothing, since
// x/net closes the connection when its Handler returns, and the echo loop
// runs on after that, on a goroutine of its own.
type keepOpen struct{ *wsframe.Conn }

func (keepOpen) Close() error { return nil }

// reject answers a handshake with an HTTP error and counts it by reason.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
	h.rejected(reason, "remote", r.RemoteAddr, "code", status, "origin", r.Header.Get("Origin"), "host", r.Host, "err", msg)
	http.Error(w, msg, status)
}

// check returns the HTTP status, the reason (for the metrics) and the message
// that reject r, or 0.
func (h *Handler) check(r *http.Request) (int, string, string) {
	switch {
	case r.ProtoMajor != 1 || r.ProtoMinor < 1:
		// The handshake needs HTTP/1.1 or later (RFC 6455, Section 4.1):
		// not HTTP/1.0. An HTTP/2 request (a browser's GET over a TLS
		// connection that negotiated h2, or RFC 8441's extended CONNECT)
		// cannot be hijacked.
		return http.StatusHTTPVersionNotSupported, rejectHTTPVersion, "websocket: HTTP/1.1 required"
	case r.Method != http.MethodGet:
		return http.StatusMethodNotAllowed, rejectMethod, "websocket: method must be GET"
	case !hasToken(r.Header, "Connection", "upgrade"):
		return http.StatusBadRequest, rejectBadRequest, "websocket: 'Connection' header has no 'upgrade' token"
	case !hasToken(r.Header, "Upgrade", "websocket"):
		return http.StatusBadRequest, rejectBadRequest, "websocket: 'Upgrade' header has no 'websocket' token"
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return http.StatusUpgradeRequired, rejectVersion, "websocket: unsupported version (want 13)"
	case !validKey(r.Header.Get("Sec-WebSocket-Key")):
		return http.StatusBadRequest, rejectBadRequest, "websocket: 'Sec-WebSocket-Key' is not the base64 of 16 bytes"
	case !h.opts.CheckOrigin(r):
		return http.StatusForbidden, rejectOrigin, "websocket: origin not allowed"
	}
	return 0, "", ""
}

// hasToken reports whether a comma-separated header holds token.
func hasToken(hdr http.Header, name, token string) bool {
	for _, v := range hdr[http.CanonicalHeaderKey(name)] {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// validKey reports whether key is the base64 of 16 bytes (RFC 6455, Section
// 4.1, point 7).
func validKey(key string) bool {
	b, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(b) == 16
}

// hijacked is the ResponseWriter x/net sees: its Hijack hands over the
// connection ServeHTTP already took, wrapped in the wire layer.
type hijacked struct {
	http.ResponseWriter
	conn net.Conn
	rw   *bufio.ReadWriter
}

func (h *hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) { return h.conn, h.rw, nil }

// socketReadBuffer is the size of the buffered reader the wire layer reads
// frames through. Payloads of this size or more are read straight into the
// message buffer, so a small one costs little, and it is what every idle
// connection holds.
const socketReadBuffer = 512

// socketReader returns the reader the wire layer reads frames from: the
// hijacked one if bytes that came with the handshake already sit in it,
// otherwise a small one. net/http's 4 KiB reader and writer would otherwise
// stay allocated for the life of the connection (net/http keeps a
// reference), so their buffers are released; the writer is never used, as
// x/net writes through the wire layer.
func socketReader(nc net.Conn, brw *bufio.ReadWriter) *bufio.Reader {
	*brw.Writer = bufio.Writer{}
	if brw.Reader.Buffered() > 0 {
		return brw.Reader
	}
	*brw.Reader = bufio.Reader{}
	return bufio.NewReaderSize(nc, socketReadBuffer)
}

// serve runs loop on the connection until it ends, logs how it ended, and
// closes it, then calls ended. It runs on a goroutine of its own, counted
// in h.wg.
func (h *Handler) serve(ws *websocket.Conn, c *conn, loop loop, ip string, ended func()) {
	wc := c.wc
	defer h.release(ip)
	defer ended()
	defer wc.Close()
	defer h.track(c, false)
	wc.Start()
	ws.MaxPayloadBytes = int(h.opts.MaxMessage) // the wire layer enforces it, per message
	// A logger that names the connection is kept only when every message
	// is logged; otherwise logEnd makes one for the last line, and loop
	// gets nil.
	var log *slog.Logger
	if h.log.Enabled(context.Background(), slog.LevelInfo) {
		log = h.log.With("remote", wc.RemoteAddr().String())
		log.Info("open", extensionAttrs(wc)...)
	}
	c.startKeepalive()
	var st stats
	start := time.Now()
	err := h.converse(ws, c, loop, log, &st)
	c.compressed.count(wc, h.metrics) // greetings, pushes, ticks, broadcasts since the last echo
	c.stopKeepalive()
	wc.Release()
	if c.isDraining() && errors.Is(err, os.ErrDeadlineExceeded) && !wc.CloseSent() {
		// Shutdown's time ran out in the middle of a message: say so,
		// rather than let x/net send its Close 1000.
		wc.SetWriteDeadline(time.Now().Add(drainGrace))
		wc.WriteClose(wsframe.CloseGoingAway, "going away")
		err = fmt.Errorf("%w: %w", errWentAway, err)
	}
	c.uncount()
	if log == nil {
		log = h.log.With("remote", wc.RemoteAddr().String())
	}
	h.logEnd(log, c, err, &st, time.Since(start))
}

type stats struct {
	msgsIn, msgsOut   int
	bytesIn, bytesOut int64
}

// echo reads each message straight from the wire layer, into a pooled
// buffer counted against the memory budget, and writes it back through
// x/net. log is nil when the level leaves out the "recv" lines.
func (h *Handler) echo(ws *websocket.Conn, c *conn, log *slog.Logger, st *stats) error {
	wc := c.wc
	var m wsmsg.Message
	for {
		op, p, err := wc.ReadMessage()
		if err != nil {
			if wc.Drained(err) {
				return h.closeGoingAway(wc)
			}
			return err
		}
		n := h.received(log, st, op, p)
		c.beforeEcho()
		m.Type, m.Data = op, p
		err = wsmsg.Codec.Send(ws, &m)
		m.Data = nil
		c.compressed.count(wc, h.metrics)
		if n > wsframe.MaxPooled {
			// A buffer too large to pool goes back to the garbage
			// collector; memory returns to the system soon after.
			wc.Release()
			h.scav.large()
		}
		if err != nil {
			return err
		}
		st.msgsOut++
		st.bytesOut += n
		h.metrics.msgsOut.Add(1)
		h.metrics.bytesOut.Add(n)
		if err := c.afterEcho(ws); err != nil {
			return err
		}
	}
}

// received counts a message read from the peer and logs its "recv" line
// (log is nil when the level leaves it out). It returns the message's size.
func (h *Handler) received(log *slog.Logger, st *stats, op byte, p []byte) int64 {
	n := int64(len(p))
	st.msgsIn++
	st.bytesIn += n
	h.metrics.msgsIn.Add(1)
	h.metrics.bytesIn.Add(n)
	if log != nil {
		log.Info("recv", "type", typeName(op), "bytes", n, "data", preview(op, p))
	}
	return n
}

// errWentAway marks the end of a connection that shutdown closed with 1001.
var errWentAway = errors.New("closed with 1001 for shutdown")

// closeGoingAway sends Close 1001 once a drain has found the peer quiet, and
// waits for the peer's Close until shutdown gives up. The error it returns
// wraps errWentAway.
func (h *Handler) closeGoingAway(wc *wsframe.Conn) error {
	h.mu.Lock()
	end := h.end
	h.mu.Unlock()
	wc.SetDeadline(end) // a peer that stopped reading must not hold shutdown up
	if err := wc.WriteClose(wsframe.CloseGoingAway, "going away"); err != nil {
		return fmt.Errorf("%w: %w", errWentAway, err)
	}
	if err := drainUntilClose(wc); err != nil {
		return fmt.Errorf("%w: %w", errWentAway, err)
	}
	return nil
}

// drainUntilClose reads and drops messages until the peer's Close (io.EOF)
// or an error, and returns that: data after our Close cannot be echoed
// (RFC 6455, Section 5.5.1).
func drainUntilClose(wc *wsframe.Conn) error {
	for {
		if _, _, err := wc.ReadMessage(); err != nil {
			return err
		}
	}
}

// logEnd logs one line for the end of a connection, and counts its Close
// frames: the code of the closing handshake and who started it ("server" or
// "peer"), with the reason when the server did, or code 1006 when the
// connection dropped with no Close; and the traffic each way.
func (h *Handler) logEnd(log *slog.Logger, c *conn, err error, st *stats, d time.Duration) {
	attrs := []any{"duration", d.Round(time.Millisecond),
		"msgs_in", st.msgsIn, "bytes_in", st.bytesIn, "msgs_out", st.msgsOut, "bytes_out", st.bytesOut}
	if n := c.wc.MemoryWaits(); n > 0 {
		attrs = append(attrs, "memory_waits", n)
	}
	attrs = appendCompression(attrs, c.wc)
	wc, m := c.wc, h.metrics
	var pe *wsframe.Error
	var be *behaviourEnd
	code, _, peerClosed := wc.PeerClose()
	if peerClosed {
		m.received(code)
	}
	switch {
	case errors.As(err, &pe) && pe.Code == wsframe.CloseTryAgainLater && wc.Failed() == pe:
		m.sent(pe.Code)
		log.Warn("closed", append(attrs, "code", pe.Code, "by", "server", "reason", "memory budget spent")...)
	case errors.As(err, &pe):
		m.sent(pe.Code)
		log.Warn("protocol error", append(attrs, "code", pe.Code, "by", "server", "err", pe.Reason)...)
	case c.timedOut() != nil:
		to := c.timedOut()
		m.sent(to.code)
		log.Info("closed", append(attrs, "code", to.code, "by", "server", "reason", to.reason)...)
	case errors.Is(err, errWentAway):
		m.sent(wsframe.CloseGoingAway)
		log.Info("closed", append(attrs, "code", wsframe.CloseGoingAway, "by", "server", "reason", "shutdown")...)
	case errors.As(err, &be):
		be.logEnd(log, m, attrs)
	case peerClosed:
		if wc.CloseSent() {
			m.sent(code) // the echo of the peer's Close
		}
		log.Info("closed", append(attrs, "code", code, "by", "peer")...)
	case c.forced.Load():
		m.dropped.Add(1)
		log.Info("closed", append(attrs, "code", wsframe.CloseAbnormal, "by", "server", "reason", "shutdown timeout")...)
	default:
		m.dropped.Add(1)
		attrs = append(attrs, "code", wsframe.CloseAbnormal, "by", "peer")
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) {
			attrs = append(attrs, "err", err)
		}
		log.Info("closed", attrs...)
	}
}

func typeName(t byte) string {
	if t == websocket.TextFrame {
		return "text"
	}
	return "binary"
}

// preview shortens a payload for the log: text up to 64 bytes, binary as
// hex of up to 16 bytes.
func preview(t byte, b []byte) string {
	if t == websocket.TextFrame {
		if len(b) <= 64 {
			return string(b)
		}
		n := 64
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		return string(b[:n]) + "…"
	}
	if len(b) <= 16 {
		return hex.EncodeToString(b)
	}
	return hex.EncodeToString(b[:16]) + "…"
}

// acquire counts a new connection from client address ip in, or returns why
// it may not come in: rejectShutdown, rejectLimit or rejectPerIP.
func (h *Handler) acquire(ip string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closing:
		return rejectShutdown
	case h.opts.MaxConns > 0 && h.active >= h.opts.MaxConns:
		return rejectLimit
	case h.opts.MaxConnsPerIP > 0 && h.perIP[ip] >= h.opts.MaxConnsPerIP:
		return rejectPerIP
	}
	h.active++
	h.perIP[ip]++
	h.wg.Add(1)
	return ""
}

// release counts a connection from ip out.
func (h *Handler) release(ip string) {
	h.mu.Lock()
	h.active--
	if h.perIP[ip]--; h.perIP[ip] == 0 {
		delete(h.perIP, ip)
	}
	h.mu.Unlock()
	h.wg.Done()
}

// clientIP returns the address r came from, without the port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *Handler) track(c *conn, open bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !open {
		delete(h.conns, c)
		return
	}
	h.conns[c] = struct{}{}
	if h.closing {
		c.drain(drainGrace, h.drainBy)
	}
}

func (h *Handler) isClosing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closing
}

// Shutdown stops new handshakes (503), lets every connection echo what it
// has already received, then closes each with 1001 and waits for the closing
// handshakes. A connection whose peer keeps sending is echoed until shortly
// before ctx's deadline (see maxCloseReserve), then closed with 1001 too. When ctx ends first, it closes what is left and returns
// ctx.Err(). Call it after http.Server.Shutdown, which neither closes nor
// waits for hijacked connections.
func (h *Handler) Shutdown(ctx context.Context) error {
	end, ok := ctx.Deadline()
	if !ok {
		end = time.Now().Add(defaultShutdownWait)
	}
	h.scav.stop()
	h.mu.Lock()
	h.closing, h.end, h.drainBy = true, end, drainDeadline(end)
	h.endStreams()
	for c := range h.conns {
		c.drain(drainGrace, h.drainBy)
	}
	h.mu.Unlock()

	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.mu.Lock()
	for c := range h.conns {
		c.forced.Store(true)
		c.wc.NetConn().Close()
	}
	h.mu.Unlock()
	<-done
	return ctx.Err()
}

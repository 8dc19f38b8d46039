// Package server is wsecho's WebSocket echo endpoint: an http.Handler that
// performs the opening handshake with golang.org/x/net/websocket and echoes
// every message back whole, with its type.
//
// x/net sees the connection through the wire layer (internal/wsframe), which
// enforces RFC 6455 where x/net does not. This package holds the policy: who
// may connect, what is logged, and how connections end on shutdown.
package server

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/net/websocket"

	"wsecho/internal/wsframe"
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

	// Logger receives one line per connection and per message. If nil,
	// slog.Default().
	Logger *slog.Logger
}

// drainGrace is how long a connection must be quiet, once shutdown has
// begun, before it gets its Close 1001.
const drainGrace = 250 * time.Millisecond

// defaultShutdownWait bounds the closing handshakes when Shutdown's context
// has no deadline.
const defaultShutdownWait = 10 * time.Second

// xnetWriteBuffer is the size of the buffered writer x/net writes frames
// into. A frame that does not fit is still sent with one system call (the
// wire layer joins its parts), so a small buffer costs little and saves
// memory on every connection.
const xnetWriteBuffer = 512

// Handler is the echo endpoint. It implements http.Handler; mount it on the
// WebSocket path (wsecho uses /echo). It is safe for concurrent use.
type Handler struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	closing bool
	end     time.Time // when shutdown gives up on closing handshakes
	conns   map[*wsframe.Conn]struct{}
	wg      sync.WaitGroup
}

// New returns an echo Handler.
func New(opts Options) *Handler {
	if opts.CheckOrigin == nil {
		opts.CheckOrigin = SameOrigin
	}
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = wsframe.DefaultMaxMessage
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Handler{opts: opts, log: log, conns: make(map[*wsframe.Conn]struct{})}
}

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
// the connection ends.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if status, msg := h.check(r); status != 0 {
		h.log.Debug("handshake rejected", "remote", r.RemoteAddr, "code", status, "err", msg)
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodGet)
		}
		http.Error(w, msg, status)
		return
	}
	if !h.acquire() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "websocket: server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.wg.Done()

	// Hijack here rather than in x/net, which panics when Hijack fails.
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.log.Error("hijack", "remote", r.RemoteAddr, "err", err)
		http.Error(w, "websocket: cannot take over the connection", http.StatusInternalServerError)
		return
	}
	nc.SetDeadline(time.Time{})
	// brw.Reader may already hold frames that came with the handshake.
	wc := wsframe.NewConn(nc, brw.Reader, wsframe.Server, wsframe.Options{MaxMessage: h.opts.MaxMessage})
	h.track(wc, true)
	defer h.track(wc, false)

	srv := websocket.Server{
		Handshake: func(cfg *websocket.Config, _ *http.Request) error {
			cfg.Protocol = nil // an echo server speaks no subprotocol
			return nil
		},
		Handler: func(ws *websocket.Conn) { h.serve(ws, wc) },
	}
	srv.ServeHTTP(&hijacked{
		ResponseWriter: w,
		conn:           wc,
		rw:             bufio.NewReadWriter(bufio.NewReaderSize(wc, 16), bufio.NewWriterSize(wc, xnetWriteBuffer)),
	}, r)
}

// check returns the HTTP status and message that reject r, or 0.
func (h *Handler) check(r *http.Request) (int, string) {
	switch {
	case r.Method != http.MethodGet:
		return http.StatusMethodNotAllowed, "websocket: method must be GET"
	case r.ProtoMajor != 1:
		return http.StatusHTTPVersionNotSupported, "websocket: HTTP/1.1 required"
	case !hasToken(r.Header, "Connection", "upgrade"):
		return http.StatusBadRequest, "websocket: 'Connection' header has no 'upgrade' token"
	case !hasToken(r.Header, "Upgrade", "websocket"):
		return http.StatusBadRequest, "websocket: 'Upgrade' header has no 'websocket' token"
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return http.StatusUpgradeRequired, "websocket: unsupported version (want 13)"
	case !validKey(r.Header.Get("Sec-WebSocket-Key")):
		return http.StatusBadRequest, "websocket: 'Sec-WebSocket-Key' is not the base64 of 16 bytes"
	case !h.opts.CheckOrigin(r):
		return http.StatusForbidden, "websocket: origin not allowed"
	}
	return 0, ""
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

// message is one echoed message; echoCodec carries it through x/net with its
// type, which x/net's Message codec would lose for binary data.
type message struct {
	typ  byte
	data []byte
}

var echoCodec = websocket.Codec{
	Marshal: func(v any) ([]byte, byte, error) {
		m := v.(*message)
		return m.data, m.typ, nil
	},
	Unmarshal: func(data []byte, typ byte, v any) error {
		m := v.(*message)
		m.typ, m.data = typ, data
		return nil
	},
}

// serve is the x/net Handler: it echoes each message until the connection
// ends, then logs how it ended. x/net closes the connection when it returns.
func (h *Handler) serve(ws *websocket.Conn, wc *wsframe.Conn) {
	wc.Start()
	ws.MaxPayloadBytes = int(h.opts.MaxMessage) // the wire layer enforces it, per message
	log := h.log.With("remote", wc.RemoteAddr().String())
	log.Info("open")
	var st stats
	start := time.Now()
	err := h.echo(ws, wc, log, &st)
	h.logEnd(log, wc, err, &st, time.Since(start))
}

type stats struct {
	msgsIn, msgsOut   int
	bytesIn, bytesOut int64
}

func (h *Handler) echo(ws *websocket.Conn, wc *wsframe.Conn, log *slog.Logger, st *stats) error {
	var m message
	for {
		if err := echoCodec.Receive(ws, &m); err != nil {
			if wc.Drained(err) {
				return h.closeGoingAway(ws, wc)
			}
			return err
		}
		st.msgsIn++
		st.bytesIn += int64(len(m.data))
		log.Info("recv", "type", typeName(m.typ), "bytes", len(m.data), "data", preview(m.typ, m.data))
		if err := echoCodec.Send(ws, &m); err != nil {
			return err
		}
		st.msgsOut++
		st.bytesOut += int64(len(m.data))
	}
}

// closeGoingAway sends Close 1001 once a drain has found the peer quiet, and
// waits for the peer's Close until shutdown gives up.
func (h *Handler) closeGoingAway(ws *websocket.Conn, wc *wsframe.Conn) error {
	if err := wc.WriteClose(wsframe.CloseGoingAway, "going away"); err != nil {
		return err
	}
	h.mu.Lock()
	end := h.end
	h.mu.Unlock()
	wc.SetReadDeadline(end)
	var m message
	for {
		// Data after our Close cannot be echoed (RFC 6455, Section 5.5.1).
		if err := echoCodec.Receive(ws, &m); err != nil {
			return err
		}
	}
}

// logEnd logs one line for the end of a connection: how and by whom it was
// closed, and the traffic each way.
func (h *Handler) logEnd(log *slog.Logger, wc *wsframe.Conn, err error, st *stats, d time.Duration) {
	attrs := []any{"duration", d.Round(time.Millisecond),
		"msgs_in", st.msgsIn, "bytes_in", st.bytesIn, "msgs_out", st.msgsOut, "bytes_out", st.bytesOut}
	var pe *wsframe.Error
	code, _, peerClosed := wc.PeerClose()
	switch {
	case errors.As(err, &pe):
		log.Warn("protocol error", append(attrs, "code", pe.Code, "err", pe.Reason)...)
	case peerClosed && wc.CloseSent() && errors.Is(err, io.EOF):
		by := "peer"
		if code == wsframe.CloseGoingAway && h.isClosing() {
			by = "server"
		}
		log.Info("closed", append(attrs, "code", code, "by", by)...)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		log.Info("closed", append(attrs, "code", wsframe.CloseAbnormal, "by", "peer")...)
	default:
		log.Info("closed", append(attrs, "code", wsframe.CloseAbnormal, "err", err)...)
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

// acquire counts a new connection in, unless shutdown has begun.
func (h *Handler) acquire() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.wg.Add(1)
	return true
}

func (h *Handler) track(wc *wsframe.Conn, open bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !open {
		delete(h.conns, wc)
		return
	}
	h.conns[wc] = struct{}{}
	if h.closing {
		wc.Drain(drainGrace, h.end)
	}
}

func (h *Handler) isClosing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closing
}

// Shutdown stops new handshakes (503), lets every connection echo what it
// has already received, then closes each with 1001 and waits for the closing
// handshakes. When ctx ends first, it closes what is left and returns
// ctx.Err(). Call it after http.Server.Shutdown, which neither closes nor
// waits for hijacked connections.
func (h *Handler) Shutdown(ctx context.Context) error {
	end, ok := ctx.Deadline()
	if !ok {
		end = time.Now().Add(defaultShutdownWait)
	}
	h.mu.Lock()
	h.closing, h.end = true, end
	for wc := range h.conns {
		wc.Drain(drainGrace, end)
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
	for wc := range h.conns {
		wc.NetConn().Close()
	}
	h.mu.Unlock()
	<-done
	return ctx.Err()
}

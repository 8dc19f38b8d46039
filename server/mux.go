package server

import (
	"log/slog"
	"net/http"
	"time"
)

// defaultHandshakeTimeout bounds reading the opening handshake request when
// Options.HandshakeTimeout is 0.
const defaultHandshakeTimeout = 10 * time.Second

// NewMux returns wsecho's routes:
//
//	/echo            h, the WebSocket echo endpoint, with the behaviours its query asks for
//	/ticks           the tick stream over WebSocket (ticks.go)
//	GET /sse         the tick stream as Server-Sent Events (sse.go)
//	/broadcast       h.Broadcast(), rooms where every message goes to every member
//	GET /healthz     200 "ok", or 503 once h's shutdown has begun
//	GET /debug/vars  expvar's variables, with h's metrics under MetricsName
//	/                page (the browser page), if not nil
func NewMux(h *Handler, page http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/echo", h)
	mux.Handle("/broadcast", h.Broadcast())
	mux.HandleFunc("/ticks", h.serveTicks)
	mux.HandleFunc("GET /sse", h.serveSSE)
	mux.HandleFunc("GET /healthz", h.serveHealth)
	mux.HandleFunc("GET /debug/vars", h.serveVars)
	if page != nil {
		mux.Handle("/", page)
	}
	return mux
}

// serveHealth answers a load balancer: 200 while new connections are
// welcome, 503 from the moment shutdown begins.
func (h *Handler) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if h.isClosing() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// HTTPServer returns an http.Server for routes (usually NewMux(h, …)) with
// h's timeouts: ReadHeaderTimeout is Options.HandshakeTimeout, which bounds
// the TLS handshake and the upgrade request, so a peer that sends half a
// request, or nothing, is dropped when it expires; IdleTimeout, for HTTP
// keep-alive connections between requests, is Options.IdleTimeout or, if
// that is 0, the handshake timeout. Errors the http.Server logs (such as
// failed TLS handshakes) go to h's logger at warn level.
//
// Shut it down with its Shutdown method and h.Shutdown (at the same time,
// or in that order): the http.Server neither closes nor waits for the
// WebSocket connections it handed over. Its Shutdown ends h's /sse streams,
// which would otherwise hold it up.
func (h *Handler) HTTPServer(routes http.Handler) *http.Server {
	idle := h.opts.IdleTimeout
	if idle <= 0 {
		idle = h.opts.HandshakeTimeout
	}
	srv := &http.Server{
		Handler:           routes,
		ReadHeaderTimeout: h.opts.HandshakeTimeout,
		IdleTimeout:       idle,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(h.endStreams) // SSE streams would hold Shutdown up
	return srv
}

package server

import (
	"context"
	"expvar"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"wsecho/internal/wsframe"
)

// MetricsName is the key under which the /debug/vars page of NewMux lists a
// Handler's metrics.
const MetricsName = "wsecho"

// Reasons a handshake is rejected, as counted in handshakes_rejected.
const (
	rejectMethod      = "method"       // 405: not GET
	rejectHTTPVersion = "http_version" // 505: not HTTP/1.x (HTTP/2 cannot be hijacked)
	rejectBadRequest  = "bad_request"  // 400: no upgrade tokens, or a bad Sec-WebSocket-Key
	rejectVersion     = "version"      // 426: Sec-WebSocket-Version is not 13
	rejectOrigin      = "origin"       // 403: CheckOrigin said no
	rejectLimit       = "limit"        // 503: MaxConns connections are open
	rejectPerIP       = "per_ip"       // 429: MaxConnsPerIP connections from the client's address are open
	rejectFull        = "full"         // 503 at accept (Listener): every connection held is established
	rejectShed        = "shed"         // closed while in its handshake to make room (Listener)
	rejectParam       = "parameter"    // 400: a bad query parameter (behaviour.go)
	rejectShutdown    = "shutdown"     // 503: shutdown has begun
	rejectHijack      = "hijack"       // 500: the connection could not be taken over
)

var rejectReasons = []string{rejectMethod, rejectHTTPVersion, rejectBadRequest, rejectVersion,
	rejectOrigin, rejectLimit, rejectPerIP, rejectFull, rejectShed, rejectShutdown, rejectHijack, rejectParam}

// metrics are a Handler's counters. They are expvar variables, so that
// /debug/vars shows them in the standard format; they are not published
// globally, so that a program (or a test) may create many Handlers.
type metrics struct {
	vars       expvar.Map
	connsOpen  expvar.Int // WebSocket connections open now
	connsTotal expvar.Int // WebSocket connections opened since start
	msgsIn     expvar.Int // messages received (and so echoed or being echoed)
	msgsOut    expvar.Int // messages echoed
	bytesIn    expvar.Int // payload bytes received in messages
	bytesOut   expvar.Int // payload bytes echoed
	rejected   expvar.Map // handshakes rejected, by reason
	closeSent  expvar.Map // Close frames sent, by code (1005: one with no code)
	closeRecv  expvar.Map // Close frames received, by code (1005: one with no code)
	dropped    expvar.Int // connections that ended with no Close frame either way
	sseOpen    expvar.Int // /sse streams open now
	sseTotal   expvar.Int // /sse streams opened since start

	// permessage-deflate (compress.go): connections that negotiated it;
	// compressed messages received, their bytes on the wire and inflated;
	// compressed echoes, their bytes before and after compression.
	connsCompressed                expvar.Int
	compressedIn, wireIn           expvar.Int
	inflatedIn                     expvar.Int
	compressedOut, rawOut, wireOut expvar.Int
}

func newMetrics(start time.Time, log *slog.Logger, budget *wsframe.Budget) *metrics {
	m := new(metrics)
	for _, r := range rejectReasons {
		m.rejected.Add(r, 0)
	}
	m.vars.Set("conns_open", &m.connsOpen)
	m.vars.Set("conns_total", &m.connsTotal)
	m.vars.Set("conns_dropped", &m.dropped)
	m.vars.Set("handshakes_rejected", &m.rejected)
	m.vars.Set("messages_in", &m.msgsIn)
	m.vars.Set("messages_out", &m.msgsOut)
	m.vars.Set("bytes_in", &m.bytesIn)
	m.vars.Set("bytes_out", &m.bytesOut)
	m.vars.Set("close_codes_sent", &m.closeSent)
	m.vars.Set("sse_streams_open", &m.sseOpen)
	m.vars.Set("sse_streams_total", &m.sseTotal)
	m.vars.Set("close_codes_received", &m.closeRecv)
	// The memory budget for message data (Options.MaxMemory): its size,
	// what is held now and at most, how many reads had to wait for it and
	// how many gave up (and closed their connection with 1013).
	stat := func(f func(wsframe.BudgetStats) int64) expvar.Func {
		return func() any { return f(budget.Stats()) }
	}
	m.vars.Set("memory_limit_bytes", stat(func(s wsframe.BudgetStats) int64 { return s.Limit }))
	m.vars.Set("memory_used_bytes", stat(func(s wsframe.BudgetStats) int64 { return s.Used }))
	m.vars.Set("memory_peak_bytes", stat(func(s wsframe.BudgetStats) int64 { return s.Peak }))
	m.vars.Set("memory_waits", stat(func(s wsframe.BudgetStats) int64 { return s.Waits }))
	m.vars.Set("memory_refused", stat(func(s wsframe.BudgetStats) int64 { return s.Refused }))
	m.publishCompression()
	m.vars.Set("uptime_seconds", expvar.Func(func() any {
		return time.Since(start).Round(time.Millisecond).Seconds()
	}))
	// wsecho bench warns when the server writes a log line per message.
	m.vars.Set("logs_every_message", expvar.Func(func() any {
		return log.Enabled(context.Background(), slog.LevelInfo)
	}))
	return m
}

func (m *metrics) sent(code int)     { m.closeSent.Add(strconv.Itoa(code), 1) }
func (m *metrics) received(code int) { m.closeRecv.Add(strconv.Itoa(code), 1) }

// Metrics returns the Handler's metrics: connections open now and in total,
// connections dropped without a Close, handshakes rejected by reason,
// messages and payload bytes in and out, Close frames sent and received by
// code, /sse streams open and in total, the memory budget for message data
// (size, used, peak, waits, refusals), permessage-deflate (connections,
// messages and bytes compressed and inflated, the ratio), uptime, and
// whether every message is logged; once created, a Listener adds the
// connections it holds and those in their handshake, and Broadcast its
// rooms and overflows. The /debug/vars page of NewMux shows them under
// MetricsName; to have them in expvar.Handler too, publish them once with
// expvar.Publish(server.MetricsName, h.Metrics()).
func (h *Handler) Metrics() *expvar.Map { return &h.metrics.vars }

// serveVars answers GET /debug/vars as expvar.Handler does, with the
// Handler's metrics under MetricsName next to every published variable.
func (h *Handler) serveVars(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, "{\n")
	expvar.Do(func(kv expvar.KeyValue) {
		if kv.Key != MetricsName {
			fmt.Fprintf(w, "%q: %s,\n", kv.Key, kv.Value)
		}
	})
	fmt.Fprintf(w, "%q: %s\n}\n", MetricsName, &h.metrics.vars)
}

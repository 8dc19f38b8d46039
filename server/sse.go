package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// SSE stream settings.
const (
	sseRetry     = 2 * time.Second  // the retry: the browser waits before reconnecting
	sseHeartbeat = 15 * time.Second // a comment when no event went out for this long
	sseWrite     = 10 * time.Second // a write that takes longer ends the stream
)

// serveSSE is /sse: the tick stream as Server-Sent Events. Each event's id
// is the tick's seq; a client that reconnects with Last-Event-ID (or comes
// with ?from=SEQ) resumes at the next tick, within TickReplay. It shares
// the WebSocket endpoint's origin policy (with CORS headers for an allowed
// foreign origin), its connection limit, its shutdown (the stream ends, and
// the browser reconnects to the next server) and its metrics.
func (h *Handler) serveSSE(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" {
		if !h.opts.CheckOrigin(r) {
			h.reject(w, r, http.StatusForbidden, rejectOrigin, "sse: origin not allowed")
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	}
	from, err := sseFrom(r)
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, rejectParam, "sse: "+err.Error())
		return
	}
	ip, ok := h.admit(w, r, "sse")
	if !ok {
		return
	}
	defer h.release(ip)
	m := h.metrics
	m.sseOpen.Add(1)
	m.sseTotal.Add(1)
	defer m.sseOpen.Add(-1)

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(sseWrite))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	buf := strconv.AppendInt([]byte("retry: "), sseRetry.Milliseconds(), 10)
	buf = append(buf, "\n\n"...)
	seq, err := h.ticks.replayStart(from, time.Now())
	if err != nil {
		// Too far back: say so in an event of its own, then go on live.
		buf = append(buf, "event: gap\ndata: "...)
		buf = append(buf, err.Error()...)
		buf = append(buf, "\n\n"...)
		seq, _ = h.ticks.replayStart(-1, time.Now())
	}
	if !write(buf) {
		return
	}
	log := h.log.With("remote", r.RemoteAddr)
	log.Info("sse open", "from", seq)
	sent := 0
	defer func() { log.Info("sse closed", "events", sent) }()

	timer := time.NewTimer(0)
	defer timer.Stop()
	lastWrite := time.Now()
	for {
		now := time.Now()
		at := h.ticks.timeOf(seq)
		if !at.After(now) {
			buf = append(buf[:0], "id: "...)
			buf = strconv.AppendInt(buf, seq, 10)
			buf = append(buf, "\ndata: "...)
			buf = h.ticks.tick(seq).appendJSON(buf, 0)
			buf = append(buf, "\n\n"...)
			if !write(buf) {
				return
			}
			m.msgsOut.Add(1)
			m.bytesOut.Add(int64(len(buf)))
			sent++
			seq++
			lastWrite = now
			continue
		}
		wake := min(at.Sub(now), lastWrite.Add(sseHeartbeat).Sub(now))
		timer.Reset(max(wake, 0))
		select {
		case <-r.Context().Done():
			return
		case <-h.streamsDone:
			write([]byte(": server shutting down\n\n"))
			return
		case <-timer.C:
		}
		if time.Since(lastWrite) >= sseHeartbeat {
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
			lastWrite = time.Now()
		}
	}
}

// sseFrom returns the seq a stream starts at: after Last-Event-ID, or at
// ?from=SEQ, or -1 for the current tick.
func sseFrom(r *http.Request) (int64, error) {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < 0 {
			return 0, errBadEventID
		}
		return n + 1, nil
	}
	if v, ok := r.URL.Query()["from"]; ok {
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil || n < 0 || len(v) > 1 {
			return 0, errBadFrom
		}
		return n, nil
	}
	return -1, nil
}

var (
	errBadEventID = errors.New("Last-Event-ID: must be a tick seq (an integer, 0 or more)")
	errBadFrom    = errors.New("from: must be a tick seq (an integer, 0 or more), given once")
)

// endStreams ends every SSE stream, once; http.Server.Shutdown calls it
// (see HTTPServer), and so does Shutdown.
func (h *Handler) endStreams() {
	h.streamsOnce.Do(func() { close(h.streamsDone) })
}

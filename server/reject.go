package server

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rejectLogRate is how many rejected handshakes are logged per second at
// most; the rest are counted and reported as "suppressed" on the next line.
const rejectLogRate = 10

// rejected counts a connection or handshake turned away for reason and logs
// it at info level with attrs (remote, and for a handshake its status,
// Origin and Host), at most rejectLogRate lines a second, so that a flood
// cannot fill the log. The first line after lines were dropped says how
// many in "suppressed".
func (h *Handler) rejected(reason string, attrs ...any) {
	h.metrics.rejected.Add(reason, 1)
	ok, suppressed := h.rejectLog.allow(time.Now())
	if !ok || !h.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	attrs = append(attrs, "reason", reason)
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	h.log.Info("handshake rejected", attrs...)
}

// logLimiter allows a number of log lines per second, and counts the lines
// it turns down until it allows one again. It is safe for concurrent use.
type logLimiter struct {
	perSecond int

	mu         sync.Mutex
	window     time.Time // start of the current second
	n          int       // lines allowed in it
	suppressed int       // lines turned down since the last one allowed
}

func newLogLimiter(perSecond int) *logLimiter { return &logLimiter{perSecond: perSecond} }

// allow reports whether a line may be logged at now and, if so, how many
// were turned down before it.
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	if l.n >= l.perSecond {
		l.suppressed++
		return false, 0
	}
	l.n++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

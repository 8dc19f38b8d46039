package server

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"expvar"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// fdHeadroom is how many file descriptors a Listener keeps free below the
// process's limit (RLIMIT_NOFILE) for what is not a connection: the
// listening socket, the standard streams, the runtime's poller, log files,
// and the one connection accept must still be able to take in order to
// refuse it. Without it, a flood of connections uses up the limit, accept
// fails with EMFILE, and new clients wait in the kernel's backlog.
const fdHeadroom = 64

// defaultMaxHandshakes bounds connections in their handshake when
// Options.MaxHandshakes is 0.
const defaultMaxHandshakes = 1024

// refuseWait bounds the write of the 503 that refuses a connection at
// accept, so that a peer that does not read cannot hold the accept loop.
const refuseWait = 100 * time.Millisecond

// refused is what a plain-TCP connection that cannot be held gets before it
// is closed: the server holds as many connections as it can, and none is
// still in its handshake to make room.
const refused = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 32\r\n\r\nwebsocket: too many connections\n"

// Listener counts connections from accept. It wraps the listening socket
// that the http.Server serving h's routes accepts from; create it with
// Handler.Listener and serve with its Serve or ServeTLS, which tell it when
// a request is being served and when a connection ends.
//
// A connection is "in its handshake" from accept until its first request has
// been read, and again while it is an idle HTTP keep-alive connection;
// "established" while a request is being served, which for a WebSocket is
// its whole life. Connections in their handshake are bounded by
// Options.MaxHandshakes, and all connections together by Options.MaxConns
// and by what the descriptor limit leaves (see fdHeadroom). When either
// bound is reached, the connection that has waited longest in its handshake
// is closed (shed) to make room; when every connection is established, a
// new one gets a 503 with Retry-After (plain TCP only; over TLS it is
// closed) and is closed, and the established ones are unaffected. Accept
// itself keeps working: a flood of connections that never send a request
// cannot lock new clients out, it only shortens how long a handshake may
// take under attack.
//
// The connections it returns are the listening socket's own, unwrapped, so
// that nothing on the path of a message changes. A hijacked connection is
// counted out when its handler returns, unless the handler handed it off
// (handOff): Handler's WebSockets run on after their handler returns, and
// stay counted, as established, until they end.
//
// It is safe for concurrent use.
type Listener struct {
	net.Listener
	h          *Handler
	capacity   int // most connections open at once; 0: no limit
	maxPending int // most connections in their handshake at once
	tls        atomic.Bool

	mu      sync.Mutex
	conns   map[net.Conn]*tracked // every connection counted in
	pending list.List             // *tracked in their handshake, the longest waiting first
}

// tracked is a connection a Listener counts. Its fields are guarded by the
// Listener's mu.
type tracked struct {
	nc       net.Conn
	elem     *list.Element // in pending while in its handshake
	requests int           // requests being served
	hijacked bool
	handed   bool      // hijacked and handed off: counted until done is called
	l        *Listener // that counts it
}

// Listener wraps ln, the socket that h's routes are served from. It reads
// the process's file descriptor limit and logs it, and warns when
// Options.MaxConns connections cannot fit below it; the limit then bounds
// connections instead (keeping fdHeadroom descriptors free).
func (h *Handler) Listener(ln net.Listener) *Listener {
	l := &Listener{Listener: ln, h: h, capacity: h.opts.MaxConns, maxPending: h.opts.MaxHandshakes,
		conns: make(map[net.Conn]*tracked)}
	if l.maxPending <= 0 {
		l.maxPending = defaultMaxHandshakes
	}
	if nofile, ok := fdLimit(); ok {
		fit := max(int(min(nofile, 1<<30))-fdHeadroom, 1)
		if l.capacity > fit {
			h.log.Warn("max conns cannot fit below the file descriptor limit; raise the limit (ulimit -n) or lower max conns",
				"max_conns", l.capacity, "nofile", nofile, "fit", fit)
		}
		if l.capacity == 0 || l.capacity > fit {
			l.capacity = fit
		}
		h.log.Info("file descriptor limit", "nofile", nofile, "headroom", fdHeadroom, "max_conns", l.capacity, "max_handshakes", l.maxPending)
	} else {
		h.log.Info("file descriptor limit unknown", "max_conns", l.capacity, "max_handshakes", l.maxPending)
	}
	h.metrics.vars.Set("conns_accepted", expvar.Func(func() any { return l.counts().open }))
	h.metrics.vars.Set("conns_in_handshake", expvar.Func(func() any { return l.counts().pending }))
	return l
}

// Serve serves srv on l, as srv.Serve(l) does, telling l when requests are
// being served.
func (l *Listener) Serve(srv *http.Server) error {
	l.attach(srv)
	return srv.Serve(l)
}

// ServeTLS serves srv on l with srv.TLSConfig, as srv.ServeTLS(l, "", "")
// does.
func (l *Listener) ServeTLS(srv *http.Server) error {
	l.tls.Store(true)
	l.attach(srv)
	return srv.ServeTLS(l, "", "")
}

type trackedKey struct{}

// attach makes srv tell l when a request on one of its connections begins
// and ends, and when a connection is hijacked or closed.
func (l *Listener) attach(srv *http.Server) {
	connContext, connState, routes := srv.ConnContext, srv.ConnState, srv.Handler
	srv.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, nc)
		}
		if t := l.lookup(nc); t != nil {
			ctx = context.WithValue(ctx, trackedKey{}, t)
		}
		return ctx
	}
	srv.ConnState = func(nc net.Conn, st http.ConnState) {
		if connState != nil {
			connState(nc, st)
		}
		switch st {
		case http.StateHijacked:
			l.mu.Lock()
			if t := l.conns[unwrapTLS(nc)]; t != nil {
				t.hijacked = true
			}
			l.mu.Unlock()
		case http.StateClosed:
			l.countOut(unwrapTLS(nc))
		}
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := r.Context().Value(trackedKey{}).(*tracked); ok {
			l.busy(t, true)
			defer l.busy(t, false)
		}
		routes.ServeHTTP(w, r)
	})
}

func unwrapTLS(nc net.Conn) net.Conn {
	if tc, ok := nc.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return nc
}

func (l *Listener) lookup(nc net.Conn) *tracked {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[unwrapTLS(nc)]
}

type listenerCounts struct{ open, pending int }

func (l *Listener) counts() listenerCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return listenerCounts{len(l.conns), l.pending.Len()}
}

// Accept returns the next connection, counted in and in its handshake. It
// sheds or refuses connections as Listener describes, and when accept fails
// for want of descriptors (used by something else), it sheds the connection
// that has waited longest in its handshake and tries again.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			if (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) && l.shedOne() {
				continue
			}
			return nil, err
		}
		if l.admit(nc) {
			return nc, nil
		}
	}
}

// admit counts nc in, shedding what it must, or refuses and closes it.
func (l *Listener) admit(nc net.Conn) bool {
	var shed []net.Conn
	l.mu.Lock()
	for l.pending.Len() > 0 && (l.pending.Len() >= l.maxPending || l.capacity > 0 && len(l.conns) >= l.capacity) {
		shed = append(shed, l.removeOldest())
	}
	full := l.capacity > 0 && len(l.conns) >= l.capacity
	if !full {
		t := &tracked{nc: nc, l: l}
		t.elem = l.pending.PushBack(t)
		l.conns[nc] = t
	}
	l.mu.Unlock()
	for _, v := range shed {
		l.shed(v)
	}
	if full {
		l.h.rejected(rejectFull, "remote", nc.RemoteAddr().String())
		if !l.tls.Load() {
			nc.SetWriteDeadline(time.Now().Add(refuseWait))
			nc.Write([]byte(refused))
		}
		nc.Close()
	}
	return !full
}

// shedOne sheds the connection that has waited longest in its handshake,
// if there is one.
func (l *Listener) shedOne() bool {
	l.mu.Lock()
	var v net.Conn
	if l.pending.Len() > 0 {
		v = l.removeOldest()
	}
	l.mu.Unlock()
	if v == nil {
		return false
	}
	l.shed(v)
	return true
}

// removeOldest counts out the connection that has waited longest in its
// handshake and returns it. Called with mu held.
func (l *Listener) removeOldest() net.Conn {
	t := l.pending.Front().Value.(*tracked)
	l.forget(t)
	return t.nc
}

// shed closes a connection counted out while in its handshake; net/http,
// whose reading goroutine owns it, sees the error and ends.
func (l *Listener) shed(nc net.Conn) {
	l.h.rejected(rejectShed, "remote", nc.RemoteAddr().String())
	nc.Close()
}

// countOut forgets nc, if it is still counted.
func (l *Listener) countOut(nc net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.conns[nc]; t != nil {
		l.forget(t)
	}
}

// forget counts t out. Called with mu held.
func (l *Listener) forget(t *tracked) {
	delete(l.conns, t.nc)
	if t.elem != nil {
		l.pending.Remove(t.elem)
		t.elem = nil
	}
}

// busy notes that a request on t begins (true) or ends (false). A connection
// with no request being served is in its handshake again (an idle HTTP
// keep-alive connection); a hijacked one has ended, since its handler has
// returned.
func (l *Listener) busy(t *tracked, begin bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.conns[t.nc] != t:
		// shed, or closed
	case begin:
		t.requests++
		if t.elem != nil {
			l.pending.Remove(t.elem)
			t.elem = nil
		}
	case t.handed:
		// counted until the connection ends (handOff)
	case t.hijacked:
		l.forget(t)
	default:
		t.requests--
		if t.requests == 0 && t.elem == nil {
			t.elem = l.pending.PushBack(t)
		}
	}
}

// handOff tells the Listener that serves r, if any, that r's connection,
// hijacked, outlives r's handler: it stays counted, as established, until
// done is called, once the connection has ended. done is safe to call more
// than once.
func handOff(r *http.Request) (done func()) {
	t, ok := r.Context().Value(trackedKey{}).(*tracked)
	if !ok {
		return func() {}
	}
	t.l.mu.Lock()
	t.handed = true
	t.l.mu.Unlock()
	return func() { t.l.countOut(t.nc) }
}

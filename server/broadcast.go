package server

import (
	"expvar"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/net/websocket"

	"wsecho/internal/wsframe"
	"wsecho/internal/wsmsg"
)

// Limits of a broadcast member's queue: the messages sent to the room that
// it has not yet been written. A member whose queue would pass either
// bound is too slow: it is closed with 1013 (try again later), and the room
// goes on without it. One message larger than broadcastQueueBytes is still
// queued when the queue is empty.
const (
	broadcastQueue      = 256
	broadcastQueueBytes = 4 << 20
)

// broadcastCloseWait bounds, for a member closed for being too slow, the
// write under way, then its Close frame, then the wait for the peer's
// answer.
const broadcastCloseWait = time.Second

// defaultBroadcastWriteWait bounds one message's write to a member when
// Options.IdleTimeout is 0; otherwise the idle timeout does.
const defaultBroadcastWriteWait = time.Minute

// maxRoomName is the longest room name, in bytes.
const maxRoomName = 64

// Broadcast returns the broadcast endpoint (wsecho mounts it on
// /broadcast): a client joins the room named by the query parameter room
// ("default" if absent), and every message a member sends goes to every
// member of the room, the sender included, with its type, in one order for
// all. Each member has a bounded queue (broadcastQueue messages,
// broadcastQueueBytes bytes); a member whose queue overflows is closed with
// 1013 and logged, and the others do not wait for it. A bad room name gets
// 400 before the upgrade.
//
// It shares h's origin policy, limits, keepalive, shutdown, logging and
// metrics. Rooms live in this process only; each call returns a separate
// set of rooms.
func (h *Handler) Broadcast() http.Handler {
	b := &broadcast{h: h, rooms: make(map[string]*room)}
	h.metrics.vars.Set("broadcast_rooms", expvar.Func(func() any {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.rooms)
	}))
	h.metrics.vars.Set("broadcast_overflows", &b.overflows)
	return b
}

// broadcast is the set of rooms behind one Broadcast endpoint.
type broadcast struct {
	h         *Handler
	overflows expvar.Int // members closed for a full queue

	mu    sync.Mutex
	rooms map[string]*room
}

func (b *broadcast) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("room")
	if name == "" {
		name = "default"
	}
	if err := checkRoomName(name); err != nil {
		b.h.reject(w, r, http.StatusBadRequest, rejectBadRequest, "room: "+err.Error())
		return
	}
	b.h.upgrade(w, r, nil, func(ws *websocket.Conn, c *conn, log *slog.Logger, st *stats) error {
		if log != nil {
			log = log.With("room", name)
		}
		return b.member(ws, c.wc, log, st, name)
	})
}

func checkRoomName(name string) error {
	if len(name) > maxRoomName {
		return fmt.Errorf("longer than %d bytes", maxRoomName)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("not UTF-8")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

// room is the members of one room. Messages are queued to every member
// under mu, which puts them in one order for all.
type room struct {
	name    string
	mu      sync.Mutex
	members map[*member]struct{}
}

// join adds m to the room called name, creating it if needed.
func (b *broadcast) join(name string, m *member) *room {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rooms[name]
	if r == nil {
		r = &room{name: name, members: make(map[*member]struct{})}
		b.rooms[name] = r
	}
	r.mu.Lock()
	r.members[m] = struct{}{}
	r.mu.Unlock()
	return r
}

// leave takes m out of r, closing its queue, and forgets r once empty.
func (b *broadcast) leave(r *room, m *member) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.remove(m)
	if len(r.members) == 0 {
		delete(b.rooms, r.name)
	}
}

// remove takes m out of r and closes its queue, once. Called with r.mu held.
func (r *room) remove(m *member) {
	if _, ok := r.members[m]; ok {
		delete(r.members, m)
		close(m.queue)
	}
}

// publish queues msg to every member. A member whose queue is full is
// taken out and closed with 1013. The caller's reference to msg is
// released.
func (b *broadcast) publish(r *room, msg *bmsg) {
	r.mu.Lock()
	for m := range r.members {
		if !m.offer(msg) {
			r.remove(m)
			b.overflows.Add(1)
			m.overflow()
		}
	}
	r.mu.Unlock()
	msg.release()
}

// bmsg is one message sent to a room, shared by the queues of its members;
// its buffer goes back to the pool when the last of them has written it.
type bmsg struct {
	typ  byte
	data []byte
	buf  *[]byte // the pooled buffer behind data, or nil
	refs atomic.Int32
}

func (m *bmsg) release() {
	if m.refs.Add(-1) == 0 && m.buf != nil {
		wsframe.PutBuffer(m.buf)
	}
}

// member is one connection in a room.
type member struct {
	wc     *wsframe.Conn
	queue  chan *bmsg   // closed when the member leaves its room
	queued atomic.Int64 // bytes in queue
	quit   chan struct{}
	full   atomic.Bool // the queue overflowed: the member is closed with 1013
	reason string      // why full, for the log and the Close frame

	quitOnce sync.Once
}

// offer queues msg, or reports false if the queue is full. Called with the
// room's mu held.
func (m *member) offer(msg *bmsg) bool {
	n := int64(len(msg.data))
	if q := m.queued.Load(); q > 0 && q+n > broadcastQueueBytes {
		return false
	}
	msg.refs.Add(1)
	select {
	case m.queue <- msg:
		m.queued.Add(n)
		return true
	default:
		msg.refs.Add(-1)
		return false
	}
}

// overflow marks m as too slow and stops its writer: the write under way
// gets broadcastCloseWait to finish.
func (m *member) overflow() {
	m.full.Store(true)
	m.wc.SetWriteDeadline(time.Now().Add(broadcastCloseWait))
	m.stop()
}

func (m *member) stop() { m.quitOnce.Do(func() { close(m.quit) }) }

// errTooSlow is the violation of a member whose queue overflowed.
var errTooSlow = &wsframe.Error{Code: wsframe.CloseTryAgainLater,
	Reason: fmt.Sprintf("too slow: more than %d messages or %d bytes queued", broadcastQueue, broadcastQueueBytes)}

// member runs one connection of room name: it sends every message the peer
// sends to the room and, in a goroutine of its own, writes the room's
// messages to the peer.
func (b *broadcast) member(ws *websocket.Conn, wc *wsframe.Conn, log *slog.Logger, st *stats, name string) error {
	h := b.h
	m := &member{wc: wc, queue: make(chan *bmsg, broadcastQueue), quit: make(chan struct{})}
	r := b.join(name, m)
	var out stats
	done := make(chan error, 1)
	go func() { done <- b.write(ws, m, &out) }()
	// waitWriter takes m out of the room and waits for its writer, which
	// writes what is queued unless stopped.
	var writeErr error
	writerDone := false
	waitWriter := func() error {
		b.leave(r, m)
		if !writerDone {
			writeErr, writerDone = <-done, true
		}
		return writeErr
	}
	defer func() {
		m.stop()
		m.wc.SetWriteDeadline(time.Now()) // the connection is ending
		waitWriter()
		for msg := range m.queue { // left there by a writer that stopped
			msg.release()
		}
		st.msgsOut, st.bytesOut = out.msgsOut, out.bytesOut
	}()

	for {
		typ, data, err := wc.ReadMessage()
		if err != nil {
			switch {
			case m.full.Load():
				return errTooSlow
			case wc.Drained(err):
				// Send what the room has queued, then say goodbye.
				if err := waitWriter(); err != nil {
					return err
				}
				return h.closeGoingAway(wc)
			}
			return err
		}
		st.msgsIn++
		st.bytesIn += int64(len(data))
		h.metrics.msgsIn.Add(1)
		h.metrics.bytesIn.Add(int64(len(data)))
		if log != nil {
			log.Info("recv", "type", typeName(typ), "bytes", len(data), "data", preview(typ, data))
		}
		if m.full.Load() {
			// Closed with 1013: what the peer sends before its answer
			// is not for the room (RFC 6455, Section 5.5.1).
			continue
		}
		// The room's members write the message long after the next read:
		// it goes into a buffer of its own.
		buf := wsframe.GetBuffer(len(data))
		*buf = append(*buf, data...)
		wc.Release()
		msg := &bmsg{typ: typ, data: *buf, buf: buf}
		msg.refs.Store(1)
		b.publish(r, msg)
		select {
		case writeErr = <-done:
			// The writer failed: the peer stopped reading for the write
			// timeout, or the connection ended.
			writerDone = true
			if writeErr != nil {
				return writeErr
			}
		default:
		}
	}
}

// write writes m's queued messages until the queue is closed, the member is
// stopped, or a write fails. A member stopped for overflowing then gets its
// Close 1013, and a bounded time to answer it; after a failed write the
// connection is closed, since its frames may be cut.
func (b *broadcast) write(ws *websocket.Conn, m *member, st *stats) error {
	h := b.h
	wait := h.opts.IdleTimeout
	if wait <= 0 {
		wait = defaultBroadcastWriteWait
	}
	var err error
	for err == nil {
		var msg *bmsg
		var ok bool
		select {
		case msg, ok = <-m.queue:
		case <-m.quit:
		}
		if !ok {
			break // left the room, or stopped
		}
		m.wc.SetWriteDeadline(time.Now().Add(wait))
		if m.full.Load() { // overflow set its shorter deadline meanwhile
			m.wc.SetWriteDeadline(time.Now().Add(broadcastCloseWait))
		}
		err = wsmsg.Codec.Send(ws, &wsmsg.Message{Type: msg.typ, Data: msg.data})
		m.queued.Add(-int64(len(msg.data)))
		if err == nil {
			st.msgsOut++
			st.bytesOut += int64(len(msg.data))
			h.metrics.msgsOut.Add(1)
			h.metrics.bytesOut.Add(int64(len(msg.data)))
		}
		msg.release()
	}
	switch {
	case err != nil:
		m.wc.NetConn().Close() // the reader ends too
		return err
	case m.full.Load():
		m.wc.SetWriteDeadline(time.Now().Add(broadcastCloseWait))
		if m.wc.WriteClose(errTooSlow.Code, errTooSlow.Reason) != nil {
			m.wc.NetConn().Close()
		} else {
			m.wc.SetReadDeadline(time.Now().Add(broadcastCloseWait))
		}
	}
	return nil
}

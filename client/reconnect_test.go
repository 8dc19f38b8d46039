package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wsecho/client"
	"wsecho/internal/wsframe"
	"wsecho/server"
)

// reconnectOpts are fast reconnects for tests.
func reconnectOpts(status io.Writer) client.Options {
	return client.Options{
		Lines: true, Reconnect: true, Status: status,
		ReconnectDelay: time.Millisecond, ReconnectMaxDelay: 10 * time.Millisecond,
	}
}

// TestReconnectLines checks what -stdin -reconnect guarantees across a
// reconnect, with a raw server whose first connection(s) end when line "x3"
// arrives, without echoing it:
//   - close_1001 / close_1012: the server's Close follows every echo it
//     sent, so x3 was never echoed: the client sends it again, first, on
//     the next connection, and every line is printed once;
//   - close_twice: a line that is not echoed on two connections in a row
//     (here: the line makes the server close) is not sent a third time;
//   - tcp_drop: x3 may or may not have arrived; it is not sent again (never
//     twice) and it is reported as in doubt.
func TestReconnectLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		closes     int // connections that end on x3
		end        func(rc *rawConn)
		wantOut    string
		wantSeen   []string // the lines each connection received
		wantStatus string
	}{
		{name: "close_1001", closes: 1, end: func(rc *rawConn) { rc.writeClose(1001, "going away"); rc.readClose() },
			wantOut: "x1\nx2\nx3\nx4\n", wantSeen: []string{"x1,x2,x3", "x3,x4"},
			wantStatus: "server closed the connection: 1001 going away; reconnecting in"},
		{name: "close_1012", closes: 1, end: func(rc *rawConn) { rc.writeClose(1012, ""); rc.readClose() },
			wantOut: "x1\nx2\nx3\nx4\n", wantSeen: []string{"x1,x2,x3", "x3,x4"},
			wantStatus: "server closed the connection: 1012; reconnecting in"},
		{name: "close_twice", closes: 2, end: func(rc *rawConn) { rc.writeClose(1001, ""); rc.readClose() },
			wantOut: "x1\nx2\nx4\n", wantSeen: []string{"x1,x2,x3", "x3", "x4"},
			wantStatus: "1 line(s) were not echoed before the server closed, twice; they are not sent again"},
		{name: "tcp_drop", closes: 1, end: func(rc *rawConn) { rc.nc.Close() },
			wantOut: "x1\nx2\nx4\n", wantSeen: []string{"x1,x2,x3", "x4"},
			wantStatus: "1 sent line(s) had not been echoed when the connection dropped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			seen := map[int][]string{} // lines each connection received
			rs := startRaw(t, func(i int, rc *rawConn) {
				onText := func(s string) bool {
					mu.Lock()
					seen[i] = append(seen[i], s)
					mu.Unlock()
					return !(i < tc.closes && s == "x3")
				}
				if rc.echo(t, onText) == 0 {
					tc.end(rc)
				}
			})
			pr, pw := io.Pipe()
			t.Cleanup(func() { pw.Close() })
			out, status := newOutput(), newOutput()
			wait := startRun(t, t.Context(), rs.url, reconnectOpts(status), pr, out)
			io.WriteString(pw, "x1\nx2\n")
			out.waitFor(t, "x1\nx2\n")
			io.WriteString(pw, "x3\n")
			if !status.waitUntil(func(s string) bool { return strings.Count(s, "connected to ") == len(tc.wantSeen) }) {
				t.Fatalf("not %d connections; status:\n%s", len(tc.wantSeen), status)
			}
			io.WriteString(pw, "x4\n")
			out.waitFor(t, "x4\n")
			pw.Close()
			if err := wait(); err != nil {
				t.Errorf("Run: %v", err)
			}
			if got := out.String(); got != tc.wantOut {
				t.Errorf("output %q, want %q", got, tc.wantOut)
			}
			if !strings.Contains(status.String(), tc.wantStatus) {
				t.Errorf("status has no %q:\n%s", tc.wantStatus, status)
			}
			mu.Lock()
			defer mu.Unlock()
			for i, want := range tc.wantSeen {
				if got := strings.Join(seen[i], ","); got != want {
					t.Errorf("connection %d received %s, want %s", i, got, want)
				}
			}
		})
	}
}

// TestReconnectInputWhileAway checks that lines typed while the client
// waits to reconnect are sent on the next connection, and that the end of
// input then closes normally.
func TestReconnectInputWhileAway(t *testing.T) {
	t.Parallel()
	rs := startRaw(t, func(i int, rc *rawConn) {
		if i == 0 {
			rc.echo(t, func(s string) bool { return s != "bye" })
			rc.nc.Close()
			return
		}
		rc.echo(t, nil)
	})
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	out, status := newOutput(), newOutput()
	opts := reconnectOpts(status)
	opts.ReconnectDelay = 200 * time.Millisecond // a wait long enough to type in
	wait := startRun(t, t.Context(), rs.url, opts, pr, out)
	io.WriteString(pw, "bye\n")
	status.waitFor(t, "reconnecting in")
	io.WriteString(pw, "later\n") // while away, or just after: either way it is sent once
	pw.Close()
	if err := wait(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := out.String(); got != "later\n" {
		t.Errorf("output %q, want %q", got, "later\n")
	}
}

// swapHandler serves through whichever echo handler is current, so that a
// test can shut one down (Close 1001 on every connection) and carry on with
// the next.
type swapHandler struct {
	mu sync.Mutex
	h  *server.Handler
}

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.h
	s.mu.Unlock()
	h.ServeHTTP(w, r)
}

// TestReconnectServerShutdown runs -stdin -reconnect against our server
// through a graceful shutdown: the server echoes what it received, closes
// with 1001, and the client carries on with a new server; every line is
// printed once.
func TestReconnectServerShutdown(t *testing.T) {
	t.Parallel()
	h1 := server.New(server.Options{Logger: testLogger(t)})
	h2 := server.New(server.Options{Logger: testLogger(t)})
	sw := &swapHandler{h: h1}
	ts := httptest.NewServer(sw)
	t.Cleanup(func() { shutdown(t, ts, h2) })
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	out, status := newOutput(), newOutput()
	wait := startRun(t, t.Context(), wsURL(ts), reconnectOpts(status), pr, out)
	io.WriteString(pw, "a\nb\n")
	out.waitFor(t, "a\nb\n")
	sw.mu.Lock()
	sw.h = h2
	sw.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if err := h1.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	status.waitFor(t, "1001")
	io.WriteString(pw, "c\n")
	out.waitFor(t, "c\n")
	pw.Close()
	if err := wait(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := out.String(); got != "a\nb\nc\n" {
		t.Errorf("output %q, want %q", got, "a\nb\nc\n")
	}
	if n := strings.Count(status.String(), "connected to "); n != 2 {
		t.Errorf("%d connections, want 2; status:\n%s", n, status)
	}
}

// TestReconnectNot checks what does not reconnect: a normal close, another
// close code, a protocol violation; and that without Reconnect a drop ends
// Run.
func TestReconnectNot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		reconnect bool
		end       func(rc *rawConn)
		wantCode  int // 0: nil
	}{
		{name: "code=1000", reconnect: true, end: func(rc *rawConn) { rc.writeClose(1000, ""); rc.readClose() }},
		{name: "code=1011", reconnect: true, end: func(rc *rawConn) { rc.writeClose(1011, "bug"); rc.readClose() }, wantCode: 1011},
		{name: "protocol_error", reconnect: true, end: func(rc *rawConn) { rc.write([]byte{0x83, 0x00}); rc.readClose() }, wantCode: 1002},
		{name: "drop_no_reconnect", end: func(rc *rawConn) { rc.nc.Close() }, wantCode: wsframe.CloseAbnormal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var conns atomic.Int32
			rs := startRaw(t, func(i int, rc *rawConn) {
				conns.Add(1)
				tc.end(rc)
			})
			opts := client.Options{Interval: time.Hour, Reconnect: tc.reconnect, ReconnectDelay: time.Millisecond}
			err := run(t, rs.url, opts, nil, io.Discard)
			var ce *client.CloseError
			switch {
			case tc.wantCode == 0 && err != nil:
				t.Errorf("Run: %v, want nil", err)
			case tc.wantCode != 0 && (!errors.As(err, &ce) || ce.Code != tc.wantCode):
				t.Errorf("Run: %v, want a *CloseError with code %d", err, tc.wantCode)
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		})
	}
}

// TestReconnectDefaultMode checks that the default mode carries on after
// a reconnect, up to its Count in all, and that a cancel while waiting to
// reconnect ends Run with the drop's error.
func TestReconnectDefaultMode(t *testing.T) {
	t.Parallel()
	t.Run("count", func(t *testing.T) {
		t.Parallel()
		var seen [2]atomic.Int32 // messages the server read on each connection
		rs := startRaw(t, func(i int, rc *rawConn) {
			code := rc.echo(t, func(string) bool {
				if i < len(seen) {
					seen[i].Add(1)
				}
				return !(i == 0 && seen[0].Load() == 2)
			})
			if code == 0 {
				rc.nc.Close() // the second message goes unanswered
			}
		})
		out := newOutput()
		opts := client.Options{Count: 4, Interval: 5 * time.Millisecond, Reconnect: true, ReconnectDelay: time.Millisecond}
		if err := run(t, rs.url, opts, nil, out); err != nil {
			t.Errorf("Run: %v", err)
		}
		// The second message is lost in the drop; so is a third one the
		// client wrote before it saw the drop, if the machine is slow
		// enough. The rest go out on the new connection, 4 in all.
		got := strings.Count(out.String(), "\n")
		after := seen[1].Load()
		if after == 0 || got != 1+int(after) || seen[0].Load()+after > 4 || got < 2 {
			t.Errorf("%d echoes printed, %d and %d messages read on the two connections; want 2 or 3 printed: 1 before the drop, the rest after it, 4 sent in all:\n%s",
				got, seen[0].Load(), after, out)
		}
	})
	t.Run("cancel_while_waiting", func(t *testing.T) {
		t.Parallel()
		rs := startRaw(t, func(i int, rc *rawConn) { rc.nc.Close() })
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		status := newOutput()
		opts := client.Options{Interval: time.Hour, Reconnect: true, ReconnectDelay: time.Hour, Status: status}
		wait := startRun(t, ctx, rs.url, opts, nil, io.Discard)
		status.waitFor(t, "reconnecting in")
		cancel()
		var ce *client.CloseError
		if err := wait(); !errors.As(err, &ce) || ce.Code != wsframe.CloseAbnormal {
			t.Errorf("Run: %v, want the drop's *CloseError", err)
		}
	})
}

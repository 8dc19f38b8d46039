package client

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"wsecho/internal/testpeer"
	"wsecho/internal/wsframe"
	"wsecho/internal/wsmsg"
)

// acceptOne answers one WebSocket handshake on a loopback port and then
// reads and discards what the client sends. It returns the ws:// URL.
func acceptOne(t *testing.T) string {
	t.Helper()
	return "ws://" + testpeer.ServeOne(t, 10*time.Second, func(nc net.Conn) {
		_, br, err := testpeer.AcceptHandshake(nc)
		if err != nil {
			t.Errorf("handshake: %v", err)
			return
		}
		io.Copy(io.Discard, br)
	}) + "/"
}

// TestWriteFailedKeepsLine checks the write-failure path of line mode with
// Reconnect: a line that could not be written (here: the wire layer had
// already sent a Close, as when it answers the server's) is kept for the
// next connection, in retry, and not among the lines awaiting their echo,
// so that it is neither lost nor sent twice. Black-box tests cannot order
// this deterministically: the reader usually reports the Close first.
func TestWriteFailedKeepsLine(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       wsmsg.Message
	}{
		{name: "text", line: "kept", want: wsmsg.Message{Type: 1, Data: []byte("kept")}},
		{name: "binary_command", line: "/binary 0102", want: wsmsg.Message{Type: 2, Data: []byte{1, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Lines: true, Interactive: true, Reconnect: true, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
			c, err := Dial(t.Context(), acceptOne(t), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := newSession(c.opts, c.url, strings.NewReader(""), io.Discard)
			defer s.finish()
			l := &live{s: s, c: c, readErr: make(chan error, 1), got: make(chan struct{}, 1), pings: map[string]ping{}}
			if err := c.WriteClose(wsframe.CloseNormal, ""); err != nil {
				t.Fatal(err)
			}
			l.readErr <- io.EOF // as if the reading goroutine had ended
			end, err := l.line(t.Context(), tc.line)
			var ce *CloseError
			if !end || !errors.As(err, &ce) || !errors.Is(err, wsframe.ErrCloseSent) {
				t.Errorf("line: end=%v err=%v, want the end of the connection with ErrCloseSent", end, err)
			}
			if len(s.retry) != 1 || s.retry[0].m.Type != tc.want.Type || string(s.retry[0].m.Data) != string(tc.want.Data) || s.retry[0].retried {
				t.Errorf("retry = %+v, want the line, not yet retried", s.retry)
			}
			if len(s.unconfirmed) != 0 {
				t.Errorf("unconfirmed = %+v, want none: the line was not written", s.unconfirmed)
			}
		})
	}
}

// TestBackoff checks the reconnect waits: doubling from the base, capped,
// each drawn from the upper half of its step.
func TestBackoff(t *testing.T) {
	s := &session{opts: Options{ReconnectDelay: 100 * time.Millisecond, ReconnectMaxDelay: time.Second}}
	for n, step := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		step *= time.Millisecond
		if n >= 4 {
			step = time.Second
		}
		for range 50 {
			if d := s.backoff(n); d < step/2 || d > step {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, step/2, step)
			}
		}
	}
	if d := (&session{}).backoff(100); d < defaultReconnectMaxDelay/2 || d > defaultReconnectMaxDelay {
		t.Errorf("default backoff(100) = %v, want within the default cap's upper half", d)
	}
}

// TestURLHelpers checks the default ports, origins and status lines.
func TestURLHelpers(t *testing.T) {
	for _, tc := range []struct{ url, hostPort, origin string }{
		{"ws://example.com/echo", "example.com:80", "http://example.com"},
		{"wss://example.com/echo", "example.com:443", "https://example.com"},
		{"ws://example.com:8080/", "example.com:8080", "http://example.com:8080"},
		{"wss://[::1]/", "[::1]:443", "https://[::1]"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostPort(u); got != tc.hostPort {
			t.Errorf("hostPort(%s) = %q, want %q", tc.url, got, tc.hostPort)
		}
		if got := originOf(u); got != tc.origin {
			t.Errorf("originOf(%s) = %q, want %q", tc.url, got, tc.origin)
		}
	}
	for line, want := range map[string]string{"HTTP/1.1 403 Forbidden": "403 Forbidden", "": "no response", "garbage": "garbage"} {
		if got := statusText(line); got != want {
			t.Errorf("statusText(%q) = %q, want %q", line, got, want)
		}
	}
}

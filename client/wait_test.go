package client_test

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"wsecho/client"
	"wsecho/internal/testpeer"
	"wsecho/internal/wsframe"
	"wsecho/server"
)

// TestInterruptDuringPingFlood checks that Ctrl-C ends the client within
// CloseWait whatever the server does, here a server that floods pings and
// never reads: the client's reading goroutine is then stuck writing a pong,
// with the write lock the closing handshake needs. Before closeAfter, Run
// never returned.
func TestInterruptDuringPingFlood(t *testing.T) {
	t.Parallel()
	stalled := make(chan struct{})
	rs := startRaw(t, func(i int, rc *rawConn) { testpeer.FloodPings(rc.nc, time.Now().Add(waitTimeout), stalled) })
	ctx, cancel := context.WithCancel(t.Context())
	const closeWait = 200 * time.Millisecond
	wait := startRun(t, ctx, rs.url, client.Options{Interval: 10 * time.Millisecond, CloseWait: closeWait}, nil, newOutput())
	select {
	case <-stalled:
	case <-time.After(waitTimeout):
		t.Fatal("the flood never filled the connection")
	}
	start := time.Now()
	cancel()
	err := wait()
	// CloseWait, and a second for the wire layer to linger on a failed
	// connection, with room for a loaded machine.
	if d := time.Since(start); d > closeWait+2*time.Second {
		t.Errorf("Run returned %v after the interrupt, want within %v and a second", d, closeWait)
	}
	var ce *client.CloseError
	if !errors.As(err, &ce) || !errors.Is(err, client.ErrNoCloseReply) {
		t.Errorf("Run: %v, want a CloseError with ErrNoCloseReply", err)
	}
}

// TestNoCloseReply checks a server that reads the client's Close and never
// answers it: Run says so (exit status 3) after CloseWait, at the end of
// the input as on Ctrl-C.
func TestNoCloseReply(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   client.Options
		in     string
		cancel bool
	}{
		{name: "end_of_input", opts: client.Options{Lines: true}, in: "a\n"},
		{name: "interrupt", opts: client.Options{Interval: time.Hour}, cancel: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gotClose := make(chan struct{})
			rs := startRaw(t, func(i int, rc *rawConn) {
				for {
					h, p, err := rc.readFrame()
					if err != nil {
						return
					}
					switch h.Opcode {
					case wsframe.OpText:
						rc.writeFrame(wsframe.OpText, p)
					case wsframe.OpClose:
						close(gotClose)
						rc.readFrame() // until the client hangs up
						return
					}
				}
			})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			opts := tc.opts
			opts.CloseWait = 50 * time.Millisecond
			wait := startRun(t, ctx, rs.url, opts, strings.NewReader(tc.in), newOutput())
			if tc.cancel {
				cancel()
			}
			<-gotClose
			err := wait()
			if !errors.Is(err, client.ErrNoCloseReply) {
				t.Fatalf("Run: %v, want ErrNoCloseReply", err)
			}
			if want := "closing handshake incomplete: the server did not answer our close within 50ms"; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

// lazyEcho is a raw server that behaves as the ten-line echo server of
// Python's websockets does: it answers a message only once the client has
// been quiet for a moment, and sends nothing after a Close, so that a
// client that closes right after its last message gets no echo at all.
func lazyEcho(rc *rawConn) {
	var pending [][]byte
	for {
		if len(pending) > 0 {
			rc.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		} else {
			rc.nc.SetReadDeadline(time.Now().Add(waitTimeout))
		}
		h, p, err := rc.readFrame()
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout() && len(pending) > 0:
			for _, m := range pending {
				rc.writeFrame(wsframe.OpText, m)
			}
			pending = nil
			continue
		case err != nil:
			return
		}
		switch h.Opcode {
		case wsframe.OpText:
			pending = append(pending, p)
		case wsframe.OpClose:
			code, _ := closeCode(p)
			rc.writeClose(code, "") // and the echoes never go out
			return
		}
	}
}

// TestWaitForReplies checks the end of the input: the client waits for as
// many messages as it sent (or Wait without any), then closes. Against a
// server that sends nothing after a Close, closing at once loses every
// echo; that was the only behaviour before Wait.
func TestWaitForReplies(t *testing.T) {
	t.Parallel()
	lazy := startRaw(t, func(i int, rc *rawConn) { lazyEcho(rc) })
	silent := startRaw(t, func(i int, rc *rawConn) {
		for {
			h, p, err := rc.readFrame()
			if err != nil {
				return
			}
			if h.Opcode == wsframe.OpClose {
				code, _ := closeCode(p)
				rc.writeClose(code, "")
				return
			}
		}
	})
	for _, tc := range []struct {
		name    string
		url     string
		opts    client.Options
		in      string
		want    string
		atLeast time.Duration // the client waited this long for replies
	}{
		{name: "lines", url: lazy.url, opts: client.Options{Lines: true, Wait: 10 * time.Second}, in: "a\nb\n", want: "a\nb\n"},
		{name: "count", url: lazy.url, opts: client.Options{Count: 2, Interval: time.Millisecond, Message: []byte("m"), Wait: 10 * time.Second}, want: "m\nm\n"},
		{name: "no_wait", url: lazy.url, opts: client.Options{Lines: true, Wait: client.NoWait}, in: "a\nb\n", want: ""},
		{name: "nothing_comes_back", url: silent.url, opts: client.Options{Lines: true, Wait: 50 * time.Millisecond}, in: "a\n", want: "", atLeast: 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := newOutput()
			start := time.Now()
			if err := run(t, tc.url, tc.opts, strings.NewReader(tc.in), out); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if d := time.Since(start); d < tc.atLeast || d > waitTimeout/2 {
				t.Errorf("Run took %v, want at least %v and well under 10 s", d, tc.atLeast)
			}
			if got := out.String(); got != tc.want {
				t.Errorf("output %q, want %q", got, tc.want)
			}
		})
	}
}

// TestWaitUntilServerCloses checks a negative Wait: the client keeps the
// connection open after the end of its input until the server closes, and
// prints what comes meanwhile, even more messages than it sent.
func TestWaitUntilServerCloses(t *testing.T) {
	t.Parallel()
	rs := startRaw(t, func(i int, rc *rawConn) {
		if _, p, err := rc.readFrame(); err == nil {
			rc.writeFrame(wsframe.OpText, p)
			// The client must not close although its message came back.
			rc.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if h, _, err := rc.readFrame(); err == nil {
				t.Errorf("the client sent opcode %d after the end of its input, want nothing", h.Opcode)
				rc.writeClose(1000, "")
				return
			}
			rc.nc.SetReadDeadline(time.Now().Add(waitTimeout))
			rc.writeFrame(wsframe.OpText, []byte("and more"))
			rc.writeClose(1000, "")
			rc.readClose()
		}
	})
	out := newOutput()
	if err := run(t, rs.url, client.Options{Lines: true, Wait: -1}, strings.NewReader("x\n"), out); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := out.String(), "x\nand more\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// TestMessageLimits checks both limits on the size of a message: the
// client's MaxMessage (it closes with 1009), and the server's, which a
// long line trips: the client then reports the server's Close 1009 and its
// reason, not the write error that follows it.
func TestMessageLimits(t *testing.T) {
	t.Parallel()
	t.Run("client", func(t *testing.T) {
		t.Parallel()
		codes := make(chan int, 1)
		rs := startRaw(t, func(i int, rc *rawConn) {
			rc.writeFrame(wsframe.OpBinary, make([]byte, 2048))
			code, _, _, _ := rc.readClose()
			codes <- code
		})
		err := run(t, rs.url, client.Options{MaxMessage: 1024, Interval: time.Hour}, nil, newOutput())
		if want := "the server sent a message larger than 1024 bytes (sent close 1009; -max-message raises the limit)"; err == nil || err.Error() != want {
			t.Errorf("Run: %v, want %q", err, want)
		}
		if code := <-codes; code != wsframe.CloseMessageTooBig {
			t.Errorf("client sent close %d, want 1009", code)
		}
	})
	t.Run("server", func(t *testing.T) {
		t.Parallel()
		h := server.New(server.Options{MaxMessage: 64 << 10, Logger: testLogger(t)})
		ts := httptest.NewServer(h)
		t.Cleanup(func() { shutdown(t, ts, h) })
		line := strings.Repeat("x", 4<<20) + "\n"
		err := run(t, wsURL(ts), client.Options{Lines: true}, strings.NewReader(line), newOutput())
		var ce *client.CloseError
		if want := "server closed the connection: 1009 message larger than 65536 bytes"; !errors.As(err, &ce) || err.Error() != want {
			t.Errorf("Run: %v, want %q", err, want)
		}
	})
}

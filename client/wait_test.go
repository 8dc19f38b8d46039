package client_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"wsecho/client"
	"wsecho/internal/wsframe"
)

// floodPings writes pings to rc and never reads, until the connection
// fails; stalled is closed once a write has not gone through for 200 ms:
// the client has stopped reading, because its answer to a ping is stuck
// behind pongs the server does not read.
func floodPings(rc *rawConn, stalled chan<- struct{}) {
	if tc, ok := rc.nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096) // fill up sooner
	}
	ping := wsframe.AppendFrame(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpPing}, []byte(strings.Repeat("p", 125)))
	var batch []byte
	for range 512 {
		batch = append(batch, ping...)
	}
	deadline := time.Now().Add(waitTimeout)
	once := false
	for time.Now().Before(deadline) {
		rc.nc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := rc.nc.Write(batch)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			if !once {
				once = true
				close(stalled)
			}
		case err != nil:
			return
		}
	}
}

// TestInterruptDuringPingFlood checks that Ctrl-C ends the client within
// CloseWait whatever the server does, here a server that floods pings and
// never reads: the client's reading goroutine is then stuck writing a pong,
// with the write lock the closing handshake needs. Before closeAfter, Run
// never returned.
func TestInterruptDuringPingFlood(t *testing.T) {
	t.Parallel()
	stalled := make(chan struct{})
	rs := startRaw(t, func(i int, rc *rawConn) { floodPings(rc, stalled) })
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

package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"wsecho/internal/testpeer"
	"wsecho/internal/wsframe"
)

// pipeFrame reads one frame the client sent on a pipe server.
func pipeFrame(br *bufio.Reader) (wsframe.Header, []byte, error) {
	b, err := br.Peek(2)
	if err != nil {
		return wsframe.Header{}, nil, err
	}
	if b, err = br.Peek(wsframe.HeaderLen(b[1])); err != nil {
		return wsframe.Header{}, nil, err
	}
	h, n, err := wsframe.ParseHeader(b)
	if err != nil {
		return h, nil, err
	}
	br.Discard(n)
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(br, p); err != nil {
		return h, nil, err
	}
	wsframe.Mask(h.Key, 0, p)
	return h, p, nil
}

// TestReconnectTimings checks -reconnect's waits on a fake clock: the first
// connection is retried with a doubling backoff until the server is up; a
// connection that lasted and exchanged messages starts the backoff again
// from its shortest wait, one that did not goes on doubling; and each
// event is one status line. Before, the first dial was never retried, and
// the backoff started again only after a connection up for the longest
// wait (here 10 s).
func TestReconnectTimings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const base = 100 * time.Millisecond
		// What each dial finds: down (refused), or a server that echoes,
		// keeps the connection for a while, then closes with 1001.
		type plan struct {
			down bool
			up   time.Duration
			echo bool
		}
		plans := []plan{{down: true}, {down: true}, {down: true},
			{up: 2 * time.Second, echo: true}, // stable: back to the base wait
			{up: 0}, {up: 0},                  // not: doubling
			{up: time.Hour, echo: true}} // until the test ends
		var mu sync.Mutex
		var dials []time.Time // when each dial happened
		var ends []time.Time  // when each connection was closed by the server
		var wg sync.WaitGroup
		defer wg.Wait()
		// The servers end when the client has: not on ctx, which would race
		// with the client's own view of it.
		stop := make(chan struct{})
		defer close(stop)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		status := &testpeer.Output{}
		opts := Options{
			Interval: time.Hour, Reconnect: true, ReconnectDelay: base, ReconnectMaxDelay: 10 * time.Second,
			Status: status, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
			netDial: func(context.Context, string) (net.Conn, error) {
				mu.Lock()
				defer mu.Unlock()
				n := len(dials)
				dials = append(dials, time.Now())
				if n >= len(plans) {
					return nil, errors.New("no more plans")
				}
				p := plans[n]
				if p.down {
					return nil, errors.New("connect: connection refused")
				}
				cl, srv := net.Pipe()
				wg.Go(func() {
					defer srv.Close()
					_, br, err := testpeer.AcceptHandshake(srv)
					if err != nil {
						return
					}
					if p.echo {
						if _, m, err := pipeFrame(br); err == nil {
							srv.Write(wsframe.AppendFrame(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpText}, m))
						}
					}
					go io.Copy(io.Discard, br) // the client's close, at the end
					select {
					case <-time.After(p.up):
					case <-stop:
						return
					}
					mu.Lock()
					ends = append(ends, time.Now())
					mu.Unlock()
					srv.Write(wsframe.AppendFrame(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpClose}, wsframe.ClosePayload(1001, "restart")))
					time.Sleep(time.Second) // let the client read it before the pipe closes
				})
				return cl, nil
			},
		}
		done := make(chan error, 1)
		go func() { done <- Connect(ctx, "ws://wsecho.test/echo", opts, nil, io.Discard) }()
		for {
			synctest.Wait()
			mu.Lock()
			n := len(dials)
			mu.Unlock()
			if n == len(plans) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		synctest.Wait()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(dials) != len(plans) || len(ends) != 3 {
			t.Fatalf("%d dials, %d closes by the server, want %d and 3; status:\n%s", len(dials), len(ends), len(plans), status)
		}
		within := func(what string, d, step time.Duration) {
			t.Helper()
			if d < step/2 || d > step {
				t.Errorf("%s: waited %v, want within [%v, %v]", what, d, step/2, step)
			}
		}
		// The first connection: attempts 0, 1, 2 failed.
		within("first retry", dials[1].Sub(dials[0]), base)
		within("second retry", dials[2].Sub(dials[1]), 2*base)
		within("third retry", dials[3].Sub(dials[2]), 4*base)
		// After the stable connection: the base wait again, not 8 × base.
		within("after a stable connection", dials[4].Sub(ends[0]), base)
		within("after a connection that did nothing", dials[5].Sub(ends[1]), 2*base)
		within("and again", dials[6].Sub(ends[2]), 4*base)

		lines := strings.Split(strings.TrimSuffix(status.String(), "\n"), "\n")
		var retries, reconnects, connected int
		for _, l := range lines {
			switch {
			case strings.HasPrefix(l, "dial tcp wsecho.test:80: connect: connection refused; retrying in ") ||
				strings.HasPrefix(l, "connect: connection refused; retrying in "):
				retries++
			case strings.HasPrefix(l, "server closed the connection: 1001 restart; reconnecting in "):
				reconnects++
			case l == "connected to ws://wsecho.test/echo":
				connected++
			default:
				t.Errorf("unexpected status line %q in:\n%s", l, status)
			}
		}
		if retries != 3 || reconnects != 3 || connected != 4 {
			t.Errorf("%d retries, %d reconnects, %d connections reported, want 3, 3, 4:\n%s", retries, reconnects, connected, status)
		}
	})
}

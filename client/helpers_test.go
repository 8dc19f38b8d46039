package client_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"wsecho/client"
	"wsecho/internal/testpeer"
	"wsecho/internal/wsframe"
	"wsecho/server"
)

// waitTimeout bounds every wait for output or for a peer in these tests.
const waitTimeout = 10 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// output collects what Run prints and lets a test wait for it. It is safe
// for concurrent use.
type output struct{ testpeer.Output }

func newOutput() *output { return new(output) }

// waitFor waits until the output contains want, and fails the test if it
// does not within waitTimeout.
func (o *output) waitFor(t *testing.T, want string) {
	t.Helper()
	if !o.waitUntil(func(s string) bool { return strings.Contains(s, want) }) {
		t.Fatalf("output has no %q within %v; output:\n%s", want, waitTimeout, o)
	}
}

// waitUntil reports whether ok(output) became true within waitTimeout.
func (o *output) waitUntil(ok func(string) bool) bool { return o.WaitUntil(waitTimeout, ok) }

// startEcho starts our echo server on a loopback port and returns its
// ws:// URL. The cleanup shuts it down.
func startEcho(t *testing.T) string {
	t.Helper()
	ts, _ := startEchoTS(t, nil)
	return wsURL(ts)
}

// startEchoTS starts our echo server behind wrap (if not nil), and returns
// the test server and the handler.
func startEchoTS(t *testing.T, wrap func(http.Handler) http.Handler) (*httptest.Server, *server.Handler) {
	t.Helper()
	h := server.New(server.Options{Logger: testLogger(t)})
	var handler http.Handler = h
	if wrap != nil {
		handler = wrap(h)
	}
	ts := httptest.NewServer(handler)
	t.Cleanup(func() { shutdown(t, ts, h) })
	return ts, h
}

func shutdown(t *testing.T, ts *httptest.Server, h *server.Handler) {
	ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Errorf("server shutdown: %v", err)
	}
}

func wsURL(ts *httptest.Server) string {
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

// startRun dials url and runs the client in the background. The returned
// function waits for Run to return (failing the test after waitTimeout).
func startRun(t *testing.T, ctx context.Context, url string, opts client.Options, in io.Reader, out io.Writer) func() error {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	conn, err := client.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx, conn, in, out) }()
	var once sync.Once
	var res error
	wait := func() error {
		once.Do(func() {
			select {
			case res = <-done:
			case <-time.After(waitTimeout):
				t.Errorf("Run did not return within %v", waitTimeout)
				conn.Close()
				select {
				case res = <-done:
				case <-time.After(waitTimeout):
					res = errors.New("Run did not return after the connection was closed")
					t.Error(res)
				}
			}
		})
		return res
	}
	t.Cleanup(func() { wait() })
	return wait
}

// run dials url and runs the client to its end.
func run(t *testing.T, url string, opts client.Options, in io.Reader, out io.Writer) error {
	t.Helper()
	return startRun(t, t.Context(), url, opts, in, out)()
}

// rawServer is a WebSocket server written by hand: it answers the opening
// handshake and then lets a test read and write raw frames, to send the
// client what no real server would.
type rawServer struct {
	ln    net.Listener
	url   string
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

// rawConn is one connection of a rawServer.
type rawConn struct {
	nc  net.Conn
	br  *bufio.Reader
	req *http.Request
	wmu sync.Mutex
}

// startRaw starts a raw server on a loopback port; handle runs for the
// i-th connection (from 0) after the handshake, and may call t.Errorf.
func startRaw(t testing.TB, handle func(i int, rc *rawConn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &rawServer{ln: ln, url: "ws://" + ln.Addr().String() + "/echo"}
	rs.wg.Go(func() {
		for i := 0; ; i++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			nc.SetDeadline(time.Now().Add(waitTimeout))
			rs.mu.Lock()
			rs.conns = append(rs.conns, nc)
			rs.mu.Unlock()
			rs.wg.Go(func() {
				defer nc.Close()
				rc := &rawConn{nc: nc}
				if err := rc.handshake(); err != nil {
					t.Errorf("raw server: handshake: %v", err)
					return
				}
				handle(i, rc)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		rs.mu.Lock()
		for _, nc := range rs.conns {
			nc.Close()
		}
		rs.mu.Unlock()
		rs.wg.Wait()
	})
	return rs
}

func (rc *rawConn) handshake() error {
	req, br, err := testpeer.AcceptHandshake(rc.nc)
	rc.req, rc.br = req, br
	return err
}

// write sends raw bytes; it is safe for concurrent use.
func (rc *rawConn) write(b []byte) error {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	_, err := rc.nc.Write(b)
	return err
}

// writeFrame sends one unmasked frame with FIN set.
func (rc *rawConn) writeFrame(op byte, payload []byte) error {
	return rc.write(wsframe.AppendFrame(nil, wsframe.Header{Fin: true, Opcode: op}, payload))
}

// writeClose sends a Close frame with code and reason.
func (rc *rawConn) writeClose(code int, reason string) error {
	return rc.writeFrame(wsframe.OpClose, wsframe.ClosePayload(code, reason))
}

// readFrame reads one frame from the client and checks that it is masked
// (RFC 6455, Section 5.1); it returns the unmasked payload.
func (rc *rawConn) readFrame() (wsframe.Header, []byte, error) {
	b, err := rc.br.Peek(2)
	if err != nil {
		return wsframe.Header{}, nil, err
	}
	if b, err = rc.br.Peek(wsframe.HeaderLen(b[1])); err != nil {
		return wsframe.Header{}, nil, err
	}
	h, n, err := wsframe.ParseHeader(b)
	if err != nil {
		return h, nil, err
	}
	rc.br.Discard(n)
	if !h.Masked {
		return h, nil, fmt.Errorf("unmasked frame from the client: opcode %d", h.Opcode)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(rc.br, p); err != nil {
		return h, nil, err
	}
	wsframe.Mask(h.Key, 0, p)
	return h, p, nil
}

// readControl reads frames until a control frame, skipping messages.
func (rc *rawConn) readControl() (wsframe.Header, []byte, error) {
	for {
		h, p, err := rc.readFrame()
		if err != nil || wsframe.IsControl(h.Opcode) {
			return h, p, err
		}
	}
}

// closeCode parses a Close payload.
func closeCode(p []byte) (int, string) {
	if len(p) < 2 {
		return wsframe.CloseNoStatus, ""
	}
	return int(binary.BigEndian.Uint16(p)), string(p[2:])
}

// echo echoes data frames and answers the client's Close with its code,
// until the Close or until onText (if not nil) returns false for a text
// message. It returns the client's close code, or 0.
func (rc *rawConn) echo(t *testing.T, onText func(payload string) bool) int {
	for {
		h, p, err := rc.readFrame()
		if err != nil {
			t.Errorf("raw server: read: %v", err)
			return 0
		}
		switch h.Opcode {
		case wsframe.OpClose:
			code, _ := closeCode(p)
			rc.writeClose(code, "")
			return code
		case wsframe.OpPing:
			rc.writeFrame(wsframe.OpPong, p)
		case wsframe.OpText, wsframe.OpBinary:
			if h.Opcode == wsframe.OpText && onText != nil && !onText(string(p)) {
				return 0
			}
			rc.writeFrame(h.Opcode, p)
		}
	}
}

// readClose reads frames until the client's Close and returns its code
// and reason; other frames are returned in others.
func (rc *rawConn) readClose() (code int, reason string, others []wsframe.Header, err error) {
	for {
		h, p, err := rc.readFrame()
		if err != nil {
			return 0, "", others, err
		}
		if h.Opcode == wsframe.OpClose {
			code, reason := closeCode(p)
			return code, reason, others, nil
		}
		others = append(others, h)
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

package main

// The seed's design is gorilla/websocket's echo example: its server (gorillaEcho
// in helpers_test.go) and its client (gorillaRun below). These tests run every
// pairing of our client and server with the gorilla ones over one table of
// exchanges, in the style of net/http's run(t, mode), and assert that ours
// behave as the gorilla design does.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"wsecho/client"
	"wsecho/internal/wsframe"
	"wsecho/internal/wsmsg"
	"wsecho/server"
)

// exchangeTimeout bounds every exchange: deadlines on connections and waits
// on channels, so that a silent peer fails the test in seconds.
const exchangeTimeout = 10 * time.Second

// msg is one message with its type: gorilla.TextMessage or
// gorilla.BinaryMessage, the RFC 6455 opcodes, which x/net calls TextFrame
// and BinaryFrame.
type msg struct {
	typ  int
	data []byte
}

func text(s string) msg      { return msg{gorilla.TextMessage, []byte(s)} }
func binaryMsg(b []byte) msg { return msg{gorilla.BinaryMessage, b} }

// textOf returns n bytes of valid UTF-8 with 2- and 3-byte characters, so
// that a fragmented message splits characters across frames.
func textOf(n int) []byte {
	b := make([]byte, 0, n)
	for len(b)+len("aé✓") <= n {
		b = append(b, "aé✓"...)
	}
	for len(b) < n {
		b = append(b, 'x')
	}
	return b
}

// binaryOf returns n bytes of every value, in an order that is not a plain
// repetition.
func binaryOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func backToBack(n int) []msg {
	ms := make([]msg, n)
	for i := range ms {
		if i%2 == 0 {
			ms[i] = text(fmt.Sprintf("message %03d", i))
		} else {
			ms[i] = binaryMsg([]byte{byte(i), 0, 0xff, byte(i)})
		}
	}
	return ms
}

// Outcomes of the opening handshake.
const (
	statusSwitching = http.StatusSwitchingProtocols
	statusForbidden = http.StatusForbidden
	// statusRefused is what the x/net client reports for any refused
	// handshake: client.Dial's error carries no status code.
	statusRefused = -1
)

// exchange is one row of the table every pairing runs. Each row has one
// kind: msgs (echo), closeCode (closing handshake) or origin (opening
// handshake). The wants are the gorilla design's behaviour; the
// client=gorilla/server=gorilla pairing checks them.
type exchange struct {
	name string

	// msgs are sent back to back. Each must come back once, whole, in
	// order and with its type.
	msgs []msg
	// frames, if set, is the number of data frames msgs go out in, per
	// client: the row's premise, checked on the server's side of the wire.
	frames map[string]int

	// closeCode is sent in the client's Close. The server must answer with
	// the same code, then close the TCP connection.
	closeCode int

	// origin is the Origin header of the handshake: "none", "same" (the
	// server's own) or a foreign origin. status is the outcome.
	origin string
	status int
	// xnetOrigin is what the x/net client sends instead of origin;
	// xnetStatus is what it reports instead of status. Known differences.
	xnetOrigin string
	xnetStatus int
}

var exchanges = []exchange{
	{name: "text", msgs: []msg{text("Hello, wörld ✓")}},
	{name: "binary", msgs: []msg{binaryMsg([]byte{0x00, 0xff, 0x80, 0x7f, 0x0a, 0x0d})}},
	{name: "empty_text", msgs: []msg{text("")}},
	{name: "empty_binary", msgs: []msg{binaryMsg([]byte{})}},
	{name: "size=125", msgs: []msg{{gorilla.TextMessage, textOf(125)}}},         // longest 7-bit length (RFC 6455 §5.2)
	{name: "size=126", msgs: []msg{{gorilla.BinaryMessage, binaryOf(126)}}},     // shortest 16-bit length
	{name: "size=65535", msgs: []msg{{gorilla.TextMessage, textOf(65535)}}},     // longest 16-bit length
	{name: "size=65536", msgs: []msg{{gorilla.BinaryMessage, binaryOf(65536)}}}, // shortest 64-bit length
	{name: "size=1MiB", msgs: []msg{{gorilla.TextMessage, textOf(1 << 20)}}},
	{
		// gorilla's client writes through its 4096-byte buffer, so this
		// message goes out as three frames (4096+4096+2048). The gorilla
		// design echoes it as one message; a plain x/net server would echo
		// each frame as a message of its own.
		name: "fragmented_10KB",
		msgs: []msg{{gorilla.TextMessage, textOf(10 << 10)}},
		// Known difference: x/net writes every message as one frame; our
		// client cannot fragment.
		frames: map[string]int{"gorilla": 3, "xnet": 1},
	},
	{name: "back_to_back_100", msgs: backToBack(100)},
	{name: "close_1000", closeCode: wsframe.CloseNormal},
	{
		name: "origin=none", origin: "none", status: statusSwitching,
		// Known difference: x/net's client always sends an Origin
		// (websocket.NewConfig requires one); client.Options.Origin ""
		// means the URL's own.
		xnetOrigin: "same",
	},
	{name: "origin=same", origin: "same", status: statusSwitching},
	{
		name: "origin=foreign", origin: "http://foreign.example", status: statusForbidden,
		// Known difference: client.Dial reports a refused handshake in its
		// error text only, without the status code.
		xnetStatus: statusRefused,
	},
}

// sentinel ends every echo exchange: it must be the next message after the
// echoes, which shows that nothing came back twice or in pieces.
var sentinel = text("end of exchange")

// runPairs runs f under every pairing of client and server:
// client=xnet/server=gorilla and so on.
func runPairs(t *testing.T, f func(t *testing.T, cl, srv string)) {
	t.Helper()
	for _, cl := range impls {
		t.Run("client="+cl, func(t *testing.T) {
			t.Parallel()
			for _, srv := range impls {
				t.Run("server="+srv, func(t *testing.T) {
					t.Parallel()
					f(t, cl, srv)
				})
			}
		})
	}
}

func TestPair(t *testing.T) {
	t.Parallel()
	runPairs(t, func(t *testing.T, cl, srv string) {
		for _, ex := range exchanges {
			t.Run(ex.name, func(t *testing.T) {
				t.Parallel()
				ts := startTapServer(t, srv)
				switch {
				case ex.msgs != nil:
					checkEcho(t, ex, cl, ts)
				case ex.closeCode != 0:
					checkClose(t, ex, cl, ts)
				case ex.origin != "":
					checkOrigin(t, ex, cl, ts)
				default:
					t.Fatalf("exchange %s has no kind", ex.name)
				}
			})
		}
	})
}

func checkEcho(t *testing.T, ex exchange, cl string, ts *tapServer) {
	p, status, err := dialPeer(t, cl, ts.url, "same")
	if err != nil {
		t.Fatalf("dial: status %d: %v", status, err)
	}
	got, err := echoAll(p, ex.msgs)
	if err != nil {
		t.Fatalf("echo: %v (after %d messages)", err, len(got))
	}
	if d := diffMsgs(got, ex.msgs); d != "" {
		t.Errorf("echo: %s", d)
	}
	if want, ok := ex.frames[cl]; ok {
		// The server has read every frame before it echoed the sentinel.
		if n := ts.conn(t).in.dataFrames() - 1; n != want {
			t.Errorf("the %s client sent the message in %d frames, want %d", cl, n, want)
		}
	}
}

func checkClose(t *testing.T, ex exchange, cl string, ts *tapServer) {
	p, status, err := dialPeer(t, cl, ts.url, "same")
	if err != nil {
		t.Fatalf("dial: status %d: %v", status, err)
	}
	code, err := p.closeHandshake(ex.closeCode)
	if err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	if code != ex.closeCode {
		t.Errorf("close: the client received code %d, want %d", code, ex.closeCode)
	}
	tc := ts.conn(t)
	select {
	case <-tc.closed:
	case <-time.After(exchangeTimeout):
		t.Fatalf("the server did not close the TCP connection after the closing handshake")
	}
	if code, ok := tc.in.closeCode(); !ok || code != ex.closeCode {
		t.Errorf("the server read Close %d (sent: %v), want %d", code, ok, ex.closeCode)
	}
}

func checkOrigin(t *testing.T, ex exchange, cl string, ts *tapServer) {
	origin, want := ex.origin, ex.status
	if cl == "xnet" {
		if ex.xnetOrigin != "" {
			origin = ex.xnetOrigin
		}
		if ex.xnetStatus != 0 {
			want = ex.xnetStatus
		}
	}
	p, status, err := dialPeer(t, cl, ts.url, origin)
	if err == nil {
		p.close()
	}
	if status != want {
		t.Errorf("handshake with Origin %s: status %d (err %v), want %d", origin, status, err, want)
	}
	if (err == nil) != (want == statusSwitching) {
		t.Errorf("handshake with Origin %s: err %v, want success %v", origin, err, want == statusSwitching)
	}
}

// peer is the client end of a pairing.
type peer interface {
	send(m msg) error
	recv() (msg, error)
	// closeHandshake sends Close code and reads until the server's Close;
	// it returns the code the server sent.
	closeHandshake(code int) (int, error)
	close()
}

// dialPeer opens a connection from the x/net client (client.Dial) or the
// gorilla client (gorilla.Dialer) with the given Origin: "none", "same" or
// a full origin. It returns the handshake's HTTP status and closes the peer
// when the test ends.
func dialPeer(t *testing.T, cl, wsURL, origin string) (peer, int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), exchangeTimeout)
	defer cancel()
	if origin == "same" {
		origin = "http://" + strings.TrimPrefix(strings.TrimSuffix(wsURL, "/echo"), "ws://")
	}
	deadline := time.Now().Add(exchangeTimeout)
	switch cl {
	case "xnet":
		opts := client.Options{Logger: testLogger(t)}
		if origin != "none" {
			opts.Origin = origin
		}
		conn, err := client.Dial(ctx, wsURL, opts)
		if err != nil {
			return nil, statusRefused, err
		}
		conn.SetDeadline(deadline)
		p := &xnetPeer{conn}
		t.Cleanup(p.close)
		return p, statusSwitching, nil
	case "gorilla":
		var hdr http.Header
		if origin != "none" {
			hdr = http.Header{"Origin": {origin}}
		}
		d := gorilla.Dialer{HandshakeTimeout: exchangeTimeout}
		c, resp, err := d.DialContext(ctx, wsURL, hdr)
		status := 0
		if resp != nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		if err != nil {
			return nil, status, err
		}
		c.SetReadDeadline(deadline)
		c.SetWriteDeadline(deadline)
		p := &gorillaPeer{c}
		t.Cleanup(p.close)
		return p, status, nil
	}
	t.Fatalf("unknown client %q", cl)
	return nil, 0, nil
}

type xnetPeer struct{ conn *client.Conn }

func (p *xnetPeer) send(m msg) error {
	return wsmsg.Codec.Send(p.conn.Conn, &wsmsg.Message{Type: byte(m.typ), Data: m.data})
}

// recv reads as the client does, through the wire layer; the message is
// copied out of its buffer, which the next read reuses.
func (p *xnetPeer) recv() (msg, error) {
	typ, data, err := p.conn.ReadMessage()
	return msg{typ: int(typ), data: bytes.Clone(data)}, err
}

func (p *xnetPeer) closeHandshake(code int) (int, error) {
	if err := p.conn.WriteClose(code, ""); err != nil {
		return 0, err
	}
	if m, err := p.recv(); !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read after Close: got %d bytes, err %v; want io.EOF", len(m.data), err)
	}
	got, _, ok := p.conn.CloseStatus()
	if !ok {
		return 0, errors.New("io.EOF without a Close from the server")
	}
	return got, nil
}

func (p *xnetPeer) close() { p.conn.Close() }

type gorillaPeer struct{ c *gorilla.Conn }

func (p *gorillaPeer) send(m msg) error { return p.c.WriteMessage(m.typ, m.data) }

func (p *gorillaPeer) recv() (msg, error) {
	typ, data, err := p.c.ReadMessage()
	return msg{typ, data}, err
}

func (p *gorillaPeer) closeHandshake(code int) (int, error) {
	if err := p.c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(code, "")); err != nil {
		return 0, err
	}
	m, err := p.recv()
	var ce *gorilla.CloseError
	if !errors.As(err, &ce) {
		return 0, fmt.Errorf("read after Close: got %d bytes, err %v; want a *CloseError", len(m.data), err)
	}
	return ce.Code, nil
}

func (p *gorillaPeer) close() { p.c.Close() }

// echoAll sends msgs and the sentinel back to back while it reads what comes
// back, up to the sentinel.
func echoAll(p peer, msgs []msg) ([]msg, error) {
	errc := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := p.send(m); err != nil {
				errc <- err
				return
			}
		}
		errc <- p.send(sentinel)
	}()
	var got []msg
	var err error
	for {
		var m msg
		if m, err = p.recv(); err != nil {
			break
		}
		if m.typ == sentinel.typ && bytes.Equal(m.data, sentinel.data) {
			break
		}
		got = append(got, m)
		if len(got) > len(msgs)+10 {
			err = fmt.Errorf("more than %d messages came back, want %d", len(got)-1, len(msgs))
			break
		}
	}
	if err != nil {
		p.close() // unblock the sender
	}
	if serr := <-errc; err == nil && serr != nil {
		err = fmt.Errorf("send: %w", serr)
	}
	return got, err
}

// diffMsgs describes how got differs from want, or returns "".
func diffMsgs(got, want []msg) string {
	if len(got) != len(want) {
		sizes := make([]int, len(got))
		for i, m := range got {
			sizes[i] = len(m.data)
		}
		return fmt.Sprintf("got %d messages of sizes %v, want %d", len(got), sizes, len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		switch {
		case g.typ != w.typ:
			return fmt.Sprintf("message %d: type %d, want %d", i, g.typ, w.typ)
		case len(g.data) != len(w.data):
			return fmt.Sprintf("message %d: %d bytes, want %d", i, len(g.data), len(w.data))
		case !bytes.Equal(g.data, w.data):
			j := 0
			for g.data[j] == w.data[j] {
				j++
			}
			return fmt.Sprintf("message %d: byte %d is %#x, want %#x", i, j, g.data[j], w.data[j])
		}
	}
	return ""
}

// gorillaRun is the seed's gorilla client (gorilla/websocket's
// examples/echo/client.go) as a test helper: a reader prints every message,
// the main loop sends the time every interval, and on interrupt (ctx done)
// it sends Close 1000 and waits up to a second for the server to close.
// Like client.Options.Count, count (if not 0) ends the loop the same way
// once count messages have been sent and echoed. It returns the close code
// the server sent (0 if none), and an error only when sending failed.
func gorillaRun(ctx context.Context, c *gorilla.Conn, count int, interval time.Duration, out io.Writer) (int, error) {
	defer c.Close()

	var received atomic.Int64
	got := make(chan struct{}, 1)
	done := make(chan struct{})
	var readErr error
	go func() {
		defer close(done)
		for {
			_, message, err := c.ReadMessage()
			if err != nil {
				readErr = err
				return
			}
			fmt.Fprintf(out, "%s\n", message)
			received.Add(1)
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}()
	closeCode := func() int {
		var ce *gorilla.CloseError
		if errors.As(readErr, &ce) {
			return ce.Code
		}
		return 0
	}

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	sent := 0
	for {
		select {
		case <-done:
			return closeCode(), nil
		case t := <-ticker.C:
			if count > 0 && sent >= count {
				continue
			}
			if err := c.WriteMessage(gorilla.TextMessage, []byte(t.String())); err != nil {
				c.Close()
				<-done
				return closeCode(), err
			}
			sent++
			continue
		case <-got:
			if count == 0 || received.Load() < int64(count) {
				continue
			}
		case <-ctx.Done():
		}
		// Cleanly close the connection by sending a close message and then
		// waiting (with timeout) for the server to close the connection.
		err := c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(gorilla.CloseNormalClosure, ""))
		if err == nil {
			select {
			case <-done:
			case <-time.After(time.Second):
			}
		}
		c.Close()
		<-done
		return closeCode(), err
	}
}

// runSeed runs a seed client loop against wsURL: client.Run on the x/net
// client, or gorillaRun. It returns the loop's error and the close code the
// client received from the server (0 if none).
func runSeed(ctx context.Context, t *testing.T, cl, wsURL string, count int, interval time.Duration, out io.Writer) (int, error) {
	dialCtx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	switch cl {
	case "xnet":
		opts := client.Options{Count: count, Interval: interval, Logger: testLogger(t)}
		conn, err := client.Dial(dialCtx, wsURL, opts)
		if err != nil {
			return 0, fmt.Errorf("dial: %w", err)
		}
		err = client.Run(ctx, conn, strings.NewReader(""), out)
		code, _, _ := conn.CloseStatus()
		return code, err
	case "gorilla":
		d := gorilla.Dialer{HandshakeTimeout: exchangeTimeout}
		c, resp, err := d.DialContext(dialCtx, wsURL, nil)
		if err != nil {
			return 0, fmt.Errorf("dial: %w", err)
		}
		resp.Body.Close()
		return gorillaRun(ctx, c, count, interval, out)
	}
	return 0, fmt.Errorf("unknown client %q", cl)
}

// TestPairRun runs the seed loops, client.Run and gorillaRun, against both
// servers: with a count, and until interrupted.
func TestPairRun(t *testing.T) {
	t.Parallel()
	const interval = 20 * time.Millisecond
	runPairs(t, func(t *testing.T, cl, srv string) {
		for _, tc := range []struct {
			name   string
			count  int
			cancel bool // cancel the context (the Ctrl-C path) after 2 lines
		}{
			{name: "count=3", count: 3},
			{name: "cancel", cancel: true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ts := startTapServer(t, srv)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				out := &lines{}
				type result struct {
					code int
					err  error
				}
				done := make(chan result, 1)
				go func() {
					code, err := runSeed(ctx, t, cl, ts.url, tc.count, interval, out)
					done <- result{code, err}
				}()
				if tc.cancel {
					if _, ok := out.wait(2, exchangeTimeout); !ok {
						t.Errorf("no 2 lines within %v", exchangeTimeout)
					}
					cancel()
				}
				var r result
				select {
				case r = <-done:
				case <-time.After(5 * time.Second):
					t.Errorf("the loop did not return within 5s")
					cancel()
					r = <-done
				}
				if r.err != nil {
					t.Errorf("the loop returned %v, want nil", r.err)
				}
				if r.code != wsframe.CloseNormal {
					t.Errorf("the client received close code %d, want %d", r.code, wsframe.CloseNormal)
				}
				got := out.lines()
				if tc.count > 0 && len(got) != tc.count {
					t.Errorf("printed %d lines, want %d: %q", len(got), tc.count, got)
				}
				for _, l := range got {
					if _, err := parseTimeString(l); err != nil {
						t.Errorf("printed %q: not the time it sent: %v", l, err)
					}
				}

				conn := ts.conn(t)
				select {
				case <-conn.closed:
				case <-time.After(exchangeTimeout):
					t.Fatalf("the server did not close the TCP connection")
				}
				// What the server read: the times, then Close 1000. Every
				// message was echoed and printed once, in order.
				if sent := conn.in.texts(); !slicesEqual(sent, got) {
					t.Errorf("printed %q, but the client sent %q", got, sent)
				}
				if code, ok := conn.in.closeCode(); !ok || code != wsframe.CloseNormal {
					t.Errorf("the client sent Close %d (sent: %v), want %d", code, ok, wsframe.CloseNormal)
				}
				if code, ok := conn.out.closeCode(); !ok || code != wsframe.CloseNormal {
					t.Errorf("the server answered Close %d (sent: %v), want %d", code, ok, wsframe.CloseNormal)
				}
			})
		}
	})
}

// parseTimeString parses the output of time.Time.String, which the seed
// clients send.
func parseTimeString(s string) (time.Time, error) {
	s, _, _ = strings.Cut(s, " m=") // the monotonic clock reading
	return time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", s)
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// tapServer is an echo server, ours or gorilla's as startServer builds them,
// on a listener that records the frames of every connection.
type tapServer struct {
	url   string
	conns chan *tapConn
}

// startTapServer is startServer with a tap on every connection.
func startTapServer(t *testing.T, impl string) *tapServer {
	t.Helper()
	mux := http.NewServeMux()
	var shutdown func(context.Context) error
	switch impl {
	case "xnet":
		h := server.New(server.Options{Logger: testLogger(t)})
		mux.Handle("/echo", h)
		shutdown = h.Shutdown
	case "gorilla":
		g := &gorillaEcho{log: testLogger(t), conns: make(map[*gorilla.Conn]struct{})}
		mux.Handle("/echo", g)
		shutdown = g.shutdown
	default:
		t.Fatalf("unknown impl %q", impl)
	}
	ts := httptest.NewUnstartedServer(mux)
	tl := &tapListener{Listener: ts.Listener, conns: make(chan *tapConn, 16)}
	ts.Listener = tl
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("%s server shutdown: %v", impl, err)
		}
	})
	return &tapServer{url: "ws" + strings.TrimPrefix(ts.URL, "http") + "/echo", conns: tl.conns}
}

// conn returns the first connection the server accepted.
func (s *tapServer) conn(t *testing.T) *tapConn {
	t.Helper()
	select {
	case c := <-s.conns:
		s.conns <- c // for the next caller
		return c
	case <-time.After(exchangeTimeout):
		t.Fatalf("the server accepted no connection")
		return nil
	}
}

type tapListener struct {
	net.Listener
	conns chan *tapConn
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &tapConn{Conn: c, closed: make(chan struct{})}
	select {
	case l.conns <- tc:
	default:
	}
	return tc, nil
}

// tapConn is the server's side of a connection. It records the frames it
// reads (in, from the client) and writes (out, to the client), and closes
// closed when the server closes it.
type tapConn struct {
	net.Conn
	in, out   wireLog
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.feed(p[:n])
	return n, err
}

func (c *tapConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.feed(p[:n])
	return n, err
}

func (c *tapConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// CloseWrite keeps the half-close the wire layer uses when it fails a
// connection.
func (c *tapConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// keepPayload is the largest payload a wireLog keeps.
const keepPayload = 256

// frame is one frame seen on the wire, with its unmasked payload if it is no
// longer than keepPayload.
type frame struct {
	op      byte
	fin     bool
	length  int64
	payload []byte
}

// wireLog parses one direction of a connection: the HTTP head, then the
// frames if the head is a GET or a 101 response. It is safe for concurrent
// use.
type wireLog struct {
	mu      sync.Mutex
	pending []byte
	inHead  bool // past the HTTP head
	stopped bool // not a WebSocket stream, or a malformed frame
	skip    int64
	frames  []frame
}

func (w *wireLog) feed(p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if w.skip > 0 && len(w.pending) == 0 {
		n := int(min(w.skip, int64(len(p))))
		w.skip -= int64(n)
		p = p[n:]
	}
	w.pending = append(w.pending, p...)
	w.parse()
	if len(w.pending) == 0 {
		w.pending = nil
	}
}

func (w *wireLog) parse() {
	if !w.inHead {
		i := bytes.Index(w.pending, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		head := w.pending[:i]
		if !bytes.HasPrefix(head, []byte("GET ")) && !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) {
			w.stopped = true
			return
		}
		w.inHead = true
		w.pending = w.pending[i+4:]
	}
	for len(w.pending) > 0 {
		if w.skip > 0 {
			n := int(min(w.skip, int64(len(w.pending))))
			w.skip -= int64(n)
			w.pending = w.pending[n:]
			continue
		}
		h, n, err := wsframe.ParseHeader(w.pending)
		if err != nil {
			w.stopped = true
			return
		}
		if n == 0 {
			return
		}
		f := frame{op: h.Opcode, fin: h.Fin, length: h.Length}
		if h.Length <= keepPayload {
			if int64(len(w.pending)-n) < h.Length {
				return // wait for the whole frame
			}
			f.payload = bytes.Clone(w.pending[n : n+int(h.Length)])
			if h.Masked {
				wsframe.Mask(h.Key, 0, f.payload)
			}
		}
		w.frames = append(w.frames, f)
		w.pending = w.pending[n:]
		w.skip = h.Length
		if f.payload != nil {
			w.pending = w.pending[h.Length:]
			w.skip = 0
		}
	}
}

// dataFrames returns the number of text, binary and continuation frames.
func (w *wireLog) dataFrames() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, f := range w.frames {
		if !wsframe.IsControl(f.op) {
			n++
		}
	}
	return n
}

// texts returns the payloads of the single-frame text messages.
func (w *wireLog) texts() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s []string
	for _, f := range w.frames {
		if f.op == wsframe.OpText && f.fin && f.payload != nil {
			s = append(s, string(f.payload))
		}
	}
	return s
}

// closeCode returns the code of the first Close frame, and whether there
// was one (RFC 6455, Section 5.5.1).
func (w *wireLog) closeCode() (int, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.frames {
		if f.op == wsframe.OpClose {
			if len(f.payload) < 2 {
				return wsframe.CloseNoStatus, true
			}
			return int(binary.BigEndian.Uint16(f.payload)), true
		}
	}
	return 0, false
}

// lines is an io.Writer, safe for concurrent use, that collects lines and
// lets a test wait for them.
type lines struct {
	mu      sync.Mutex
	partial []byte
	all     []string
	changed chan struct{} // closed when a line arrives
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.all = append(l.all, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		added = true
	}
	if added && l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	return len(p), nil
}

// lines returns the complete lines written so far.
func (l *lines) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

// String returns everything written so far.
func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n") + "\n" + string(l.partial)
}

// wait waits until n lines have been written, for d at most.
func (l *lines) wait(n int, d time.Duration) ([]string, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		l.mu.Lock()
		if len(l.all) >= n {
			all := append([]string(nil), l.all...)
			l.mu.Unlock()
			return all, true
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return l.lines(), false
		}
	}
}

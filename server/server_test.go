package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	gorilla "github.com/gorilla/websocket"
	"golang.org/x/net/websocket"

	"wsecho/client"
	"wsecho/internal/leakcheck"
	"wsecho/internal/testpeer"
	"wsecho/internal/wsframe"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(floodServerEnv); mode != "" {
		os.Exit(runFloodServer(mode)) // TestHalfOpenFlood's server
	}
	os.Exit(leakcheck.Main(m))
}

// The RFC 6455 §1.3 sample key and the accept value it expects.
const (
	sampleKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	sampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// endLine is what a Handler logged when a connection ended.
type endLine struct {
	msg    string // "closed" or "protocol error"
	code   int64
	by     string
	reason string
}

// logRec is a slog.Handler for tests: it logs under the test, and hands over
// the line that ends each connection.
type logRec struct {
	slog.Handler
	ends chan endLine
}

func newLogRec(t testing.TB) *logRec {
	return &logRec{
		Handler: slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}),
		ends:    make(chan endLine, 1024),
	}
}

func (l *logRec) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "closed" || r.Message == "protocol error" {
		e := endLine{msg: r.Message}
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "code":
				e.code = a.Value.Int64()
			case "by":
				e.by = a.Value.String()
			case "reason":
				e.reason = a.Value.String()
			}
			return true
		})
		select {
		case l.ends <- e:
		default:
			panic("logRec: too many connections ended unread")
		}
	}
	return l.Handler.Handle(ctx, r)
}

func (l *logRec) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRec{Handler: l.Handler.WithAttrs(as), ends: l.ends}
}

func (l *logRec) WithGroup(name string) slog.Handler {
	return &logRec{Handler: l.Handler.WithGroup(name), ends: l.ends}
}

// next returns the next connection's end line, failing after 10 s.
func (l *logRec) next(t testing.TB) endLine {
	t.Helper()
	select {
	case e := <-l.ends:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no connection ended within 10s")
		return endLine{}
	}
}

// testServer is a Handler behind NewMux on a loopback httptest.Server,
// configured as HTTPServer configures it.
type testServer struct {
	h    *Handler
	ts   *httptest.Server
	url  string // ws://127.0.0.1:PORT/echo
	addr string // 127.0.0.1:PORT
	log  *logRec
}

// startEcho starts a testServer; configure, if given, may change the
// http.Server before it starts. The cleanup closes the server and shuts the
// Handler down; tests close their own connections first.
func startEcho(t *testing.T, opts Options, configure ...func(*http.Server)) *testServer {
	t.Helper()
	rec := newLogRec(t)
	opts.Logger = slog.New(rec)
	h := New(opts)
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = h.HTTPServer(NewMux(h, nil))
	for _, f := range configure {
		f(ts.Config)
	}
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	addr := strings.TrimPrefix(ts.URL, "http://")
	return &testServer{h: h, ts: ts, url: "ws://" + addr + "/echo", addr: addr, log: rec}
}

// dial connects a gorilla client; the cleanup closes it.
func (s *testServer) dial(t *testing.T) *gorilla.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := gorilla.DefaultDialer.DialContext(ctx, s.url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", s.url, err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// rawDial opens a TCP connection and performs the opening handshake by
// hand, with a 10 s deadline on everything; the cleanup closes it.
func (s *testServer) rawDial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { nc.Close() })
	br, err := handshake(nc, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	return nc, br
}

// handshake writes an upgrade request with the sample key to rw and reads
// the 101 response.
func handshake(rw io.ReadWriter, host string) (*bufio.Reader, error) {
	req := "GET /echo HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + sampleKey + "\r\n\r\n"
	if _, err := io.WriteString(rw, req); err != nil {
		return nil, fmt.Errorf("write handshake: %w", err)
	}
	br := bufio.NewReader(rw)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("read handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != sampleAccept {
		return nil, fmt.Errorf("handshake response: %s, accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return br, nil
}

// writeFrame writes one frame, masked as a client's must be, with one Write.
func writeFrame(w io.Writer, fin bool, op byte, payload []byte) error {
	h := wsframe.Header{Fin: fin, Opcode: op, Masked: true, Key: [4]byte{1, 2, 3, 4}}
	_, err := w.Write(wsframe.AppendFrame(nil, h, payload))
	return err
}

// readFrame reads one frame from the server.
func readFrame(br *bufio.Reader) (wsframe.Header, []byte, error) {
	b, err := br.Peek(2)
	if err != nil {
		return wsframe.Header{}, nil, err
	}
	hdr := make([]byte, wsframe.HeaderLen(b[1]))
	if _, err := io.ReadFull(br, hdr); err != nil {
		return wsframe.Header{}, nil, err
	}
	h, _, err := wsframe.ParseHeader(hdr)
	if err != nil {
		return h, nil, err
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(br, p); err != nil {
		return h, nil, err
	}
	if h.Masked {
		wsframe.Mask(h.Key, 0, p)
	}
	return h, p, nil
}

func closeCode(p []byte) int {
	if len(p) < 2 {
		return wsframe.CloseNoStatus
	}
	return int(binary.BigEndian.Uint16(p))
}

// vars is the part of /debug/vars a Handler adds.
type vars struct {
	ConnsOpen    int64            `json:"conns_open"`
	ConnsTotal   int64            `json:"conns_total"`
	ConnsDropped int64            `json:"conns_dropped"`
	Rejected     map[string]int64 `json:"handshakes_rejected"`
	MessagesIn   int64            `json:"messages_in"`
	MessagesOut  int64            `json:"messages_out"`
	BytesIn      int64            `json:"bytes_in"`
	BytesOut     int64            `json:"bytes_out"`
	CloseSent    map[string]int64 `json:"close_codes_sent"`
	CloseRecv    map[string]int64 `json:"close_codes_received"`
	Uptime       *float64         `json:"uptime_seconds"`
	MemoryLimit  int64            `json:"memory_limit_bytes"`
	MemoryUsed   int64            `json:"memory_used_bytes"`
	MemoryPeak   int64            `json:"memory_peak_bytes"`
	MemoryWaits  int64            `json:"memory_waits"`
	MemoryRefuse int64            `json:"memory_refused"`
}

// getVars fetches /debug/vars and returns the Handler's part of it.
func (s *testServer) getVars(t *testing.T) vars {
	t.Helper()
	resp, err := s.ts.Client().Get(s.ts.URL + "/debug/vars")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("GET /debug/vars: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	var all map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatalf("GET /debug/vars: %v", err)
	}
	if _, ok := all["memstats"]; !ok {
		t.Errorf("GET /debug/vars: no memstats: the standard expvar variables are missing")
	}
	var v vars
	if err := json.Unmarshal(all[MetricsName], &v); err != nil {
		t.Fatalf("GET /debug/vars: %q: %v", MetricsName, err)
	}
	return v
}

func equalCounts(a, b map[string]int64) bool {
	for k, n := range a {
		if b[k] != n {
			return false
		}
	}
	for k, n := range b {
		if a[k] != n {
			return false
		}
	}
	return true
}

// nonZero returns the entries of m that are not 0.
func nonZero(m map[string]int64) map[string]int64 {
	out := make(map[string]int64)
	for k, n := range m {
		if n != 0 {
			out[k] = n
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{MaxMessage: 1 << 10})

	// Four rejected handshakes, one for each of four reasons.
	for _, tc := range []struct {
		method string
		header map[string]string
	}{
		{"POST", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": sampleKey}},
		{"GET", map[string]string{"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": sampleKey}},
		{"GET", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "8", "Sec-WebSocket-Key": sampleKey}},
		{"GET", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": sampleKey, "Origin": "http://evil.example"}},
	} {
		req, _ := http.NewRequest(tc.method, s.ts.URL+"/echo", nil)
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := s.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	// Three connections: one closes with 1000, one with 4001, one breaks
	// the protocol (an unmasked frame) and gets 1002.
	type msg struct {
		typ  int
		data []byte
	}
	sent := []msg{
		{gorilla.TextMessage, []byte("hello")},
		{gorilla.BinaryMessage, bytes.Repeat([]byte{0xab}, 1000)},
		{gorilla.TextMessage, nil},
		{gorilla.TextMessage, []byte("héllo wörld")},
	}
	var wantIn, wantBytes int64
	a, b := s.dial(t), s.dial(t)
	for i, m := range sent {
		c := a
		if i%2 == 1 {
			c = b
		}
		if err := c.WriteMessage(m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, data, err := c.ReadMessage()
		if err != nil || typ != m.typ || !bytes.Equal(data, m.data) {
			t.Fatalf("echo %d: got type %d, %d bytes, %v; want type %d, %d bytes", i, typ, len(data), err, m.typ, len(m.data))
		}
		wantIn++
		wantBytes += int64(len(m.data))
	}
	nc, br := s.rawDial(t)
	// Counted before the echo goes out (messages_out and bytes_out are
	// counted once it has, which may be after the client read it).
	if v := s.getVars(t); v.ConnsOpen != 3 || v.MessagesIn != wantIn || v.BytesIn != wantBytes {
		t.Errorf("while open: conns_open %d, messages_in %d, bytes_in %d; want 3, %d, %d",
			v.ConnsOpen, v.MessagesIn, v.BytesIn, wantIn, wantBytes)
	}

	for _, c := range []struct {
		conn *gorilla.Conn
		code int
	}{{a, 1000}, {b, 4001}} {
		c.conn.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(c.code, "bye"))
		_, _, err := c.conn.ReadMessage()
		if ce, ok := err.(*gorilla.CloseError); !ok || ce.Code != c.code {
			t.Errorf("close %d: got %v, want the server to echo %d", c.code, err, c.code)
		}
	}
	nc.Write([]byte{0x81, 0x02, 'h', 'i'}) // unmasked: RFC 6455 §5.1
	if h, p, err := readFrame(br); err != nil || h.Opcode != wsframe.OpClose || closeCode(p) != 1002 {
		t.Errorf("unmasked frame: got opcode %d code %d (%v), want Close 1002", h.Opcode, closeCode(p), err)
	}
	for range 3 {
		s.log.next(t)
	}

	got := s.getVars(t)
	want := vars{
		ConnsOpen: 0, ConnsTotal: 3, ConnsDropped: 0,
		Rejected:    map[string]int64{"method": 1, "bad_request": 1, "version": 1, "origin": 1},
		MessagesIn:  wantIn,
		MessagesOut: wantIn,
		BytesIn:     wantBytes,
		BytesOut:    wantBytes,
		CloseSent:   map[string]int64{"1000": 1, "4001": 1, "1002": 1},
		CloseRecv:   map[string]int64{"1000": 1, "4001": 1},
	}
	if got.ConnsOpen != want.ConnsOpen || got.ConnsTotal != want.ConnsTotal || got.ConnsDropped != want.ConnsDropped {
		t.Errorf("conns open/total/dropped: got %d/%d/%d, want %d/%d/%d",
			got.ConnsOpen, got.ConnsTotal, got.ConnsDropped, want.ConnsOpen, want.ConnsTotal, want.ConnsDropped)
	}
	if got.MessagesIn != want.MessagesIn || got.MessagesOut != want.MessagesOut || got.BytesIn != want.BytesIn || got.BytesOut != want.BytesOut {
		t.Errorf("messages in/out, bytes in/out: got %d/%d, %d/%d; want %d/%d, %d/%d",
			got.MessagesIn, got.MessagesOut, got.BytesIn, got.BytesOut, want.MessagesIn, want.MessagesOut, want.BytesIn, want.BytesOut)
	}
	if !equalCounts(nonZero(got.Rejected), want.Rejected) {
		t.Errorf("handshakes_rejected: got %v, want %v", got.Rejected, want.Rejected)
	}
	if got.Rejected["limit"] != 0 || len(got.Rejected) != len(rejectReasons) {
		t.Errorf("handshakes_rejected: got %v, want every reason listed", got.Rejected)
	}
	if !equalCounts(got.CloseSent, want.CloseSent) || !equalCounts(got.CloseRecv, want.CloseRecv) {
		t.Errorf("close codes sent, received: got %v, %v; want %v, %v", got.CloseSent, got.CloseRecv, want.CloseSent, want.CloseRecv)
	}
	if got.Uptime == nil || *got.Uptime < 0 {
		t.Errorf("uptime_seconds: got %v, want a number of seconds", got.Uptime)
	}
}

func TestHandshakeRejected(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{})
	good := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": sampleKey}
	with := func(k, v string) map[string]string {
		m := make(map[string]string)
		for k, v := range good {
			m[k] = v
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		method string
		header map[string]string
		status int
		reason string
		extra  [2]string // a header the response must carry
	}{
		{"post", "POST", good, 405, "method", [2]string{"Allow", "GET"}},
		{"no_upgrade", "GET", with("Upgrade", ""), 400, "bad_request", [2]string{}},
		{"no_connection", "GET", with("Connection", ""), 400, "bad_request", [2]string{}},
		{"short_key", "GET", with("Sec-WebSocket-Key", "c2hvcnQ="), 400, "bad_request", [2]string{}},
		{"version_8", "GET", with("Sec-WebSocket-Version", "8"), 426, "version", [2]string{"Sec-WebSocket-Version", "13"}},
		{"foreign_origin", "GET", with("Origin", "http://evil.example"), 403, "origin", [2]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.getVars(t).Rejected[tc.reason]
			req, _ := http.NewRequest(tc.method, s.ts.URL+"/echo", nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := s.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status: got %s, want %d", resp.Status, tc.status)
			}
			if k := tc.extra[0]; k != "" && resp.Header.Get(k) != tc.extra[1] {
				t.Errorf("%s: got %q, want %q", k, resp.Header.Get(k), tc.extra[1])
			}
			if got := s.getVars(t).Rejected[tc.reason]; got != before+1 {
				t.Errorf("handshakes_rejected[%s]: got %d, want %d", tc.reason, got, before+1)
			}
		})
	}
}

func TestMaxConns(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{MaxConns: 2})
	a, b := s.dial(t), s.dial(t)

	_, resp, err := gorilla.DefaultDialer.Dial(s.url, nil)
	if !errors.Is(err, gorilla.ErrBadHandshake) || resp == nil {
		t.Fatalf("third dial: got %v, want a failed handshake", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third dial: got %s with Retry-After %q, want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	if got := s.getVars(t).Rejected["limit"]; got != 1 {
		t.Errorf("handshakes_rejected[limit]: got %d, want 1", got)
	}
	for i, c := range []*gorilla.Conn{a, b} {
		want := fmt.Sprintf("still here %d", i)
		if err := c.WriteMessage(gorilla.TextMessage, []byte(want)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.ReadMessage(); err != nil || string(got) != want {
			t.Errorf("conn %d after the limit: got %q, %v; want %q", i, got, err, want)
		}
	}
	resp, err = s.ts.Client().Get(s.ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz at the limit: got %s, want 200", resp.Status)
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{})
	get := func() (int, string) {
		t.Helper()
		resp, err := s.ts.Client().Get(s.ts.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(); code != 200 || body != "ok\n" {
		t.Errorf("before shutdown: got %d %q, want 200 \"ok\\n\"", code, body)
	}
	if err := s.h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(); code != 503 {
		t.Errorf("after shutdown: got %d, want 503", code)
	}
}

// TestTLS serves wss:// as main does (HTTPServer, a certificate loaded from
// files, ServeTLS, which offers HTTP/2 too), and checks that WebSocket works
// over HTTP/1.1 while an HTTP/2 request for /echo gets a clear error and
// never reaches x/net, which would panic when Hijack fails.
func TestTLS(t *testing.T) {
	t.Parallel()
	tcert := testpeer.NewCert(t)
	pool := tcert.Pool
	cert, err := tls.LoadX509KeyPair(tcert.CertFile, tcert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	rec := newLogRec(t)
	var errLog syncBuffer
	h := New(Options{Logger: slog.New(rec), HandshakeTimeout: 500 * time.Millisecond})
	srv := h.HTTPServer(NewMux(h, nil))
	srv.ErrorLog.SetOutput(io.MultiWriter(&errLog, t.Output()))
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("http shutdown: %v", err)
		}
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
		if strings.Contains(errLog.String(), "panic") {
			t.Errorf("the server panicked:\n%s", errLog.String())
		}
	})
	addr := ln.Addr().String()

	t.Run("wss_echo", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := client.Dial(ctx, "wss://"+addr+"/echo", client.Options{TLSConfig: &tls.Config{RootCAs: pool}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		for _, want := range []string{"over TLS", strings.Repeat("x", 70<<10)} {
			if err := websocket.Message.Send(conn.Conn, want); err != nil {
				t.Fatal(err)
			}
			var got string
			if err := websocket.Message.Receive(conn.Conn, &got); err != nil || got != want {
				t.Fatalf("echo: got %d bytes, %v; want %d bytes", len(got), err, len(want))
			}
		}
		conn.WriteClose(wsframe.CloseNormal, "")
		if e := rec.next(t); e.code != 1000 || e.by != "peer" {
			t.Errorf("end: got %+v, want code 1000 by peer", e)
		}
	})

	// An HTTP/2 client: HTTP/2 forbids the Connection and Upgrade headers
	// (RFC 9113, Section 8.2.2), so the nearest it gets to an upgrade is a
	// GET with the WebSocket headers it may send.
	h2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer h2.CloseIdleConnections()
	t.Run("http2_healthz", func(t *testing.T) {
		resp, err := (&http.Client{Transport: h2, Timeout: 10 * time.Second}).Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Errorf("GET /healthz: got %s %s, want HTTP/2.0 200: the server must offer HTTP/2", resp.Proto, resp.Status)
		}
	})
	t.Run("http2_echo", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "https://"+addr+"/echo", nil)
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", sampleKey)
		resp, err := (&http.Client{Transport: h2, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusHTTPVersionNotSupported || !strings.Contains(string(body), "HTTP/1.1 required") {
			t.Errorf("GET /echo over HTTP/2: got %s %s %q, want HTTP/2.0 505 \"HTTP/1.1 required\"", resp.Proto, resp.Status, body)
		}
	})
	t.Run("silent_tls_client", func(t *testing.T) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(nc); err != nil {
			t.Errorf("a client that never starts the TLS handshake: %v; want the server to hang up after the handshake timeout", err)
		}
	})
	if got := h.metrics.rejected.Get(rejectHTTPVersion).String(); got != "1" {
		t.Errorf("handshakes_rejected[http_version]: got %s, want 1", got)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestHandshakeTimeout checks that HTTPServer drops a client that stalls
// before its upgrade request is complete (slowloris), or sends nothing, and
// an HTTP keep-alive connection that goes quiet.
func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{HandshakeTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	tests := []struct{ name, send string }{
		{"nothing", ""},
		{"half_request_line", "GET /echo HT"},
		{"half_headers", "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"},
		{"keepalive_idle", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nc, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(nc, tc.send); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(nc)
			if err != nil {
				t.Fatalf("read: %v; want the server to hang up after 300ms", err)
			}
			if tc.name == "keepalive_idle" && !bytes.HasPrefix(got, []byte("HTTP/1.1 200 OK")) {
				t.Errorf("got %q, want a 200 response before the server hangs up", got)
			}
			t.Logf("the server sent %q and hung up", got)
		})
	}
}

// TestCloseLog checks the line that ends each connection, and the close
// codes counted, for every way a connection ends.
func TestCloseLog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     Options
		run      func(t *testing.T, s *testServer) // ends the connection
		want     endLine
		sent     map[string]int64
		received map[string]int64
	}{
		{name: "peer_close_1000", run: func(t *testing.T, s *testServer) {
			c := s.dial(t)
			c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, ""))
			c.ReadMessage()
		}, want: endLine{"closed", 1000, "peer", ""}, sent: map[string]int64{"1000": 1}, received: map[string]int64{"1000": 1}},
		{name: "peer_close_4001", run: func(t *testing.T, s *testServer) {
			c := s.dial(t)
			c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(4001, "app"))
			c.ReadMessage()
		}, want: endLine{"closed", 4001, "peer", ""}, sent: map[string]int64{"4001": 1}, received: map[string]int64{"4001": 1}},
		{name: "peer_close_no_code", run: func(t *testing.T, s *testServer) {
			nc, br := s.rawDial(t)
			writeFrame(nc, true, wsframe.OpClose, nil)
			readFrame(br)
		}, want: endLine{"closed", 1005, "peer", ""}, sent: map[string]int64{"1005": 1}, received: map[string]int64{"1005": 1}},
		{name: "protocol_error", run: func(t *testing.T, s *testServer) {
			nc, br := s.rawDial(t)
			nc.Write([]byte{0x81, 0x02, 'h', 'i'}) // unmasked: RFC 6455 §5.1
			readFrame(br)
		}, want: endLine{"protocol error", 1002, "server", ""}, sent: map[string]int64{"1002": 1}},
		{name: "too_big", opts: Options{MaxMessage: 16}, run: func(t *testing.T, s *testServer) {
			nc, br := s.rawDial(t)
			writeFrame(nc, true, wsframe.OpBinary, make([]byte, 17))
			readFrame(br)
		}, want: endLine{"protocol error", 1009, "server", ""}, sent: map[string]int64{"1009": 1}},
		{name: "dropped", run: func(t *testing.T, s *testServer) {
			nc, _ := s.rawDial(t)
			nc.Close()
		}, want: endLine{"closed", 1006, "peer", ""}},
		{name: "idle", opts: Options{IdleTimeout: 200 * time.Millisecond}, run: func(t *testing.T, s *testServer) {
			nc, br := s.rawDial(t)
			if h, p, err := readFrame(br); err != nil || h.Opcode != wsframe.OpClose || closeCode(p) != 1001 {
				t.Errorf("silent peer: got opcode %d code %d (%v), want Close 1001", h.Opcode, closeCode(p), err)
			}
			writeFrame(nc, true, wsframe.OpClose, []byte{0x03, 0xe9})
		}, want: endLine{"closed", 1001, "server", "idle timeout"}, sent: map[string]int64{"1001": 1}, received: map[string]int64{"1001": 1}},
		{name: "shutdown", run: func(t *testing.T, s *testServer) {
			c := s.dial(t)
			errc := make(chan error, 1)
			go func() { errc <- s.h.Shutdown(context.Background()) }()
			if _, _, err := c.ReadMessage(); !gorilla.IsCloseError(err, 1001) {
				t.Errorf("read: got %v, want Close 1001", err)
			}
			if err := <-errc; err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}, want: endLine{"closed", 1001, "server", "shutdown"}, sent: map[string]int64{"1001": 1}, received: map[string]int64{"1001": 1}},
		{name: "shutdown_unanswered", run: func(t *testing.T, s *testServer) {
			s.rawDial(t) // and never reads or answers
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			// The wait for the peer's Close and ctx end at the same time:
			// Shutdown may see either first.
			if err := s.h.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("shutdown: got %v, want nil or %v", err, context.DeadlineExceeded)
			}
		}, want: endLine{"closed", 1001, "server", "shutdown"}, sent: map[string]int64{"1001": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startEcho(t, tc.opts)
			tc.run(t, s)
			if got := s.log.next(t); got != tc.want {
				t.Errorf("end line: got %+v, want %+v", got, tc.want)
			}
			v := s.getVars(t)
			if !equalCounts(v.CloseSent, tc.sent) || !equalCounts(v.CloseRecv, tc.received) {
				t.Errorf("close codes sent, received: got %v, %v; want %v, %v", v.CloseSent, v.CloseRecv, tc.sent, tc.received)
			}
			if wantDropped := int64(0); tc.want.code == 1006 {
				if v.ConnsDropped != 1 {
					t.Errorf("conns_dropped: got %d, want 1", v.ConnsDropped)
				}
			} else if v.ConnsDropped != wantDropped {
				t.Errorf("conns_dropped: got %d, want %d", v.ConnsDropped, wantDropped)
			}
		})
	}
}

// TestIdleTimeoutTCP checks the idle timeout on real sockets, with short
// timeouts: a silent peer gets pings, then Close 1001; and a peer that
// stopped reading, with an echo stuck behind it, is dropped too.
func TestIdleTimeoutTCP(t *testing.T) {
	t.Parallel()
	t.Run("silent_peer", func(t *testing.T) {
		t.Parallel()
		s := startEcho(t, Options{PingInterval: 50 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
		_, br := s.rawDial(t)
		pings := 0
		for {
			h, p, err := readFrame(br)
			if err != nil {
				t.Fatalf("after %d pings: %v; want Close 1001", pings, err)
			}
			if h.Opcode == wsframe.OpPing {
				pings++
				continue
			}
			if h.Opcode != wsframe.OpClose || closeCode(p) != 1001 || string(p[2:]) != "idle timeout" {
				t.Fatalf("got opcode %d %q, want Close 1001 \"idle timeout\"", h.Opcode, p)
			}
			break
		}
		if pings == 0 {
			t.Errorf("got no ping before the Close")
		}
		if _, _, err := readFrame(br); err != io.EOF {
			t.Errorf("after the Close: %v, want EOF: the server hangs up when the peer does not answer", err)
		}
		if e := s.log.next(t); e != (endLine{"closed", 1001, "server", "idle timeout"}) {
			t.Errorf("end line: got %+v", e)
		}
	})
	t.Run("peer_stopped_reading", func(t *testing.T) {
		t.Parallel()
		// Small socket buffers each way, so that an echo of 256 KiB cannot
		// fit in them and blocks.
		s := startEcho(t, Options{IdleTimeout: time.Second}, func(srv *http.Server) {
			srv.ConnState = func(nc net.Conn, state http.ConnState) {
				if state == http.StateNew {
					nc.(*net.TCPConn).SetWriteBuffer(16 << 10)
				}
			}
		})
		frame := wsframe.AppendFrame(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpBinary, Masked: true, Key: [4]byte{1, 2, 3, 4}}, make([]byte, 256<<10))
		nc, _ := s.rawDial(t)
		nc.(*net.TCPConn).SetReadBuffer(4 << 10)
		if _, err := nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		if e := s.log.next(t); e != (endLine{"closed", 1001, "server", "idle timeout"}) {
			t.Errorf("end line: got %+v", e)
		}
	})
}

// TestShutdownInFlight starts shutdown while 100 clients each have a
// message in flight: half sent a whole message just before, half sent the
// first fragment of one and send the rest only once shutdown has begun.
// Every client must get its echo, then Close 1001, and Shutdown must return
// nil; /healthz says 503 meanwhile.
func TestShutdownInFlight(t *testing.T) {
	t.Parallel()
	const n = 100
	s := startEcho(t, Options{PingInterval: time.Second, IdleTimeout: 5 * time.Second})

	type peer struct {
		ws   *gorilla.Conn // whole messages
		nc   net.Conn      // fragments, raw
		br   *bufio.Reader
		want []byte
	}
	peers := make([]*peer, n)
	for i := range peers {
		p := &peer{want: []byte(fmt.Sprintf("message %d: %s", i, strings.Repeat("z", i*37)))}
		if i%2 == 0 {
			p.ws = s.dial(t)
			// One echo first, so that the server is reading.
			p.ws.WriteMessage(gorilla.TextMessage, []byte("warm up"))
			if _, _, err := p.ws.ReadMessage(); err != nil {
				t.Fatal(err)
			}
		} else {
			p.nc, p.br = s.rawDial(t)
		}
		peers[i] = p
	}
	for _, p := range peers {
		var err error
		if p.ws != nil {
			err = p.ws.WriteMessage(gorilla.TextMessage, p.want)
		} else {
			err = writeFrame(p.nc, false, wsframe.OpText, p.want[:5])
		}
		if err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- s.h.Shutdown(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := s.ts.Client().Get(s.ts.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz: still %s 10s after shutdown began", resp.Status)
		}
	}
	select {
	case err := <-shutdownErr:
		t.Fatalf("shutdown returned %v with messages still under way", err)
	default:
	}

	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			if p.ws != nil {
				typ, got, err := p.ws.ReadMessage()
				if err != nil || typ != gorilla.TextMessage || !bytes.Equal(got, p.want) {
					t.Errorf("peer %d: echo: got %d bytes, %v; want %d bytes", i, len(got), err, len(p.want))
					return
				}
				if _, _, err := p.ws.ReadMessage(); !gorilla.IsCloseError(err, 1001) {
					t.Errorf("peer %d: after the echo: %v, want Close 1001", i, err)
				}
				return
			}
			if err := writeFrame(p.nc, true, wsframe.OpContinuation, p.want[5:]); err != nil {
				t.Errorf("peer %d: %v", i, err)
				return
			}
			h, got, err := readFrame(p.br)
			if err != nil || h.Opcode != wsframe.OpText || !bytes.Equal(got, p.want) {
				t.Errorf("peer %d: echo: got opcode %d, %d bytes, %v; want text, %d bytes", i, h.Opcode, len(got), err, len(p.want))
				return
			}
			h, got, err = readFrame(p.br)
			if err != nil || h.Opcode != wsframe.OpClose || closeCode(got) != 1001 {
				t.Errorf("peer %d: after the echo: opcode %d code %d, %v; want Close 1001", i, h.Opcode, closeCode(got), err)
				return
			}
			writeFrame(p.nc, true, wsframe.OpClose, got[:2])
		})
	}
	wg.Wait()
	if err := <-shutdownErr; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	for range n {
		if e := s.log.next(t); e != (endLine{"closed", 1001, "server", "shutdown"}) {
			t.Errorf("end line: got %+v, want code 1001 by server for shutdown", e)
		}
	}
	v := s.getVars(t)
	if v.MessagesIn != n+n/2 || v.MessagesOut != n+n/2 || v.CloseSent["1001"] != n {
		t.Errorf("messages in/out %d/%d, 1001 sent %d; want %d/%d, %d", v.MessagesIn, v.MessagesOut, v.CloseSent["1001"], n+n/2, n+n/2, n)
	}
}

// TestGoroutinesReturn checks that the goroutine count returns to its
// starting level once clients have come, echoed (with pings going on) and
// gone. It counts every goroutine in the process, so it does not run in
// parallel; parallel tests start only after it ends.
func TestGoroutinesReturn(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		s := startEcho(t, Options{PingInterval: 10 * time.Millisecond, IdleTimeout: time.Second})
		var wg sync.WaitGroup
		for i := range 50 {
			c := s.dial(t)
			wg.Go(func() {
				for j := range 20 {
					want := fmt.Sprintf("%d/%d", i, j)
					c.WriteMessage(gorilla.TextMessage, []byte(want))
					if _, got, err := c.ReadMessage(); err != nil || string(got) != want {
						t.Errorf("echo: got %q, %v; want %q", got, err, want)
						return
					}
				}
				c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, ""))
				c.ReadMessage()
				c.Close()
			})
		}
		wg.Wait()
		for range 50 {
			s.log.next(t)
		}
		s.ts.Close()
		if err := s.h.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}()
	// Goroutines that have finished their work still need a moment to exit.
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), strings.Join(leakcheck.Interesting(), "\n\n"))
		}
		<-tick.C
	}
}

// Keepalive timing, in synctest bubbles over net.Pipe with the default
// intervals (30 s pings, 60 s idle timeout): ServeHTTP runs with a
// ResponseWriter whose Hijack hands over one end of the pipe.

// pipeWriter is the ResponseWriter of a request that arrived over a pipe.
type pipeWriter struct {
	hdr  http.Header
	conn net.Conn
}

func (w *pipeWriter) Header() http.Header         { return w.hdr }
func (w *pipeWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *pipeWriter) WriteHeader(int)             {}
func (w *pipeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// pipePeer connects a client to h over net.Pipe and does the opening
// handshake; done is closed when ServeHTTP returns.
func pipePeer(t *testing.T, h *Handler) (peer net.Conn, br *bufio.Reader, done <-chan struct{}) {
	t.Helper()
	srvEnd, peer := net.Pipe()
	req := httptest.NewRequest("GET", "http://example.com/echo", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", sampleKey)
	d := make(chan struct{})
	go func() {
		defer close(d)
		h.ServeHTTP(&pipeWriter{hdr: make(http.Header), conn: srvEnd}, req)
	}()
	br = bufio.NewReader(peer)
	resp, err := http.ReadResponse(br, req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake over the pipe: %v, %v", resp, err)
	}
	return peer, br, d
}

// frameAt is a frame the peer read, and when.
type frameAt struct {
	at      time.Duration
	op      byte
	payload []byte
}

// readAll reads frames until the server hangs up, and returns them and the
// time of the hang-up. If answer, it answers pings with pongs and a Close
// with a Close; otherwise it only reads.
func readAll(peer net.Conn, br *bufio.Reader, start time.Time, answer bool) <-chan []frameAt {
	out := make(chan []frameAt, 1)
	go func() {
		var frames []frameAt
		for {
			h, p, err := readFrame(br)
			if err != nil {
				frames = append(frames, frameAt{at: time.Since(start), op: 0xff})
				out <- frames
				return
			}
			frames = append(frames, frameAt{time.Since(start), h.Opcode, p})
			if answer && h.Opcode == wsframe.OpPing {
				writeFrame(peer, true, wsframe.OpPong, p)
			}
			if answer && h.Opcode == wsframe.OpClose {
				writeFrame(peer, true, wsframe.OpClose, p[:min(2, len(p))])
			}
		}
	}()
	return out
}

func describe(frames []frameAt) string {
	var b strings.Builder
	for _, f := range frames {
		name := map[byte]string{wsframe.OpText: "text", wsframe.OpBinary: "binary", wsframe.OpPing: "ping",
			wsframe.OpClose: "close", 0xff: "EOF"}[f.op]
		if f.op == wsframe.OpClose {
			name += " " + strconv.Itoa(closeCode(f.payload))
		}
		fmt.Fprintf(&b, "%v %s; ", f.at, name)
	}
	return b.String()
}

func TestKeepalive(t *testing.T) {
	t.Parallel()
	const ping, idle = 30 * time.Second, 60 * time.Second
	opts := func(t *testing.T) (Options, *logRec) {
		rec := newLogRec(t)
		return Options{PingInterval: ping, IdleTimeout: idle, Logger: slog.New(rec)}, rec
	}

	// A peer that reads but never answers gets a ping every 30 s and
	// Close 1001 at 60 s, and the server hangs up 1 s later.
	t.Run("silent_peer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o, rec := opts(t)
			h := New(o)
			start := time.Now()
			peer, br, done := pipePeer(t, h)
			defer peer.Close()
			frames := <-readAll(peer, br, start, false)
			<-done
			want := []frameAt{{ping, wsframe.OpPing, nil}, {idle, wsframe.OpClose, nil}, {idle + idleCloseWait, 0xff, nil}}
			if len(frames) != len(want) {
				t.Fatalf("got %s\nwant %s", describe(frames), describe(want))
			}
			for i, f := range frames {
				if f.at != want[i].at || f.op != want[i].op {
					t.Fatalf("got %s\nwant %s", describe(frames), describe(want))
				}
			}
			if c := frames[1].payload; closeCode(c) != 1001 || string(c[2:]) != "idle timeout" {
				t.Errorf("close: got %q, want 1001 \"idle timeout\"", c)
			}
			if e := rec.next(t); e != (endLine{"closed", 1001, "server", "idle timeout"}) {
				t.Errorf("end line: got %+v", e)
			}
		})
	})

	// A peer that only answers pings stays open for five idle periods and
	// still echoes.
	t.Run("answers_pings", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o, rec := opts(t)
			h := New(o)
			start := time.Now()
			peer, br, done := pipePeer(t, h)
			defer peer.Close()
			framesc := readAll(peer, br, start, true)
			time.Sleep(5*idle + time.Second)
			writeFrame(peer, true, wsframe.OpText, []byte("still here"))
			synctest.Wait()
			writeFrame(peer, true, wsframe.OpClose, []byte{0x03, 0xe8})
			frames := <-framesc
			<-done
			pings, echoed := 0, false
			for _, f := range frames {
				switch {
				case f.op == wsframe.OpPing && !echoed:
					pings++
				case f.op == wsframe.OpText && string(f.payload) == "still here":
					echoed = true
				case f.op == wsframe.OpClose && f.at < 5*idle:
					t.Errorf("closed too early: %s", describe(frames))
				}
			}
			if pings != int(5*idle/ping) || !echoed {
				t.Errorf("got %d pings, echoed %v; want %d pings and the echo: %s", pings, echoed, 5*idle/ping, describe(frames))
			}
			if e := rec.next(t); e != (endLine{"closed", 1000, "peer", ""}) {
				t.Errorf("end line: got %+v", e)
			}
		})
	})

	// A message whose payload trickles in, a piece every 40 s, keeps the
	// connection alive for longer than the idle timeout.
	t.Run("slow_payload", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o, rec := opts(t)
			o.PingInterval = 0
			h := New(o)
			start := time.Now()
			peer, br, done := pipePeer(t, h)
			defer peer.Close()
			framesc := readAll(peer, br, start, false)
			payload := bytes.Repeat([]byte("0123456789"), 400)
			frame := wsframe.AppendFrame(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpBinary, Masked: true, Key: [4]byte{9, 8, 7, 6}}, payload)
			for i := 0; i < len(frame); i += 1000 {
				if i > 0 {
					time.Sleep(40 * time.Second)
				}
				if _, err := peer.Write(frame[i:min(i+1000, len(frame))]); err != nil {
					t.Fatal(err)
				}
			}
			synctest.Wait()
			writeFrame(peer, true, wsframe.OpClose, []byte{0x03, 0xe8})
			frames := <-framesc
			<-done
			if len(frames) != 3 || frames[0].op != wsframe.OpBinary || !bytes.Equal(frames[0].payload, payload) ||
				frames[1].op != wsframe.OpClose || closeCode(frames[1].payload) != 1000 {
				t.Errorf("got %s; want the echo at %v, then Close 1000", describe(frames), 4*40*time.Second)
			}
			if e := rec.next(t); e != (endLine{"closed", 1000, "peer", ""}) {
				t.Errorf("end line: got %+v", e)
			}
		})
	})

	// A message that trickles in, a byte every 10 s, is closed with 1008
	// once it has taken the message timeout, checked a quarter of it apart:
	// between 60 s and 75 s after its first frame.
	t.Run("message_timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o, rec := opts(t)
			o.PingInterval, o.IdleTimeout, o.MessageTimeout = 0, 0, idle
			h := New(o)
			start := time.Now()
			peer, br, done := pipePeer(t, h)
			defer peer.Close()
			framesc := readAll(peer, br, start, true)
			writeFrame(peer, false, wsframe.OpBinary, []byte("x"))
			for {
				time.Sleep(10 * time.Second)
				if writeFrame(peer, false, wsframe.OpContinuation, []byte("x")) != nil {
					break // the server has hung up
				}
			}
			frames := <-framesc
			<-done
			if len(frames) != 2 || frames[0].op != wsframe.OpClose || closeCode(frames[0].payload) != 1008 ||
				frames[0].at < idle || frames[0].at > idle+idle/4 {
				t.Errorf("got %s; want Close 1008 between %v and %v", describe(frames), idle, idle+idle/4)
			}
			if e := rec.next(t); e != (endLine{"closed", 1008, "server", "message timeout"}) {
				t.Errorf("end line: got %+v", e)
			}
		})
	})

	// Shutdown with keepalive on: the quiet connection gets Close 1001
	// once the drain's grace has passed twice (the second time waited by the
	// reader itself), and no more pings.
	t.Run("shutdown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o, rec := opts(t)
			h := New(o)
			start := time.Now()
			peer, br, done := pipePeer(t, h)
			defer peer.Close()
			framesc := readAll(peer, br, start, true)
			time.Sleep(ping + ping/2)
			ctx, cancel := context.WithTimeout(context.Background(), 10*idle)
			defer cancel()
			if err := h.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if d := time.Since(start); d != ping+ping/2+2*drainGrace {
				t.Errorf("shutdown took until %v, want %v", d, ping+ping/2+2*drainGrace)
			}
			frames := <-framesc
			<-done
			if len(frames) != 3 || frames[0].op != wsframe.OpPing || frames[1].op != wsframe.OpClose || closeCode(frames[1].payload) != 1001 {
				t.Errorf("got %s; want a ping, then Close 1001", describe(frames))
			}
			if e := rec.next(t); e != (endLine{"closed", 1001, "server", "shutdown"}) {
				t.Errorf("end line: got %+v", e)
			}
		})
	})

	// A message under way when the drain's grace ends is read to its end
	// and echoed; then the connection gets its Close 1001 after one more
	// grace period, not at shutdown's deadline.
	t.Run("shutdown_late_fragment", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o, rec := opts(t)
			h := New(o)
			start := time.Now()
			peer, br, done := pipePeer(t, h)
			defer peer.Close()
			framesc := readAll(peer, br, start, true)
			writeFrame(peer, false, wsframe.OpText, []byte("first half, "))
			synctest.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 3*idle)
			defer cancel()
			shutdownErr := make(chan error, 1)
			go func() { shutdownErr <- h.Shutdown(ctx) }()
			time.Sleep(10 * time.Second)
			writeFrame(peer, true, wsframe.OpContinuation, []byte("second half"))
			if err := <-shutdownErr; err != nil {
				t.Errorf("shutdown: %v", err)
			}
			frames := <-framesc
			<-done
			if len(frames) != 3 || frames[0].op != wsframe.OpText || string(frames[0].payload) != "first half, second half" ||
				frames[1].op != wsframe.OpClose || closeCode(frames[1].payload) != 1001 || frames[1].at != 10*time.Second+drainGrace {
				t.Errorf("got %s; want the echo at 10s and Close 1001 at %v", describe(frames), 10*time.Second+drainGrace)
			}
			if e := rec.next(t); e != (endLine{"closed", 1001, "server", "shutdown"}) {
				t.Errorf("end line: got %+v", e)
			}
		})
	})

	// The drain's deadline is set by Shutdown's goroutine; a reader that
	// gets to read only after it has passed (here: blocked writing the 101
	// response into a pipe nobody reads yet; in production, a busy CPU)
	// must still read and echo the message waiting for it.
	t.Run("shutdown_reader_late", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o, rec := opts(t)
			h := New(o)
			srvEnd, peer := net.Pipe()
			defer peer.Close()
			req := httptest.NewRequest("GET", "http://example.com/echo", nil)
			for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": sampleKey} {
				req.Header.Set(k, v)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(&pipeWriter{hdr: make(http.Header), conn: srvEnd}, req)
			}()
			synctest.Wait() // the server is blocked writing the 101 response
			shutdownErr := make(chan error, 1)
			go func() { shutdownErr <- h.Shutdown(context.Background()) }()
			time.Sleep(time.Second) // the grace deadline passes
			br := bufio.NewReader(peer)
			if resp, err := http.ReadResponse(br, req); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake: %v", err)
			}
			start := time.Now()
			framesc := readAll(peer, br, start, true)
			writeFrame(peer, true, wsframe.OpText, []byte("sent while the reader was late"))
			if err := <-shutdownErr; err != nil {
				t.Errorf("shutdown: %v", err)
			}
			frames := <-framesc
			<-done
			if len(frames) != 3 || frames[0].op != wsframe.OpText || frames[1].op != wsframe.OpClose || closeCode(frames[1].payload) != 1001 {
				t.Errorf("got %s; want the echo, then Close 1001", describe(frames))
			}
			if e := rec.next(t); e != (endLine{"closed", 1001, "server", "shutdown"}) {
				t.Errorf("end line: got %+v", e)
			}
		})
	})

	// Shutdown owns a connection's end once it has begun: a message under
	// way may take until the drain's deadline (shutdown's, less the time kept
	// for the closing handshake), longer than the idle timeout.
	t.Run("shutdown_mid_message", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			o, rec := opts(t)
			h := New(o)
			start := time.Now()
			peer, br, done := pipePeer(t, h)
			defer peer.Close()
			framesc := readAll(peer, br, start, false)
			writeFrame(peer, false, wsframe.OpText, []byte("first half"))
			synctest.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 3*idle)
			defer cancel()
			h.Shutdown(ctx) // nil or DeadlineExceeded: the drain and the context end together
			frames := <-framesc
			<-done
			for _, f := range frames {
				if drainBy := 3*idle - maxCloseReserve; f.op != 0xff && f.at < drainBy {
					t.Errorf("got %s; want nothing before the drain's deadline at %v", describe(frames), drainBy)
					break
				}
			}
			if e := rec.next(t); e.code == 1001 && e.reason == "idle timeout" || e.by != "server" {
				t.Errorf("end line: got %+v, want the server to end it for shutdown", e)
			}
		})
	})
}

// TestMemoryBudget checks what a connection whose message does not fit in
// MaxMemory sees (Close 1013 after MemoryWait, while it was read no
// further), and that the closing log line and the metrics show it.
func TestMemoryBudget(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{MaxMemory: 2 << 20, MemoryWait: 300 * time.Millisecond})
	// holder's first fragment of 1 MiB is held while it waits for the rest.
	holder, _ := s.rawDial(t)
	if err := writeFrame(holder, false, wsframe.OpBinary, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.getVars(t).MemoryUsed < 1<<20 {
		if time.Now().After(deadline) {
			t.Fatal("the server does not hold the first fragment")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// big's 1.5 MiB message needs more than is left outside the reserve.
	big, br := s.rawDial(t)
	go writeFrame(big, true, wsframe.OpBinary, make([]byte, 3<<19)) // fails once the server hangs up
	start := time.Now()
	h, p, err := readFrame(br)
	if err != nil || h.Opcode != wsframe.OpClose || closeCode(p) != wsframe.CloseTryAgainLater {
		t.Fatalf("got %+v %q %v, want Close 1013", h, p, err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("Close 1013 after %v, want it after MemoryWait (300ms)", d)
	}
	if e := s.log.next(t); e != (endLine{"closed", 1013, "server", "memory budget spent"}) {
		t.Errorf("end line: got %+v", e)
	}
	v := s.getVars(t)
	if v.MemoryLimit != 2<<20 || v.MemoryWaits != 1 || v.MemoryRefuse != 1 || v.MemoryPeak < 1<<20 || v.MemoryPeak > 2<<20 {
		t.Errorf("metrics: limit %d, waits %d, refused %d, peak %d; want 2 MiB, 1, 1, 1-2 MiB", v.MemoryLimit, v.MemoryWaits, v.MemoryRefuse, v.MemoryPeak)
	}
}

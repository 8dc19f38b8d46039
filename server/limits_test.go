package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	gorilla "github.com/gorilla/websocket"
)

// lineRec is a slog.Handler that keeps every record it is given (and logs
// it under the test).
type lineRec struct {
	slog.Handler
	mu    *sync.Mutex
	lines *[]slog.Record
}

func newLineRec(t testing.TB) *lineRec {
	return &lineRec{Handler: slog.NewTextHandler(t.Output(), nil), mu: new(sync.Mutex), lines: new([]slog.Record)}
}

func (l *lineRec) Handle(ctx context.Context, r slog.Record) error {
	l.mu.Lock()
	*l.lines = append(*l.lines, r.Clone())
	l.mu.Unlock()
	return l.Handler.Handle(ctx, r)
}

func (l *lineRec) WithAttrs(as []slog.Attr) slog.Handler {
	return &lineRec{Handler: l.Handler.WithAttrs(as), mu: l.mu, lines: l.lines}
}

// named returns the attributes of each record with message msg.
func (l *lineRec) named(msg string) []map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]string
	for _, r := range *l.lines {
		if r.Message != msg {
			continue
		}
		m := make(map[string]string)
		r.Attrs(func(a slog.Attr) bool {
			m[a.Key] = a.Value.String()
			return true
		})
		out = append(out, m)
	}
	return out
}

// statusOf sends req on a new TCP connection to addr and returns the status
// line's code, from addr's point of view coming from local (if not empty).
func statusOf(t *testing.T, addr, local, req string) (int, http.Header) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func upgradeRequest(proto, host string) string {
	return "GET /echo " + proto + "\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + sampleKey + "\r\n\r\n"
}

// An upgrade request must be HTTP/1.1 or later (RFC 6455, Section 4.1). Before
// the change, HTTP/1.0 got 101.
func TestHTTP10Rejected(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{})
	for _, tc := range []struct {
		proto string
		want  int
	}{
		{"HTTP/1.0", http.StatusHTTPVersionNotSupported},
		{"HTTP/1.1", http.StatusSwitchingProtocols},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			if got, _ := statusOf(t, s.addr, "", upgradeRequest(tc.proto, s.addr)); got != tc.want {
				t.Errorf("status: got %d, want %d", got, tc.want)
			}
		})
	}
	if got := s.getVars(t).Rejected[rejectHTTPVersion]; got != 1 {
		t.Errorf("handshakes_rejected[%s]: got %d, want 1", rejectHTTPVersion, got)
	}
}

// Before the change, every client address could open MaxConns connections.
func TestMaxConnsPerIP(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{MaxConnsPerIP: 2})
	dialFrom := func(local string) (*gorilla.Conn, *http.Response, error) {
		d := gorilla.Dialer{
			HandshakeTimeout: 5 * time.Second,
			NetDial: func(network, addr string) (net.Conn, error) {
				nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
				return nd.Dial(network, addr)
			},
		}
		c, resp, err := d.Dial(s.url, nil)
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, resp, err
	}
	a, _, err := dialFrom("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dialFrom("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	_, resp, err := dialFrom("127.0.0.1")
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third from 127.0.0.1: got %v (response %v), want 429 with Retry-After", err, resp)
	}
	for _, other := range []string{"127.0.0.2", "127.0.0.3"} {
		if _, _, err := dialFrom(other); err != nil {
			t.Errorf("from %s while 127.0.0.1 is at its cap: %v", other, err)
		}
	}
	// Once one of its connections ends, the address may connect again.
	a.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, ""), time.Now().Add(5*time.Second))
	a.ReadMessage()
	a.Close()
	s.log.next(t)
	if _, _, err := dialFrom("127.0.0.1"); err != nil {
		t.Errorf("from 127.0.0.1 after one closed: %v", err)
	}
	if got := s.getVars(t).Rejected[rejectPerIP]; got != 1 {
		t.Errorf("handshakes_rejected[%s]: got %d, want 1", rejectPerIP, got)
	}
}

// A rejected handshake is logged at info level with its reason, Origin and
// Host. Before the change it was logged at debug level only.
func TestRejectLogged(t *testing.T) {
	t.Parallel()
	rec := newLineRec(t)
	h := New(Options{Logger: slog.New(rec)})
	ts := startHandler(t, h)
	req := "GET /echo HTTP/1.1\r\nHost: " + ts + "\r\nOrigin: http://evil.example\r\nConnection: Upgrade\r\n" +
		"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + sampleKey + "\r\n\r\n"
	if got, _ := statusOf(t, ts, "", req); got != http.StatusForbidden {
		t.Fatalf("status: got %d, want 403", got)
	}
	lines := rec.named("handshake rejected")
	if len(lines) != 1 {
		t.Fatalf("got %d lines for the rejected handshake, want 1", len(lines))
	}
	want := map[string]string{"reason": rejectOrigin, "origin": "http://evil.example", "host": ts, "code": "403"}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("%s: got %q, want %q", k, lines[0][k], v)
		}
	}
}

// startHandler serves h's routes through a Listener on a loopback port and
// returns the address; the cleanup stops it.
func startHandler(t *testing.T, h *Handler) string {
	t.Helper()
	_, addr := startListener(t, h, nil)
	return addr
}

// startListener is startHandler, with setup (if not nil) called on the
// Listener before it serves; it returns the Listener too.
func startListener(t *testing.T, h *Handler, setup func(*Listener)) (*Listener, string) {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := h.Listener(tcp)
	if setup != nil {
		setup(ln)
	}
	srv := h.HTTPServer(NewMux(h, nil))
	errc := make(chan error, 1)
	go func() { errc <- ln.Serve(srv) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-errc
	})
	return ln, tcp.Addr().String()
}

// A flood of rejections logs at most rejectLogRate lines a second; the next
// line says how many were left out.
func TestRejectLogRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newLineRec(t)
		h := New(Options{Logger: slog.New(rec)})
		const flood = 1000
		for i := range flood {
			h.rejected(rejectOrigin, "remote", "127.0.0.1:"+strconv.Itoa(i))
		}
		if got := len(rec.named("handshake rejected")); got != rejectLogRate {
			t.Errorf("lines for %d rejections within a second: got %d, want %d", flood, got, rejectLogRate)
		}
		time.Sleep(time.Second)
		h.rejected(rejectOrigin, "remote", "127.0.0.1:1")
		lines := rec.named("handshake rejected")
		if got, want := lines[len(lines)-1]["suppressed"], strconv.Itoa(flood-rejectLogRate); got != want {
			t.Errorf("suppressed on the next second's line: got %q, want %q", got, want)
		}
		if got := h.metrics.rejected.Get(rejectOrigin).String(); got != strconv.Itoa(flood+1) {
			t.Errorf("handshakes_rejected[origin]: got %s, want %d", got, flood+1)
		}
	})
}

// The Listener sheds the connection that has waited longest in its
// handshake when MaxHandshakes are waiting, and never an established one;
// when every connection it may hold is established, a new one gets 503.
func TestListenerSheds(t *testing.T) {
	t.Parallel()
	h := New(Options{Logger: slog.New(newLineRec(t)), MaxConns: 4, MaxHandshakes: 2})
	addr := startHandler(t, h)
	ws, _, err := gorilla.DefaultDialer.Dial("ws://"+addr+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()

	// Three silent connections: the first is shed when the third arrives.
	var silent []net.Conn
	for range 3 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		silent = append(silent, nc)
	}
	if _, err := silent[0].Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("oldest silent connection: read got %v, want EOF (shed)", err)
	}
	if got := h.metrics.rejected.Get(rejectShed).String(); got != "1" {
		t.Errorf("handshakes_rejected[shed]: got %s, want 1", got)
	}

	// Fill the rest with WebSockets: the silent ones make room, then a new
	// connection finds everything established and gets 503.
	for i := range 3 {
		c, _, err := gorilla.DefaultDialer.Dial("ws://"+addr+"/echo", nil)
		if err != nil {
			t.Fatalf("WebSocket %d: %v", i+2, err)
		}
		defer c.Close()
	}
	got, hdr := statusOf(t, addr, "", upgradeRequest("HTTP/1.1", addr))
	if got != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("connection beyond MaxConns: got %d, Retry-After %q; want 503 with Retry-After", got, hdr.Get("Retry-After"))
	}
	if err := ws.WriteMessage(gorilla.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, p, err := ws.ReadMessage(); err != nil || string(p) != "still here" {
		t.Errorf("first WebSocket after the flood: got %q, %v", p, err)
	}
}

// floodServerEnv, when set in the environment of this test binary, makes it
// a server instead (see TestMain): "listener" serves through a Listener, as
// wsecho does, "plain" straight from the socket, as it did before.
const floodServerEnv = "WSECHO_TEST_FLOOD_SERVER"

// floodNofile is the descriptor limit of the flood test's server.
const floodNofile = 256

// runFloodServer lowers its descriptor limit to floodNofile, prints its
// address and serves until standard input ends.
func runFloodServer(mode string) int {
	lim := syscall.Rlimit{Cur: floodNofile, Max: floodNofile}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		return 1
	}
	h := New(Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := h.HTTPServer(NewMux(h, nil))
	fmt.Println(tcp.Addr())
	if mode == "plain" {
		go srv.Serve(tcp)
	} else {
		go h.Listener(tcp).Serve(srv)
	}
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// A flood of connections that never send a request, four times the
// server's descriptor limit, must not lock out a client that connects
// meanwhile. Before the change ("plain" mode), accept failed with EMFILE and
// every bystander timed out until the flood's handshake timeout expired.
func TestHalfOpenFlood(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("skipping: needs /proc to watch the server's memory")
	}
	mode := "listener"
	if os.Getenv("WSECHO_TEST_FLOOD_BEFORE") != "" {
		mode = "plain" // to measure the server as it was
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), floodServerEnv+"="+mode)
	cmd.Stderr = t.Output()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("flood server: %v", err)
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("flood server's address: %v", err)
	}
	addr := strings.TrimSpace(line)

	// The attacker opens 4×floodNofile connections, then keeps opening one
	// a millisecond, holding them all, until the bystanders are done.
	const held, most = 4 * floodNofile, 4000
	done := make(chan struct{})
	burst := make(chan struct{})
	var wg sync.WaitGroup
	var attackErr error
	var opened int
	wg.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		defer close(burst)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for len(conns) < most {
			if len(conns) == held {
				burst <- struct{}{}
			}
			if len(conns) >= held {
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				attackErr = err
				return
			}
			conns = append(conns, c)
			opened = len(conns)
		}
		<-done
	})
	<-burst

	const tries = 40
	var lat []time.Duration
	var failures []string
	d := gorilla.Dialer{HandshakeTimeout: 3 * time.Second}
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	end := time.Now().Add(20 * time.Second)
	for i := 0; i < tries && time.Now().Before(end); i++ {
		<-pace.C
		start := time.Now()
		err := func() error {
			c, _, err := d.Dial("ws://"+addr+"/echo", nil)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			want := fmt.Sprintf("bystander %d", i)
			if err := c.WriteMessage(gorilla.TextMessage, []byte(want)); err != nil {
				return err
			}
			_, got, err := c.ReadMessage()
			if err == nil && string(got) != want {
				err = fmt.Errorf("echo %q, want %q", got, want)
			}
			return err
		}()
		lat = append(lat, time.Since(start))
		if err != nil {
			failures = append(failures, err.Error())
		}
	}
	rss := rssKiB(t, cmd.Process.Pid)
	close(done)
	wg.Wait()
	if attackErr != nil {
		t.Logf("attacker stopped at %d connections: %v", opened, attackErr)
	}

	slices.Sort(lat)
	n := len(lat)
	t.Logf("mode=%s nofile=%d flood=%d connections: bystanders %d/%d ok, latency p50 %v p90 %v max %v, server RSS %d KiB",
		mode, floodNofile, opened, n-len(failures), n, lat[n/2], lat[n*9/10], lat[n-1], rss)
	if len(failures) > 0 {
		t.Errorf("%d of %d bystander connections failed during the flood, first: %s", len(failures), n, failures[0])
	}
	if n < tries {
		t.Errorf("only %d of %d bystanders tried within 20s", n, tries)
	}
	if rss > 256<<10 {
		t.Errorf("server RSS %d KiB during the flood, want under 256 MiB", rss)
	}
}

// rssKiB returns the resident memory of process pid.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// The Listener logs the descriptor limit, and warns and lowers MaxConns when
// it cannot fit below the limit.
func TestListenerFDLimit(t *testing.T) {
	t.Parallel()
	nofile, ok := fdLimit()
	if !ok {
		t.Skip("skipping: no descriptor limit on this system")
	}
	rec := newLineRec(t)
	h := New(Options{Logger: slog.New(rec), MaxConns: int(min(nofile, 1<<30))})
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	l := h.Listener(tcp)
	if want := int(nofile) - fdHeadroom; l.capacity != want {
		t.Errorf("capacity: got %d, want %d (the limit %d less the headroom)", l.capacity, want, nofile)
	}
	if got := len(rec.named("max conns cannot fit below the file descriptor limit; raise the limit (ulimit -n) or lower max conns")); got != 1 {
		t.Errorf("got %d warnings that MaxConns cannot fit, want 1", got)
	}
	lines := rec.named("file descriptor limit")
	if len(lines) != 1 || lines[0]["nofile"] != strconv.FormatUint(nofile, 10) {
		t.Errorf("start-up lines: got %v, want one with nofile=%d", lines, nofile)
	}
}

// A WebSocket stays counted by the Listener for its whole life, though its
// handler returns once the echo loop runs on a goroutine of its own: when
// the descriptor limit leaves room for two connections and two WebSockets
// are open, a third connection gets 503 at accept. Before the fix the
// Listener forgot each WebSocket when its handler returned, so the limit
// bounded only HTTP requests and handshakes.
func TestListenerCountsWebSockets(t *testing.T) {
	t.Parallel()
	h := New(Options{Logger: slog.New(newLineRec(t))}) // MaxConns 0: the Listener's capacity bounds
	// As if the descriptor limit left room for two connections.
	l, addr := startListener(t, h, func(l *Listener) { l.capacity = 2 })
	for i := range 2 {
		ws, _, err := gorilla.DefaultDialer.Dial("ws://"+addr+"/echo", nil)
		if err != nil {
			t.Fatalf("WebSocket %d: %v", i+1, err)
		}
		defer ws.Close()
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := ws.WriteMessage(gorilla.TextMessage, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Fatalf("WebSocket %d: echo: %v", i+1, err)
		}
	}
	if got := l.counts().open; got != 2 {
		t.Errorf("connections counted with two WebSockets open: got %d, want 2", got)
	}
	if got, _ := statusOf(t, addr, "", upgradeRequest("HTTP/1.1", addr)); got != http.StatusServiceUnavailable {
		t.Errorf("third connection: got %d, want 503 (the Listener is full)", got)
	}
	if got := h.metrics.rejected.Get(rejectFull).String(); got != "1" {
		t.Errorf("handshakes_rejected[full]: got %s, want 1", got)
	}
}

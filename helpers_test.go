package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
	"golang.org/x/net/websocket"

	"wsecho/internal/leakcheck"
	"wsecho/internal/wsmsg"
	"wsecho/server"
)

func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }

// impls are the two echo servers every comparison runs against: ours, on
// x/net with the wire layer, and the gorilla reference design.
var impls = []string{"xnet", "gorilla"}

// testLogger logs under the test that owns it.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer starts an echo server of the given implementation on a
// loopback port and returns its ws:// URL for /echo. The cleanup closes the
// server and waits for its connections to end.
func startServer(t testing.TB, impl string) string {
	t.Helper()
	return startServerOpts(t, impl, server.Options{})
}

// startServerOpts is startServer with options for our server; the gorilla
// server takes only the Logger ("gorilla-deflate" is gorilla's with
// EnableCompression).
func startServerOpts(t testing.TB, impl string, opts server.Options) string {
	t.Helper()
	mux := http.NewServeMux()
	var shutdown func(context.Context) error
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	switch impl {
	case "xnet":
		h := server.New(opts)
		mux.Handle("/echo", h)
		shutdown = h.Shutdown
	case "gorilla", "gorilla-deflate":
		g := &gorillaEcho{log: opts.Logger, conns: make(map[*gorilla.Conn]struct{})}
		g.up.EnableCompression = impl == "gorilla-deflate"
		mux.Handle("/echo", g)
		shutdown = g.shutdown
	case "naive":
		n := &naiveEcho{conns: make(map[*websocket.Conn]struct{})}
		mux.Handle("/echo", websocket.Server{Handler: n.serve})
		shutdown = n.shutdown
	default:
		t.Fatalf("unknown impl %q", impl)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("%s server shutdown: %v", impl, err)
		}
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/echo"
}

// gorillaEcho is the reference design: gorilla/websocket's echo example
// server, with its default Upgrader, plus the bookkeeping a test needs to
// end its connections.
type gorillaEcho struct {
	log   *slog.Logger
	up    gorilla.Upgrader
	mu    sync.Mutex
	conns map[*gorilla.Conn]struct{}
	wg    sync.WaitGroup
}

func (g *gorillaEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := g.up.Upgrade(w, r, nil)
	if err != nil {
		g.log.Info("upgrade", "err", err)
		return
	}
	g.mu.Lock()
	g.conns[c] = struct{}{}
	g.wg.Add(1)
	g.mu.Unlock()
	defer func() {
		c.Close()
		g.mu.Lock()
		delete(g.conns, c)
		g.mu.Unlock()
		g.wg.Done()
	}()
	for {
		mt, message, err := c.ReadMessage()
		if err != nil {
			g.log.Info("read", "err", err)
			break
		}
		g.log.Info("recv", "bytes", len(message))
		if err := c.WriteMessage(mt, message); err != nil {
			g.log.Info("write", "err", err)
			break
		}
	}
}

func (g *gorillaEcho) shutdown(ctx context.Context) error {
	g.mu.Lock()
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// naiveEcho is the echo server on bare x/net, without the wire layer: what
// wsecho would be without internal/wsframe. Only the benchmarks use it, to
// measure what the wire layer costs.
type naiveEcho struct {
	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
	wg    sync.WaitGroup
}

func (n *naiveEcho) serve(ws *websocket.Conn) {
	n.mu.Lock()
	n.conns[ws] = struct{}{}
	n.wg.Add(1)
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.conns, ws)
		n.mu.Unlock()
		n.wg.Done()
	}()
	var m wsmsg.Message
	for wsmsg.Codec.Receive(ws, &m) == nil && wsmsg.Codec.Send(ws, &m) == nil {
	}
}

func (n *naiveEcho) shutdown(ctx context.Context) error {
	n.mu.Lock()
	for ws := range n.conns {
		ws.Close()
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

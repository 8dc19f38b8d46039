package server

import (
	"bytes"
	"context"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	gorilla "github.com/gorilla/websocket"

	"wsecho/internal/testpeer"
)

func TestPage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path string
		status             int
		ctype              string   // if not empty, the Content-Type wanted
		contains           []string // strings the body must contain
	}{
		{name: "index", method: "GET", path: "/", status: 200, ctype: "text/html; charset=utf-8",
			contains: []string{`id="result"`, `<script src="page.js"`, `id="connect"`, `id="disconnect"`, `id="send-binary"`, `id="log"`}},
		{name: "index_selftest", method: "GET", path: "/?selftest=1", status: 200, ctype: "text/html; charset=utf-8",
			contains: []string{`id="result"`}},
		{name: "index_head", method: "HEAD", path: "/", status: 200, ctype: "text/html; charset=utf-8"},
		{name: "script", method: "GET", path: "/page.js", status: 200, ctype: "text/javascript; charset=utf-8",
			contains: []string{"new WebSocket(", "selftest/wait?id=", "selftest/done?id="}},
		{name: "style", method: "GET", path: "/page.css", status: 200, ctype: "text/css; charset=utf-8"},
		{name: "index_post", method: "POST", path: "/", status: 405},
		{name: "unknown", method: "GET", path: "/nope", status: 404},
		{name: "index_html", method: "GET", path: "/index.html", status: 404},
		{name: "static_dir", method: "GET", path: "/static/page.js", status: 404},
		{name: "script_subpath", method: "GET", path: "/page.js/x", status: 404},
		{name: "echo", method: "GET", path: "/echo", status: 404},
		{name: "selftest_dir", method: "GET", path: "/selftest/", status: 404},
		{name: "wait_no_id", method: "GET", path: "/selftest/wait", status: 400},
		{name: "wait_bad_id", method: "GET", path: "/selftest/wait?id=a%2Fb", status: 400},
		{name: "wait_long_id", method: "GET", path: "/selftest/wait?id=" + strings.Repeat("a", 65), status: 400},
		{name: "done_get", method: "GET", path: "/selftest/done?id=x", status: 405},
		{name: "done_no_id", method: "POST", path: "/selftest/done", status: 400},
	}
	h := Page()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			res := rec.Result()
			if res.StatusCode != tc.status {
				t.Fatalf("%s %s: status %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
			}
			if tc.ctype != "" {
				if got := res.Header.Get("Content-Type"); got != tc.ctype {
					t.Errorf("Content-Type: got %q, want %q", got, tc.ctype)
				}
			}
			if got := res.Header.Get("Content-Security-Policy"); got != pageCSP {
				t.Errorf("Content-Security-Policy: got %q, want %q", got, pageCSP)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options: got %q, want nosniff", got)
			}
			body := rec.Body.String()
			for _, s := range tc.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body does not contain %q", s)
				}
			}
		})
	}
}

// TestPageResources checks that every file the page refers to is served.
func TestPageResources(t *testing.T) {
	t.Parallel()
	h := Page()
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(string(pageHTML), -1)
	n := 0
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") || strings.HasPrefix(ref, "?") {
			continue
		}
		n++
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/"+ref, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET /%s: status %d, want 200", ref, rec.Code)
		}
	}
	if n != 2 {
		t.Errorf("index.html refers to %d files, want 2 (page.js, page.css)", n)
	}
}

func TestPageETag(t *testing.T) {
	t.Parallel()
	h := Page()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/page.js", nil))
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("GET /page.js: no ETag")
	}
	req := httptest.NewRequest("GET", "/page.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("GET /page.js with If-None-Match %s: status %d, want 304", etag, rec.Code)
	}
}

// TestPageSelftestWait checks the endpoints that hold a self-test page's
// load event: a wait returns once its done arrives (before or after it),
// after selftestHold at most, or when its client goes away.
func TestPageSelftestWait(t *testing.T) {
	t.Parallel()
	type call struct {
		rec  *httptest.ResponseRecorder
		took time.Duration // on the bubble's fake clock
		done chan struct{}
	}
	// start serves GET /selftest/wait?id=id in a goroutine.
	start := func(h http.Handler, ctx context.Context, id string) *call {
		c := &call{rec: httptest.NewRecorder(), done: make(chan struct{})}
		req := httptest.NewRequestWithContext(ctx, "GET", "/selftest/wait?id="+id, nil)
		go func() {
			defer close(c.done)
			t0 := time.Now()
			h.ServeHTTP(c.rec, req)
			c.took = time.Since(t0)
		}()
		return c
	}
	finish := func(h http.Handler, id string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/selftest/done?id="+id, nil))
		if rec.Code != http.StatusNoContent {
			t.Fatalf("POST /selftest/done?id=%s: status %d, want 204", id, rec.Code)
		}
	}
	returned := func(c *call) bool {
		select {
		case <-c.done:
			return true
		default:
			return false
		}
	}
	wantReturned := func(c *call, took time.Duration) {
		t.Helper()
		if !returned(c) {
			t.Fatal("wait still pending")
		}
		if c.rec.Code != http.StatusNoContent {
			t.Errorf("wait: status %d, want 204", c.rec.Code)
		}
		if c.took != took {
			t.Errorf("wait took %v on the fake clock, want %v", c.took, took)
		}
	}

	t.Run("done_first", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := Page()
			finish(h, "a")
			c := start(h, t.Context(), "a")
			synctest.Wait()
			wantReturned(c, 0)
		})
	})
	t.Run("wait_first", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := Page()
			a, b := start(h, t.Context(), "a"), start(h, t.Context(), "b")
			synctest.Wait()
			if returned(a) || returned(b) {
				t.Fatal("a wait returned before its done")
			}
			time.Sleep(time.Second) // on the fake clock
			finish(h, "a")
			synctest.Wait()
			wantReturned(a, time.Second)
			if returned(b) {
				t.Fatal("done for a released the wait for b")
			}
			finish(h, "b")
			synctest.Wait()
			wantReturned(b, time.Second)
		})
	})
	t.Run("timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := start(Page(), t.Context(), "a")
			<-c.done
			wantReturned(c, selftestHold)
		})
	})
	t.Run("client_gone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			c := start(Page(), ctx, "a")
			synctest.Wait()
			cancel()
			synctest.Wait()
			wantReturned(c, 0)
		})
	})
	t.Run("limit", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := Page()
			var calls []*call
			for i := range maxSelftestWaits {
				calls = append(calls, start(h, t.Context(), "w"+string(rune('A'+i/26))+string(rune('a'+i%26))))
			}
			synctest.Wait()
			over := start(h, t.Context(), "over")
			synctest.Wait()
			if !returned(over) || over.rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("wait beyond the limit: returned %v, status %d, want 503 at once", returned(over), over.rec.Code)
			}
			if got := over.rec.Header().Get("Retry-After"); got == "" {
				t.Error("503 without Retry-After")
			}
			for _, c := range calls {
				if returned(c) {
					t.Fatal("a wait within the limit returned early")
				}
			}
			// Once the held waits time out, there is room again.
			for _, c := range calls {
				<-c.done
			}
			finish(h, "again")
			again := start(h, t.Context(), "again")
			synctest.Wait()
			wantReturned(again, 0)
		})
	})
}

// chromium returns the path of Debian's Chromium, or skips the test (fails
// it when CI=true) if there is none.
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		path, err = exec.LookPath("/usr/bin/chromium")
	}
	if err != nil {
		testpeer.Missing(t, "chromium not found: the real-browser test needs Debian's chromium package (apt-get install chromium; .ci/run installs it)")
	}
	return path
}

var resultRE = regexp.MustCompile(`<[^>]*\bid="result"[^>]*>([^<]*)<`)

// TestPageBrowser runs the page's self-test in headless Chromium against
// an echo endpoint and reads the result from the DOM Chromium dumps. The
// self-test page holds its load event (through /selftest/wait) until it has
// written its result, so --dump-dom sees the result rather than "running…".
func TestPageBrowser(t *testing.T) {
	t.Parallel()
	bin := chromium(t)
	tests := []struct {
		name string
		tls  bool    // serve https: and offer HTTP/2, as Go's TLS server does by default
		opts Options // for our echo server
		echo string  // "ours", or "corrupt": an echo server that flips a byte
		want string  // the result, or its start when it ends in "…"
	}{
		{name: "http", echo: "ours", want: "PASS"},
		// The SSE stream ends when the server behind it shuts down; the
		// browser reconnects, to the next server, with Last-Event-ID.
		{name: "sse_restart", echo: "restart", want: "PASS"},
		// The page derives wss: from https:. It comes over HTTP/2; Go's server
		// does not offer extended CONNECT (RFC 8441), so the browser opens the
		// WebSocket on a connection of its own, over HTTP/1.1.
		{name: "https", tls: true, echo: "ours", want: "PASS"},
		// 70 KB of text is over the limit: the server fails the connection with 1009.
		{name: "max_message", echo: "ours", opts: Options{MaxMessage: 64 << 10},
			want: "FAIL: 70 KB text: closed before the echo: code 1009 (message too big)…"},
		// The page checks the bytes of every echo, not only that one came back.
		{name: "corrupt_echo", echo: "corrupt", want: "FAIL: binary: byte 255 is 0x00, want 0xff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := slog.New(slog.NewTextHandler(t.Output(), nil))
			mux := http.NewServeMux()
			mux.Handle("/", Page())
			var shutdown func(context.Context) error
			page := "/?selftest=1"
			switch tc.echo {
			case "ours":
				tc.opts.Logger = log
				tc.opts.TickInterval = 100 * time.Millisecond
				h := New(tc.opts)
				mux.Handle("/echo", h)
				mux.HandleFunc("GET /sse", h.serveSSE)
				shutdown = h.Shutdown
			case "restart":
				rs := newRestarter(t, log)
				mux.Handle("/echo", rs)
				mux.Handle("GET /sse", rs)
				shutdown = rs.shutdown
				t.Cleanup(func() { rs.check(t) })
				page = "/?selftest=1&restart=1"
			case "corrupt":
				c := &corruptEcho{log: log, conns: make(map[*gorilla.Conn]struct{})}
				mux.Handle("/echo", c)
				shutdown = c.shutdown
			}
			var proto atomic.Value // of the last request for the page
			ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/" {
					proto.Store(r.Proto)
				}
				mux.ServeHTTP(w, r)
			}))
			ts.EnableHTTP2 = tc.tls
			ts.Config.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
			if tc.tls {
				ts.StartTLS()
			} else {
				ts.Start()
			}
			t.Cleanup(func() {
				ts.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := shutdown(ctx); err != nil {
					t.Errorf("echo server shutdown: %v", err)
				}
			})

			dom := dumpDOM(t, bin, ts.URL+page, tc.tls)
			wantProto := "HTTP/1.1"
			if tc.tls {
				wantProto = "HTTP/2.0"
			}
			if got, _ := proto.Load().(string); got != wantProto {
				t.Errorf("the browser fetched the page over %q, want %s", got, wantProto)
			}
			m := resultRE.FindStringSubmatch(dom)
			if m == nil {
				t.Fatalf("no element with id=\"result\" in the DOM:\n%s", truncate(dom, 4000))
			}
			got := html.UnescapeString(m[1])
			if prefix, ok := strings.CutSuffix(tc.want, "…"); ok {
				if !strings.HasPrefix(got, prefix) {
					t.Errorf("#result: got %q, want it to start with %q\npage log:\n%s", got, prefix, pageLog(dom))
				}
			} else if got != tc.want {
				t.Errorf("#result: got %q, want %q\npage log:\n%s", got, tc.want, pageLog(dom))
			}
		})
	}
}

// dumpDOM loads url in headless Chromium and returns the DOM it dumps at the
// page's load event.
func dumpDOM(t *testing.T, bin, url string, insecureTLS bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
		"--user-data-dir=" + t.TempDir()}
	if insecureTLS {
		args = append(args, "--ignore-certificate-errors") // httptest's self-signed certificate
	}
	args = append(args, "--dump-dom", url)
	cmd := exec.CommandContext(ctx, bin, args...) // killed when ctx ends
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second // children that keep the pipes open
	t0 := time.Now()
	err := cmd.Run()
	t.Logf("chromium --dump-dom %s: %v", url, time.Since(t0).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("chromium: %v\nstderr (end):\n%s", err, tail(stderr.String(), 4000))
	}
	if !strings.Contains(stdout.String(), `id="result"`) {
		t.Logf("chromium stderr (end):\n%s", tail(stderr.String(), 4000))
	}
	return stdout.String()
}

var (
	logRE = regexp.MustCompile(`(?s)<ol id="log"[^>]*>(.*?)</ol>`)
	tagRE = regexp.MustCompile(`<[^>]*>`)
)

// pageLog returns the text of the page's log, one entry a line.
func pageLog(dom string) string {
	m := logRE.FindStringSubmatch(dom)
	if m == nil {
		return "(no log in the DOM)"
	}
	text := strings.ReplaceAll(m[1], "</li>", "\n")
	text = strings.ReplaceAll(text, "</span>", " ")
	return truncate(html.UnescapeString(tagRE.ReplaceAllString(text, "")), 4000)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// corruptEcho is a broken echo server for the self-test to catch: gorilla's
// echo example, except that it flips the last byte of every binary message.
type corruptEcho struct {
	log   *slog.Logger
	up    gorilla.Upgrader
	mu    sync.Mutex
	conns map[*gorilla.Conn]struct{}
	wg    sync.WaitGroup
}

func (e *corruptEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.wg.Add(1)
	defer e.wg.Done()
	c, err := e.up.Upgrade(w, r, nil)
	if err != nil {
		e.log.Info("upgrade", "err", err)
		return
	}
	e.mu.Lock()
	e.conns[c] = struct{}{}
	e.mu.Unlock()
	defer func() {
		c.Close()
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
	}()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			e.log.Info("read", "err", err)
			return
		}
		if mt == gorilla.BinaryMessage && len(msg) > 0 {
			msg[len(msg)-1] ^= 0xff
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			e.log.Info("write", "err", err)
			return
		}
	}
}

// shutdown closes the open connections and waits for their handlers.
func (e *corruptEcho) shutdown(ctx context.Context) error {
	e.mu.Lock()
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// restarter plays two servers behind one address, as a load balancer in
// front of a rolling restart shows them: the first serves /echo and /sse
// until its SSE stream has sent two events, then shuts down (its stream
// ends) and the second serves what comes next, the browser's reconnection
// with Last-Event-ID among it.
type restarter struct {
	old, next *Handler
	cur       atomic.Pointer[Handler]
	restarted chan struct{}
	wg        sync.WaitGroup

	mu          sync.Mutex
	lastEventID []string // the Last-Event-ID of each /sse request the second server got
	lastSent    string   // the id of the last event the first server sent
}

func newRestarter(t *testing.T, log *slog.Logger) *restarter {
	opts := Options{Logger: log, TickInterval: 100 * time.Millisecond, TickSeed: 9}
	rs := &restarter{old: New(opts), next: New(opts), restarted: make(chan struct{})}
	rs.cur.Store(rs.old)
	return rs
}

func (rs *restarter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := rs.cur.Load()
	if r.URL.Path != "/sse" {
		h.ServeHTTP(w, r)
		return
	}
	if h == rs.next {
		rs.mu.Lock()
		rs.lastEventID = append(rs.lastEventID, r.Header.Get("Last-Event-ID"))
		rs.mu.Unlock()
		h.serveSSE(w, r)
		return
	}
	h.serveSSE(&eventCounter{ResponseWriter: w, rs: rs}, r)
}

// eventCounter restarts the server after the second event it sees written.
type eventCounter struct {
	http.ResponseWriter
	rs     *restarter
	events int
}

func (e *eventCounter) Unwrap() http.ResponseWriter { return e.ResponseWriter }

func (e *eventCounter) Write(p []byte) (int, error) {
	n, err := e.ResponseWriter.Write(p)
	if id, ok := bytes.CutPrefix(p, []byte("id: ")); ok {
		e.events++
		e.rs.mu.Lock()
		e.rs.lastSent, _, _ = strings.Cut(string(id), "\n")
		e.rs.mu.Unlock()
		if e.events == 2 && e.rs.cur.CompareAndSwap(e.rs.old, e.rs.next) {
			e.rs.wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				e.rs.old.Shutdown(ctx)
			})
		}
	}
	return n, err
}

func (rs *restarter) shutdown(ctx context.Context) error {
	rs.wg.Wait()
	rs.old.Shutdown(ctx)
	return rs.next.Shutdown(ctx)
}

// check fails the test unless the browser came back to the second server
// with the id of the last event the first one sent.
func (rs *restarter) check(t *testing.T) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.lastEventID) == 0 || rs.lastEventID[0] != rs.lastSent {
		t.Errorf("the browser came back with Last-Event-ID %q, want [%q]", rs.lastEventID, rs.lastSent)
	}
}

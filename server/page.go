package server

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// The browser page: plain HTML, CSS and JavaScript, embedded at build time.
var (
	//go:embed static/index.html
	pageHTML []byte
	//go:embed static/page.js
	pageJS []byte
	//go:embed static/page.css
	pageCSS []byte
)

// pageCSP confines the page to its own script and style files (no inline
// script, no eval) and fetches from its own origin. connect-src lists ws: and
// wss: as well as 'self' because Safari before 16 does not let 'self' cover
// WebSocket URLs.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// selftestHold bounds how long GET /selftest/wait holds a request open, and
// so how long a self-test can keep a headless browser's load event waiting.
const selftestHold = 30 * time.Second

// maxSelftestWaits bounds the self-tests waited for at once; beyond it,
// GET /selftest/wait gets 503 at once.
const maxSelftestWaits = 64

// Page returns the handler for wsecho's browser page. Mount it at "/" for
// every method, next to the echo endpoint at "/echo"; the page connects to
// "echo" next to its own URL, over ws: or wss: as the page was loaded. Page
// serves:
//
//	GET /                       the page: connect, send text or binary, a log of messages
//	GET /?selftest=1            the page running its self-test; PASS or "FAIL: reason" in #result
//	GET /page.js, /page.css     its script and style
//	GET /selftest/wait?id=ID    answers 204 once POST /selftest/done?id=ID arrives, or after 30 s
//	POST /selftest/done?id=ID   204; releases the wait for ID
//
// and 404 for every other path. The two /selftest endpoints let a headless
// browser see the self-test's result: the self-test page loads an image from
// /selftest/wait, which delays its load event until the page has written its
// result and posted /selftest/done (chromium --dump-dom dumps the DOM at the
// load event). They hold no data and no more than 64 requests at a time, each
// for at most 30 s; the page works without them.
func Page() http.Handler {
	st := &selftests{waits: make(map[string]*selftestWait)}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", staticFile("index.html", "text/html; charset=utf-8", pageHTML))
	mux.Handle("GET /page.js", staticFile("page.js", "text/javascript; charset=utf-8", pageJS))
	mux.Handle("GET /page.css", staticFile("page.css", "text/css; charset=utf-8", pageCSS))
	mux.HandleFunc("GET /selftest/wait", st.wait)
	mux.HandleFunc("POST /selftest/done", st.done)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", pageCSP)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

// staticFile serves one embedded file with an ETag, so that browsers
// revalidate it cheaply and see a new build at once.
func staticFile(name, contentType string, data []byte) http.Handler {
	sum := sha256.Sum256(data)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
	})
}

// selftests pairs each self-test's wait with its done.
type selftests struct {
	mu    sync.Mutex
	waits map[string]*selftestWait
}

type selftestWait struct {
	done     chan struct{} // closed by the self-test's done
	released bool
	created  time.Time
}

// get returns the wait for id, creating it if need be, or false when too
// many are pending. Waits whose holder never came are forgotten after
// selftestHold.
func (s *selftests) get(id string) (*selftestWait, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sw, ok := s.waits[id]; ok {
		return sw, true
	}
	now := time.Now()
	for k, sw := range s.waits {
		if now.Sub(sw.created) > selftestHold {
			delete(s.waits, k)
		}
	}
	if len(s.waits) >= maxSelftestWaits {
		return nil, false
	}
	sw := &selftestWait{done: make(chan struct{}), created: now}
	s.waits[id] = sw
	return sw, true
}

func (s *selftests) forget(id string, sw *selftestWait) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waits[id] == sw {
		delete(s.waits, id)
	}
}

// lookup finds or makes the wait of the request's self-test id, or answers
// the request with an error and reports false.
func (s *selftests) lookup(w http.ResponseWriter, r *http.Request) (string, *selftestWait, bool) {
	id, ok := selftestID(w, r)
	if !ok {
		return "", nil, false
	}
	sw, ok := s.get(id)
	if !ok {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many self-tests waiting", http.StatusServiceUnavailable)
		return "", nil, false
	}
	return id, sw, true
}

// wait answers GET /selftest/wait?id=ID once the self-test ID is done, after
// selftestHold, or when the client goes away.
func (s *selftests) wait(w http.ResponseWriter, r *http.Request) {
	id, sw, ok := s.lookup(w, r)
	if !ok {
		return
	}
	defer s.forget(id, sw)
	t := time.NewTimer(selftestHold)
	defer t.Stop()
	select {
	case <-sw.done:
	case <-t.C:
	case <-r.Context().Done():
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// done answers POST /selftest/done?id=ID and releases the wait for ID, which
// may arrive before or after it.
func (s *selftests) done(w http.ResponseWriter, r *http.Request) {
	_, sw, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	if !sw.released {
		sw.released = true
		close(sw.done)
	}
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// selftestID returns the request's id parameter: 1 to 64 letters, digits,
// '-' or '_'. It answers 400 when there is none.
func selftestID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.URL.Query().Get("id")
	valid := len(id) > 0 && len(id) <= 64
	for i := 0; valid && i < len(id); i++ {
		c := id[i]
		valid = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
	}
	if !valid {
		http.Error(w, "id must be 1 to 64 letters, digits, '-' or '_'", http.StatusBadRequest)
		return "", false
	}
	return id, true
}

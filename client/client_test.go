package client_test

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"wsecho/client"
	"wsecho/internal/leakcheck"
	"wsecho/internal/testpeer"
	"wsecho/internal/wsframe"
	"wsecho/server"
)

func TestMain(m *testing.M) {
	if os.Getenv(proxyChildEnv) != "" {
		os.Exit(proxyChild())
	}
	os.Exit(leakcheck.Main(m))
}

// TestLines runs line mode (-stdin) with each output option against our
// server: every line comes back once, whole, in order, and the client
// exits normally at the end of its input.
func TestLines(t *testing.T) {
	t.Parallel()
	url := startEcho(t)
	ts := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)`
	for _, tc := range []struct {
		name   string
		opts   client.Options
		in     string
		want   string // exact output, or
		re     string // a regexp the whole output must match
		status string // a line Options.Status must hold
	}{
		{name: "text", in: "a\nb\n", want: "a\nb\n"},
		{name: "crlf_no_final_newline", in: "a\r\nb", want: "a\nb\n"},
		{name: "empty_line", in: "\nx\n", want: "\nx\n"},
		{name: "utf8", in: "héllo wörld ✓\n", want: "héllo wörld ✓\n"},
		{name: "binary=hex", opts: client.Options{Binary: true}, in: "hi\n", want: "6869\n"},
		{name: "binary=base64", opts: client.Options{Binary: true, ShowBinary: "base64"}, in: "hi\n", want: "aGk=\n"},
		{name: "binary=raw", opts: client.Options{Binary: true, ShowBinary: "raw"}, in: "hi\n", want: "hi\n"},
		{name: "timestamps", opts: client.Options{Timestamps: true}, in: "a\nb\n", re: `^` + ts + ` a\n` + ts + ` b\n$`},
		{name: "verbose", opts: client.Options{Verbose: true}, in: "abc\n", want: "[text, 3 bytes] abc\n", status: "server closed: 1000"},
		{name: "verbose_binary", opts: client.Options{Verbose: true, Binary: true}, in: "abc\n", want: "[binary, 3 bytes] 616263\n", status: "sent close: 1000"},
		{name: "close_code", opts: client.Options{Verbose: true, CloseCode: 4000, CloseReason: "done"}, in: "a\n", want: "[text, 1 bytes] a\n", status: "sent close: 4000 done"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.opts
			opts.Lines = true
			status := newOutput()
			opts.Status = status
			out := newOutput()
			if err := run(t, url, opts, strings.NewReader(tc.in), out); err != nil {
				t.Fatalf("Run: %v, want nil", err)
			}
			got := out.String()
			switch {
			case tc.re != "" && !regexp.MustCompile(tc.re).MatchString(got):
				t.Errorf("output %q does not match %s", got, tc.re)
			case tc.re == "" && got != tc.want:
				t.Errorf("output %q, want %q", got, tc.want)
			}
			if tc.status != "" && !strings.Contains(status.String(), tc.status+"\n") {
				t.Errorf("status %q has no line %q", status, tc.status)
			}
		})
	}
}

// TestLinesManyBackToBack pipes many lines at once: the client must wait
// for the closing handshake, so every echo is printed before it exits.
func TestLinesManyBackToBack(t *testing.T) {
	t.Parallel()
	url := startEcho(t)
	var in, want strings.Builder
	for i := range 500 {
		fmt.Fprintf(&in, "line %d %s\n", i, strings.Repeat("x", i%100))
	}
	want.WriteString(in.String())
	out := newOutput()
	if err := run(t, url, client.Options{Lines: true}, strings.NewReader(in.String()), out); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := out.String(); got != want.String() {
		t.Errorf("got %d bytes of output, want %d; the first lines:\n%.300s", len(got), want.Len(), got)
	}
}

// jsonEvent is the shape of one -json line.
type jsonEvent struct {
	Time        string   `json:"time"`
	Dir         string   `json:"dir"`
	Type        string   `json:"type"`
	Size        *int     `json:"size"`
	Data        *string  `json:"data"`
	Code        int      `json:"code"`
	Reason      *string  `json:"reason"`
	RTTMillis   *float64 `json:"rtt_ms"`
	URL         string   `json:"url"`
	Subprotocol *string  `json:"subprotocol"`
	Error       string   `json:"error"`
}

func parseJSON(t *testing.T, out string) []jsonEvent {
	t.Helper()
	var evs []jsonEvent
	for line := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
		var e jsonEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Errorf("event %q: time: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// summary renders an event without its time, for comparison.
func (e jsonEvent) summary() string {
	s := e.Dir + " " + e.Type
	if e.Size != nil {
		s += fmt.Sprintf(" size=%d", *e.Size)
	}
	if e.Data != nil {
		s += fmt.Sprintf(" data=%q", *e.Data)
	}
	if e.Type == "close" {
		s += fmt.Sprintf(" code=%d reason=%q", e.Code, *e.Reason)
	}
	return strings.TrimSpace(s)
}

// TestJSON checks -json: one object per event, binary data in base64, the
// close events with code and reason.
func TestJSON(t *testing.T) {
	t.Parallel()
	url := startEcho(t)
	for _, tc := range []struct {
		name string
		opts client.Options
		in   string
		want []string // summaries of the events after "open", in order
	}{
		{
			name: "text", in: "hello\n",
			want: []string{`send text size=5 data="hello"`, `send close code=1000 reason=""`, `recv text size=5 data="hello"`, `recv close code=1000 reason=""`},
		},
		{
			name: "binary", opts: client.Options{Binary: true}, in: "hi\n",
			want: []string{`send binary size=2 data="aGk="`, `send close code=1000 reason=""`, `recv binary size=2 data="aGk="`, `recv close code=1000 reason=""`},
		},
		{
			name: "close_reason", opts: client.Options{CloseCode: 4001, CloseReason: "bye"}, in: "",
			want: []string{`send close code=4001 reason="bye"`, `recv close code=4001 reason=""`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.opts
			opts.Lines, opts.JSON = true, true
			out := newOutput()
			if err := run(t, url, opts, strings.NewReader(tc.in), out); err != nil {
				t.Fatalf("Run: %v", err)
			}
			evs := parseJSON(t, out.String())
			if len(evs) == 0 || evs[0].Type != "open" || evs[0].URL != url || evs[0].Subprotocol == nil || *evs[0].Subprotocol != "" {
				t.Fatalf("first event is not the open event of %s: %s", url, out)
			}
			var got []string
			for _, e := range evs[1:] {
				got = append(got, e.summary())
			}
			// The sent Close and the echoes may come in either order.
			if !sameEvents(got, tc.want) {
				t.Errorf("events:\n%s\nwant (sends in order, receives in order):\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// sameEvents reports whether got holds the events of want, with the sent
// ones in want's order and the received ones in want's order.
func sameEvents(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	pick := func(evs []string, dir string) []string {
		var r []string
		for _, e := range evs {
			if strings.HasPrefix(e, dir) {
				r = append(r, e)
			}
		}
		return r
	}
	for _, dir := range []string{"send", "recv"} {
		g, w := pick(got, dir), pick(want, dir)
		if strings.Join(g, "\n") != strings.Join(w, "\n") {
			return false
		}
	}
	return true
}

// TestDefaultMode checks the seed's mode: the time every Interval, every
// echo printed, Count messages, then a normal close; with JSON and Binary
// as well.
func TestDefaultMode(t *testing.T) {
	t.Parallel()
	url := startEcho(t)
	isTime := func(s string) bool {
		_, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", strings.SplitN(s, " m=", 2)[0])
		return err == nil
	}
	for _, tc := range []struct {
		name string
		opts client.Options
		line func(t *testing.T, line string)
	}{
		{name: "text", line: func(t *testing.T, l string) {
			if !isTime(l) {
				t.Errorf("line %q is not an echoed time", l)
			}
		}},
		{name: "binary", opts: client.Options{Binary: true, ShowBinary: "raw"}, line: func(t *testing.T, l string) {
			if !isTime(l) {
				t.Errorf("line %q is not an echoed time", l)
			}
		}},
		{name: "json", opts: client.Options{JSON: true}, line: func(t *testing.T, l string) {
			var e jsonEvent
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Errorf("not JSON: %q", l)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.opts
			opts.Count, opts.Interval = 3, 10*time.Millisecond
			out := newOutput()
			if err := run(t, url, opts, strings.NewReader(""), out); err != nil {
				t.Fatalf("Run: %v", err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			want := 3
			if opts.JSON {
				want = 1 + 3 + 3 + 2 // open, sends, echoes, the two closes
			}
			if len(lines) != want {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), want, out)
			}
			for _, l := range lines {
				tc.line(t, l)
			}
		})
	}
}

// TestCancel checks Ctrl-C (the context ending): Close with the configured
// code, a normal end.
func TestCancel(t *testing.T) {
	t.Parallel()
	codes := make(chan int, 1)
	rs := startRaw(t, func(i int, rc *rawConn) {
		code, reason, _, err := rc.readClose()
		if err != nil {
			t.Errorf("raw server: %v", err)
		}
		if reason != "bye" {
			t.Errorf("close reason %q, want bye", reason)
		}
		rc.writeClose(code, "")
		codes <- code
	})
	ctx, cancel := context.WithCancel(t.Context())
	out := newOutput()
	wait := startRun(t, ctx, rs.url, client.Options{Interval: time.Hour, CloseCode: 4000, CloseReason: "bye"}, nil, out)
	cancel()
	if err := wait(); err != nil {
		t.Errorf("Run after cancel: %v, want nil", err)
	}
	if code := <-codes; code != 4000 {
		t.Errorf("client sent close %d, want 4000", code)
	}
}

// TestServerClose checks Run's result for each way the server can end the
// connection; the exit status follows from it (nil: 0, *CloseError: 3).
func TestServerClose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		close    func(rc *rawConn)
		wantCode int // 0: Run returns nil
		reason   string
		dropped  bool
	}{
		{name: "code=1000", close: func(rc *rawConn) { rc.writeClose(1000, "") }},
		{name: "no_code", close: func(rc *rawConn) { rc.writeFrame(wsframe.OpClose, nil) }},
		{name: "code=1001", close: func(rc *rawConn) { rc.writeClose(1001, "going away") }, wantCode: 1001, reason: "going away"},
		{name: "code=1011", close: func(rc *rawConn) { rc.writeClose(1011, "boom") }, wantCode: 1011, reason: "boom"},
		{name: "code=4000", close: func(rc *rawConn) { rc.writeClose(4000, "") }, wantCode: 4000},
		{name: "tcp_drop", close: func(rc *rawConn) { rc.nc.Close() }, wantCode: wsframe.CloseAbnormal, dropped: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			replied := make(chan int, 1)
			rs := startRaw(t, func(i int, rc *rawConn) {
				rc.writeFrame(wsframe.OpText, []byte("before"))
				tc.close(rc)
				if tc.dropped {
					return
				}
				code, _, _, err := rc.readClose()
				if err != nil {
					t.Errorf("raw server: no Close from the client: %v", err)
				}
				replied <- code
			})
			out := newOutput()
			err := run(t, rs.url, client.Options{Interval: time.Hour}, nil, out)
			if got := out.String(); got != "before\n" {
				t.Errorf("output %q, want %q", got, "before\n")
			}
			var ce *client.CloseError
			switch {
			case tc.wantCode == 0 && err != nil:
				t.Errorf("Run: %v, want nil", err)
			case tc.wantCode != 0 && !errors.As(err, &ce):
				t.Errorf("Run: %v, want a *CloseError", err)
			case tc.wantCode != 0 && (ce.Code != tc.wantCode || ce.Reason != tc.reason || (ce.Err != nil) != tc.dropped):
				t.Errorf("Run: %#v, want code %d reason %q", ce, tc.wantCode, tc.reason)
			}
			if !tc.dropped {
				// The wire layer echoes the server's code (RFC 6455, Section 5.5.1).
				want := tc.wantCode
				if want == 0 {
					want = 1000
					if tc.name == "no_code" {
						want = wsframe.CloseNoStatus
					}
				}
				if code := <-replied; code != want {
					t.Errorf("client answered with close %d, want %d", code, want)
				}
			}
		})
	}
}

// TestDialErrors checks the one-line errors of a failed connection (exit
// status 1).
func TestDialErrors(t *testing.T) {
	t.Parallel()
	refused := testpeer.RefusedAddr(t)
	// A server that accepts and never answers.
	silent := testpeer.ServeOne(t, waitTimeout, func(c net.Conn) { io.Copy(io.Discard, c) })
	url := startEcho(t)
	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notFound.Close)
	// wsecho's whole server: the page at /, /debug/vars, /echo.
	h := server.New(server.Options{Logger: testLogger(t)})
	full := httptest.NewServer(server.NewMux(h, server.Page()))
	t.Cleanup(func() { full.Close(); h.Shutdown(context.Background()) })
	fullHost := strings.TrimPrefix(full.URL, "http://")
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name, url string
		opts      client.Options
		ctx       context.Context
		want      string
	}{
		{name: "refused", url: "ws://" + refused + "/echo", want: "dial tcp " + refused + ": connect: connection refused"},
		{name: "forbidden_origin", url: url, opts: client.Options{Origin: "http://evil.example"},
			want: "handshake failed: 403 Forbidden: the server refused Origin http://evil.example; pass -origin with an origin it allows (localhost and 127.0.0.1 are different origins)"},
		{name: "not_found", url: wsURL(notFound) + "/echo", want: wsURL(notFound) + "/echo is not a WebSocket endpoint: the server answered 404 Not Found"},
		{name: "wsecho_page", url: "ws://" + fullHost, want: "ws://" + fullHost + " is not a WebSocket endpoint: the server answered 200 OK; wsecho's endpoint is /echo: try ws://" + fullHost + "/echo"},
		{name: "wsecho_not_found", url: "ws://" + fullHost + "/ws?x=1", want: "ws://" + fullHost + "/ws?x=1 is not a WebSocket endpoint: the server answered 404 Not Found; wsecho's endpoint is /echo: try ws://" + fullHost + "/echo"},
		{name: "interrupted", url: url, ctx: cancelled, want: "interrupted while connecting to " + url},
		{name: "timeout", url: "ws://" + silent + "/echo", opts: client.Options{ConnectTimeout: 50 * time.Millisecond},
			want: "handshake with " + silent + ": no response within 50ms"},
		{name: "scheme", url: "http://127.0.0.1/", want: "dial http://127.0.0.1/: scheme must be ws or wss"},
		{name: "reserved_header", url: url, opts: client.Options{Header: http.Header{"Sec-Websocket-Protocol": {"x"}}},
			want: "dial " + url + ": header Sec-Websocket-Protocol is set by the handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.opts.Logger = testLogger(t)
			ctx := cmp.Or[context.Context](tc.ctx, t.Context())
			conn, err := client.Dial(ctx, tc.url, tc.opts)
			if err == nil {
				conn.Close()
				t.Fatalf("Dial succeeded, want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("Dial: %q, want %q", err, tc.want)
			}
		})
	}
}

// TestHeaders checks -header, -origin and the Host override against our
// server, through a handler that records the handshake request.
func TestHeaders(t *testing.T) {
	t.Parallel()
	reqs := make(chan *http.Request, 8)
	ts, _ := startEchoTS(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqs <- r.Clone(context.Background())
			h.ServeHTTP(w, r)
		})
	})
	host := strings.TrimPrefix(ts.URL, "http://")
	for _, tc := range []struct {
		name       string
		opts       client.Options
		wantOrigin string
		wantHost   string
		wantHeader [2]string
	}{
		{name: "default", wantOrigin: "http://" + host, wantHost: host},
		{name: "header", opts: client.Options{Header: http.Header{"X-Token": {"s3cret"}, "Authorization": {"Bearer t"}}},
			wantOrigin: "http://" + host, wantHost: host, wantHeader: [2]string{"X-Token", "s3cret"}},
		{name: "origin", opts: client.Options{Origin: "http://" + host + "/app"}, wantOrigin: "http://" + host + "/app", wantHost: host},
		{name: "origin_header", opts: client.Options{Header: http.Header{"Origin": {"http://" + host}}}, wantOrigin: "http://" + host, wantHost: host},
		{name: "host_header", opts: client.Options{Header: http.Header{"Host": {"echo.example"}, "Origin": {"http://echo.example"}}},
			wantOrigin: "http://echo.example", wantHost: "echo.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Lines = true
			if err := run(t, wsURL(ts), tc.opts, strings.NewReader(""), io.Discard); err != nil {
				t.Fatalf("Run: %v", err)
			}
			r := <-reqs
			if got := r.Header.Values("Origin"); len(got) != 1 || got[0] != tc.wantOrigin {
				t.Errorf("Origin %q, want one: %q", got, tc.wantOrigin)
			}
			if r.Host != tc.wantHost {
				t.Errorf("Host %q, want %q", r.Host, tc.wantHost)
			}
			if k := tc.wantHeader[0]; k != "" && r.Header.Get(k) != tc.wantHeader[1] {
				t.Errorf("%s: %q, want %q", k, r.Header.Get(k), tc.wantHeader[1])
			}
		})
	}
}

// TestSubprotocol checks -subprotocol: offered in order, the server's
// choice reported (none by our echo server, one by an x/net server that
// speaks "chat").
func TestSubprotocol(t *testing.T) {
	t.Parallel()
	offered := make(chan []string, 4)
	chat := httptest.NewServer(websocket.Server{
		Handshake: func(cfg *websocket.Config, r *http.Request) error {
			offered <- cfg.Protocol
			for _, p := range cfg.Protocol {
				if p == "chat" {
					cfg.Protocol = []string{p}
					return nil
				}
			}
			cfg.Protocol = nil
			return nil
		},
		Handler: func(ws *websocket.Conn) { io.Copy(ws, ws) },
	})
	t.Cleanup(chat.Close)
	ours := startEcho(t)
	for _, tc := range []struct {
		name, url  string
		offer      []string
		want       string
		wantStatus string
	}{
		{name: "chosen", url: wsURL(chat), offer: []string{"superchat", "chat"}, want: "chat", wantStatus: "(subprotocol chat)"},
		{name: "none_offered", url: wsURL(chat), want: "", wantStatus: "connected to " + wsURL(chat) + "\n"},
		{name: "ours_chooses_none", url: ours, offer: []string{"chat"}, want: "", wantStatus: "(no subprotocol chosen)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status := newOutput()
			opts := client.Options{Subprotocols: tc.offer, Lines: true, Status: status, CloseWait: 50 * time.Millisecond, Logger: testLogger(t)}
			conn, err := client.Dial(t.Context(), tc.url, opts)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			if got := conn.Subprotocol(); got != tc.want {
				t.Errorf("Subprotocol() = %q, want %q", got, tc.want)
			}
			if tc.url == wsURL(chat) {
				if got := <-offered; strings.Join(got, ",") != strings.Join(tc.offer, ",") {
					t.Errorf("server saw %q offered, want %q", got, tc.offer)
				}
			}
			err = client.Run(t.Context(), conn, strings.NewReader("hi\n"), io.Discard)
			// x/net's server never answers a Close: it hangs up.
			if tc.url == wsURL(chat) && errors.Is(err, client.ErrNoCloseReply) {
				err = nil
			}
			if err != nil {
				t.Errorf("Run: %v", err)
			}
			if !strings.Contains(status.String(), tc.wantStatus) {
				t.Errorf("status %q has no %q", status, tc.wantStatus)
			}
		})
	}
}

// TestTLS checks wss with the server's CA, without it, and with
// verification off (-insecure).
func TestTLS(t *testing.T) {
	t.Parallel()
	h := server.New(server.Options{Logger: testLogger(t)})
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(t.Output(), "tls server: ", 0) // the unknown_ca row's handshake error
	ts.StartTLS()
	t.Cleanup(func() { shutdown(t, ts, h) })
	url := "wss" + strings.TrimPrefix(ts.URL, "https")
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	for _, tc := range []struct {
		name    string
		tls     *tls.Config
		wantErr string
	}{
		{name: "ca", tls: &tls.Config{RootCAs: pool}},
		{name: "insecure", tls: &tls.Config{InsecureSkipVerify: true}},
		{name: "unknown_ca", wantErr: "tls handshake with " + strings.TrimPrefix(ts.URL, "https://") + ": tls: failed to verify certificate"},
		{name: "unknown_ca_hint", wantErr: "; to trust this server, pass -ca with the PEM file of the CA that signed its certificate, or -insecure to skip the check (for testing only)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := client.Options{TLSConfig: tc.tls, Lines: true, Logger: testLogger(t)}
			conn, err := client.Dial(t.Context(), url, opts)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) && !strings.HasSuffix(err.Error(), tc.wantErr) {
					t.Errorf("Dial: %v, want %q...", err, tc.wantErr)
				}
				if err == nil {
					conn.Close()
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			out := newOutput()
			if err := client.Run(t.Context(), conn, strings.NewReader("secure\n"), out); err != nil {
				t.Errorf("Run: %v", err)
			}
			if out.String() != "secure\n" {
				t.Errorf("output %q", out)
			}
		})
	}
}

// TestPing checks -ping: pongs reported with their round-trip time with
// Verbose, and a connection that answers no ping reported lost.
func TestPing(t *testing.T) {
	t.Parallel()
	t.Run("pong", func(t *testing.T) {
		t.Parallel()
		url := startEcho(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		status := newOutput()
		out := newOutput()
		// A pong late by more than the interval is a lost connection, so
		// the interval leaves room for a loaded machine.
		wait := startRun(t, ctx, url, client.Options{Interval: time.Hour, Ping: time.Second, Verbose: true, Status: status}, nil, out)
		if !status.waitUntil(func(s string) bool { return strings.Count(s, "pong in ") >= 2 }) {
			t.Fatalf("no two pongs reported; status:\n%s", status)
		}
		cancel()
		if err := wait(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if !regexp.MustCompile(`(?m)^pong in \d+(\.\d+)?(µs|ms|s)$`).MatchString(status.String()) {
			t.Errorf("status %q has no round-trip time", status)
		}
	})
	t.Run("json", func(t *testing.T) {
		t.Parallel()
		url := startEcho(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		out := newOutput()
		wait := startRun(t, ctx, url, client.Options{Interval: time.Hour, Ping: time.Second, JSON: true}, nil, out)
		out.waitFor(t, `"type":"pong"`)
		cancel()
		wait()
		for _, e := range parseJSON(t, out.String()) {
			if e.Type == "pong" && (e.RTTMillis == nil || *e.RTTMillis < 0 || e.Dir != "recv") {
				t.Errorf("pong event without a round-trip time: %+v", e)
			}
		}
	})
	t.Run("no_pong", func(t *testing.T) {
		t.Parallel()
		pings := make(chan int, 1)
		rs := startRaw(t, func(i int, rc *rawConn) {
			n := 0
			for { // read and ignore: answer no ping
				h, _, err := rc.readFrame()
				if err != nil {
					break
				}
				if h.Opcode == wsframe.OpPing {
					n++
				}
			}
			pings <- n
		})
		err := run(t, rs.url, client.Options{Interval: time.Hour, Ping: 20 * time.Millisecond}, nil, io.Discard)
		var ce *client.CloseError
		if !errors.As(err, &ce) || ce.Code != wsframe.CloseAbnormal || ce.Err == nil || ce.Err.Error() != "no pong within 20ms" {
			t.Fatalf("Run: %v, want a *CloseError for no pong within 20ms", err)
		}
		if err.Error() != "connection lost: no pong within 20ms" {
			t.Errorf("error text %q", err)
		}
		if n := <-pings; n < 1 {
			t.Errorf("server read %d pings, want at least 1", n)
		}
	})
	t.Run("server_ping", func(t *testing.T) {
		t.Parallel()
		pong := make(chan string, 1)
		rs := startRaw(t, func(i int, rc *rawConn) {
			rc.writeFrame(wsframe.OpPing, []byte("hey"))
			h, p, err := rc.readControl() // after the first time, sent at once
			if err != nil || h.Opcode != wsframe.OpPong {
				t.Errorf("raw server: want a pong, got opcode %d, %v", h.Opcode, err)
			}
			pong <- string(p)
			rc.writeClose(1000, "")
			rc.readClose()
		})
		status := newOutput()
		if err := run(t, rs.url, client.Options{Interval: time.Hour, Verbose: true, Status: status}, nil, io.Discard); err != nil {
			t.Errorf("Run: %v", err)
		}
		if p := <-pong; p != "hey" {
			t.Errorf("pong payload %q, want hey", p)
		}
		if !strings.Contains(status.String(), "ping from the server (3 bytes), answered\n") {
			t.Errorf("status %q does not report the ping", status)
		}
	})
}

// TestInterruptedTLSHandshake checks Ctrl-C while the TLS handshake
// stalls: the error says the client was interrupted while connecting, not
// "context canceled".
func TestInterruptedTLSHandshake(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addr := testpeer.ServeOne(t, waitTimeout, func(c net.Conn) {
		c.Read(make([]byte, 1)) // the ClientHello has begun: interrupt
		cancel()
		io.Copy(io.Discard, c)
	})
	url := "wss://" + addr + "/echo"
	_, err := client.Dial(ctx, url, client.Options{Logger: testLogger(t)})
	var ie *client.InterruptedError
	if !errors.As(err, &ie) || err.Error() != "interrupted while connecting to "+url {
		t.Errorf("Dial: %v, want %q", err, "interrupted while connecting to "+url)
	}
}

// TestReadMessage reads through the wire layer: fragments come out joined,
// a ping between them is answered, and the server's Close ends the reads
// with io.EOF and its code.
func TestReadMessage(t *testing.T) {
	t.Parallel()
	pong := make(chan string, 1)
	rs := startRaw(t, func(i int, rc *rawConn) {
		rc.write(wsframe.AppendFrame(nil, wsframe.Header{Opcode: wsframe.OpText}, []byte("hel")))
		rc.writeFrame(wsframe.OpPing, []byte("p"))
		rc.write(wsframe.AppendFrame(nil, wsframe.Header{Fin: true, Opcode: wsframe.OpContinuation}, []byte("lo")))
		rc.writeFrame(wsframe.OpBinary, []byte{0, 1, 2})
		h, p, err := rc.readControl()
		if err != nil || h.Opcode != wsframe.OpPong {
			t.Errorf("raw server: want a pong, got opcode %d, %v", h.Opcode, err)
		}
		pong <- string(p)
		rc.writeClose(4000, "done")
		rc.readClose()
	})
	c, err := client.Dial(t.Context(), rs.url, client.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := []struct {
		typ  byte
		data string
	}{{websocket.TextFrame, "hello"}, {websocket.BinaryFrame, "\x00\x01\x02"}}
	for _, w := range want {
		typ, p, err := c.ReadMessage()
		if err != nil || typ != w.typ || string(p) != w.data {
			t.Fatalf("ReadMessage = %d %q %v, want %d %q", typ, p, err, w.typ, w.data)
		}
	}
	if got := <-pong; got != "p" {
		t.Errorf("pong payload %q, want p", got)
	}
	if _, _, err := c.ReadMessage(); err != io.EOF {
		t.Fatalf("ReadMessage after the server's Close: %v, want io.EOF", err)
	}
	if code, reason, ok := c.CloseStatus(); !ok || code != 4000 || reason != "done" {
		t.Errorf("CloseStatus = %d %q %v, want 4000 done true", code, reason, ok)
	}
}

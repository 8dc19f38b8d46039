package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"wsecho/internal/testpeer"
	"wsecho/internal/wsframe"
	"wsecho/server"
)

// runTimeout bounds every wait in these tests.
const runTimeout = 10 * time.Second

// startRunServer runs `wsecho server -addr 127.0.0.1:0` in process and
// returns the URL from its first stdout line, and a function that cancels
// its context and returns run's result.
func startRunServer(t *testing.T) (wsURL string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &lines{}
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"server", "-addr", "127.0.0.1:0"}, pw, stderr)
		pw.Close()
		errc <- err
	}()
	drained := make(chan struct{})
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-errc:
			case <-time.After(runTimeout):
				t.Errorf("server: run did not return within %v of cancel", runTimeout)
				result = <-errc
			}
			<-drained
		})
		return result
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("server stderr:\n%s", stderr)
		}
	})

	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	go func() { // the server must not block on stdout after its first line
		io.Copy(io.Discard, br)
		close(drained)
	}()
	if err != nil {
		t.Fatalf("server: reading the first stdout line: %v (got %q)", err, line)
	}
	line = strings.TrimSuffix(line, "\n")
	wsURL, ok := strings.CutPrefix(line, "listening on ")
	if !ok || !strings.HasPrefix(wsURL, "ws://127.0.0.1:") || !strings.HasSuffix(wsURL, "/echo") || wsURL == "ws://127.0.0.1:0/echo" {
		t.Fatalf("server: first stdout line %q, want \"listening on ws://127.0.0.1:PORT/echo\"", line)
	}
	return wsURL, stop
}

func TestMain_ServerClient(t *testing.T) {
	t.Parallel()
	wsURL, stop := startRunServer(t)

	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	stdout, stderr := &lines{}, &lines{}
	err := run(ctx, []string{"client", "-url", wsURL, "-count", "2", "-interval", "50ms"}, stdout, stderr)
	if err != nil {
		t.Errorf("client: run returned %v, want nil; stderr:\n%s", err, stderr)
	}
	got := stdout.lines()
	if len(got) != 2 {
		t.Errorf("client printed %d lines, want 2: %q", len(got), got)
	}
	for _, l := range got {
		if _, err := parseTimeString(l); err != nil {
			t.Errorf("client printed %q, not an echoed time: %v", l, err)
		}
	}

	if err := stop(); err != nil {
		t.Errorf("server: run returned %v after cancel, want nil", err)
	}
}

func TestMain_ClientRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	var stdout, stderr strings.Builder
	err = run(ctx, []string{"client", "-addr", addr}, &stdout, &stderr)
	if err == nil {
		t.Fatalf("client -addr %s: run returned nil, want an error", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("client -addr %s: %v, want connection refused", addr, err)
	}
	var printed strings.Builder
	if code := exitCode(err, &printed); code != 1 {
		t.Errorf("exitCode(%v) = %d, want 1", err, code)
	}
	if msg := printed.String(); strings.Count(msg, "\n") != 1 || !strings.HasSuffix(msg, "\n") {
		t.Errorf("exitCode printed %q, want one line", msg)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %q, want nothing", stdout.String())
	}
}

func TestMain_ExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"no_command", nil, 2},
		{"unknown_command", []string{"serve"}, 2},
		{"server_bad_flag", []string{"server", "-bogus"}, 2},
		{"client_bad_flag", []string{"client", "-bogus"}, 2},
		{"client_bad_count", []string{"client", "-count", "many"}, 2},
		{"client_negative_count", []string{"client", "-count", "-1"}, 2},
		{"client_zero_interval", []string{"client", "-interval", "0s"}, 2},
		{"server_extra_arg", []string{"server", "extra"}, 2},
		{"client_two_urls", []string{"client", "ws://a/", "ws://b/"}, 2},
		{"client_url_and_flag", []string{"client", "ws://a/", "-url", "ws://b/"}, 2},
		{"client_addr_url", []string{"client", "-addr", "ws://localhost:8080/echo"}, 2},
		{"client_http_scheme", []string{"client", "http://localhost:8080/echo"}, 2},
		{"client_no_host", []string{"client", "ws:///echo"}, 2},
		{"client_text_without_file", []string{"client", "-text"}, 2},
		{"client_file_and_stdin", []string{"client", "-file", "x", "-stdin"}, 2},
		{"help_unknown", []string{"help", "serve"}, 2},
		{"server_negative_per_ip", []string{"server", "-max-conns-per-ip", "-1"}, 2},
		{"server_zero_handshakes", []string{"server", "-max-handshakes", "0"}, 2},
		{"server_zero_tick_interval", []string{"server", "-tick-interval", "0s"}, 2},
		{"server_bad_behaviours", []string{"server", "-behaviours=maybe"}, 2},
		{"help", []string{"-h"}, 0},
		{"help_command", []string{"help"}, 0},
		{"server_help", []string{"server", "-h"}, 0},
		{"client_help", []string{"client", "-h"}, 0},
		{"help_client", []string{"help", "client"}, 0},
		{"help_bench", []string{"help", "bench"}, 0},
		{"version", []string{"version"}, 0},
		{"dash_version", []string{"-version"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Cancelled: should a case get past the flags, it ends at once
			// instead of serving or dialing.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			var stdout, stderr strings.Builder
			err := run(ctx, tc.args, &stdout, &stderr)
			var printed strings.Builder
			if code := exitCode(err, &printed); code != tc.want {
				t.Errorf("exit code %d (err %v), want %d", code, err, tc.want)
			}
			switch msg := printed.String(); tc.want {
			case 0: // help or version: on stdout (so that | less works), and no error
				if stdout.Len() == 0 || stderr.Len() != 0 || msg != "" {
					t.Errorf("stdout %q, stderr %q, exitCode printed %q; want the help on stdout and nothing else", stdout.String(), stderr.String(), msg)
				}
			case 2: // what is wrong, on one line, with where to look
				if stdout.Len() != 0 {
					t.Errorf("stdout: %q, want nothing", stdout.String())
				}
				if !strings.HasPrefix(msg, "wsecho") || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "; run 'wsecho ") {
					t.Errorf("exitCode printed %q, want one line that says what to run", msg)
				}
				if len(tc.args) == 0 { // the usage goes with it, on stderr
					break
				}
				if stderr.Len() != 0 {
					t.Errorf("stderr %q, want nothing but exitCode's line", stderr.String())
				}
			}
		})
	}
}

// goTool returns the path of the go command. When it is missing the test is
// skipped, except in CI, where it fails.
func goTool(t *testing.T) string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		testpeer.Missing(t, "go is not on PATH: %v", err)
	}
	return gocmd
}

// TestBinary builds the wsecho binary once and runs the checks that need it.
func TestBinary(t *testing.T) {
	t.Parallel()
	gocmd := goTool(t)
	bin := filepath.Join(t.TempDir(), "wsecho")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, gocmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The shipped binary uses x/net and never gorilla, which is for tests.
	t.Run("deps", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, gocmd, "version", "-m", bin).CombinedOutput()
		if err != nil {
			t.Fatalf("go version -m: %v\n%s", err, out)
		}
		xnet := false
		for l := range strings.Lines(string(out)) {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == "dep" && f[1] == "golang.org/x/net" {
				xnet = true
			}
			// x/term for the client's line editor, and x/sys, which it needs.
			if len(f) >= 2 && f[0] == "dep" && f[1] != "golang.org/x/net" && f[1] != "golang.org/x/term" && f[1] != "golang.org/x/sys" {
				t.Errorf("go version -m lists a dependency beyond x/net, x/term and x/sys: %q", l)
			}
			if strings.Contains(l, "gorilla") {
				t.Errorf("go version -m lists gorilla: %q", l)
			}
		}
		if !xnet {
			t.Errorf("go version -m does not list golang.org/x/net:\n%s", out)
		}
	})

	t.Run("version", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, bin, "version").Output()
		if err != nil {
			t.Fatalf("wsecho version: %v", err)
		}
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "wsecho ") || !strings.HasPrefix(lines[1], runtime.Version()+" ") {
			t.Errorf("wsecho version printed %q, want the version, then %s and the platform", out, runtime.Version())
		}
		if out2, err := exec.CommandContext(ctx, bin, "-version").Output(); err != nil || string(out2) != string(out) {
			t.Errorf("wsecho -version: %q, %v; want what wsecho version prints", out2, err)
		}
	})

	// SIGINT ends the client within -close-wait (and the wire layer's
	// second of linger) even when the server floods it with pings and never
	// reads: the client's reading goroutine is stuck writing a pong, with
	// the lock its Close needs. Before, the client hung until killed.
	t.Run("sigint_ping_flood", func(t *testing.T) {
		url, stalled := startPingFlood(t)
		cl := startProc(t, bin, "client", "-interval", "10ms", "-close-wait", "500ms", url)
		select {
		case <-stalled:
		case <-time.After(runTimeout):
			t.Fatal("the flood never filled the connection")
		}
		start := time.Now()
		if err := cl.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		err, ok := cl.wait(runTimeout)
		if !ok {
			t.Fatalf("client did not exit within %v of SIGINT", runTimeout)
		}
		d := time.Since(start)
		if d > 3*time.Second {
			t.Errorf("client exited %v after SIGINT, want within -close-wait and a second", d)
		}
		t.Logf("the client exited %v after SIGINT (-close-wait 500ms)", d)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("client after SIGINT: %v, want exit status 3 (the closing handshake did not complete)", err)
		}
		if !strings.Contains(cl.stderr.String(), "closing handshake incomplete: the server did not answer our close") {
			t.Errorf("stderr does not say that the closing handshake is incomplete:\n%s", cl.stderr)
		}
	})

	// Ctrl-C ends the client with a closing handshake and status 0; SIGTERM
	// shuts the server down with status 0. A tapping proxy between them
	// shows the Close frames.
	t.Run("signals", func(t *testing.T) {
		srv := startProc(t, bin, "server", "-addr", "127.0.0.1:0")
		first, ok := srv.stdout.wait(1, runTimeout)
		if !ok {
			t.Fatalf("server printed no line; stderr:\n%s", srv.stderr)
		}
		wsURL, ok := strings.CutPrefix(first[0], "listening on ")
		if !ok {
			t.Fatalf("server's first line %q, want \"listening on ws://...\"", first[0])
		}
		target := strings.TrimSuffix(strings.TrimPrefix(wsURL, "ws://"), "/echo")
		proxy := startTapProxy(t, target)

		cl := startProc(t, bin, "client", "-url", proxy.url, "-interval", "50ms")
		if got, ok := cl.stdout.wait(2, runTimeout); !ok {
			t.Fatalf("client printed %d lines, want 2; stderr:\n%s", len(got), cl.stderr)
		}
		if err := cl.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if err, ok := cl.wait(runTimeout); !ok {
			t.Fatalf("client did not exit within %v of SIGINT", runTimeout)
		} else if err != nil {
			t.Errorf("client after SIGINT: %v, want exit status 0; stderr:\n%s", err, cl.stderr)
		}
		for _, l := range cl.stdout.lines() {
			if _, err := parseTimeString(l); err != nil {
				t.Errorf("client printed %q, not an echoed time: %v", l, err)
			}
		}
		conn := proxy.conn(t)
		select { // the relay has ended: the tap has seen every byte
		case <-conn.closed:
		case <-time.After(runTimeout):
			t.Fatalf("the proxied connection did not end after the client exited")
		}
		if code, ok := conn.in.closeCode(); !ok || code != wsframe.CloseNormal {
			t.Errorf("the client sent Close %d (sent: %v), want %d", code, ok, wsframe.CloseNormal)
		}
		if code, ok := conn.out.closeCode(); !ok || code != wsframe.CloseNormal {
			t.Errorf("the server answered Close %d (sent: %v), want %d", code, ok, wsframe.CloseNormal)
		}

		if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err, ok := srv.wait(runTimeout); !ok {
			t.Fatalf("server did not exit within %v of SIGTERM", runTimeout)
		} else if err != nil {
			t.Errorf("server after SIGTERM: %v, want exit status 0; stderr:\n%s", err, srv.stderr)
		}
	})
}

// startPingFlood starts a server that answers the opening handshake, then
// writes pings and never reads. stalled is closed once its writes have not
// gone through for 200 ms: the client has stopped reading.
func startPingFlood(t *testing.T) (url string, stalled <-chan struct{}) {
	t.Helper()
	st := make(chan struct{})
	addr := testpeer.ServeOne(t, runTimeout, func(nc net.Conn) {
		if _, _, err := testpeer.AcceptHandshake(nc); err != nil {
			t.Errorf("flood server: %v", err)
			return
		}
		testpeer.FloodPings(nc, time.Now().Add(runTimeout), st)
	})
	return "ws://" + addr + "/echo", st
}

// proc is a running subprocess whose output is collected in lines.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *lines
	done           chan struct{}
	err            error // cmd.Wait's result, once done is closed
}

// startProc starts bin with args. The cleanup kills it if it is still
// running and waits for it.
func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{stdout: &lines{}, stderr: &lines{}, done: make(chan struct{})}
	p.cmd = exec.CommandContext(t.Context(), bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.WaitDelay = time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", args[0], err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s stderr:\n%s", args[0], p.stderr)
		}
	})
	return p
}

// wait waits for the process to exit, for d at most.
func (p *proc) wait(d time.Duration) (error, bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(d):
		return nil, false
	}
}

// startTapProxy relays TCP connections on a loopback port to target and
// records the frames of each in a tapConn (in: from the client).
func startTapProxy(t *testing.T, target string) *tapServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := &tapListener{Listener: ln, conns: make(chan *tapConn, 16)}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		open []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			deadline := time.Now().Add(2 * runTimeout)
			c.SetDeadline(deadline)
			up, err := net.DialTimeout("tcp", target, runTimeout)
			if err != nil {
				t.Errorf("proxy: %v", err)
				c.Close()
				continue
			}
			up.SetDeadline(deadline)
			mu.Lock()
			open = append(open, c, up)
			mu.Unlock()
			wg.Go(func() { relay(c, up) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &tapServer{url: "ws://" + ln.Addr().String() + "/echo", conns: tl.conns}
}

// relay copies between a and b until both directions end, passing each
// half-close on.
func relay(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(b, a); closeWrite(b) })
	wg.Go(func() { io.Copy(a, b); closeWrite(a) })
	wg.Wait()
	a.Close()
	b.Close()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// TestMain_Bench runs wsecho bench briefly against our server at each log
// level: percentiles with three significant figures, and a warning only
// when the server logs every message.
func TestMain_Bench(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		level string
		warn  bool
	}{{"info", true}, {"warn", false}} {
		t.Run("log_level="+tc.level, func(t *testing.T) {
			t.Parallel()
			h := server.New(server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: levelOf(tc.level)}))})
			ts := httptest.NewServer(server.NewMux(h, nil))
			t.Cleanup(func() { ts.Close(); h.Shutdown(context.Background()) })
			url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/echo"
			var stdout, stderr strings.Builder
			if err := run(t.Context(), []string{"bench", "-url", url, "-duration", "200ms"}, &stdout, &stderr); err != nil {
				t.Fatalf("bench: %v; stderr:\n%s", err, stderr.String())
			}
			if got := strings.Contains(stderr.String(), "warning: the server writes a log line for every message"); got != tc.warn {
				t.Errorf("warning %v, want %v; stderr:\n%s", got, tc.warn, stderr.String())
			}
			var latency string
			for l := range strings.Lines(stdout.String()) {
				if rest, ok := strings.CutPrefix(l, "latency"); ok {
					latency = rest
				}
			}
			fields := strings.Fields(latency) // p50 D p90 D ...
			if len(fields) != 10 {
				t.Fatalf("latency line %q, want five percentiles", latency)
			}
			for i := 1; i < len(fields); i += 2 {
				digits := strings.TrimLeft(strings.Map(func(r rune) rune {
					if r >= '0' && r <= '9' {
						return r
					}
					return -1
				}, fields[i]), "0")
				if len(digits) > 3 {
					t.Errorf("%s %s has more than three significant figures", fields[i-1], fields[i])
				}
			}
		})
	}
}

func levelOf(s string) slog.Level {
	var l slog.Level
	l.UnmarshalText([]byte(s))
	return l
}

// TestMain_Help checks each command's help: a synopsis, every flag of the
// command once (a flag in no group is listed under "other flags"),
// examples and the exit statuses.
func TestMain_Help(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"server", "client", "bench"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			if err := run(t.Context(), []string{"help", cmd}, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("help %s: %v", cmd, err)
			}
			help := stdout.String()
			for _, want := range []string{"usage: wsecho " + cmd + " [flags]", "\nexamples:\n  wsecho", "\nexit status:\n  0  "} {
				if !strings.Contains(help, want) {
					t.Errorf("help has no %q:\n%s", want, help)
				}
			}
			_, examples, _ := strings.Cut(help, "\nexamples:\n")
			examples, _, _ = strings.Cut(examples, "\n\n")
			if n := strings.Count(examples, "wsecho "+cmd); n < 3 {
				t.Errorf("%d examples, want 3 or more:\n%s", n, examples)
			}
			// Every flag, once: parse -h on a throwaway run to list them.
			var fs *flag.FlagSet
			var hr *helpRequest
			if err := runCommandFlags(cmd); errors.As(err, &hr) {
				fs = hr.fs
			} else {
				t.Fatalf("-h: %v", err)
			}
			fs.VisitAll(func(f *flag.Flag) {
				if n := strings.Count(help, "\n  -"+f.Name+" ") + strings.Count(help, "\n  -"+f.Name+"\n"); n != 1 {
					t.Errorf("flag -%s listed %d times", f.Name, n)
				}
			})
		})
	}
}

// runCommandFlags runs a command with -h, for its flag set.
func runCommandFlags(cmd string) error {
	var out strings.Builder
	switch cmd {
	case "server":
		return runServer(context.Background(), []string{"-h"}, &out, &out)
	case "client":
		return runClient(context.Background(), []string{"-h"}, nil, &out, &out)
	}
	return runBench(context.Background(), []string{"-h"}, &out, &out)
}

// Attacks on the server's memory (issue 11). Each runs `wsecho server` with
// its flags in a helper process of its own (see TestHelperServer) whose
// resident memory a watcher samples: above the test's cap it kills the
// server and the test fails, so that a regression fails the test rather
// than the machine.

// attackServer is a `wsecho server` in a helper process, and the watcher
// of its resident memory.
type attackServer struct {
	*helperServer
	cap   int64
	peak  atomic.Int64
	stop  chan struct{}
	done  chan struct{}
	race  bool // the race detector multiplies resident memory
	base  memStats
	vars  string // the URL of its /debug/vars
	wsURL string
}

// startAttackServer starts `wsecho server -addr 127.0.0.1:0 -log-level
// error` with args, and a watcher that kills it if its resident memory
// grows by more than limit over what it was once listening (four times
// limit under the race detector, whose shadow memory grows with the heap).
func startAttackServer(t *testing.T, limit int64, args ...string) *attackServer {
	t.Helper()
	all := append([]string{"server", "-addr", "127.0.0.1:0", "-log-level", "error"}, args...)
	h := startHelper(t, "main", helperArgsEnv+"="+strings.Join(all, "\n"))
	s := &attackServer{helperServer: h, stop: make(chan struct{}), done: make(chan struct{}), race: raceEnabled()}
	s.wsURL = h.url
	s.vars = "http" + strings.TrimSuffix(strings.TrimPrefix(h.url, "ws"), "/echo") + "/debug/vars"
	s.base = s.memStats(t, true)
	if s.race {
		limit *= 4
	}
	s.cap = s.base.rss + limit
	go s.watch(t)
	t.Cleanup(s.stopWatch)
	return s
}

func (s *attackServer) watch(t *testing.T) {
	defer close(s.done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid))
		if err != nil {
			return // it has exited
		}
		rss, _ := statusKB(string(b), "VmRSS")
		if rss > s.peak.Load() {
			s.peak.Store(rss)
		}
		if rss > s.cap {
			syscall.Kill(s.pid, syscall.SIGKILL)
			t.Errorf("server resident memory %d MB, over the cap of %d MB: killed", rss>>20, s.cap>>20)
			return
		}
	}
}

func (s *attackServer) stopWatch() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// metric returns one of the server's metrics from /debug/vars.
func (s *attackServer) metric(t *testing.T, name string) int64 {
	t.Helper()
	resp, err := http.Get(s.vars)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	var vars struct {
		Wsecho map[string]any `json:"wsecho"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		t.Fatalf("metrics: %v", err)
	}
	v, ok := vars.Wsecho[name].(float64)
	if !ok {
		t.Fatalf("metrics: no %s in %v", name, vars.Wsecho)
	}
	return int64(v)
}

// raceEnabled reports whether this binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// attackDial connects to wsURL and does the opening handshake, returning
// errors rather than failing, for use from many goroutines.
func attackDial(wsURL string) (net.Conn, *bufio.Reader, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, nil, err
	}
	nc, err := net.DialTimeout("tcp", u.Host, runTimeout)
	if err != nil {
		return nil, nil, err
	}
	nc.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(nc)
	if _, err := fmt.Fprintf(nc, handshakeRequest, u.Host); err != nil {
		nc.Close()
		return nil, nil, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, nil, fmt.Errorf("handshake: %v %v", resp, err)
	}
	return nc, br, nil
}

// attackKey masks every frame the attack tests send.
var attackKey = [4]byte{1, 2, 3, 4}

func attackFrame(fin bool, op byte, length int64, payload []byte) []byte {
	h := wsframe.Header{Fin: fin, Opcode: op, Masked: true, Key: attackKey, Length: length}
	b := wsframe.AppendHeader(nil, h)
	start := len(b)
	b = append(b, payload...)
	wsframe.Mask(attackKey, 0, b[start:])
	return b
}

// TestAttack_HeaderChurn: connections each announce a 32 MiB first
// fragment, send 1 KiB of it and hang up, 20 at a time, 400 in all. Before
// the read path grew buffers with the data, each made the server allocate
// the whole 32 MiB (4.2 GB resident for 200 in the run); now each
// holds what arrived, in a buffer of at most 64 KiB.
func TestAttack_HeaderChurn(t *testing.T) {
	t.Parallel()
	const workers, rounds = 20, 20
	s := startAttackServer(t, 96<<20)
	frame := attackFrame(false, wsframe.OpBinary, 32<<20-1, make([]byte, 1024))
	var wg sync.WaitGroup
	var errs atomic.Int64
	for range workers {
		wg.Go(func() {
			for range rounds {
				nc, br, err := attackDial(s.wsURL)
				if err == nil {
					_, err = nc.Write(frame)
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				// Hang up once the server has read it all: it answers the
				// peer's EOF by closing. (Closing at once would often
				// reset the connection before the server read anything.)
				nc.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, br)
				nc.Close()
			}
		})
	}
	wg.Wait()
	if n := errs.Load(); n > 0 {
		t.Fatalf("%d of %d attacking connections failed", n, workers*rounds)
	}
	deadline := time.Now().Add(runTimeout)
	for s.metric(t, "conns_open") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", s.metric(t, "conns_open"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	ms := s.memStats(t, false)
	peakUsed, used := s.metric(t, "memory_peak_bytes"), s.metric(t, "memory_used_bytes")
	t.Logf("%d connections announcing 32 MiB and sending 1 KiB: message memory peak %d KB; server heap %d MB, resident %d MB now, %d MB at start, peak %d MB",
		workers*rounds, peakUsed>>10, ms.heapInuse>>20, ms.rss>>20, s.base.rss>>20, s.peak.Load()>>20)
	if limit := int64(workers) * 64 << 10; peakUsed > limit {
		t.Errorf("message memory peaked at %d bytes, want at most %d (64 KiB a connection)", peakUsed, limit)
	}
	if used != 0 {
		t.Errorf("%d bytes of message memory held after every connection ended", used)
	}
	if grew := s.peak.Load() - s.base.rss; !s.race && grew > 48<<20 {
		t.Errorf("resident memory grew by %d MB, want at most 48 MB", grew>>20)
	}
}

// TestAttack_LargeMessages: 12 connections each send two 8 MiB messages in
// 64 KiB fragments (96 MiB at once) against -max-memory 32 MiB, while a
// bystander echoes small messages. The server's message memory stays
// within the budget (a large message waits, reading nothing, until memory
// is free, or fails with 1013), the bystander's echoes keep flowing, and
// every large message is echoed whole or refused with 1013. Before the
// budget, memory grew with every connection's messages at once.
func TestAttack_LargeMessages(t *testing.T) {
	t.Parallel()
	const (
		budget = 32 << 20
		conns  = 12
		size   = 8 << 20
		frag   = 64 << 10
	)
	s := startAttackServer(t, 2*budget+128<<20, "-max-memory", strconv.Itoa(budget), "-ping-interval", "0")
	msg := make([]byte, size)
	var stream []byte // one message, in fragments
	for off := 0; off < size; off += frag {
		op := wsframe.OpContinuation
		if off == 0 {
			op = wsframe.OpBinary
		}
		stream = append(stream, attackFrame(off+frag >= size, op, frag, msg[off:off+frag])...)
	}

	stopBystander := make(chan struct{})
	var lat []time.Duration
	var bystanderErr error
	var bwg sync.WaitGroup
	bwg.Go(func() {
		nc, br, err := attackDial(s.wsURL)
		if err != nil {
			bystanderErr = err
			return
		}
		defer nc.Close()
		small := attackFrame(true, wsframe.OpText, 32, bytes.Repeat([]byte("x"), 32))
		for {
			select {
			case <-stopBystander:
				return
			default:
			}
			start := time.Now()
			if _, err := nc.Write(small); err != nil {
				bystanderErr = err
				return
			}
			f, err := readWireFrame(br)
			if err != nil || f.op != wsframe.OpText {
				bystanderErr = fmt.Errorf("echo: %v %v", f, err)
				return
			}
			lat = append(lat, time.Since(start))
			time.Sleep(10 * time.Millisecond)
		}
	})

	var echoed, refused, failed atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			nc, br, err := attackDial(s.wsURL)
			if err != nil {
				failed.Add(1)
				return
			}
			defer nc.Close()
			for range 2 {
				werr := make(chan error, 1)
				go func() {
					_, err := nc.Write(stream)
					werr <- err
				}()
				code, err := readEcho(br, size)
				<-werr
				switch {
				case err == nil:
					echoed.Add(1)
				case code == wsframe.CloseTryAgainLater:
					refused.Add(1)
					return
				default:
					t.Errorf("large message: close %d, %v", code, err)
					failed.Add(1)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stopBystander)
	bwg.Wait()
	if bystanderErr != nil {
		t.Errorf("bystander: %v", bystanderErr)
	}
	peakUsed := s.metric(t, "memory_peak_bytes")
	slices.Sort(lat)
	var p99, worst time.Duration
	if len(lat) > 0 {
		p99, worst = lat[len(lat)*99/100], lat[len(lat)-1]
	}
	t.Logf("large messages: %d echoed, %d refused with 1013, %d failed; message memory peak %d MB of %d; resident peak %d MB (%d at start); bystander: %d echoes, p99 %v, max %v; memory_waits %d",
		echoed.Load(), refused.Load(), failed.Load(), peakUsed>>20, budget>>20, s.peak.Load()>>20, s.base.rss>>20, len(lat), p99, worst, s.metric(t, "memory_waits"))
	if peakUsed > budget {
		t.Errorf("message memory peaked at %d bytes, over the budget of %d", peakUsed, budget)
	}
	if echoed.Load() == 0 || failed.Load() > 0 {
		t.Errorf("%d large messages echoed, %d failed otherwise than with 1013: want some echoed and none failed", echoed.Load(), failed.Load())
	}
	// A bystander that had to wait for the budget would wait the memory
	// wait (10 s); 5 s leaves room for a loaded machine (2.1 s seen at
	// load 9.6 under the race detector).
	if len(lat) < 10 || worst > 5*time.Second {
		t.Errorf("bystander: %d echoes, slowest %v; want them to keep flowing (under 5 s each, half the memory wait)", len(lat), worst)
	}
}

// readEcho reads the echo of a size-byte binary message, discarding its
// payload, or the server's Close and its code.
func readEcho(br *bufio.Reader, size int) (closeCode int, err error) {
	for {
		closeCode, ping, err := readEchoFrame(br, size)
		if !ping {
			return closeCode, err
		}
	}
}

// readEchoFrame is readEcho for one frame; it reports a ping or pong, which
// it skips.
func readEchoFrame(br *bufio.Reader, size int) (closeCode int, ping bool, err error) {
	b, err := br.Peek(2)
	if err != nil {
		return 0, false, err
	}
	if b, err = br.Peek(wsframe.HeaderLen(b[1])); err != nil {
		return 0, false, err
	}
	h, n, err := wsframe.ParseHeader(b)
	if err != nil {
		return 0, false, err
	}
	br.Discard(n)
	if h.Opcode == wsframe.OpClose {
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(br, p); err != nil {
			return 0, false, err
		}
		if len(p) >= 2 {
			closeCode = int(p[0])<<8 | int(p[1])
		}
		return closeCode, false, fmt.Errorf("closed with %d", closeCode)
	}
	if _, err := io.CopyN(io.Discard, br, h.Length); err != nil {
		return 0, false, err
	}
	if h.Opcode == wsframe.OpPing || h.Opcode == wsframe.OpPong {
		return 0, true, nil
	}
	if !h.Fin || h.Opcode != wsframe.OpBinary || h.Length != int64(size) {
		return 0, false, fmt.Errorf("echo: opcode %d, %d bytes", h.Opcode, h.Length)
	}
	return 0, false, nil
}

// TestAttack_SlowMessage: a message that trickles in, one byte (or one
// empty frame) at a time, is closed when it has taken -message-timeout; a
// connection that sends only empty frames is closed at -idle-timeout, since
// they carry nothing. Before, every frame reset the idle timer, and such a
// message held its buffer for ever.
func TestAttack_SlowMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		piece     []byte
		code      int
		after     time.Duration
		withinMax time.Duration
	}{
		{name: "byte_at_a_time", args: []string{"-message-timeout", "1s", "-idle-timeout", "30s", "-ping-interval", "10s"},
			piece: attackFrame(false, wsframe.OpContinuation, 1, []byte{'x'}), code: wsframe.ClosePolicyViolation,
			after: time.Second, withinMax: 3 * time.Second},
		{name: "empty_frames", args: []string{"-idle-timeout", "1s", "-ping-interval", "0"},
			piece: attackFrame(false, wsframe.OpContinuation, 0, nil), code: wsframe.CloseGoingAway,
			after: time.Second, withinMax: 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startAttackServer(t, 64<<20, tc.args...)
			nc, br, err := attackDial(s.wsURL)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			start := time.Now()
			if _, err := nc.Write(attackFrame(false, wsframe.OpBinary, 1, []byte{'x'})); err != nil {
				t.Fatal(err)
			}
			closed := make(chan wireFrame, 1)
			go func() {
				f, _ := readWireFrame(br)
				closed <- f
			}()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case f := <-closed:
					d := time.Since(start)
					code := 0
					if f.op == wsframe.OpClose && len(f.payload) >= 2 {
						code = int(f.payload[0])<<8 | int(f.payload[1])
					}
					t.Logf("closed with %d after %v", code, d.Round(time.Millisecond))
					if code != tc.code || d < tc.after || d > tc.withinMax {
						t.Errorf("got %v (close %d) after %v; want close %d after %v to %v", f, code, d, tc.code, tc.after, tc.withinMax)
					}
					return
				case <-tick.C:
					if time.Since(start) > 2*tc.withinMax {
						t.Fatalf("still open after %v", time.Since(start))
					}
					nc.Write(tc.piece) // fails once the server has closed
				}
			}
		})
	}
}

// TestAttack_MemoryReturned: after ten 32 MiB messages are echoed and their
// connections closed, the server's resident memory returns near its idle
// level within a minute. Before, large buffers stayed in a pool (338 MB
// resident after such a burst).
func TestAttack_MemoryReturned(t *testing.T) {
	t.Parallel()
	const size, conns = 32 << 20, 10
	s := startAttackServer(t, 2*conns*size)
	frame := attackFrame(true, wsframe.OpBinary, size, make([]byte, size))
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			nc, br, err := attackDial(s.wsURL)
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			werr := make(chan error, 1)
			go func() {
				_, err := nc.Write(frame)
				werr <- err
			}()
			if _, err := readEcho(br, size); err != nil {
				t.Errorf("32 MiB message: %v", err)
			}
			<-werr
		})
	}
	wg.Wait()
	burst := time.Now()
	peak := s.peak.Load()
	// Back near idle: within 48 MB of where it started.
	for {
		ms := s.memStats(t, false)
		back := ms.rss < s.base.rss+48<<20
		if s.race {
			back = ms.heapInuse < s.base.heapInuse+48<<20 // the race detector's shadow memory stays
		}
		if back {
			t.Logf("resident %d MB at start, peak %d MB during the burst, %d MB %v after it (heap in use %d MB)",
				s.base.rss>>20, peak>>20, ms.rss>>20, time.Since(burst).Round(100*time.Millisecond), ms.heapInuse>>20)
			return
		}
		if time.Since(burst) > time.Minute {
			t.Fatalf("a minute after the burst, resident %d MB, heap in use %d MB; at start %d MB, %d MB",
				ms.rss>>20, ms.heapInuse>>20, s.base.rss>>20, s.base.heapInuse>>20)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

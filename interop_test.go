package main

// Real-world interop: our server against third-party clients (Python
// websockets, Node ws), behind nginx, over TLS, and through a rolling
// restart of two server processes behind one nginx upstream.
//
// Every peer is optional on a developer's machine (the test skips, saying
// what is missing) and required in CI (CI=true: the test fails).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"expvar"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"wsecho/client"
	"wsecho/internal/bench"
	"wsecho/internal/testpeer"
	"wsecho/internal/wsmsg"
	"wsecho/server"
)

const nginxPath = "/usr/sbin/nginx"

func needNginx(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(nginxPath); err != nil {
		testpeer.Missing(t, "nginx is not installed (apt-get install nginx-light; .ci/run installs it): %v", err)
	}
}

// thirdParty are the third-party clients: each runs a script in
// testdata/interop that checks the echo table and prints a result line.
var thirdParty = []string{"python", "node"}

// wantChecks is what each script's result line lists after "ok NAME".
const wantChecks = "text binary empty 1MiB fragments pong close=1000 close=4000"

// runPeerClient runs a third-party client script against url (trusting
// cafile, if not empty) and fails the test unless it prints its ok line.
func runPeerClient(t *testing.T, peer, url, cafile string) {
	t.Helper()
	runPeerClientDeflate(t, peer, url, cafile, "")
}

// runPeerClientDeflate is runPeerClient with WSECHO_DEFLATE set to deflate
// (see testdata/interop), when not empty: then the client must have
// negotiated permessage-deflate and checks a JSON-like message too. It
// returns the client's output.
func runPeerClientDeflate(t *testing.T, peer, url, cafile, deflate string) string {
	t.Helper()
	args := []string{url}
	if cafile != "" {
		args = append(args, cafile)
	}
	checks := wantChecks
	var env []string
	if deflate != "" {
		env = []string{"WSECHO_DEFLATE=" + deflate}
		checks = strings.Replace(checks, "1MiB", "1MiB json", 1) + " deflate"
	}
	return runPeerScript(t, peer, "client", checks, env, args...)
}

// runPeerScript runs testdata/interop/SCRIPT.py or .js with args, and env
// added to its environment, and fails the test unless its last line is
// "ok PEER CHECKS". It returns the script's output.
func runPeerScript(t *testing.T, peer, script, checks string, env []string, args ...string) string {
	t.Helper()
	var cmd *exec.Cmd
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	switch peer {
	case "python":
		cmd = exec.CommandContext(ctx, testpeer.Python(t), append([]string{filepath.Join("testdata", "interop", script+".py")}, args...)...)
	case "node":
		node, nodeEnv := testpeer.Node(t)
		cmd = exec.CommandContext(ctx, node, append([]string{filepath.Join("testdata", "interop", script+".js")}, args...)...)
		cmd.Env = nodeEnv
	default:
		t.Fatalf("unknown peer %q", peer)
	}
	cmd.WaitDelay = 2 * time.Second
	if len(env) > 0 {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, env...)
	}
	out, err := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if want := "ok " + peer + " " + checks; err != nil || last != want {
		t.Fatalf("%s %s %s: err %v, last line %q, want %q; output:\n%s", peer, script, args, err, last, want, out)
	}
	return string(out)
}

// TestInteropBehaviours runs the behaviours of /echo (issue 13) against
// Python websockets and Node ws: a fragmented echo is one message to them,
// compressed (both offer permessage-deflate by default) or not, the
// greeting comes first, they see the close code asked for, a drop as
// 1006, and pushes between echoes.
func TestInteropBehaviours(t *testing.T) {
	t.Parallel()
	base := "ws://" + startEcho(t, server.Options{}, nil)
	for _, peer := range thirdParty {
		t.Run("peer="+peer, func(t *testing.T) {
			t.Parallel()
			runPeerScript(t, peer, "behaviours", "fragment fragment_compressed greeting close=1013 drop push", nil, base)
		})
	}
}

// ourClientTable runs the echo table with our client package against url:
// text, binary, empty, 1 MiB, then a close with 1000 and, on a second
// connection, with 4000, each echoed by the server. (Our client cannot send
// fragments or observe a pong outside Run; the third-party clients cover
// those.)
func ourClientTable(t *testing.T, url string, opts client.Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	opts.Logger = testLogger(t)
	mib := make([]byte, 1<<20)
	rand.Read(mib)
	for _, code := range []int{1000, 4000} {
		c, err := client.Dial(ctx, url, opts)
		if err != nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		table := []wsmsg.Message{
			{Type: websocket.TextFrame, Data: []byte("hello, wsecho")},
			{Type: websocket.BinaryFrame, Data: []byte{0, 1, 0xfe, 0xff}},
			{Type: websocket.TextFrame, Data: []byte{}},
			{Type: websocket.BinaryFrame, Data: mib},
		}
		if code != 1000 {
			table = table[:1]
		}
		for i, m := range table {
			if err := wsmsg.Codec.Send(c.Conn, &m); err != nil {
				c.Close()
				t.Fatalf("row %d: send: %v", i, err)
			}
			typ, data, err := c.ReadMessage()
			if err != nil {
				c.Close()
				t.Fatalf("row %d: receive: %v", i, err)
			}
			if typ != m.Type || !bytes.Equal(data, m.Data) {
				c.Close()
				t.Fatalf("row %d: echo: got type %d, %d bytes; want type %d, %d bytes", i, typ, len(data), m.Type, len(m.Data))
			}
		}
		if err := c.WriteClose(code, "bye"); err != nil {
			c.Close()
			t.Fatalf("close %d: %v", code, err)
		}
		_, _, err = c.ReadMessage()
		c.Close()
		if !errors.Is(err, io.EOF) {
			t.Fatalf("close %d: after the Close got %v, want io.EOF", code, err)
		}
		if got, _, ok := c.CloseStatus(); !ok || got != code {
			t.Fatalf("close %d: server answered %d (Close received: %v)", code, got, ok)
		}
	}
}

// startEcho serves our handler with NewMux on a loopback port, over TLS if
// tc is not nil, and returns its host:port.
func startEcho(t *testing.T, opts server.Options, tc *tls.Config) string {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	h := server.New(opts)
	ts := httptest.NewUnstartedServer(server.NewMux(h, nil))
	if tc != nil {
		ts.TLS = tc
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	return ts.Listener.Addr().String()
}

// TestInteropDeflate runs the third-party clients against our server with
// permessage-deflate offered with context takeover on and off and windows
// of 8, 9 and 15 bits (a server with CompressContextTakeover for takeover
// on), and checks what was negotiated and that messages were compressed
// both ways.
func TestInteropDeflate(t *testing.T) {
	t.Parallel()
	for _, takeover := range []string{"on", "off"} {
		for _, bits := range []int{8, 9, 15} {
			setting := fmt.Sprintf("takeover=%s,bits=%d", takeover, bits)
			for _, peer := range thirdParty {
				t.Run(fmt.Sprintf("takeover=%s/bits=%d/peer=%s", takeover, bits, peer), func(t *testing.T) {
					t.Parallel()
					h := server.New(server.Options{CompressContextTakeover: takeover == "on", Logger: testLogger(t)})
					ts := httptest.NewServer(h)
					t.Cleanup(func() {
						ts.Close()
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						defer cancel()
						h.Shutdown(ctx)
					})
					out := runPeerClientDeflate(t, peer, "ws"+strings.TrimPrefix(ts.URL, "http")+"/echo", "", setting)
					_, resp, _ := strings.Cut(out, "deflate: ")
					resp, _, _ = strings.Cut(resp, "\n")
					wantParams := []string{fmt.Sprintf("server_max_window_bits=%d", bits)}
					if takeover == "off" {
						wantParams = append(wantParams, "server_no_context_takeover", "client_no_context_takeover")
					}
					for _, p := range wantParams {
						if !strings.Contains(resp, p) {
							t.Errorf("response %q lacks %s", resp, p)
						}
					}
					if takeover == "on" && strings.Contains(resp, "no_context_takeover") {
						t.Errorf("response %q: the server should keep its context", resp)
					}
					m := h.Metrics()
					for _, name := range []string{"compressed_messages_in", "compressed_messages_out"} {
						if v := m.Get(name).(*expvar.Int).Value(); v == 0 {
							t.Errorf("%s = 0: nothing was compressed", name)
						}
					}
				})
			}
		}
	}
}

// TestInteropClients runs the echo table against our server with Python
// websockets, Node ws and our own client, over ws:// and over wss:// with a
// test certificate that each client trusts through its CA file.
func TestInteropClients(t *testing.T) {
	t.Parallel()
	cert := testpeer.NewCert(t)

	for _, scheme := range []string{"ws", "wss"} {
		t.Run("scheme="+scheme, func(t *testing.T) {
			t.Parallel()
			var tc *tls.Config
			var opts client.Options
			ca := ""
			if scheme == "wss" {
				tc = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
				opts.TLSConfig = &tls.Config{RootCAs: cert.Pool}
				ca = cert.CAFile
			}
			url := scheme + "://" + startEcho(t, server.Options{}, tc) + "/echo"
			for _, peer := range thirdParty {
				t.Run("peer="+peer, func(t *testing.T) {
					t.Parallel()
					runPeerClient(t, peer, url, ca)
				})
			}
			t.Run("peer=wsecho", func(t *testing.T) {
				t.Parallel()
				ourClientTable(t, url, opts)
			})
		})
	}
}

// nginx is an nginx process started by startNginx.
type nginx struct {
	addr    string // 127.0.0.1:port
	errLog  string
	cmd     *exec.Cmd
	waitErr chan error
}

// log returns nginx's error log, for failure messages.
func (n *nginx) log() string {
	b, _ := os.ReadFile(n.errLog)
	return string(b)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// nginxConf is the configuration startNginx writes: one process, in the
// foreground, every path inside the test's folder, and the usual WebSocket
// proxying to an upstream of our servers.
const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log info; # info: "client timed out" is logged at that level
events { worker_connections 1024; }
http {
	access_log {{dir}}/access.log;
	client_body_temp_path {{dir}}/client_body;
	proxy_temp_path {{dir}}/proxy;
	fastcgi_temp_path {{dir}}/fastcgi;
	uwsgi_temp_path {{dir}}/uwsgi;
	scgi_temp_path {{dir}}/scgi;

	upstream wsecho {
{{upstreams}}	}
	server {
		listen {{addr}};
		location / {
			proxy_pass http://wsecho;
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection "upgrade";
			proxy_set_header Host $http_host;
			proxy_read_timeout {{readTimeout}};
			proxy_connect_timeout 2s;
			proxy_next_upstream error timeout http_502 http_503;
		}
	}
}
`

// startNginx runs nginx on a free loopback port in front of upstreams
// (host:port each) and returns when it accepts connections.
func startNginx(t *testing.T, upstreams []string, readTimeout time.Duration) *nginx {
	t.Helper()
	needNginx(t)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var ups strings.Builder
	for _, u := range upstreams {
		// max_fails=0: a server that was down is tried again at once when
		// it is back, instead of being shunned for fail_timeout.
		fmt.Fprintf(&ups, "\t\tserver %s max_fails=0;\n", u)
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{addr}}", addr, "{{upstreams}}", ups.String(),
		"{{readTimeout}}", fmt.Sprintf("%dms", readTimeout.Milliseconds())).Replace(nginxConf)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n := &nginx{addr: addr, errLog: filepath.Join(dir, "error.log"), waitErr: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	n.cmd = exec.CommandContext(ctx, nginxPath, "-p", dir, "-c", confFile, "-e", n.errLog)
	var out bytes.Buffer
	n.cmd.Stdout, n.cmd.Stderr = &out, &out
	n.cmd.WaitDelay = 2 * time.Second
	if err := n.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start nginx: %v", err)
	}
	go func() { n.waitErr <- n.cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-n.waitErr
	})
	// nginx gives no sign that it listens: try to connect, a bounded number
	// of times, and stop at once if it exited.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return n
		}
		if i == 250 {
			t.Fatalf("nginx does not accept on %s after 5s: %v\nerror log:\n%s", addr, err, n.log())
		}
		select {
		case err := <-n.waitErr:
			n.waitErr <- err
			t.Fatalf("nginx exited: %v\n%s\nerror log:\n%s", err, out.String(), n.log())
		case <-tick.C:
		}
	}
}

// TestInteropNginx puts nginx in front of our server: the echo table with
// third-party clients and ours, the origin check through the proxy, and an
// idle connection that outlives several proxy_read_timeouts thanks to the
// server's pings (and, as the control, one that does not without them).
func TestInteropNginx(t *testing.T) {
	t.Parallel()
	needNginx(t)
	// Pings a twelfth of nginx's read timeout apart (which nginx applies to
	// both directions of an upgraded connection: the server's pings one
	// way, the client's pongs the other), so that a machine loaded by the
	// rest of the suite under the race detector cannot make a gap of a
	// whole timeout.
	const readTimeout = 3 * time.Second
	const pingInterval = readTimeout / 12
	backend := startEcho(t, server.Options{PingInterval: pingInterval}, nil)
	ng := startNginx(t, []string{backend}, readTimeout)
	url := "ws://" + ng.addr + "/echo"
	for _, peer := range thirdParty {
		t.Run("peer="+peer, func(t *testing.T) {
			t.Parallel()
			runPeerClient(t, peer, url, "")
		})
	}
	t.Run("peer=wsecho", func(t *testing.T) {
		t.Parallel()
		ourClientTable(t, url, client.Options{})
	})

	t.Run("origin", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, origin string
			ok           bool
		}{
			{"proxy_origin", "http://" + ng.addr, true}, // what a browser on the proxied page sends
			{"foreign", "http://evil.example", false},
			{"backend_origin", "http://" + backend, false}, // Host is the proxy's, with its port
			{"proxy_host_no_port", "http://127.0.0.1", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				c, err := client.Dial(ctx, url, client.Options{Origin: tc.origin, Logger: testLogger(t)})
				if c != nil {
					c.Close()
				}
				switch {
				case tc.ok && err != nil:
					t.Fatalf("Origin %s: %v, want accepted\nnginx error log:\n%s", tc.origin, err, ng.log())
				case !tc.ok && (err == nil || !strings.Contains(err.Error(), "403")):
					t.Fatalf("Origin %s: err %v, want 403", tc.origin, err)
				}
			})
		}
	})

	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name     string
			ping     time.Duration
			survives bool
		}{
			{"ping=on", pingInterval, true},
			{"ping=off", 0, false}, // the control: nginx ends the idle connection
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				u, proxy := url, ng
				if tc.ping == 0 {
					proxy = startNginx(t, []string{startEcho(t, server.Options{}, nil)}, readTimeout)
					u = "ws://" + proxy.addr + "/echo"
				}
				idleThroughProxy(t, u, 3*readTimeout+readTimeout/2, tc.survives, proxy)
			})
		}
	})
}

// idleThroughProxy keeps a connection idle for idle (reading, so that the
// wire layer answers pings), then checks that it still echoes, or, if
// !survives, that it ended on its own before then.
func idleThroughProxy(t *testing.T, url string, idle time.Duration, survives bool, ng *nginx) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(idle + 10*time.Second))
	msgs := make(chan wsmsg.Message, 1)
	readErr := make(chan error, 1)
	go func() {
		for {
			typ, data, err := c.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			msgs <- wsmsg.Message{Type: typ, Data: bytes.Clone(data)}
		}
	}()
	defer func() { c.Close(); <-readErr }()
	timer := time.NewTimer(idle)
	defer timer.Stop()
	select {
	case err := <-readErr:
		readErr <- err // for the deferred wait
		if survives {
			t.Fatalf("idle connection ended after less than %s: %v\nnginx error log:\n%s", idle, err, ng.log())
		}
		return
	case m := <-msgs:
		t.Fatalf("unexpected message while idle: %q", m.Data)
	case <-timer.C:
	}
	if !survives {
		t.Fatalf("connection without pings outlived %s of idleness behind proxy_read_timeout; the control cannot fail", idle)
	}
	m := wsmsg.Message{Type: websocket.TextFrame, Data: []byte("still here")}
	if err := wsmsg.Codec.Send(c.Conn, &m); err != nil {
		t.Fatalf("send after %s idle: %v", idle, err)
	}
	select {
	case got := <-msgs:
		if string(got.Data) != "still here" {
			t.Fatalf("echo after idle: got %q", got.Data)
		}
	case err := <-readErr:
		readErr <- err
		t.Fatalf("connection ended after %s idle: %v\nnginx error log:\n%s", idle, err, ng.log())
	}
}

// TestInteropTLSBinary runs the wsecho binary as in production over TLS
// (-tls-cert, -tls-key) and reaches it with the wsecho client binary (-ca,
// -stdin), Python websockets and Node ws, each trusting the test CA; a
// client that does not trust it must fail the TLS handshake.
func TestInteropTLSBinary(t *testing.T) {
	t.Parallel()
	bin := buildWsecho(t)
	dir := t.TempDir()
	cert := testpeer.NewCert(t)
	caFile := cert.CAFile
	p := startServerProc(t, bin, "127.0.0.1:0", filepath.Join(dir, "server.log"), "-tls-cert", cert.CertFile, "-tls-key", cert.KeyFile)
	url := "wss://" + p.addr + "/echo"
	for _, peer := range thirdParty {
		t.Run("peer="+peer, func(t *testing.T) {
			t.Parallel()
			runPeerClient(t, peer, url, caFile)
		})
	}
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"ca", []string{"-ca", caFile}, true},
		{"no_ca", nil, false},
	} {
		t.Run("peer=wsecho/"+tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append([]string{"client", "-url", url, "-stdin"}, tc.args...)...)
			cmd.WaitDelay = 2 * time.Second
			cmd.Stdin = strings.NewReader("hello\nwss world\n")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			switch {
			case tc.ok && (err != nil || stdout.String() != "hello\nwss world\n"):
				t.Fatalf("wsecho client %s: %v; stdout %q, want the two lines echoed\nstderr:\n%s", tc.args, err, stdout.String(), stderr.String())
			case !tc.ok && (err == nil || !strings.Contains(stderr.String(), "certificate")):
				t.Fatalf("wsecho client without -ca: %v, want a certificate error\nstderr:\n%s", err, stderr.String())
			}
		})
	}
}

// lineRecorder collects the lines written to it and signals each write.
type lineRecorder struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLineRecorder() *lineRecorder { return &lineRecorder{changed: make(chan struct{}, 1)} }

func (r *lineRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.buf.Write(p)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (r *lineRecorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.TrimSuffix(r.buf.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// buildWsecho builds the wsecho binary into a temporary folder.
func buildWsecho(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not in PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "wsecho")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serverProc is a `wsecho server` process.
type serverProc struct {
	addr    string
	stderr  string // its log file
	cmd     *exec.Cmd
	waitErr chan error
	cancel  context.CancelFunc
}

// startServerProc starts `wsecho server` on addr and returns once it has
// printed its address. Its cleanup kills it if it still runs.
func startServerProc(t *testing.T, bin, addr, logFile string, extra ...string) *serverProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{"server", "-addr", addr, "-log-level", "warn"}, extra...)
	p := &serverProc{stderr: logFile, waitErr: make(chan error, 1), cancel: cancel}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.WaitDelay = 2 * time.Second
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.cmd.Stderr = f
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start wsecho server: %v", err)
	}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		s.Scan()
		line <- s.Text()
		io.Copy(io.Discard, stdout)
		p.waitErr <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		cancel()
		p.wait()
	})
	select {
	case l := <-line:
		a, ok := strings.CutPrefix(l, "listening on ws://")
		if !ok {
			a, ok = strings.CutPrefix(l, "listening on wss://")
		}
		a, ok2 := strings.CutSuffix(a, "/echo")
		if !ok || !ok2 {
			b, _ := os.ReadFile(logFile)
			t.Fatalf("wsecho server printed %q, want its address\n%s", l, b)
		}
		p.addr = a
	case <-time.After(20 * time.Second):
		t.Fatalf("wsecho server printed no address in 20s")
	}
	return p
}

// wait waits for the process to exit, once; it returns its exit error.
func (p *serverProc) wait() error {
	err, ok := <-p.waitErr
	if ok {
		close(p.waitErr)
	}
	return err
}

// TestInteropRollingRestart restarts, one after the other, the two wsecho
// server processes behind one nginx upstream while rollingClients clients
// send numbered lines every rollingEvery through nginx with our client's
// line mode and Reconnect. Each server gets SIGTERM (it echoes what it has
// received, then closes with 1001), and is started again on the same port
// before the other goes. Every client must see every number echoed exactly
// once, in order, and must have reconnected at least once.
//
// The guarantee comes from the client (client.Run, line mode with
// Reconnect): a line whose echo had not come back when the server's Close
// arrived is sent again, first, on the next connection; and from the
// server, which echoes everything it read before its Close 1001 and
// nothing after it.
func TestInteropRollingRestart(t *testing.T) {
	t.Parallel()
	needNginx(t)
	const (
		rollingClients = 20
		rollingEvery   = 20 * time.Millisecond
		progress       = 10 // echoes every client must see between steps
	)
	bin := buildWsecho(t)
	dir := t.TempDir()
	serverArgs := []string{"-shutdown-timeout", "3s", "-ping-interval", "0"}
	procs := []*serverProc{
		startServerProc(t, bin, "127.0.0.1:0", filepath.Join(dir, "a.log"), serverArgs...),
		startServerProc(t, bin, "127.0.0.1:0", filepath.Join(dir, "b.log"), serverArgs...),
	}
	ng := startNginx(t, []string{procs[0].addr, procs[1].addr}, 30*time.Second)
	url := "ws://" + ng.addr + "/echo"
	logs := func() string {
		var b strings.Builder
		for i, name := range []string{"a", "b"} {
			data, _ := os.ReadFile(filepath.Join(dir, name+".log"))
			fmt.Fprintf(&b, "server %s (%s) log:\n%s\n", name, procs[i].addr, data)
		}
		return b.String() + "nginx error log:\n" + ng.log()
	}

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	type rclient struct {
		out, status *lineRecorder
		stop        chan struct{}
		sent        chan int // the last number sent, once stopped
		runErr      chan error
	}
	clients := make([]*rclient, rollingClients)
	var wg sync.WaitGroup
	defer wg.Wait()
	stopAll := sync.OnceFunc(func() {
		for _, rc := range clients {
			if rc != nil {
				close(rc.stop)
			}
		}
	})
	defer stopAll()
	for i := range clients {
		rc := &rclient{out: newLineRecorder(), status: newLineRecorder(), stop: make(chan struct{}),
			sent: make(chan int, 1), runErr: make(chan error, 1)}
		opts := client.Options{Lines: true, Reconnect: true, ReconnectDelay: 50 * time.Millisecond,
			ReconnectMaxDelay: 500 * time.Millisecond, CloseWait: 5 * time.Second, Status: rc.status, Logger: log}
		c, err := client.Dial(ctx, url, opts)
		if err != nil {
			t.Fatalf("client %d: dial: %v\n%s", i, err, logs())
		}
		clients[i] = rc
		pr, pw := io.Pipe()
		wg.Go(func() {
			err := client.Run(ctx, c, pr, rc.out)
			pr.Close() // unblocks the writer below if Run ended early
			rc.runErr <- err
		})
		wg.Go(func() {
			tick := time.NewTicker(rollingEvery)
			defer tick.Stop()
			n := 0
			defer func() { pw.Close(); rc.sent <- n }()
			for {
				select {
				case <-rc.stop:
					return
				case <-tick.C:
				}
				if _, err := fmt.Fprintf(pw, "%d\n", n+1); err != nil {
					return
				}
				n++
			}
		})
	}

	// advance waits until every client has seen progress more echoes.
	advance := func(step string) {
		t.Helper()
		deadline := time.NewTimer(30 * time.Second)
		defer deadline.Stop()
		for i, rc := range clients {
			want := len(rc.out.lines()) + progress
			for len(rc.out.lines()) < want {
				select {
				case <-rc.out.changed:
				case err := <-rc.runErr:
					rc.runErr <- err
					t.Fatalf("%s: client %d ended: %v\nstatus:\n%s\n%s", step, i, err, strings.Join(rc.status.lines(), "\n"), logs())
				case <-deadline.C:
					t.Fatalf("%s: client %d saw %d echoes in 30s, want %d\nstatus:\n%s\n%s", step, i, len(rc.out.lines()), want,
						strings.Join(rc.status.lines(), "\n"), logs())
				}
			}
		}
	}
	advance("start")
	for i := range procs {
		name := string(rune('a' + i))
		p := procs[i]
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM server %s: %v", name, err)
		}
		select {
		case err := <-p.waitErr:
			close(p.waitErr)
			if err != nil {
				t.Fatalf("server %s after SIGTERM: %v, want exit status 0\n%s", name, err, logs())
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("server %s still runs 20s after SIGTERM\n%s", name, logs())
		}
		advance("server " + name + " stopped")
		procs[i] = startServerProc(t, bin, p.addr, p.stderr, serverArgs...)
		advance("server " + name + " restarted")
	}

	stopAll()
	for i, rc := range clients {
		n := <-rc.sent
		var err error
		select {
		case err = <-rc.runErr:
		case <-time.After(30 * time.Second):
			t.Fatalf("client %d: Run has not returned 30s after its input ended\n%s", i, logs())
		}
		status := strings.Join(rc.status.lines(), "\n")
		if err != nil {
			t.Errorf("client %d: Run: %v\nstatus:\n%s", i, err, status)
		}
		got := rc.out.lines()
		bad := len(got) != n
		for j := 0; !bad && j < n; j++ {
			bad = got[j] != strconv.Itoa(j+1)
		}
		if bad {
			t.Errorf("client %d: sent 1..%d, got %d echoes, want each once in order: %s\nstatus:\n%s",
				i, n, len(got), firstDiff(got, n), status)
		}
		if !strings.Contains(status, "reconnecting") {
			t.Errorf("client %d never reconnected: the restarts did not reach it\nstatus:\n%s", i, status)
		}
	}
	if t.Failed() {
		t.Log(logs())
	}
}

// firstDiff describes where got first differs from "1".."n".
func firstDiff(got []string, n int) string {
	for j := 0; j < n || j < len(got); j++ {
		want := strconv.Itoa(j + 1)
		switch {
		case j >= len(got):
			return fmt.Sprintf("missing from %s on", want)
		case j >= n:
			return fmt.Sprintf("extra %q after %d", got[j], n)
		case got[j] != want:
			return fmt.Sprintf("at index %d got %q, want %s", j, got[j], want)
		}
	}
	return "equal"
}

// TestClientDeflate runs our client with Options.Compress against our
// server, against ours with compression off, and against gorilla's with
// EnableCompression: compression is in force exactly when the server
// accepted, and a JSON-like message and a small one echo unchanged.
func TestClientDeflate(t *testing.T) {
	t.Parallel()
	big := bench.JSONText(20000)
	for _, tc := range []struct {
		impl string
		opts server.Options
		want string // Conn.Compression, "" for none
	}{
		{impl: "xnet", want: "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{impl: "xnet", opts: server.Options{DisableCompression: true}},
		{impl: "gorilla-deflate", want: "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
	} {
		t.Run(fmt.Sprintf("impl=%s/off=%v", tc.impl, tc.opts.DisableCompression), func(t *testing.T) {
			t.Parallel()
			url := startServerOpts(t, tc.impl, tc.opts)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, url, client.Options{Compress: true, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			if got, _ := c.Compression(); got != tc.want {
				t.Errorf("Compression() = %q, want %q", got, tc.want)
			}
			for _, m := range []wsmsg.Message{{Type: websocket.TextFrame, Data: big}, {Type: websocket.BinaryFrame, Data: []byte("small")}} {
				if err := wsmsg.Codec.Send(c.Conn, &m); err != nil {
					t.Fatal(err)
				}
				typ, data, err := c.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if typ != m.Type || !bytes.Equal(data, m.Data) {
					t.Fatalf("echo: type %d, %d bytes; want type %d, %d bytes", typ, len(data), m.Type, len(m.Data))
				}
			}
			c.WriteClose(1000, "")
		})
	}
}

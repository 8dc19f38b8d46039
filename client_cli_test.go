package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"wsecho/internal/testpeer"
	"wsecho/server"
)

// The tests in this file run "wsecho client" through runClient, with its
// flags, against our server and against third-party servers (Python's
// websockets and Node's ws), and check the exit statuses exitCode gives.

const cliTimeout = 10 * time.Second

// cliOutput collects what the client writes, and lets a test wait for it.
type cliOutput struct{ testpeer.Output }

func newCLIOutput() *cliOutput { return new(cliOutput) }

// waitFor reports whether the output came to contain want in time.
func (o *cliOutput) waitFor(want string) bool {
	return o.WaitUntil(cliTimeout, func(s string) bool { return strings.Contains(s, want) })
}

// cliStep is one step of a client session: a line typed on its standard
// input (if not empty), then output to wait for on stdout or stderr (if not
// empty).
type cliStep struct {
	send       string
	do         func() // runs after send
	wantStdout string
	wantStderr string
}

// cliRun is the end of one client session.
type cliRun struct {
	status         int
	stdout, stderr string
}

// runClientCLI runs "wsecho client ARGS" with its standard input fed by
// steps, then closed (unless the client ended first), and returns its exit
// status and output.
func runClientCLI(t *testing.T, args []string, steps ...cliStep) cliRun {
	t.Helper()
	// An OS pipe: writes do not wait for the client to read, which it
	// never does when it fails first.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	stdout, stderr := newCLIOutput(), newCLIOutput()
	done := make(chan error, 1)
	go func() { done <- runCommand(t.Context(), "client", args, pr, stdout, stderr) }()
	ended := false
	for _, s := range steps {
		if s.send != "" {
			if _, werr := io.WriteString(pw, s.send+"\n"); werr != nil {
				t.Errorf("write %q: %v", s.send, werr)
			}
		}
		if s.do != nil {
			s.do()
		}
		if s.wantStdout != "" && !stdout.waitFor(s.wantStdout) {
			t.Fatalf("after %q: no %q on stdout within %v;\nstdout:\n%s\nstderr:\n%s", s.send, s.wantStdout, cliTimeout, stdout, stderr)
		}
		if s.wantStderr != "" && !stderr.waitFor(s.wantStderr) {
			t.Fatalf("after %q: no %q on stderr within %v;\nstdout:\n%s\nstderr:\n%s", s.send, s.wantStderr, cliTimeout, stdout, stderr)
		}
	}
	pw.Close()
	select {
	case err = <-done:
		ended = true
	case <-time.After(cliTimeout):
	}
	if !ended {
		t.Fatalf("client did not exit within %v of the end of its input;\nstdout:\n%s\nstderr:\n%s", cliTimeout, stdout, stderr)
	}
	status := exitCode(err, stderr)
	return cliRun{status, stdout.String(), stderr.String()}
}

// lastLine returns the last line of s.
func lastLine(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

// startCLIEcho starts our echo server for the client tests; stop shuts it
// down (Close 1001 on every connection).
func startCLIEcho(t *testing.T) (url string, stop func()) {
	t.Helper()
	h := server.New(server.Options{Logger: testLogger(t)})
	ts := httptest.NewServer(h)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ts.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := h.Shutdown(ctx); err != nil {
				t.Errorf("server shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/echo", stop
}

// TestClientCLIUsage checks the usage errors of the client's flags:
// exit status 2 with the problem on stderr.
func TestClientCLIUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "show_binary", args: []string{"-show-binary", "octal"}, want: "wsecho client: -show-binary must be hex, base64 or raw"},
		{name: "close_code_1006", args: []string{"-close-code", "1006"}, want: "wsecho client: -close-code 1006 is not a code a client may send (1000-1003, 1007-1014, 3000-4999)"},
		{name: "close_code_999", args: []string{"-close-code", "999"}, want: "wsecho client: -close-code 999 is not a code a client may send (1000-1003, 1007-1014, 3000-4999)"},
		{name: "close_reason_long", args: []string{"-close-reason", strings.Repeat("x", 124)}, want: "wsecho client: -close-reason is longer than 123 bytes"},
		{name: "header_no_colon", args: []string{"-header", "X-Token"}, want: `wsecho client: invalid value "X-Token" for -header: want "Name: value"`},
		{name: "header_handshake", args: []string{"-header", "Sec-WebSocket-Key: x"}, want: "wsecho client: -header Sec-Websocket-Key: the handshake sets it (use -subprotocol for Sec-WebSocket-Protocol)"},
		{name: "stdin_count", args: []string{"-stdin", "-count", "3"}, want: "wsecho client: -count, -interval and -message apply to the default mode, not to -stdin"},
		{name: "stdin_interval", args: []string{"-stdin", "-interval", "2s"}, want: "wsecho client: -count, -interval and -message apply to the default mode, not to -stdin"},
		{name: "connect_timeout", args: []string{"-connect-timeout", "0s"}, want: "wsecho client: -connect-timeout must be positive"},
		{name: "ping", args: []string{"-ping", "-1s"}, want: "wsecho client: -ping must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runClientCLI(t, append(tc.args, "-addr", "127.0.0.1:9"))
			if want := tc.want + "; run 'wsecho client -h'"; r.status != 2 || lastLine(r.stderr) != want || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("status %d, stderr %q; want 2 and %q alone", r.status, r.stderr, want)
			}
		})
	}
}

// TestClientCLIExitStatus checks the documented exit statuses against our
// server: 0 after a normal close, 1 when the connection or handshake
// fails, 3 when the server closes with another code.
func TestClientCLIExitStatus(t *testing.T) {
	t.Parallel()
	refused := testpeer.RefusedAddr(t)
	t.Run("eof=0", func(t *testing.T) {
		t.Parallel()
		url, _ := startCLIEcho(t)
		r := runClientCLI(t, []string{"-stdin", "-url", url}, cliStep{send: "a"}, cliStep{send: "b"})
		if r.status != 0 || r.stdout != "a\nb\n" {
			t.Errorf("status %d, stdout %q; want 0 and %q; stderr:\n%s", r.status, r.stdout, "a\nb\n", r.stderr)
		}
	})
	t.Run("refused=1", func(t *testing.T) {
		t.Parallel()
		r := runClientCLI(t, []string{"-stdin", "-addr", refused})
		if want := "wsecho: dial tcp " + refused + ": connect: connection refused"; r.status != 1 || lastLine(r.stderr) != want {
			t.Errorf("status %d, stderr %q; want 1 and %q", r.status, lastLine(r.stderr), want)
		}
	})
	t.Run("forbidden=1", func(t *testing.T) {
		t.Parallel()
		url, _ := startCLIEcho(t)
		r := runClientCLI(t, []string{"-stdin", "-url", url, "-origin", "http://evil.example"})
		if want := "wsecho: handshake failed: 403 Forbidden: the server refused Origin http://evil.example; pass -origin with an origin it allows (localhost and 127.0.0.1 are different origins)"; r.status != 1 || lastLine(r.stderr) != want {
			t.Errorf("status %d, stderr %q; want 1 and %q", r.status, lastLine(r.stderr), want)
		}
	})
	t.Run("going_away=3", func(t *testing.T) {
		t.Parallel()
		url, stop := startCLIEcho(t)
		r := runClientCLI(t, []string{"-stdin", "-url", url},
			cliStep{send: "a", wantStdout: "a\n"},
			cliStep{do: stop}) // returns once the closing handshake is done
		if want := "wsecho: server closed the connection: 1001 going away"; r.status != 3 || lastLine(r.stderr) != want {
			t.Errorf("status %d, stderr %q; want 3 and %q", r.status, lastLine(r.stderr), want)
		}
	})
	t.Run("reconnect_server_gone=3", func(t *testing.T) {
		t.Parallel()
		url, stop := startCLIEcho(t)
		r := runClientCLI(t, []string{"-stdin", "-reconnect", "-url", url},
			cliStep{send: "a", wantStdout: "a\n"},
			cliStep{do: stop, wantStderr: "server closed the connection: 1001 going away; reconnecting in"})
		// The server is gone for good: the client keeps trying until its
		// input ends with nothing left to send; the status is the last
		// connection's.
		if want := "wsecho: server closed the connection: 1001 going away"; r.status != 3 || lastLine(r.stderr) != want {
			t.Errorf("status %d, stderr %q; want 3 and %q", r.status, lastLine(r.stderr), want)
		}
	})
	t.Run("connect_timeout=1", func(t *testing.T) {
		t.Parallel()
		silent, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		r := runClientCLI(t, []string{"-stdin", "-connect-timeout", "50ms", "-addr", silent.Addr().String()})
		if want := "wsecho: handshake with " + silent.Addr().String() + ": no response within 50ms"; r.status != 1 || lastLine(r.stderr) != want {
			t.Errorf("status %d, stderr %q; want 1 and %q", r.status, lastLine(r.stderr), want)
		}
	})
}

// TestClientCLITLS checks -ca and -insecure against our server over wss.
func TestClientCLITLS(t *testing.T) {
	t.Parallel()
	h := server.New(server.Options{Logger: testLogger(t)})
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(t.Output(), "tls server: ", 0) // the unknown_ca row's handshake error
	ts.StartTLS()
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	})
	url := "wss" + strings.TrimPrefix(ts.URL, "https") + "/echo"
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		stderr string // a prefix of the last line
	}{
		{name: "ca", args: []string{"-ca", ca}},
		{name: "insecure", args: []string{"-insecure"}},
		{name: "unknown_ca", status: 1, stderr: "wsecho: tls handshake with " + strings.TrimPrefix(ts.URL, "https://") + ": tls: failed to verify certificate: x509: "},
		{name: "ca_missing", args: []string{"-ca", filepath.Join(dir, "nope.pem")}, status: 1, stderr: "wsecho: read -ca: open "},
		{name: "ca_not_pem", args: []string{"-ca", notPEM}, status: 1, stderr: "wsecho: read -ca " + notPEM + ": no PEM certificates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runClientCLI(t, append([]string{"-stdin", "-url", url}, tc.args...), cliStep{send: "over tls"})
			if r.status != tc.status || !strings.HasPrefix(lastLine(r.stderr), tc.stderr) {
				t.Errorf("status %d, stderr %q; want %d and %q...", r.status, lastLine(r.stderr), tc.status, tc.stderr)
			}
			if tc.status == 0 && r.stdout != "over tls\n" {
				t.Errorf("stdout %q, want %q", r.stdout, "over tls\n")
			}
		})
	}
}

// peerGreeting is what every third-party echo server in testdata/peers
// sends first: a message in three fragments and a binary message, which
// must print once and whole.
const peerGreeting = "hello, fragmented world\n0001feff\n"

// startPeer starts a third-party echo server from testdata/peers and
// returns its ws:// URL. It skips the test when the peer's runtime or
// library is missing, unless CI=true, where that is a failure.
func startPeer(t *testing.T, name string, args ...string) string {
	t.Helper()
	return startPeerEnv(t, name, nil, args...)
}

// startPeerEnv is startPeer with extra environment variables, such as
// WSECHO_PEER_PLAIN=1 for a peer that only echoes.
func startPeerEnv(t *testing.T, name string, extra []string, args ...string) string {
	t.Helper()
	var cmd *exec.Cmd
	switch name {
	case "python":
		cmd = exec.CommandContext(t.Context(), testpeer.Python(t), append([]string{"testdata/peers/echo_server.py"}, args...)...)
	case "node":
		node, env := testpeer.Node(t)
		cmd = exec.CommandContext(t.Context(), node, append([]string{"testdata/peers/echo_server.js"}, args...)...)
		cmd.Env = env
	default:
		t.Fatalf("unknown peer %q", name)
	}
	if len(extra) > 0 {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, extra...)
	}
	stdin, err := cmd.StdinPipe() // the peer exits when it closes
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr cliOutput
	cmd.Stderr = &stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s peer: %v", name, err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
		if s := stderr.String(); s != "" {
			t.Logf("%s peer stderr:\n%s", name, s)
		}
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		url, ok := strings.CutPrefix(strings.TrimSpace(l), "listening on ")
		if !ok {
			t.Fatalf("%s peer: first line %q, want \"listening on URL\"; stderr:\n%s", name, l, stderr.String())
		}
		return url
	case <-time.After(cliTimeout):
		t.Fatalf("%s peer did not start within %v; stderr:\n%s", name, cliTimeout, stderr.String())
	}
	return ""
}

// TestClientCLIPeers runs the client against Python's websockets and
// Node's ws echo servers: they send a fragmented message, a binary message
// and a ping first (the client prints whole messages and answers the ping,
// which the peer reports with "pong received: peer-ping"), then echo, and
// close with a given code on request.
func TestClientCLIPeers(t *testing.T) {
	t.Parallel()
	for _, peer := range []string{"python", "node"} {
		t.Run("peer="+peer, func(t *testing.T) {
			t.Parallel()
			url := startPeer(t, peer)
			greeted := cliStep{wantStdout: peerGreeting}
			greetedV := cliStep{wantStdout: "[text, 23 bytes] hello, fragmented world\n[binary, 4 bytes] 0001feff\n"} // with -v
			ponged := cliStep{wantStdout: "pong received: peer-ping\n"}
			for _, tc := range []struct {
				name   string
				args   []string
				steps  []cliStep
				status int
				check  func(t *testing.T, r cliRun)
			}{
				{name: "eof", steps: []cliStep{greeted, ponged, {send: "hi", wantStdout: "hi\n"}},
					check: func(t *testing.T, r cliRun) {
						if !strings.HasPrefix(r.stdout, peerGreeting) {
							t.Errorf("stdout does not start with the whole messages %q:\n%s", peerGreeting, r.stdout)
						}
					}},
				{name: "close=1000", args: []string{"-v"}, steps: []cliStep{greetedV, ponged, {send: "close 1000 bye", wantStderr: "server closed: 1000 bye"}}, status: 0,
					check: func(t *testing.T, r cliRun) {
						if strings.Contains(r.stderr, "wsecho:") {
							t.Errorf("an error on stderr:\n%s", r.stderr)
						}
					}},
				{name: "close=1001", args: []string{"-v"}, steps: []cliStep{greetedV, ponged, {send: "close 1001 moving on", wantStderr: "server closed: 1001"}}, status: 3,
					check: wantLastLine("wsecho: server closed the connection: 1001 moving on")},
				{name: "close=1011", args: []string{"-v"}, steps: []cliStep{greetedV, ponged, {send: "close 1011 it broke", wantStderr: "server closed: 1011"}}, status: 3,
					check: wantLastLine("wsecho: server closed the connection: 1011 it broke")},
				{name: "json", args: []string{"-json"}, steps: []cliStep{greeted2json, {send: "hi", wantStdout: `"data":"hi"`}},
					check: func(t *testing.T, r cliRun) {
						var recv []string
						for l := range strings.SplitSeq(strings.TrimSpace(r.stdout), "\n") {
							var e struct{ Dir, Type, Data string }
							if err := json.Unmarshal([]byte(l), &e); err != nil {
								t.Fatalf("not JSON: %q", l)
							}
							if e.Dir == "recv" {
								recv = append(recv, e.Type+" "+e.Data)
							}
						}
						if len(recv) < 4 || recv[0] != "text hello, fragmented world" || recv[1] != "binary AAH+/w==" || recv[2] != "ping " {
							t.Errorf("received events %q, want the whole text, the binary in base64, the ping", recv)
						}
					}},
				{name: "binary", args: []string{"-binary", "-show-binary", "base64"}, steps: []cliStep{{wantStdout: "AAH+/w==\n"}, {send: "hi", wantStdout: "aGk=\n"}}},
				{name: "timestamps_v", args: []string{"-timestamps", "-v"}, steps: []cliStep{{wantStdout: "[binary, 4 bytes] 0001feff\n"}, {wantStderr: "ping from the server (9 bytes), answered"}},
					check: func(t *testing.T, r cliRun) {
						re := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\S* \[text, 23 bytes\] hello, fragmented world$`)
						if !re.MatchString(r.stdout) {
							t.Errorf("stdout has no timestamped, verbose greeting:\n%s", r.stdout)
						}
					}},
				{name: "headers", args: []string{"-header", "X-Test: yes", "-header", "X-Other: 2", "-origin", "http://wsecho.example"},
					steps: []cliStep{greeted, {send: "header X-Test", wantStdout: "header X-Test: yes\n"}, {send: "header Origin", wantStdout: "header Origin: http://wsecho.example\n"}}},
				{name: "subprotocol", args: []string{"-subprotocol", "superchat", "-subprotocol", "chat"},
					steps: []cliStep{{wantStderr: "(subprotocol chat)"}, {send: "subprotocol", wantStdout: "subprotocol: chat\n"}}},
				{name: "ping", args: []string{"-ping", "1s", "-v"}, steps: []cliStep{greetedV, {wantStderr: "pong in "}}},
				{name: "close_code", args: []string{"-close-code", "4000", "-close-reason", "done", "-json"}, steps: []cliStep{greeted2json},
					check: func(t *testing.T, r cliRun) {
						if !strings.Contains(r.stdout, `"dir":"send","type":"close","code":4000,"reason":"done"`) ||
							!strings.Contains(r.stdout, `"dir":"recv","type":"close","code":4000`) {
							t.Errorf("no closing handshake with 4000:\n%s", r.stdout)
						}
					}},
				// "close 1001 again" is never echoed: the client sends it once
				// more after the first close (the server's Close came after
				// every echo), and not after the second.
				{name: "reconnect", args: []string{"-reconnect"}, steps: []cliStep{greeted, {send: "one", wantStdout: "one\n"},
					{send: "close 1001 again", wantStderr: "they are not sent again"}, {send: "two", wantStdout: "two\n"}},
					check: func(t *testing.T, r cliRun) {
						if n := strings.Count(r.stdout, peerGreeting); n != 3 {
							t.Errorf("%d greetings, want 3 (three connections):\n%s", n, r.stdout)
						}
						if n := strings.Count(r.stderr, "server closed the connection: 1001 again; reconnecting in"); n != 2 {
							t.Errorf("%d reconnects, want 2; stderr:\n%s", n, r.stderr)
						}
						if strings.Count(r.stdout, "one\n") != 1 || strings.Count(r.stdout, "two\n") != 1 {
							t.Errorf("lines not echoed exactly once:\n%s", r.stdout)
						}
					}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					r := runClientCLI(t, append([]string{"-stdin", "-url", url}, tc.args...), tc.steps...)
					if r.status != tc.status {
						t.Errorf("exit status %d, want %d; stderr:\n%s", r.status, tc.status, r.stderr)
					}
					if tc.check != nil {
						tc.check(t, r)
					}
				})
			}
		})
	}
}

// greeted2json waits for the greeting in -json mode.
var greeted2json = cliStep{wantStdout: `"dir":"recv","type":"binary","size":4,"data":"AAH+/w=="`}

func wantLastLine(want string) func(t *testing.T, r cliRun) {
	return func(t *testing.T, r cliRun) {
		t.Helper()
		if got := lastLine(r.stderr); got != want {
			t.Errorf("last line of stderr %q, want %q", got, want)
		}
	}
}

// TestClientCLIPeerTLS runs the client's TLS flags and its default mode
// against servers no one here wrote: Node's ws over wss, with -ca, with
// -insecure and with neither, and the Python server with -count.
func TestClientCLIPeerTLS(t *testing.T) {
	t.Parallel()
	cert := testpeer.NewCert(t)
	url := startPeer(t, "node", "0", cert.CertFile, cert.KeyFile)
	if !strings.HasPrefix(url, "wss://") {
		t.Fatalf("node peer with TLS: URL %q, want wss://", url)
	}
	greeted := cliStep{wantStdout: "hello, fragmented world\n"}
	for _, tc := range []struct {
		name   string
		args   []string
		steps  []cliStep
		status int
		stderr string
	}{
		{name: "ca", args: []string{"-ca", cert.CAFile}, steps: []cliStep{greeted, {send: "over tls", wantStdout: "over tls\n"}}},
		{name: "insecure", args: []string{"-insecure"}, steps: []cliStep{greeted, {send: "unverified", wantStdout: "unverified\n"}}},
		{name: "untrusted", status: 1, stderr: "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runClientCLI(t, append([]string{"-stdin", "-url", url}, tc.args...), tc.steps...)
			if r.status != tc.status {
				t.Fatalf("exit status %d, want %d;\nstdout:\n%s\nstderr:\n%s", r.status, tc.status, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q does not mention %q", r.stderr, tc.stderr)
			}
		})
	}
}

// TestClientCLIPeerDefaultMode runs the seed's mode (-count, -interval)
// against the Python server: the peer's greeting prints whole, the client
// sends its two times and closes normally.
func TestClientCLIPeerDefaultMode(t *testing.T) {
	t.Parallel()
	url := startPeer(t, "python")
	r := runClientCLI(t, []string{"-url", url, "-count", "2", "-interval", "20ms"})
	if r.status != 0 {
		t.Fatalf("exit status %d, want 0;\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "hello, fragmented world\n") {
		t.Errorf("stdout lacks the peer's fragmented message, whole:\n%s", r.stdout)
	}
}

// TestClientCLIWaitForEchoes checks `printf 'a\nb\n' | wsecho client
// -stdin URL` against servers that send nothing after a Close (Python's
// websockets) and others: both echoes are printed, every time, because the
// client waits for them before it closes. Before -wait, the Python server
// got the Close within a millisecond of the lines and echoed nothing.
func TestClientCLIWaitForEchoes(t *testing.T) {
	t.Parallel()
	ours, _ := startCLIEcho(t)
	for _, peer := range []string{"ours", "python", "node"} {
		t.Run("peer="+peer, func(t *testing.T) {
			t.Parallel()
			url := ours
			if peer != "ours" {
				url = startPeerEnv(t, peer, []string{"WSECHO_PEER_PLAIN=1"})
			}
			for range 3 {
				r := runClientCLI(t, []string{"-stdin", url}, cliStep{send: "a"}, cliStep{send: "b"})
				if r.status != 0 || r.stdout != "a\nb\n" {
					t.Fatalf("status %d, stdout %q; want 0 and %q; stderr:\n%s", r.status, r.stdout, "a\nb\n", r.stderr)
				}
			}
		})
	}
}

// TestClientCLISend checks what the default mode sends: -file as one
// message (binary, every byte value; text with -text; standard input with
// -file -), -message instead of the time, and the first message at once.
func TestClientCLISend(t *testing.T) {
	t.Parallel()
	url, _ := startCLIEcho(t)
	dir := t.TempDir()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	bin := filepath.Join(dir, "bytes.bin")
	txt := filepath.Join(dir, "hello.txt")
	if err := os.WriteFile(bin, all, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(txt, []byte("héllo\nworld"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		steps  []cliStep
		want   string
		status int
		stderr string
		first  bool // the URL before the flags, as wscat users type it
	}{
		{name: "file_binary", args: []string{"-file", bin, "-show-binary", "hex"}, want: hex.EncodeToString(all) + "\n"},
		{name: "file_binary_raw", args: []string{"-file", bin, "-show-binary", "raw"}, want: string(all) + "\n"},
		{name: "file_text", args: []string{"-file", txt, "-text"}, want: "héllo\nworld\n"},
		{name: "file_stdin", args: []string{"-file", "-", "-text"}, steps: []cliStep{{send: "from stdin"}}, want: "from stdin\n\n"},
		{name: "file_text_not_utf8", args: []string{"-file", bin, "-text"}, status: 1,
			stderr: "wsecho: -file " + bin + " is not valid UTF-8: drop -text to send it as binary"},
		{name: "file_missing", args: []string{"-file", filepath.Join(dir, "nope")}, status: 1,
			stderr: "wsecho: open " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{name: "message", args: []string{"-message", "hi there", "-count", "2", "-interval", "1ms"}, want: "hi there\nhi there\n"},
		{name: "url_first", args: []string{"-message", "hi", "-count", "1"}, want: "hi\n", first: true},
		// -count 1 with an interval of an hour ends at once: the first
		// message does not wait for the interval.
		{name: "first_at_once", args: []string{"-message", "now", "-count", "1", "-interval", "1h"}, want: "now\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(tc.args, url)
			if tc.first {
				args = append([]string{url}, tc.args...)
			}
			r := runClientCLI(t, args, tc.steps...)
			if r.status != tc.status || r.stdout != tc.want {
				t.Errorf("status %d, stdout %q; want %d and %q; stderr:\n%s", r.status, r.stdout, tc.status, tc.want, r.stderr)
			}
			if tc.stderr != "" && lastLine(r.stderr) != tc.stderr {
				t.Errorf("stderr %q, want %q", lastLine(r.stderr), tc.stderr)
			}
		})
	}
}

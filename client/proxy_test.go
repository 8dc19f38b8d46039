package client_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"wsecho/client"
	"wsecho/internal/testpeer"
)

// connectProxy is a tiny HTTP CONNECT proxy on a loopback port. It tunnels
// every CONNECT to target (whatever host was asked for) and records the
// requests. With auth set, it wants that Proxy-Authorization.
type connectProxy struct {
	ln     net.Listener
	target string
	auth   string
	wg     sync.WaitGroup
	mu     sync.Mutex
	asked  []string // the CONNECT targets
	conns  []net.Conn
}

func startProxy(t *testing.T, target, auth string) *connectProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startProxyOn(t, ln, target, auth)
}

// startProxyOn is startProxy on a listener of the caller's (TLS, for an
// https proxy).
func startProxyOn(t *testing.T, ln net.Listener, target, auth string) *connectProxy {
	t.Helper()
	p := &connectProxy{ln: ln, target: target, auth: auth}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.track(c)
			p.wg.Go(func() { p.serve(t, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *connectProxy) track(c net.Conn) {
	c.SetDeadline(time.Now().Add(waitTimeout))
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *connectProxy) serve(t *testing.T, c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Errorf("proxy: %v", err)
		return
	}
	p.mu.Lock()
	p.asked = append(p.asked, req.Method+" "+req.RequestURI)
	p.mu.Unlock()
	if p.auth != "" && req.Header.Get("Proxy-Authorization") != p.auth {
		io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if req.Method != http.MethodConnect {
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	p.track(up)
	defer up.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{})
	go func() {
		io.Copy(up, br)
		up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, up)
	c.(interface{ CloseWrite() error }).CloseWrite() // *net.TCPConn or *tls.Conn
	<-done
}

func (p *connectProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.asked...)
}

// TestProxy checks dialing through an HTTP CONNECT proxy given by
// Options.Proxy: the tunnel, Basic authentication, and a refusal.
func TestProxy(t *testing.T) {
	t.Parallel()
	echo := startEcho(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(echo, "ws://"), "/echo")
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pa ss"))
	for _, tc := range []struct {
		name     string
		auth     string // what the proxy wants
		user     *url.Userinfo
		wantErr  string
		wantSeen string
	}{
		{name: "tunnel", wantSeen: "CONNECT " + addr},
		{name: "auth", auth: basic, user: url.UserPassword("user", "pa ss"), wantSeen: "CONNECT " + addr},
		{name: "auth_refused", auth: basic, user: url.UserPassword("user", "wrong"),
			wantErr: "CONNECT " + addr + ": 407 Proxy Authentication Required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startProxy(t, addr, tc.auth)
			proxyURL := &url.URL{Scheme: "http", Host: p.ln.Addr().String(), User: tc.user}
			var asked []string
			opts := client.Options{
				Lines: true,
				Proxy: func(u *url.URL) (*url.URL, error) {
					asked = append(asked, u.String())
					return proxyURL, nil
				},
				Logger: testLogger(t),
			}
			conn, err := client.Dial(t.Context(), echo, opts)
			if len(asked) != 1 || asked[0] != "http://"+addr {
				t.Errorf("Proxy was asked about %q, want [http://%s]", asked, addr)
			}
			if tc.wantErr != "" {
				want := "proxyconnect " + p.ln.Addr().String() + ": " + tc.wantErr
				if err == nil || err.Error() != want {
					t.Errorf("Dial: %v, want %q", err, want)
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
			if err := client.Run(t.Context(), conn, strings.NewReader("through the proxy\n"), out); err != nil {
				t.Errorf("Run: %v", err)
			}
			if out.String() != "through the proxy\n" {
				t.Errorf("output %q", out)
			}
			if got := p.requests(); len(got) != 1 || got[0] != tc.wantSeen {
				t.Errorf("proxy saw %q, want [%q]", got, tc.wantSeen)
			}
		})
	}
	t.Run("https_proxy", func(t *testing.T) {
		t.Parallel()
		// An https proxy: the client speaks TLS to the proxy, with the roots
		// of Options.TLSConfig, then CONNECT inside it.
		certs := httptest.NewUnstartedServer(http.NotFoundHandler())
		certs.StartTLS()
		defer certs.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := startProxyOn(t, tls.NewListener(ln, certs.TLS), addr, "")
		pool := x509.NewCertPool()
		pool.AddCert(certs.Certificate())
		opts := client.Options{
			Lines:     true,
			TLSConfig: &tls.Config{RootCAs: pool},
			Proxy:     func(*url.URL) (*url.URL, error) { return &url.URL{Scheme: "https", Host: ln.Addr().String()}, nil },
			Logger:    testLogger(t),
		}
		out := newOutput()
		if err := run(t, echo, opts, strings.NewReader("over tls to the proxy\n"), out); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if out.String() != "over tls to the proxy\n" {
			t.Errorf("output %q", out)
		}
		if got := p.requests(); len(got) != 1 || got[0] != "CONNECT "+addr {
			t.Errorf("proxy saw %q, want [CONNECT %s]", got, addr)
		}
	})
	t.Run("proxy_down", func(t *testing.T) {
		t.Parallel()
		down := testpeer.RefusedAddr(t)
		opts := client.Options{Proxy: func(*url.URL) (*url.URL, error) { return &url.URL{Scheme: "http", Host: down}, nil }}
		_, err := client.Dial(t.Context(), echo, opts)
		if want := "proxyconnect tcp: dial tcp " + down + ": connect: connection refused"; err == nil || err.Error() != want {
			t.Errorf("Dial: %v, want %q", err, want)
		}
	})
	t.Run("socks_unsupported", func(t *testing.T) {
		t.Parallel()
		opts := client.Options{Proxy: func(*url.URL) (*url.URL, error) { return url.Parse("socks5://127.0.0.1:1080") }}
		_, err := client.Dial(t.Context(), echo, opts)
		if want := `proxyconnect 127.0.0.1:1080: unsupported proxy scheme "socks5"`; err == nil || err.Error() != want {
			t.Errorf("Dial: %v, want %q", err, want)
		}
	})
}

// proxyChildEnv names the variable that makes the test binary run
// proxyChild instead of the tests: net/http reads the proxy variables once
// per process, so the environment path is tested in a process of its own.
const proxyChildEnv = "WSECHO_PROXY_CHILD_URL"

// proxyChild dials the URL in proxyChildEnv with the default Options.Proxy
// (the environment) and runs one line through it.
func proxyChild() int {
	url := os.Getenv(proxyChildEnv)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	conn, err := client.Dial(ctx, url, client.Options{Lines: true, ConnectTimeout: 500 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := client.Run(ctx, conn, strings.NewReader("via env\n"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestProxyFromEnvironment checks HTTP_PROXY and NO_PROXY. The URL's host,
// 192.0.2.1 (TEST-NET-1, RFC 5737), is not reachable: only the proxy,
// which tunnels to our server, can answer.
func TestProxyFromEnvironment(t *testing.T) {
	t.Parallel()
	echo := startEcho(t)
	addr := strings.TrimSuffix(strings.TrimPrefix(echo, "ws://"), "/echo")
	for _, tc := range []struct {
		name    string
		noProxy string
		wantOK  bool
	}{
		{name: "http_proxy", wantOK: true},
		{name: "no_proxy", noProxy: "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startProxy(t, addr, "")
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(),
				proxyChildEnv+"=ws://192.0.2.1:8080/echo",
				"HTTP_PROXY=http://"+p.ln.Addr().String(), "http_proxy=",
				"NO_PROXY="+tc.noProxy, "no_proxy=", "REQUEST_METHOD=")
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.WaitDelay = time.Second
			err := cmd.Run()
			if tc.wantOK {
				if err != nil || stdout.String() != "via env\n" {
					t.Errorf("child: %v, stdout %q, stderr:\n%s", err, stdout.String(), stderr.String())
				}
				if got := p.requests(); len(got) != 1 || got[0] != "CONNECT 192.0.2.1:8080" {
					t.Errorf("proxy saw %q, want [CONNECT 192.0.2.1:8080]", got)
				}
				return
			}
			if err == nil || !strings.HasPrefix(stderr.String(), "dial tcp 192.0.2.1:8080: ") {
				t.Errorf("child: %v, stderr %q, want a failed direct dial of 192.0.2.1:8080", err, stderr.String())
			}
			if got := p.requests(); len(got) != 0 {
				t.Errorf("proxy saw %q, want nothing", got)
			}
		})
	}
}

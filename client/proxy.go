package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// dialNet opens the TCP connection for u: directly, or through the HTTP
// CONNECT proxy that opts.Proxy (or the environment) names for it.
func dialNet(ctx context.Context, u *url.URL, opts Options) (net.Conn, error) {
	if opts.netDial != nil {
		return opts.netDial(ctx, hostPort(u))
	}
	proxyFor := opts.Proxy
	if proxyFor == nil {
		proxyFor = proxyFromEnvironment
	}
	// Proxies are chosen as for the HTTP request the handshake starts with.
	target := &url.URL{Scheme: "http", Host: u.Host}
	if u.Scheme == "wss" {
		target.Scheme = "https"
	}
	proxy, err := proxyFor(target)
	if err != nil {
		return nil, fmt.Errorf("proxy for %s: %w", u.Host, err)
	}
	var d net.Dialer
	if proxy == nil {
		return d.DialContext(ctx, "tcp", hostPort(u)) // *net.OpError: "dial tcp ADDR: cause"
	}
	return dialProxy(ctx, &d, proxy, hostPort(u), opts.TLSConfig)
}

// proxyFromEnvironment is net/http's choice of proxy: HTTPS_PROXY for wss,
// HTTP_PROXY for ws, none for hosts in NO_PROXY or on the loopback. net/http
// reads the variables once per process.
func proxyFromEnvironment(u *url.URL) (*url.URL, error) {
	return http.ProxyFromEnvironment(&http.Request{URL: u})
}

// dialProxy opens a tunnel to addr through an HTTP proxy with the CONNECT
// method (RFC 9110, Section 9.3.6), as net/http's Transport does. An https
// proxy is spoken to over TLS, with tc's roots.
func dialProxy(ctx context.Context, d *net.Dialer, proxy *url.URL, addr string, tc *tls.Config) (net.Conn, error) {
	if proxy.Scheme != "http" && proxy.Scheme != "https" {
		return nil, fmt.Errorf("proxyconnect %s: unsupported proxy scheme %q", proxy.Host, proxy.Scheme)
	}
	nc, err := d.DialContext(ctx, "tcp", hostPort(proxy))
	if err != nil {
		return nil, fmt.Errorf("proxyconnect tcp: %w", err)
	}
	if proxy.Scheme == "https" {
		ptc := tc.Clone()
		if ptc == nil {
			ptc = &tls.Config{}
		}
		ptc.ServerName = proxy.Hostname()
		tlsConn := tls.Client(nc, ptc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("proxyconnect tls handshake with %s: %w", proxy.Host, err)
		}
		nc = tlsConn
	}
	if err := connect(ctx, nc, proxy, addr); err != nil {
		nc.Close()
		return nil, err
	}
	return nc, nil
}

// connect sends CONNECT addr on nc and reads the proxy's answer.
func connect(ctx context.Context, nc net.Conn, proxy *url.URL, addr string) error {
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if u := proxy.User; u != nil {
		pass, _ := u.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)) + "\r\n"
	}
	req += "\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		return fmt.Errorf("proxyconnect %s: %w", proxy.Host, ctxErr(ctx, err))
	}
	// A reader of one byte at a time would be slow; a larger one could read
	// past the response, which a proxy must not send before the tunnel is
	// used (the server speaks only after the handshake request).
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return fmt.Errorf("proxyconnect %s: %w", proxy.Host, ctxErr(ctx, err))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("proxyconnect %s: CONNECT %s: %s", proxy.Host, addr, resp.Status)
	}
	if br.Buffered() > 0 {
		return fmt.Errorf("proxyconnect %s: proxy sent data before the tunnel was used", proxy.Host)
	}
	if !stop() && ctx.Err() != nil {
		return fmt.Errorf("proxyconnect %s: %w", proxy.Host, ctx.Err())
	}
	nc.SetDeadline(time.Time{})
	return nil
}

// ctxErr prefers the context's error to the timeout it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return ctx.Err()
	}
	return err
}

package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// HandshakeError reports a server that answered the opening handshake with
// something other than 101 Switching Protocols. Its message says what to
// try next: another Origin for a 403, another path for a page or a 404.
type HandshakeError struct {
	URL    string
	Status string // the response's status, such as "403 Forbidden"
	Origin string // the Origin header sent
	// Endpoint is the URL of the server's WebSocket endpoint when the
	// server is wsecho's and URL is not that endpoint.
	Endpoint string
}

// StatusCode returns the HTTP status code, or 0 for no response.
func (e *HandshakeError) StatusCode() int {
	code, _, _ := strings.Cut(e.Status, " ")
	n, _ := strconv.Atoi(code)
	return n
}

func (e *HandshakeError) Error() string {
	switch code := e.StatusCode(); {
	case code == http.StatusForbidden:
		return fmt.Sprintf("handshake failed: %s: the server refused Origin %s; pass -origin with an origin it allows "+
			"(localhost and 127.0.0.1 are different origins)", e.Status, e.Origin)
	case code >= 200 && code < 300, code == http.StatusNotFound:
		msg := fmt.Sprintf("%s is not a WebSocket endpoint: the server answered %s", e.URL, e.Status)
		if e.Endpoint != "" {
			msg += "; wsecho's endpoint is /echo: try " + e.Endpoint
		}
		return msg
	}
	return "handshake failed: " + e.Status
}

// explain turns what dial returned into an error that says what to do:
// Ctrl-C, an untrusted certificate, a URL that is not the endpoint.
func explain(ctx context.Context, rawURL string, opts Options, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return &InterruptedError{URL: rawURL}
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		if code := he.StatusCode(); code >= 200 && code < 300 || code == http.StatusNotFound {
			if u, perr := url.Parse(rawURL); perr == nil && u.Path != "/echo" {
				pctx, cancel := context.WithTimeout(ctx, probeTimeout)
				defer cancel()
				if _, perr := Probe(pctx, rawURL, opts); perr == nil {
					e := *u
					e.Path, e.RawPath, e.RawQuery, e.Fragment = "/echo", "", "", ""
					he.Endpoint = e.String()
				}
			}
		}
		return he
	}
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) || errors.As(err, &verify) {
		return fmt.Errorf("%w; to trust this server, pass -ca with the PEM file of the CA that signed its certificate, "+
			"or -insecure to skip the check (for testing only)", err)
	}
	return err
}

// probeTimeout bounds Probe when Dial explains a handshake failure.
const probeTimeout = 2 * time.Second

// ServerInfo is what a wsecho server says about itself.
type ServerInfo struct {
	// LogsEveryMessage reports a server that writes a log line for every
	// message it receives (-log-level info or debug): a load test then
	// measures its logging.
	LogsEveryMessage bool `json:"logs_every_message"`
}

// Probe asks the server of a ws:// or wss:// URL whether it is wsecho's
// server, on GET /debug/vars (through opts' proxy and TLS settings), and
// returns what it says about itself; an error when it is not wsecho's or
// does not answer before ctx ends.
func Probe(ctx context.Context, rawURL string, opts Options) (*ServerInfo, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	v := url.URL{Scheme: "http", Host: u.Host, Path: "/debug/vars"}
	if u.Scheme == "wss" {
		v.Scheme = "https"
	}
	proxy := opts.Proxy
	if proxy == nil {
		proxy = proxyFromEnvironment
	}
	tr := &http.Transport{Proxy: func(r *http.Request) (*url.URL, error) { return proxy(r.URL) }, TLSClientConfig: opts.TLSConfig}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", v.String(), resp.Status)
	}
	var vars struct {
		Wsecho *ServerInfo `json:"wsecho"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&vars); err != nil {
		return nil, fmt.Errorf("GET %s: %w", v.String(), err)
	}
	if vars.Wsecho == nil {
		return nil, fmt.Errorf("GET %s: not a wsecho server", v.String())
	}
	return vars.Wsecho, nil
}

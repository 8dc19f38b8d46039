// Package client is wsecho's WebSocket client: it dials with the standard
// library (directly or through an HTTP CONNECT proxy), hands the connection
// to golang.org/x/net/websocket for the opening handshake, and runs one of
// the client modes over it: the classic echo-client loop that sends the
// time, a line mode that sends each line of its input, and an interactive
// mode for terminals in the style of wscat.
//
// Every frame the server sends passes through the wire layer
// (internal/wsframe) first, so a fragmented message arrives whole and a
// server that breaks RFC 6455 is refused with the right close code.
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/websocket"

	"wsecho/internal/wsframe"
)

// Options configure Dial and Run. The zero value is ready to use.
type Options struct {
	// Origin is sent in the Origin header. If empty, an Origin in Header, or
	// else the origin of the URL itself (http://host:port for
	// ws://host:port), which a server with a same-origin policy accepts.
	Origin string

	// Header holds extra headers for the handshake request. A Host header
	// replaces the URL's host in the request (the connection still goes to
	// the URL's host); an Origin header stands in for Origin. Dial refuses
	// the headers the handshake itself sets (Upgrade, Connection and
	// Sec-WebSocket-*).
	Header http.Header

	// Subprotocols are offered in Sec-WebSocket-Protocol, most preferred
	// first (RFC 6455, Section 4.1). Conn.Subprotocol returns the server's
	// choice.
	Subprotocols []string

	// TLSConfig is used for wss URLs. If nil, the default configuration.
	TLSConfig *tls.Config

	// Proxy returns the HTTP proxy for a connection to the given URL (scheme
	// http for ws, https for wss), or nil to connect directly. If nil, the
	// HTTPS_PROXY, HTTP_PROXY and NO_PROXY environment variables decide, as
	// for net/http (http.ProxyFromEnvironment, which never proxies loopback
	// addresses).
	Proxy func(*url.URL) (*url.URL, error)

	// ConnectTimeout bounds each dial: TCP, proxy, TLS and the opening
	// handshake. If 0, 10 seconds.
	ConnectTimeout time.Duration

	// MaxMessage is the largest message accepted, in bytes; a larger one
	// fails the connection with 1009. If 0, 32 MiB.
	MaxMessage int64

	// Compress offers permessage-deflate (RFC 7692) as Chrome does:
	// "permessage-deflate; client_max_window_bits". When the server
	// accepts, messages of 112 bytes or more go out compressed and
	// compressed messages are inflated; Conn.Compression tells.
	Compress bool

	// Interval is how often Run sends the current time in the default mode;
	// the first message goes out at once. If 0, one second.
	Interval time.Duration

	// Count is how many messages Run sends in the default mode before it
	// waits for the replies (see Wait) and closes the connection normally.
	// If 0, Run sends until its context ends.
	Count int

	// Message, if not nil, is what the default mode sends instead of the
	// current time.
	Message []byte

	// Wait bounds the wait for replies at the end of the input (line mode,
	// or Count messages sent): Run sends its Close once as many messages
	// have arrived as it sent on the connection, or when nothing has
	// arrived for Wait, whichever comes first. If 0, one second; NoWait
	// closes at once, and a negative Wait waits until the server closes.
	Wait time.Duration

	// Lines makes Run send each line of its input as one message, instead
	// of the time; at the end of the input it closes normally.
	Lines bool

	// Interactive makes line mode interactive, in the style of wscat: sent
	// lines are shown with "> ", received messages with "< ", and lines
	// starting with "/" are commands (/help lists them). Run turns it on by
	// itself when Lines is set, JSON is not, and the input is a terminal; it
	// then also puts the terminal in raw mode and edits the line with
	// golang.org/x/term (cursor keys, history), so that received messages
	// never garble the line being typed. Received binary is marked
	// ("< [binary 4 B] 000102ff").
	Interactive bool

	// Binary makes Run send binary messages instead of text.
	Binary bool

	// ShowBinary is how received binary messages are printed: "hex" (one
	// line per message), "base64" or "raw" (the bytes as they are, then a
	// newline). If empty, "hex".
	ShowBinary string

	// JSON makes Run print one JSON object per line for every event instead
	// of plain text. Every event has "time" (RFC 3339) and "type"; messages,
	// pings and pongs have "dir" ("send" or "recv"), "size" and "data" (the
	// text itself for text messages, base64 otherwise), as in
	//
	//	{"time":"…","dir":"recv","type":"text","size":5,"data":"hello"}
	//
	// Other types: "open" (url, subprotocol), "close" (dir, code, reason),
	// "pong" also has rtt_ms when it answers a ping Run sent, "reconnect"
	// (attempt, delay_ms, error, unconfirmed and dropped line counts), and
	// "error" for a connection that ended abnormally.
	JSON bool

	// Timestamps prefixes every printed message with the time it arrived.
	Timestamps bool

	// Verbose adds each message's type and size, round-trip times of pongs,
	// pings from the server and the closing handshake to the output.
	Verbose bool

	// CloseCode and CloseReason are what Run sends when it closes the
	// connection normally. If CloseCode is 0, 1000 (normal closure).
	CloseCode   int
	CloseReason string

	// CloseWait bounds how long Run waits for the server's Close after
	// sending its own; the wait restarts with every message that arrives in
	// the meantime, except after ctx has ended (Ctrl-C): then Run returns
	// within CloseWait whatever the server does (plus up to
	// wsframe.LingerTimeout on a failed connection), closing the connection
	// if a write is stuck. If 0, one second.
	CloseWait time.Duration

	// Ping, if positive, makes Run send a ping at that interval; when no
	// pong has come back by the next one, the connection counts as lost.
	Ping time.Duration

	// Reconnect makes Run dial again when the connection drops, goes
	// without a pong, or the server closes it with 1001 (going away) or 1012
	// (service restart), and carry on sending. See Run for what line mode
	// guarantees across a reconnect.
	Reconnect bool

	// ReconnectDelay is the wait before the first reconnect attempt; it
	// doubles with each failed attempt up to ReconnectMaxDelay, and each
	// wait is drawn at random from its upper half. If 0, 500 ms and 30 s.
	ReconnectDelay    time.Duration
	ReconnectMaxDelay time.Duration

	// Status receives the lines that are not messages: the subprotocol
	// chosen, pongs and the closing handshake with Verbose, reconnects and
	// lines left unconfirmed by a dropped connection. In interactive mode
	// they go to the terminal instead, prefixed with "* ", and with JSON
	// they are events on Run's output. If nil, they are discarded.
	Status io.Writer

	// Logger receives diagnostics. If nil, slog.Default().
	Logger *slog.Logger

	// netDial, if set, opens the connection instead of the network (tests).
	netDial func(ctx context.Context, addr string) (net.Conn, error)
}

const defaultConnectTimeout = 10 * time.Second

// NoWait, as Options.Wait, closes at the end of the input without waiting
// for replies.
const NoWait time.Duration = 1

// Conn is a client connection: the x/net *websocket.Conn that writes the
// messages, and the wire layer beneath it, which reads them (ReadMessage)
// and knows close codes.
type Conn struct {
	*websocket.Conn
	wire        *wsframe.Conn
	url         string
	subprotocol string
	opts        Options
	log         *slog.Logger

	// pongs carries the pongs the wire layer reads, with their arrival
	// time; it drops pongs nobody collects.
	pongs chan pong
	// onPing, if set before the reading goroutine starts, is called from it
	// with the payload size of every ping the server sends.
	onPing func(size int64)
}

type pong struct {
	payload string
	at      time.Time
}

// CloseStatus returns the code and reason of the server's Close frame, and
// whether one has arrived.
func (c *Conn) CloseStatus() (code int, reason string, ok bool) { return c.wire.PeerClose() }

// Subprotocol returns the subprotocol the server chose in the handshake, or
// "" if it chose none.
func (c *Conn) Subprotocol() string { return c.subprotocol }

// WriteClose starts the closing handshake with a Close frame carrying code
// and reason; it does not wait. The reading goroutine sees io.EOF when the
// server's Close arrives; then call Close.
func (c *Conn) WriteClose(code int, reason string) error { return c.wire.WriteClose(code, reason) }

// Ping sends a Ping frame with payload (at most 125 bytes). The wire layer
// reads the Pong; Run reports it.
func (c *Conn) Ping(payload []byte) error { return c.wire.WriteControl(wsframe.OpPing, payload) }

// Close closes the TCP connection at once.
func (c *Conn) Close() error { return c.wire.Close() }

// ReadMessage reads the next message whole, through the wire layer: its
// type (websocket.TextFrame or websocket.BinaryFrame) and payload, joined
// from its fragments, checked and, when compressed, inflated. The payload
// is valid until the next ReadMessage; copy what must live longer. After
// the server's Close it returns io.EOF (CloseStatus tells the code); after
// a protocol violation, a *wsframe.Error, and the connection is failed
// with its close code. Pings are answered and pongs reported while it
// reads. Use it or the embedded *websocket.Conn's readers (such as
// websocket.Message.Receive), not both on one connection.
func (c *Conn) ReadMessage() (typ byte, payload []byte, err error) {
	return c.wire.ReadMessage()
}

// handshakeHeaders are set by the handshake itself; x/net would drop or
// duplicate them.
var handshakeHeaders = map[string]bool{
	"Upgrade": true, "Connection": true, "Sec-Websocket-Key": true, "Sec-Websocket-Version": true,
	"Sec-Websocket-Protocol": true, "Sec-Websocket-Extensions": true, "Sec-Websocket-Accept": true,
}

// Dial connects to a ws:// or wss:// URL, through a proxy if Options.Proxy
// (or the environment) names one, and performs the opening handshake
// through x/net. ctx and Options.ConnectTimeout bound the whole dial.
//
// Errors name what failed: "dial tcp ADDR: ..." from the network,
// "proxyconnect ..." from the proxy, "tls handshake with HOST: ..." and
// a *HandshakeError when the server refuses the upgrade, and an
// *InterruptedError when ctx is cancelled; each says what to try next.
func Dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	c, err := dial(ctx, rawURL, opts)
	if err != nil {
		return nil, explain(ctx, rawURL, opts, err)
	}
	return c, nil
}

func dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", rawURL, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("dial %s: scheme must be ws or wss", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("dial %s: no host", rawURL)
	}
	hdr := opts.Header.Clone()
	if hdr == nil {
		hdr = make(http.Header)
	}
	for k := range hdr {
		if handshakeHeaders[http.CanonicalHeaderKey(k)] {
			return nil, fmt.Errorf("dial %s: header %s is set by the handshake", rawURL, k)
		}
	}
	origin := opts.Origin
	if o := hdr.Get("Origin"); o != "" && origin == "" {
		origin = o
	}
	hdr.Del("Origin")
	if origin == "" {
		origin = originOf(u)
	}
	cfg, err := websocket.NewConfig(u.String(), origin)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", rawURL, err)
	}
	if h := hdr.Get("Host"); h != "" {
		// x/net writes Host from the location; the TCP address stays u.Host.
		cfg.Location.Host = h
	}
	hdr.Del("Host")
	offerDeflate(opts, hdr)
	cfg.Header = hdr
	cfg.Protocol = opts.Subprotocols
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := opts.ConnectTimeout
	if timeout <= 0 {
		timeout = defaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	nc, err := dialNet(ctx, u, opts)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "wss" {
		tc := opts.TLSConfig.Clone()
		if tc == nil {
			tc = &tls.Config{}
		}
		if tc.ServerName == "" {
			tc.ServerName = u.Hostname()
		}
		tlsConn := tls.Client(nc, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", u.Host, err)
		}
		nc = tlsConn
	}

	c := &Conn{url: rawURL, opts: opts, log: log, pongs: make(chan pong, 8)}
	c.wire = wsframe.NewConn(nc, nil, wsframe.Client, wsframe.Options{
		MaxMessage:   opts.MaxMessage,
		OnPong:       c.gotPong,
		OnFrame:      c.gotFrame,
		OfferDeflate: opts.Compress,
	})
	rec := &recorder{Conn: c.wire, on: true}
	// x/net's handshake takes no context: a deadline in the past stops it.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	ws, err := websocket.NewClient(cfg, rec)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	rec.on = false
	if err != nil {
		nc.Close()
		if errors.Is(err, websocket.ErrBadStatus) {
			return nil, &HandshakeError{URL: rawURL, Status: statusText(c.wire.HandshakeStatus()), Origin: origin}
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("no response within %s", timeout)
		}
		return nil, fmt.Errorf("handshake with %s: %w", u.Host, err)
	}
	nc.SetDeadline(time.Time{})
	c.wire.Start()
	if opts.MaxMessage > 0 {
		ws.MaxPayloadBytes = int(opts.MaxMessage) // the wire layer enforces it, per message
	}
	c.Conn = ws
	c.subprotocol = rec.subprotocol()
	return c, nil
}

// gotPong is the wire layer's OnPong: it hands the pong to Run, or drops it
// when Run is not collecting.
func (c *Conn) gotPong(payload []byte) {
	select {
	case c.pongs <- pong{string(payload), time.Now()}:
	default:
	}
}

// gotFrame is the wire layer's OnFrame; it reports the server's pings.
func (c *Conn) gotFrame(op byte, n int64) {
	if op == wsframe.OpPing && c.onPing != nil {
		c.onPing(n)
	}
}

// recorder keeps a copy of the handshake response as x/net reads it, so
// that Dial can read headers x/net does not report. The wire layer stops at
// the response's blank line, so no frame bytes are copied.
type recorder struct {
	*wsframe.Conn
	on  bool // only during the handshake
	buf bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	if r.on && r.buf.Len() < 64<<10 {
		r.buf.Write(p[:n])
	}
	return n, err
}

// subprotocol returns the Sec-WebSocket-Protocol of the recorded response.
func (r *recorder) subprotocol() string {
	resp, err := http.ReadResponse(bufio.NewReader(&r.buf), nil)
	if err != nil {
		return ""
	}
	resp.Body.Close()
	return resp.Header.Get("Sec-WebSocket-Protocol")
}

// originOf returns the origin of a WebSocket URL: http for ws, https for wss.
func originOf(u *url.URL) string {
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	return scheme + "://" + u.Host
}

// hostPort adds the scheme's default port when u has none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "wss" || u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// statusText turns "HTTP/1.1 403 Forbidden" into "403 Forbidden".
func statusText(line string) string {
	if _, rest, ok := strings.Cut(line, " "); ok {
		return rest
	}
	if line == "" {
		return "no response"
	}
	return line
}

// CloseError reports a connection that did not end with a normal closure:
// the server's close code and reason (with Err what failed after the
// server's Close, if anything did); the close code Run sent a server that
// broke the protocol, with Err the *wsframe.Error; or CloseAbnormal (1006)
// with the cause when the connection dropped without a Close, or
// ErrNoCloseReply when the server did not answer the client's Close.
type CloseError struct {
	Code   int
	Reason string
	Err    error // the protocol violation, or the cause of a dropped connection
}

// Error leads with the server's close code and reason when there are any:
// they explain what failed after them.
func (e *CloseError) Error() string {
	var pe *wsframe.Error
	switch {
	case errors.As(e.Err, &pe) && pe.Code == wsframe.CloseMessageTooBig:
		return "the server sent a " + pe.Reason + " (sent close 1009; -max-message raises the limit)"
	case errors.As(e.Err, &pe):
		return "server broke the protocol: " + pe.Reason + " (sent close " + strconv.Itoa(pe.Code) + ")"
	case e.Code != wsframe.CloseAbnormal && e.Reason != "":
		return "server closed the connection: " + strconv.Itoa(e.Code) + " " + e.Reason
	case e.Code != wsframe.CloseAbnormal:
		return "server closed the connection: " + strconv.Itoa(e.Code)
	case errors.Is(e.Err, ErrNoCloseReply):
		return "closing handshake incomplete: " + e.Err.Error()
	case e.Err != nil:
		return "connection lost: " + e.Err.Error()
	}
	return "connection lost"
}

func (e *CloseError) Unwrap() error { return e.Err }

// Run runs the client over conn until the connection ends, and prints
// what it receives to out. Which mode it runs depends on conn's Options:
//
//   - by default, the classic echo client: it sends the current time (or
//     Message) at once and then every Interval, and prints every message;
//     when ctx ends it closes normally, and after Count messages it waits
//     for the replies (see Options.Wait), then closes normally;
//   - with Lines, it sends each line of in as one message (without its line
//     ending); at the end of in it waits for the replies, then closes;
//   - with Interactive (or Lines and a terminal on in), the same with
//     prompts and slash commands.
//
// A normal close sends Options.CloseCode and waits up to CloseWait for the
// server's Close.
//
// With Reconnect, Run dials again (with exponential backoff, capped, with
// jitter) when the connection drops or the server closes with 1001 or
// 1012, and carries on. In line mode a line is confirmed when its echo
// comes back, and across a reconnect:
//
//   - a line whose write failed (it never went out whole) is sent on the
//     next connection;
//   - a line whose echo had not come back when the server's Close arrived
//     is sent again, first, in order: a server sends nothing after its
//     Close, so it never echoed the line (an echo server discards what
//     crosses its Close). This happens once per line: a line that goes
//     unechoed on two connections in a row is given up and reported;
//   - a line whose echo had not come back when the connection dropped
//     without a Close may or may not have reached the server: it is not
//     sent again, never twice, and the number of such lines is reported;
//   - input that arrives while Run waits to reconnect is kept for the next
//     connection, and the end of input then ends Run, with the result of
//     the last connection, if nothing is left to send.
//
// So against an echo server that closes with 1001 or 1012 (as wsecho's
// server does on shutdown, after echoing what it received), every line is
// echoed exactly once. A server that does not echo gets the lines it had
// not answered when it closed a second time. The first dial is the
// caller's: Run never retries it (Connect does).
//
// Run returns nil after a normal closure (the server closed with 1000 or no
// code, or Run closed and the server answered), and a *CloseError when the
// server closed with another code, broke the protocol, the connection
// dropped, or the server did not answer Run's Close (ErrNoCloseReply). It closes conn, and returns only
// after its reading goroutine has exited; conn must not be used
// concurrently by the caller. The goroutine that reads in stops when Run
// returns if in has a SetReadDeadline method that works (a pipe, or a
// terminal opened by the program); otherwise (os.Stdin) it may stay
// blocked in in.Read until the next line arrives.
func Run(ctx context.Context, conn *Conn, in io.Reader, out io.Writer) error {
	return runSession(ctx, conn, conn.url, conn.opts, in, out)
}

// endError turns the reading goroutine's error into Run's result.
func (c *Conn) endError(err error) error {
	var pe *wsframe.Error
	if errors.As(err, &pe) {
		return &CloseError{Code: pe.Code, Reason: pe.Reason, Err: pe}
	}
	// Once the server has closed, its code explains whatever failed next.
	if code, reason, ok := c.CloseStatus(); ok {
		if code == wsframe.CloseNormal || code == wsframe.CloseNoStatus {
			return nil
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return &CloseError{Code: code, Reason: reason, Err: err}
	}
	return &CloseError{Code: wsframe.CloseAbnormal, Err: err}
}

// Package client is wsecho's WebSocket client: it dials with the standard
// library, hands the connection to golang.org/x/net/websocket for the opening
// handshake, and runs the classic echo-client loop over it.
//
// Every frame the server sends passes through the wire layer
// (internal/wsframe) first, so a fragmented message arrives whole and a
// server that breaks RFC 6455 is refused with the right close code.
package client

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"

	"wsecho/internal/wsframe"
)

// Options configure Dial and Run. The zero value is ready to use.
type Options struct {
	// Origin is sent in the Origin header. If empty, the origin of the
	// URL itself (http://host:port for ws://host:port), which a server with
	// a same-origin policy accepts.
	Origin string

	// MaxMessage is the largest message accepted, in bytes; a larger one
	// fails the connection with 1009. If 0, 32 MiB.
	MaxMessage int64

	// TLSConfig is used for wss URLs. If nil, the default configuration.
	TLSConfig *tls.Config

	// Interval is how often Run sends the current time. If 0, one second.
	Interval time.Duration

	// Count is how many messages Run sends before it closes the connection
	// normally. If 0, Run sends until its context ends.
	Count int

	// CloseWait bounds how long Run waits for the server's Close after
	// sending its own. If 0, one second.
	CloseWait time.Duration

	// Logger receives diagnostics. If nil, slog.Default().
	Logger *slog.Logger
}

// Conn is a client connection: the x/net *websocket.Conn that carries the
// messages, and the wire layer beneath it, which knows close codes.
type Conn struct {
	*websocket.Conn
	wire *wsframe.Conn
	opts Options
	log  *slog.Logger
}

// CloseStatus returns the code and reason of the server's Close frame, and
// whether one has arrived.
func (c *Conn) CloseStatus() (code int, reason string, ok bool) { return c.wire.PeerClose() }

// WriteClose starts the closing handshake with a Close frame carrying code
// and reason; it does not wait. The reading goroutine sees io.EOF when the
// server's Close arrives; then call Close.
func (c *Conn) WriteClose(code int, reason string) error { return c.wire.WriteClose(code, reason) }

// Close closes the TCP connection at once.
func (c *Conn) Close() error { return c.wire.Close() }

// Dial connects to a ws:// or wss:// URL and performs the opening handshake
// through x/net. ctx bounds the dial and the handshake.
func Dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
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
	origin := opts.Origin
	if origin == "" {
		origin = originOf(u)
	}
	cfg, err := websocket.NewConfig(u.String(), origin)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", rawURL, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}

	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", hostPort(u))
	if err != nil {
		return nil, err // *net.OpError says "dial tcp ADDR: cause"
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

	wire := wsframe.NewConn(nc, nil, wsframe.Client, wsframe.Options{MaxMessage: opts.MaxMessage})
	// x/net's handshake takes no context: a deadline in the past stops it.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	ws, err := websocket.NewClient(cfg, wire)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		nc.Close()
		if errors.Is(err, websocket.ErrBadStatus) {
			return nil, fmt.Errorf("handshake failed: %s", statusText(wire.HandshakeStatus()))
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("handshake with %s: %w", u.Host, err)
	}
	nc.SetDeadline(time.Time{})
	wire.Start()
	if opts.MaxMessage > 0 {
		ws.MaxPayloadBytes = int(opts.MaxMessage) // the wire layer enforces it, per message
	}
	return &Conn{Conn: ws, wire: wire, opts: opts, log: log}, nil
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
	if u.Scheme == "wss" {
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
// the server's close code and reason, or CloseAbnormal (1006) with the cause
// when the connection dropped without a Close.
type CloseError struct {
	Code   int
	Reason string
	Err    error // the cause of a dropped connection
}

func (e *CloseError) Error() string {
	switch {
	case e.Err != nil:
		return "connection lost: " + e.Err.Error()
	case e.Reason != "":
		return "server closed the connection: " + strconv.Itoa(e.Code) + " " + e.Reason
	}
	return "server closed the connection: " + strconv.Itoa(e.Code)
}

func (e *CloseError) Unwrap() error { return e.Err }

// message is one message with its type; codec carries it through x/net,
// whose Message codec would lose the type of binary data.
type message struct {
	typ  byte
	data []byte
}

var codec = websocket.Codec{
	Marshal: func(v any) ([]byte, byte, error) {
		m := v.(*message)
		return m.data, m.typ, nil
	},
	Unmarshal: func(data []byte, typ byte, v any) error {
		m := v.(*message)
		m.typ, m.data = typ, data
		return nil
	},
}

// Run is the classic echo client: it prints every message it receives to
// out, one per line (binary as hex), and sends the current time every
// Options.Interval. When ctx ends, or after Options.Count messages have
// been sent and echoed, it sends Close 1000 and waits up to
// Options.CloseWait for the server's Close.
//
// Run returns nil after a normal closure, and a *CloseError when the server
// closed with another code or the connection dropped. It closes conn, and
// returns only after its reading goroutine has exited; conn must not be
// used concurrently by the caller. in is not read by this mode.
func Run(ctx context.Context, conn *Conn, in io.Reader, out io.Writer) error {
	interval := conn.opts.Interval
	if interval <= 0 {
		interval = time.Second
	}
	defer conn.Close()

	var mu sync.Mutex
	received := 0
	got := make(chan struct{}, 1)
	readErr := make(chan error, 1)
	go func() {
		readErr <- conn.readLoop(out, func() {
			mu.Lock()
			received++
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
		})
	}()

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	sent := 0
	var wait <-chan time.Time // after the last message: when to stop waiting for echoes
	for {
		select {
		case <-ctx.Done():
			return conn.closeNormally(readErr)
		case err := <-readErr:
			return conn.endError(err)
		case <-got:
			mu.Lock()
			done := wait != nil && received >= sent
			mu.Unlock()
			if done {
				return conn.closeNormally(readErr)
			}
		case <-wait:
			return conn.closeNormally(readErr)
		case t := <-ticker.C:
			if wait != nil {
				continue
			}
			if err := codec.Send(conn.Conn, &message{websocket.TextFrame, []byte(t.String())}); err != nil {
				conn.Close()
				<-readErr
				return &CloseError{Code: wsframe.CloseAbnormal, Err: err}
			}
			sent++
			if conn.opts.Count > 0 && sent >= conn.opts.Count {
				ticker.Stop()
				wait = time.After(interval)
				mu.Lock()
				done := received >= sent
				mu.Unlock()
				if done {
					return conn.closeNormally(readErr)
				}
			}
		}
	}
}

// readLoop prints each message until the connection ends.
func (c *Conn) readLoop(out io.Writer, onMessage func()) error {
	var m message
	for {
		if err := codec.Receive(c.Conn, &m); err != nil {
			return err
		}
		if m.typ == websocket.BinaryFrame {
			fmt.Fprintln(out, hex.EncodeToString(m.data))
		} else {
			fmt.Fprintf(out, "%s\n", m.data)
		}
		onMessage()
	}
}

// closeNormally sends Close 1000, waits for the server's Close (the reading
// goroutine then ends) for CloseWait at most, and closes the connection.
func (c *Conn) closeNormally(readErr <-chan error) error {
	wait := c.opts.CloseWait
	if wait <= 0 {
		wait = time.Second
	}
	if err := c.WriteClose(wsframe.CloseNormal, ""); err != nil && !errors.Is(err, wsframe.ErrCloseSent) {
		c.log.Debug("send close", "err", err)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-readErr:
	case <-timer.C:
		c.log.Debug("no close from server", "wait", wait)
		c.Close()
		<-readErr
	}
	return nil
}

// endError turns the reading goroutine's error into Run's result.
func (c *Conn) endError(err error) error {
	var pe *wsframe.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("server broke the protocol: %w", pe)
	}
	if code, reason, ok := c.CloseStatus(); ok && errors.Is(err, io.EOF) {
		if code == wsframe.CloseNormal || code == wsframe.CloseNoStatus {
			return nil
		}
		return &CloseError{Code: code, Reason: reason}
	}
	return &CloseError{Code: wsframe.CloseAbnormal, Err: err}
}

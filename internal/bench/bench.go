// Package bench is wsecho's load generator: many WebSocket connections that
// each send a message and wait for its echo, with latency kept in a
// histogram. Its hot path is raw frames written and read with the wire
// codec, pre-masked once per connection, so that the generator costs far
// less than the server it measures.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"wsecho/internal/wsframe"
)

// Config describes one load run.
type Config struct {
	URL      string        // ws:// URL of the echo endpoint
	Conns    int           // connections; if 0, 1
	Size     int           // message size in bytes
	Duration time.Duration // how long to send; if 0, 10s
	Rate     float64       // messages per second per connection, first sends spread over one interval; 0 means closed loop
	Binary   bool          // send binary messages instead of text
	Compress bool          // offer permessage-deflate, send JSON-like text compressed (see DialCompressed)
}

// Report is the outcome of a run.
type Report struct {
	URL         string           `json:"url"`
	Conns       int              `json:"conns"`
	Size        int              `json:"size"`
	Binary      bool             `json:"binary"`
	Rate        float64          `json:"rate,omitempty"`
	Seconds     float64          `json:"seconds"`
	RoundTrips  int64            `json:"round_trips"`
	PerSecond   float64          `json:"round_trips_per_second"`
	MBpsOut     float64          `json:"mb_per_second_out"`
	MBpsIn      float64          `json:"mb_per_second_in"`
	Latency     Percentiles      `json:"latency"`
	Errors      map[string]int64 `json:"errors,omitempty"`
	ErrorsTotal int64            `json:"errors_total"`
	// With Config.Compress: payload bytes on the wire per message, each way.
	Compressed   bool    `json:"compressed,omitempty"`
	WireBytesOut float64 `json:"wire_bytes_per_message_out,omitempty"`
	WireBytesIn  float64 `json:"wire_bytes_per_message_in,omitempty"`
}

// Percentiles of the round-trip latency.
type Percentiles struct {
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p99_9_ns"`
	Max  time.Duration `json:"max_ns"`
}

// Progress is a snapshot taken while a run goes on.
type Progress struct {
	Elapsed    time.Duration
	RoundTrips int64
	Errors     int64
}

// Run opens cfg.Conns connections, drives them for cfg.Duration, and
// reports. progress, if not nil, is called about once a second from Run's
// goroutine. Run stops early when ctx ends; the report then covers the time
// run so far.
func Run(ctx context.Context, cfg Config, progress func(Progress)) (*Report, error) {
	if cfg.Conns <= 0 {
		cfg.Conns = 1
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Size < 0 {
		return nil, errors.New("bench: negative size")
	}
	conns := make([]*Conn, 0, cfg.Conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range cfg.Conns {
		c, err := dial(ctx, nil, cfg.URL, cfg.Size, cfg.Binary, cfg.Compress)
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		wg     sync.WaitGroup
		total  atomic.Int64
		nerr   atomic.Int64
		mu     sync.Mutex
		errs   = make(map[string]int64)
		hist   Histogram
		start  = time.Now()
		stopAt = start.Add(cfg.Duration)
	)
	for i, c := range conns {
		wg.Go(func() {
			var h Histogram
			var interval time.Duration
			if cfg.Rate > 0 {
				interval = time.Duration(float64(time.Second) / cfg.Rate)
			}
			// In an open loop the connections take turns, spread evenly
			// over one interval, rather than all sending at once.
			next := start.Add(interval * time.Duration(i) / time.Duration(len(conns)))
			c.conn.SetDeadline(stopAt.Add(5 * time.Second))
			stop := context.AfterFunc(runCtx, func() { c.conn.SetDeadline(time.Now()) })
			defer stop()
			for runCtx.Err() == nil {
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						t := time.NewTimer(d)
						select {
						case <-t.C:
						case <-runCtx.Done():
							t.Stop()
						}
						if runCtx.Err() != nil {
							break
						}
					}
					next = next.Add(interval)
				}
				t0 := time.Now()
				if err := c.RoundTrip(); err != nil {
					if runCtx.Err() != nil {
						break // the deadline cut a round trip short
					}
					nerr.Add(1)
					mu.Lock()
					errs[errorKind(err)]++
					mu.Unlock()
					return // the connection is no longer in step
				}
				h.Record(time.Since(t0))
				total.Add(1)
			}
			mu.Lock()
			hist.Merge(&h)
			mu.Unlock()
		})
	}

	if progress != nil {
		tick := time.NewTicker(time.Second)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
	loop:
		for {
			select {
			case <-tick.C:
				progress(Progress{Elapsed: time.Since(start), RoundTrips: total.Load(), Errors: nerr.Load()})
			case <-done:
				break loop
			}
		}
		tick.Stop()
	}
	wg.Wait()
	elapsed := time.Since(start)

	r := &Report{
		URL: cfg.URL, Conns: cfg.Conns, Size: cfg.Size, Binary: cfg.Binary, Rate: cfg.Rate,
		Seconds: elapsed.Seconds(), RoundTrips: total.Load(), ErrorsTotal: nerr.Load(),
	}
	if len(errs) > 0 {
		r.Errors = errs
	}
	r.PerSecond = float64(r.RoundTrips) / elapsed.Seconds()
	r.MBpsOut = r.PerSecond * float64(cfg.Size) / 1e6
	r.MBpsIn = r.MBpsOut
	if cfg.Compress {
		r.Compressed = true
		var msgs, out, in int64
		for _, c := range conns {
			msgs, out, in = msgs+c.z.msgs, out+c.z.wireOut, in+c.z.wireIn
		}
		if msgs > 0 {
			r.WireBytesOut, r.WireBytesIn = float64(out)/float64(msgs), float64(in)/float64(msgs)
		}
	}
	r.Latency = Percentiles{
		P50: hist.Quantile(0.50), P90: hist.Quantile(0.90), P99: hist.Quantile(0.99),
		P999: hist.Quantile(0.999), Max: hist.Max(),
	}
	return r, nil
}

// errorKind names the class of a round-trip error for the report.
func errorKind(err error) string {
	var pe *wsframe.Error
	switch {
	case errors.As(err, &pe):
		return "protocol"
	case errors.Is(err, errMismatch):
		return "mismatch"
	case errors.Is(err, errClosed):
		return "closed_by_server"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return "network"
	}
	return "other"
}

var (
	errMismatch = errors.New("echo differs from the message sent")
	errClosed   = errors.New("server sent a close frame")
)

// Conn is one load-generating connection. Not safe for concurrent use.
type Conn struct {
	conn  net.Conn
	br    *bufio.Reader
	frame []byte // the message, framed and masked once
	want  []byte // the payload the echo must carry
	buf   []byte // where the echo is read
	op    byte
	raw   bool // plain TCP: the echo is the frame's own bytes
	z     *compressed
}

// Dial connects to a ws:// URL with a hand-written opening handshake and
// prepares a message of size bytes. A tcp:// URL connects to a plain TCP
// echo server instead, for the ceiling no WebSocket server can pass.
func Dial(ctx context.Context, rawURL string, size int, binary bool) (*Conn, error) {
	return DialFrom(ctx, nil, rawURL, size, binary)
}

// DialFrom is Dial from the local IP address laddr, such as 127.0.0.2, so
// that many connections can be spread over several source addresses; a nil
// laddr lets the system choose.
func DialFrom(ctx context.Context, laddr net.IP, rawURL string, size int, binary bool) (*Conn, error) {
	return dial(ctx, laddr, rawURL, size, binary, false)
}

func dial(ctx context.Context, laddr net.IP, rawURL string, size int, binary, compress bool) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if u.Scheme != "ws" && u.Scheme != "tcp" {
		return nil, fmt.Errorf("bench: %s: scheme must be ws (or tcp for a plain echo)", rawURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	var d net.Dialer
	if laddr != nil {
		d.LocalAddr = &net.TCPAddr{IP: laddr}
	}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	c := &Conn{conn: nc, br: bufio.NewReaderSize(nc, 64<<10), op: wsframe.OpText, raw: u.Scheme == "tcp"}
	if binary {
		c.op = wsframe.OpBinary
	}
	c.want = payload(size, binary)
	h := wsframe.Header{Fin: true, Opcode: c.op, Masked: true}
	rand.Read(h.Key[:])
	c.frame = wsframe.AppendFrame(nil, h, c.want)
	if compress && !c.raw {
		c.compress(h)
	}
	if c.raw {
		c.buf = make([]byte, len(c.frame))
		return c, nil
	}
	c.buf = make([]byte, size)
	if err := c.handshake(ctx, u); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// payload returns size bytes of printable ASCII, valid as text.
func payload(size int, binary bool) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte('a' + i%26)
		if binary {
			p[i] = byte(i)
		}
	}
	return p
}

func (c *Conn) handshake(ctx context.Context, u *url.URL) error {
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(dl)
		defer c.conn.SetDeadline(time.Time{})
	}
	var key [16]byte
	rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	path := u.RequestURI()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + k + "\r\n"
	if c.z != nil {
		req += wsframe.ExtensionHeader + ": " + wsframe.DeflateOffer + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(c.conn, req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return fmt.Errorf("bench: handshake: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("bench: handshake failed: %s", resp.Status)
	}
	sum := sha1.Sum([]byte(k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return errors.New("bench: handshake: bad Sec-WebSocket-Accept")
	}
	if c.z != nil {
		return c.z.accepted(resp.Header.Values(wsframe.ExtensionHeader))
	}
	return nil
}

// RoundTrip sends the message and reads its echo, answering nothing: an
// echo server has no reason to ping within a round trip, and a Close ends it.
func (c *Conn) RoundTrip() error {
	if _, err := c.conn.Write(c.frame); err != nil {
		return err
	}
	if c.raw {
		_, err := io.ReadFull(c.br, c.buf)
		return err
	}
	if c.z != nil {
		return c.readCompressed()
	}
	h, err := c.dataHeader()
	if err != nil {
		return err
	}
	if !h.Fin || h.Opcode != c.op || h.Length != int64(len(c.want)) {
		return errMismatch
	}
	if _, err := io.ReadFull(c.br, c.buf); err != nil {
		return err
	}
	if !bytes.Equal(c.buf, c.want) {
		return errMismatch
	}
	return nil
}

// dataHeader reads frame headers up to the next data frame's, skipping
// control frames; a Close gives errClosed.
func (c *Conn) dataHeader() (wsframe.Header, error) {
	for {
		b, err := c.br.Peek(2)
		if err != nil {
			return wsframe.Header{}, err
		}
		if b, err = c.br.Peek(wsframe.HeaderLen(b[1])); err != nil {
			return wsframe.Header{}, err
		}
		h, n, err := wsframe.ParseHeader(b)
		if err != nil {
			return wsframe.Header{}, err
		}
		c.br.Discard(n)
		switch {
		case h.Opcode == wsframe.OpClose:
			return h, errClosed
		case wsframe.IsControl(h.Opcode):
			if _, err := c.br.Discard(int(h.Length)); err != nil {
				return h, err
			}
			continue
		}
		return h, nil
	}
}

// SetDeadline sets the read and write deadline of the connection, as
// net.Conn's SetDeadline does.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// Close closes the connection without a closing handshake.
func (c *Conn) Close() error { return c.conn.Close() }

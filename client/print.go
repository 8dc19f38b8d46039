package client

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"

	"wsecho/internal/wsmsg"
)

// tsFormat is the -timestamps prefix: RFC 3339 with milliseconds.
const tsFormat = "2006-01-02T15:04:05.000Z07:00"

// printer writes messages and events in the chosen format: plain lines,
// interactive lines ("> " sent, "< " received, "* " status) or JSON
// events. It is safe for concurrent use.
type printer struct {
	mu          sync.Mutex
	out         io.Writer
	status      io.Writer
	ed          *editor // a raw terminal: every line goes above the input line
	interactive bool
	echoSent    bool // print sent lines: no terminal has shown them as typed
	opts        Options
}

// event is one JSON line. Fields that do not apply to an event are left
// out; size and data are present on every message, ping and pong.
type event struct {
	Time        string   `json:"time"`
	Dir         string   `json:"dir,omitempty"`
	Type        string   `json:"type"`
	Size        *int     `json:"size,omitempty"`
	Data        *string  `json:"data,omitempty"`
	Code        int      `json:"code,omitempty"`
	Reason      *string  `json:"reason,omitempty"`
	RTTMillis   *float64 `json:"rtt_ms,omitempty"`
	URL         string   `json:"url,omitempty"`
	Subprotocol *string  `json:"subprotocol,omitempty"`
	Attempt     int      `json:"attempt,omitempty"`
	DelayMillis *float64 `json:"delay_ms,omitempty"`
	Unconfirmed int      `json:"unconfirmed,omitempty"`
	Dropped     int      `json:"dropped,omitempty"`
	Error       string   `json:"error,omitempty"`
}

func (p *printer) emit(e event, at time.Time) {
	e.Time = at.Format(time.RFC3339Nano)
	b, err := json.Marshal(e)
	if err != nil { // cannot happen: every field marshals
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(append(b, '\n'))
}

// writeOut writes one line (or several, for a text message with newlines)
// to the output, above the input line on a raw terminal.
func (p *printer) writeOut(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ed != nil {
		p.ed.print(s)
		return
	}
	io.WriteString(p.out, s+"\n")
}

// statusf prints a status line: on the terminal in interactive mode, else
// to Options.Status. JSON mode reports these as events instead.
func (p *printer) statusf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if p.interactive {
		p.writeOut("* " + s)
		return
	}
	if p.status == nil || p.opts.JSON {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.status, s+"\n")
}

// received prints a message that arrived at at.
func (p *printer) received(m wsmsg.Message, at time.Time) {
	if p.opts.JSON {
		p.emit(messageEvent("recv", m), at)
		return
	}
	prefix := ""
	if p.interactive {
		prefix = "< "
	}
	p.writeOut(p.format(prefix, m, at))
}

// sent reports a message about to be sent: a JSON event, or in interactive
// mode with no terminal echo, the line itself.
func (p *printer) sent(m wsmsg.Message, at time.Time) {
	switch {
	case p.opts.JSON:
		p.emit(messageEvent("send", m), at)
	case p.interactive && p.echoSent:
		p.writeOut(p.format("> ", m, at))
	}
}

func (p *printer) format(prefix string, m wsmsg.Message, at time.Time) string {
	var b strings.Builder
	b.WriteString(prefix)
	if p.opts.Timestamps {
		b.WriteString(at.Format(tsFormat))
		b.WriteByte(' ')
	}
	switch {
	case p.opts.Verbose:
		fmt.Fprintf(&b, "[%s, %d bytes] ", typeName(m.Type), len(m.Data))
	case p.interactive && m.Type == websocket.BinaryFrame:
		fmt.Fprintf(&b, "[binary %d B] ", len(m.Data)) // not to be taken for text
	}
	if m.Type != websocket.BinaryFrame {
		b.Write(m.Data)
		return b.String()
	}
	switch p.opts.ShowBinary {
	case "base64":
		b.WriteString(base64.StdEncoding.EncodeToString(m.Data))
	case "raw":
		b.Write(m.Data)
	default:
		b.WriteString(hex.EncodeToString(m.Data))
	}
	return b.String()
}

func messageEvent(dir string, m wsmsg.Message) event {
	n := len(m.Data)
	var data string
	if m.Type == websocket.BinaryFrame {
		data = base64.StdEncoding.EncodeToString(m.Data)
	} else {
		data = string(m.Data)
	}
	return event{Dir: dir, Type: typeName(m.Type), Size: &n, Data: &data}
}

func typeName(t byte) string {
	if t == websocket.BinaryFrame {
		return "binary"
	}
	return "text"
}

// opened reports a new connection.
func (p *printer) opened(c *Conn, at time.Time) {
	if p.opts.JSON {
		sp := c.Subprotocol()
		p.emit(event{Type: "open", URL: c.url, Subprotocol: &sp}, at)
		return
	}
	s := "connected to " + c.url
	switch {
	case c.Subprotocol() != "":
		s += " (subprotocol " + c.Subprotocol() + ")"
	case len(c.opts.Subprotocols) > 0:
		s += " (no subprotocol chosen)"
	}
	if p.interactive {
		s += "; /help lists the commands"
	}
	p.statusf("%s", s)
}

// closed reports a Close frame sent ("send") or received ("recv").
func (p *printer) closed(dir string, code int, reason string, at time.Time) {
	if p.opts.JSON {
		p.emit(event{Dir: dir, Type: "close", Code: code, Reason: &reason}, at)
		return
	}
	if !p.opts.Verbose && !p.interactive {
		return
	}
	who := "server closed"
	if dir == "send" {
		who = "sent close"
	}
	if reason != "" {
		p.statusf("%s: %d %s", who, code, reason)
	} else {
		p.statusf("%s: %d", who, code)
	}
}

// pinged reports a ping: sent by Run ("send", with its payload) or by the
// server ("recv", whose payload the wire layer answered).
func (p *printer) pinged(dir string, payload []byte, size int, at time.Time) {
	if p.opts.JSON {
		e := event{Dir: dir, Type: "ping", Size: &size}
		if dir == "send" {
			d := base64.StdEncoding.EncodeToString(payload)
			e.Data = &d
		}
		p.emit(e, at)
		return
	}
	if dir == "recv" && p.opts.Verbose {
		p.statusf("ping from the server (%d bytes), answered", size)
	}
}

// ponged reports a pong; rtt is negative when it answers no ping Run sent.
// A pong for a /ping command is always printed; others with Verbose.
func (p *printer) ponged(payload string, rtt time.Duration, command bool, at time.Time) {
	if p.opts.JSON {
		n := len(payload)
		d := base64.StdEncoding.EncodeToString([]byte(payload))
		e := event{Dir: "recv", Type: "pong", Size: &n, Data: &d}
		if rtt >= 0 {
			ms := float64(rtt.Microseconds()) / 1000
			e.RTTMillis = &ms
		}
		p.emit(e, at)
		return
	}
	if !command && !p.opts.Verbose {
		return
	}
	switch {
	case rtt < 0:
		p.statusf("pong %s (unsolicited)", strconv.Quote(payload))
	case command:
		p.statusf("pong %s in %s", strconv.Quote(payload), roundRTT(rtt))
	default:
		p.statusf("pong in %s", roundRTT(rtt))
	}
}

func roundRTT(d time.Duration) time.Duration {
	if d > time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// reconnecting reports a lost connection, or a failed first dial (never
// connected), and the wait before the next attempt, with the number of
// lines left in doubt by a drop and of lines given up after two closes
// without their echo.
func (p *printer) reconnecting(cause error, delay time.Duration, attempt, doubt, dropped int, never bool, at time.Time) {
	if p.opts.JSON {
		ms := float64(delay.Milliseconds())
		p.emit(event{Type: "reconnect", Attempt: attempt, DelayMillis: &ms, Error: cause.Error(), Unconfirmed: doubt, Dropped: dropped}, at)
		return
	}
	if doubt > 0 {
		p.statusf("%d sent line(s) had not been echoed when the connection dropped; they may not have arrived, and are not sent again", doubt)
	}
	if dropped > 0 {
		p.statusf("%d line(s) were not echoed before the server closed, twice; they are not sent again", dropped)
	}
	again := "reconnecting"
	if never {
		again = "retrying"
	}
	p.statusf("%s; %s in %s (attempt %d)", cause, again, delay.Round(time.Millisecond), attempt)
}

// failed reports how a connection ended abnormally, as a JSON event; the
// caller prints the error itself otherwise.
func (p *printer) failed(err error, at time.Time) {
	if p.opts.JSON {
		p.emit(event{Type: "error", Error: err.Error()}, at)
	}
}

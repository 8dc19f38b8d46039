package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/websocket"

	"wsecho/internal/wsframe"
	"wsecho/internal/wsmsg"
)

const (
	defaultReconnectDelay    = 500 * time.Millisecond
	defaultReconnectMaxDelay = 30 * time.Second

	// maxUnconfirmed bounds the lines kept while their echo is awaited.
	// Against a server that does not echo, the oldest are forgotten.
	maxUnconfirmed = 4096
)

// session is one Run: the connections it goes through, in turn, and what
// outlives each of them (input, counters, lines to send again).
type session struct {
	opts Options
	log  *slog.Logger
	url  string
	p    *printer

	// interrupt ends the session as the caller's context does: Ctrl-C on
	// a raw terminal.
	interrupt context.CancelFunc

	// Input, in line mode. The reading goroutine stops when done closes.
	input     chan inputEvent
	done      chan struct{}
	inputEnd  chan struct{} // closed when the reading goroutine has ended
	stopInput func() bool   // unblocks its read; false if it cannot
	restore   func()        // puts the terminal back
	ed        *editor

	finished  bool // the user ended the session: no reconnect
	exchanged bool // the last connection lasted stableAfter and received a message
	connected bool // a connection has been made

	// Default mode: messages sent, over all connections.
	sent int
	mu   sync.Mutex

	// Line mode with Reconnect.
	track       bool
	retry       []sentLine // to send first on the next connection
	seq         uint64
	unconfirmed []sentLine // guarded by mu: written, echo not yet seen
	doubt       int        // lines left in doubt by the last drop
	dropped     int        // lines not echoed on two connections in a row

	// Input that arrived while Run waited to reconnect.
	queued []inputEvent
	eof    bool
}

// sentLine is a line of line mode on its way: retried says it has been
// sent again once already, after a connection closed without its echo.
type sentLine struct {
	seq     uint64
	m       wsmsg.Message
	retried bool
}

// newSession sets up the output and, in line mode, the input: on a
// terminal it goes interactive and, where it can, raw.
func newSession(opts Options, url string, in io.Reader, out io.Writer) *session {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &session{opts: opts, log: log, url: url}
	s.p = &printer{out: out, status: opts.Status, opts: opts}
	if !opts.Lines {
		return s
	}
	s.track = opts.Reconnect
	s.p.interactive = opts.Interactive && !opts.JSON
	s.p.echoSent = true
	inFile, _ := in.(*os.File)
	if inFile != nil && !opts.JSON && isTerminal(inFile) {
		s.p.interactive = true
		s.p.echoSent = false // the terminal shows what is typed
		outFile, _ := out.(*os.File)
		if outFile != nil && isTerminal(outFile) {
			if restore, err := makeRaw(inFile); err == nil {
				s.restore = restore
				s.ed = newEditor(in, out, func() (int, int) { return terminalSize(outFile) })
				s.p.ed = s.ed
			} else {
				s.log.Debug("raw terminal mode", "err", err)
			}
		}
	}
	s.input = make(chan inputEvent, 64)
	s.done = make(chan struct{})
	s.inputEnd = make(chan struct{})
	s.stopInput = func() bool { return false }
	if d, ok := in.(interface{ SetReadDeadline(time.Time) error }); ok {
		s.stopInput = func() bool { return d.SetReadDeadline(time.Unix(1, 0)) == nil }
	}
	go s.readInput(in)
	return s
}

// finish stops the input and restores the terminal.
func (s *session) finish() {
	if s.ed != nil {
		s.ed.finish()
	}
	if s.done != nil {
		close(s.done)
		if s.stopInput() {
			<-s.inputEnd
		}
	}
	if s.restore != nil {
		s.restore()
	}
}

// readInput reads in: keys through the editor on a raw terminal, else
// lines. It ends at the end of in, on a read error, or when done closes.
func (s *session) readInput(in io.Reader) {
	defer close(s.inputEnd)
	emit := func(ev inputEvent) bool {
		if ev.kind == inInterrupt {
			s.interrupt()
			return true
		}
		select {
		case s.input <- ev:
			return true
		case <-s.done:
			return false
		}
	}
	if s.ed != nil {
		for {
			ev := s.ed.readLine()
			if !emit(ev) || ev.kind != inLine {
				return
			}
		}
	}
	br := bufio.NewReader(in)
	for {
		line, err := br.ReadString('\n')
		if line != "" || err == nil {
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			if !emit(inputEvent{kind: inLine, line: line}) {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Debug("read input", "err", err)
			}
			emit(inputEvent{kind: inEOF})
			return
		}
	}
}

// live is the state of one connection.
type live struct {
	s        *session
	c        *Conn
	readErr  chan error
	got      chan struct{} // a message arrived
	sent     int           // messages sent on this connection
	recv     atomic.Int64  // messages received on it
	cut      atomic.Bool   // closed by closeAfter, after Ctrl-C
	pings    map[string]ping
	lastPing time.Time
	lastPong time.Time
}

type ping struct {
	at      time.Time
	command bool // a /ping command: its pong is always printed
}

// serve runs one connection until it ends.
func (s *session) serve(ctx context.Context, c *Conn) error {
	l := &live{s: s, c: c, readErr: make(chan error, 1), got: make(chan struct{}, 1), pings: make(map[string]ping)}
	if s.opts.JSON || s.opts.Verbose {
		c.onPing = func(n int64) { s.p.pinged("recv", nil, int(n), time.Now()) }
	}
	// Ctrl-C must end the client whatever the server does: a write to a
	// server that stopped reading blocks, and only closing the connection
	// unblocks it.
	defer closeAfter(ctx, l, s.closeWait())()
	start := time.Now()
	defer func() { s.exchanged = l.recv.Load() > 0 && time.Since(start) >= stableAfter }()
	s.p.opened(c, time.Now())
	go func() { l.readErr <- l.readLoop() }()

	// Lines the last connection did not get through go first, then the
	// input that arrived while Run waited to reconnect.
	for len(s.retry) > 0 {
		if err := l.sendLine(s.retry[0]); err != nil {
			return l.writeFailed(err)
		}
		s.retry = s.retry[1:]
	}
	for len(s.queued) > 0 {
		ev := s.queued[0]
		s.queued = s.queued[1:]
		if end, err := l.line(ctx, ev.line); end {
			return err
		}
	}
	if s.eof {
		return l.endOfInput(ctx)
	}

	interval := s.opts.Interval
	if interval <= 0 {
		interval = time.Second
	}
	var first, tick <-chan time.Time
	if !s.opts.Lines {
		if s.opts.Count > 0 && s.sent >= s.opts.Count {
			return l.endOfInput(ctx) // all sent before a reconnect
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
		now := make(chan time.Time, 1)
		now <- time.Now() // the first message goes out at once
		first = now
	}
	var pingC <-chan time.Time
	if s.opts.Ping > 0 {
		t := time.NewTicker(s.opts.Ping)
		defer t.Stop()
		pingC = t.C
	}

	for {
		select {
		case <-ctx.Done():
			s.finished = true
			return l.closeNormally(ctx, s.closeCode(), s.opts.CloseReason)
		case err := <-l.readErr:
			return l.ended(err)
		case <-l.got:
		case t := <-first:
			first = nil
			if end, err := l.timed(ctx, t); end {
				return err
			}
		case t := <-tick:
			if end, err := l.timed(ctx, t); end {
				return err
			}
		case ev := <-s.input:
			if ev.kind == inEOF {
				return l.endOfInput(ctx)
			}
			if end, err := l.line(ctx, ev.line); end {
				return err
			}
		case now := <-pingC:
			// A pong that arrived before this tick may still sit in the
			// channel (select picks at random among ready cases).
			for drained := false; !drained; {
				select {
				case pg := <-c.pongs:
					l.pong(pg)
				default:
					drained = true
				}
			}
			if !l.lastPing.IsZero() && l.lastPong.Before(l.lastPing) {
				return l.lost(fmt.Errorf("no pong within %s", s.opts.Ping))
			}
			payload := "wsecho " + strconv.FormatInt(now.UnixNano(), 36)
			if err := l.ping(payload, false); err != nil {
				return l.writeFailed(err)
			}
		case pg := <-c.pongs:
			l.pong(pg)
		}
	}
}

// timed sends the default mode's message: the time t, or Options.Message.
// After Count messages it ends the connection, with serve's result.
func (l *live) timed(ctx context.Context, t time.Time) (end bool, err error) {
	s := l.s
	text := t.String()
	if s.opts.Message != nil {
		text = string(s.opts.Message)
	}
	m := s.outgoing(text)
	s.p.sent(m, time.Now())
	if err := wsmsg.Codec.Send(l.c.Conn, &m); err != nil {
		return true, l.writeFailed(err)
	}
	l.sent++
	s.sent++
	if s.opts.Count > 0 && s.sent >= s.opts.Count {
		return true, l.endOfInput(ctx)
	}
	return false, nil
}

// outgoing makes a message of the configured type.
func (s *session) outgoing(text string) wsmsg.Message {
	if s.opts.Binary {
		return wsmsg.Message{Type: websocket.BinaryFrame, Data: []byte(text)}
	}
	return wsmsg.Message{Type: websocket.TextFrame, Data: []byte(text)}
}

// line handles one line of input: a message, or in interactive mode a
// command. When the connection ended meanwhile, it returns end and serve's
// result.
func (l *live) line(ctx context.Context, line string) (end bool, err error) {
	s := l.s
	if s.p.interactive && strings.HasPrefix(line, "/") && !strings.HasPrefix(line, "//") {
		return l.command(ctx, line)
	}
	if s.p.interactive && strings.HasPrefix(line, "//") {
		line = line[1:]
	}
	sl := sentLine{m: s.outgoing(line)}
	if err := l.sendLine(sl); err != nil {
		s.retry = append(s.retry, sl)
		return true, l.writeFailed(err)
	}
	return false, nil
}

const help = `commands:
  /ping [text]            send a ping, print the pong and its round-trip time
  /close [code [reason]]  close the connection (default: 1000) and exit
  /binary HEX             send one binary message, such as /binary 48690a
  /help                   print this
  //text                  send "/text"
Ctrl-D on an empty line closes normally; Ctrl-C too.`

// command runs an interactive command, with line's results.
func (l *live) command(ctx context.Context, line string) (end bool, err error) {
	s := l.s
	name, arg, _ := strings.Cut(line[1:], " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "ping":
		if len(arg) > wsframe.MaxControlPayload {
			s.p.statusf("a ping carries at most %d bytes", wsframe.MaxControlPayload)
			return false, nil
		}
		if err := l.ping(arg, true); err != nil {
			return true, l.writeFailed(err)
		}
	case "close":
		code, reason := s.closeCode(), s.opts.CloseReason
		if arg != "" {
			codeText, rest, _ := strings.Cut(arg, " ")
			n, err := strconv.Atoi(codeText)
			if err != nil || !wsframe.ValidCloseCode(n) {
				s.p.statusf("not a close code a client may send: %s", codeText)
				return false, nil
			}
			code, reason = n, strings.TrimSpace(rest)
			if len(reason) > wsframe.MaxControlPayload-2 {
				s.p.statusf("a close reason has at most %d bytes", wsframe.MaxControlPayload-2)
				return false, nil
			}
		}
		s.finished = true
		return true, l.closeNormally(ctx, code, reason)
	case "binary":
		data, err := hex.DecodeString(strings.ReplaceAll(arg, " ", ""))
		if err != nil {
			s.p.statusf("not hex: %v", err)
			return false, nil
		}
		sl := sentLine{m: wsmsg.Message{Type: websocket.BinaryFrame, Data: data}}
		if err := l.sendLine(sl); err != nil {
			s.retry = append(s.retry, sl)
			return true, l.writeFailed(err)
		}
	case "help":
		for h := range strings.SplitSeq(help, "\n") {
			s.p.statusf("%s", h)
		}
	default:
		s.p.statusf("unknown command /%s; /help lists the commands (// sends a leading slash)", name)
	}
	return false, nil
}

// sendLine sends a message of line mode, keeping it until its echo comes
// back when Reconnect needs to know.
func (l *live) sendLine(sl sentLine) error {
	s := l.s
	m := sl.m
	var seq uint64
	if s.track {
		s.mu.Lock()
		s.seq++
		seq = s.seq
		sl.seq = seq
		if len(s.unconfirmed) >= maxUnconfirmed {
			s.unconfirmed = s.unconfirmed[1:]
		}
		s.unconfirmed = append(s.unconfirmed, sl)
		s.mu.Unlock()
	}
	s.p.sent(m, time.Now())
	err := wsmsg.Codec.Send(l.c.Conn, &m)
	if err == nil {
		l.sent++
	}
	if err != nil && s.track {
		// Not written: take it back, so that it is not sent twice.
		s.mu.Lock()
		if n := len(s.unconfirmed); n > 0 && s.unconfirmed[n-1].seq == seq {
			s.unconfirmed = s.unconfirmed[:n-1]
		}
		s.mu.Unlock()
	}
	return err
}

// confirm matches a received message against the oldest line whose echo
// is awaited.
func (s *session) confirm(m wsmsg.Message) {
	if !s.track {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.unconfirmed) > 0 {
		u := s.unconfirmed[0].m
		if u.Type == m.Type && bytes.Equal(u.Data, m.Data) {
			s.unconfirmed = s.unconfirmed[1:]
		}
	}
}

// readLoop prints each message until the connection ends.
func (l *live) readLoop() error {
	s := l.s
	for {
		// The payload lives until the next read: everything below uses it
		// at once (printing copies it), nothing keeps it.
		typ, data, err := l.c.ReadMessage()
		if err != nil {
			return err
		}
		m := wsmsg.Message{Type: typ, Data: data}
		at := time.Now()
		s.confirm(m)
		wire, compressed := l.c.wireSize()
		s.p.received(m, wire, compressed, at)
		l.recv.Add(1)
		select {
		case l.got <- struct{}{}:
		default:
		}
	}
}

// ping sends a ping with payload.
func (l *live) ping(payload string, command bool) error {
	now := time.Now()
	if err := l.c.Ping([]byte(payload)); err != nil {
		return err
	}
	l.pings[payload] = ping{now, command}
	if !command {
		l.lastPing = now
	}
	l.s.p.pinged("send", []byte(payload), len(payload), now)
	return nil
}

// pong reports a pong with the round-trip time of the ping it answers.
func (l *live) pong(pg pong) {
	l.lastPong = pg.at
	rtt := time.Duration(-1)
	p, ok := l.pings[pg.payload]
	if ok {
		rtt = pg.at.Sub(p.at)
		delete(l.pings, pg.payload)
	}
	l.s.p.ponged(pg.payload, rtt, p.command, pg.at)
}

// ended turns the reading goroutine's error into serve's result, and
// settles the lines whose echo had not come back.
func (l *live) ended(err error) error {
	s := l.s
	res := l.c.endError(err)
	code, reason, peerClosed := l.c.CloseStatus()
	// With a reconnect to follow, its status line says how this one ended.
	if peerClosed && (s.p.opts.JSON || !s.opts.Reconnect || s.finished || !reconnectable(res)) {
		s.p.closed("recv", code, reason, time.Now())
	}
	if res != nil {
		s.p.failed(res, time.Now())
	}
	if s.track {
		s.mu.Lock()
		if peerClosed {
			// The server's Close came after every echo it sent: these lines
			// were never echoed, so they go again, before the rest; but only
			// once, in case a line is what makes the server close.
			var again []sentLine
			for _, u := range s.unconfirmed {
				if u.retried {
					s.dropped++
					continue
				}
				u.retried = true
				again = append(again, u)
			}
			s.retry = append(again, s.retry...)
		} else {
			s.doubt = len(s.unconfirmed)
		}
		s.unconfirmed = nil
		s.mu.Unlock()
	}
	return res
}

package wsframe

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Role says which end of a connection a Conn is.
type Role uint8

const (
	Server Role = iota // frames from the peer must be masked
	Client             // frames from the peer must not be masked
)

// DefaultMaxMessage is the message size limit when Options.MaxMessage is 0.
const DefaultMaxMessage = 32 << 20

// LingerTimeout bounds how long Close waits for the peer to hang up after
// the connection was failed, so that the Close frame is read rather than
// lost to a TCP reset.
const LingerTimeout = time.Second

// ErrCloseSent is returned for a data frame written after a Close frame has
// gone out (RFC 6455, Section 5.5.1).
var ErrCloseSent = errors.New("websocket: close frame already sent")

// Options configure a Conn. The zero value is ready to use.
type Options struct {
	// MaxMessage is the largest message accepted, in bytes; a larger one
	// fails the connection with 1009. If 0, DefaultMaxMessage.
	MaxMessage int64

	// OnFrame, if set, is called from the reading goroutine for every frame
	// read from the peer, with its opcode and payload length.
	OnFrame func(opcode byte, length int64)

	// OnPong, if set, is called from the reading goroutine with the payload
	// of every Pong. The slice is valid only during the call.
	OnPong func(payload []byte)
}

// Conn is the wire layer of one WebSocket connection. It implements
// net.Conn for x/net: Read yields one well-formed frame per message, and
// Write takes x/net's frame stream and sends each frame whole.
//
// Read must be called from one goroutine at a time, as x/net does under its
// read lock. Write, the control-frame methods, Close and the deadline methods
// are safe for concurrent use.
type Conn struct {
	nc   net.Conn
	br   *bufio.Reader
	role Role
	opts Options

	// Read side, owned by the reading goroutine.
	httpRead   bool   // client: still passing the handshake response through
	lineLen    int    // bytes in the response line being passed through
	status     []byte // the response's status line, cut short
	statusDone bool
	xhdr       [MaxHeaderLen]byte
	xhdrN      int   // length of the header handed to x/net
	xhdrOff    int   // bytes of it already handed over
	msgLen     int64 // length of the message that header announces
	left       int64 // payload bytes of a streamed frame not yet handed over
	key        [4]byte
	keyPos     int
	op         byte   // opcode of the message being read
	inMsg      bool   // a fragmented message is open
	msg        []byte // a fragmented message, joined
	msgOff     int    // bytes of msg handed over
	utf        UTF8
	ctl        [MaxControlPayload]byte
	readErr    error // sticky
	atHeader   bool  // waiting for a frame header: a timeout here can be retried
	draining   atomic.Bool
	drainEnd   atomic.Int64 // unix nanoseconds: the read deadline once a message is under way
	drainGrace atomic.Int64 // the drain's grace period
	extended   bool         // the read deadline was moved to drainEnd for a message under way
	waited     bool         // at this message boundary, the reader set the drain's deadline itself

	// Write side, guarded by wmu.
	wmu       sync.Mutex
	framing   bool   // past the handshake: Write carries frames
	wpend     []byte // the start of an x/net frame whose end has not come yet
	wbufArr   [4][]byte
	wbufs     net.Buffers // frames queued for one write, in wbufArr
	closeSent bool

	// Close state, guarded by mu.
	mu         sync.Mutex
	peerClosed bool
	peerCode   int
	peerReason string
	failed     *Error
	closeOnce  sync.Once
	closeErr   error
}

// NewConn returns the wire layer over nc. br, if not nil, is a reader on nc
// that may already hold bytes that arrived with the handshake (the reader
// http.Hijacker returns); otherwise Conn makes its own.
//
// A Client Conn first passes the handshake response through Read unchanged
// and stops at its blank line, so that the bufio.Reader x/net reads it with
// never holds frame bytes. Writes pass through unchanged until Start.
func NewConn(nc net.Conn, br *bufio.Reader, role Role, opts Options) *Conn {
	if br == nil {
		br = bufio.NewReader(nc)
	}
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = DefaultMaxMessage
	}
	return &Conn{nc: nc, br: br, role: role, opts: opts, httpRead: role == Client}
}

// HandshakeStatus returns the status line of the handshake response a
// Client Conn passed through, such as "HTTP/1.1 403 Forbidden".
func (c *Conn) HandshakeStatus() string { return string(c.status) }

// Start switches Write from the handshake to frames. Call it once the
// opening handshake has succeeded, before any frame is written.
func (c *Conn) Start() {
	c.wmu.Lock()
	c.framing = true
	c.wmu.Unlock()
}

// NetConn returns the connection beneath c.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Read implements io.Reader for x/net. Each message the peer sends comes out
// as one frame with FIN set and the message's opcode; fragments are joined
// and control frames are answered here and never come out. On the server the
// frame carries an all-zero masking key, because x/net insists that client
// frames be masked; the payload is already unmasked. After the peer's Close,
// Read returns io.EOF; after a protocol violation, an *Error.
func (c *Conn) Read(p []byte) (int, error) {
	if c.httpRead {
		return c.readHTTP(p)
	}
	for {
		if c.readErr != nil {
			return 0, c.readErr
		}
		switch {
		case c.xhdrOff < c.xhdrN:
			n := copy(p, c.xhdr[c.xhdrOff:c.xhdrN])
			c.xhdrOff += n
			return n, nil
		case c.left > 0:
			return c.readPayload(p)
		case c.msgOff < len(c.msg):
			n := copy(p, c.msg[c.msgOff:])
			c.msgOff += n
			if c.msgOff == len(c.msg) {
				c.releaseMsg()
			}
			return n, nil
		}
		if err := c.nextMessage(); err != nil {
			if !(c.atHeader && isTimeout(err)) {
				c.readErr = err // only a timeout between frames can be retried
			}
			return 0, err
		}
	}
}

// readHTTP passes the handshake response through, up to its blank line.
func (c *Conn) readHTTP(p []byte) (int, error) {
	if _, err := c.br.Peek(1); err != nil {
		return 0, err
	}
	b, _ := c.br.Peek(min(c.br.Buffered(), len(p)))
	n := 0
	for n < len(b) {
		ch := b[n]
		n++
		if ch == '\n' {
			if c.lineLen == 0 {
				c.httpRead = false
				break
			}
			c.lineLen = 0
			c.statusDone = true
		} else if ch != '\r' {
			c.lineLen++
			if !c.statusDone && len(c.status) < 64 {
				c.status = append(c.status, ch)
			}
		}
	}
	copy(p, b[:n])
	c.br.Discard(n)
	return n, nil
}

// nextMessage reads frames until a message begins (a single frame, which is
// then streamed) or ends (a fragmented one, which was joined into c.msg), and
// sets up the header x/net will read.
func (c *Conn) nextMessage() error {
	c.waited = false
	if c.extended {
		// The message that was under way when the drain's grace ended has
		// been read: the peer has one grace period for the next one.
		c.extended = false
		c.waitDrain()
	}
	for {
		h, err := c.readHeader()
		if err != nil {
			return err
		}
		switch {
		case IsControl(h.Opcode):
			if err := c.readControl(h); err != nil {
				return err
			}
		case h.Opcode != OpContinuation && h.Fin:
			c.op = h.Opcode
			c.left = h.Length
			c.key, c.keyPos = h.Key, 0
			c.utf.Reset()
			c.setXHeader(h.Length)
			return nil
		default:
			if h.Opcode != OpContinuation {
				c.op, c.inMsg = h.Opcode, true
				c.utf.Reset()
				c.msg = c.msg[:0]
			}
			if err := c.readFragment(h); err != nil {
				return err
			}
			if h.Fin {
				c.inMsg = false
				if c.op == OpText && !c.utf.Complete() {
					return c.fail(CloseInvalidPayload, "invalid UTF-8 in text message")
				}
				c.msgOff = 0
				c.setXHeader(int64(len(c.msg)))
				return nil
			}
		}
	}
}

// readHeader reads one frame header and checks it against every rule that
// the header alone can break. It consumes nothing on error, so a timeout can
// be retried.
func (c *Conn) readHeader() (Header, error) {
	c.atHeader = true
	b, err := c.peek(2)
	if err != nil {
		return Header{}, err
	}
	// The first two bytes break most rules on their own: fail on them at
	// once, without waiting for the rest of the header.
	first := Header{Fin: b[0]&0x80 != 0, Rsv: b[0] & 0x70, Opcode: b[0] & 0x0f, Masked: b[1]&0x80 != 0, Length: int64(b[1] & 0x7f)}
	if err := c.checkStart(first); err != nil {
		c.atHeader = false
		return first, err
	}
	if b, err = c.peek(HeaderLen(b[1])); err != nil {
		return Header{}, err
	}
	c.atHeader = false
	h, n, err := ParseHeader(b)
	if err != nil {
		return h, c.fail(CloseProtocolError, err.Error())
	}
	c.br.Discard(n)
	if c.opts.OnFrame != nil {
		c.opts.OnFrame(h.Opcode, h.Length)
	}
	if !IsControl(h.Opcode) && h.Length > c.opts.MaxMessage-int64(len(c.msg)) {
		return h, c.fail(CloseMessageTooBig, "message larger than "+strconv.FormatInt(c.opts.MaxMessage, 10)+" bytes")
	}
	return h, nil
}

// checkStart checks the rules that the first two bytes of a header can
// break; h.Length is the 7-bit length field.
func (c *Conn) checkStart(h Header) error {
	switch {
	case h.Rsv != 0: // Section 5.2: no extension was negotiated
		return c.fail(CloseProtocolError, "reserved bits set")
	case IsReservedOpcode(h.Opcode): // Section 5.2
		return c.fail(CloseProtocolError, "reserved opcode "+strconv.Itoa(int(h.Opcode)))
	case c.role == Server && !h.Masked: // Section 5.1
		return c.fail(CloseProtocolError, "unmasked frame from client")
	case c.role == Client && h.Masked: // Section 5.1
		return c.fail(CloseProtocolError, "masked frame from server")
	case IsControl(h.Opcode) && !h.Fin: // Section 5.5
		return c.fail(CloseProtocolError, "fragmented control frame")
	case IsControl(h.Opcode) && h.Length > MaxControlPayload: // Section 5.5
		return c.fail(CloseProtocolError, "control frame longer than 125 bytes")
	case h.Opcode == OpContinuation && !c.inMsg: // Section 5.4
		return c.fail(CloseProtocolError, "continuation frame with no message open")
	case (h.Opcode == OpText || h.Opcode == OpBinary) && c.inMsg: // Section 5.4
		return c.fail(CloseProtocolError, "new message inside a fragmented one")
	}
	return nil
}

// peek returns the next n bytes without consuming them. While draining, a
// timeout in the middle of a message moves the deadline to the drain's end.
func (c *Conn) peek(n int) ([]byte, error) {
	for {
		b, err := c.br.Peek(n)
		if err == nil || !c.extendDrain(err, len(b) > 0) {
			return b, err
		}
	}
}

// readControl reads and acts on one control frame (RFC 6455, Section 5.5).
func (c *Conn) readControl(h Header) error {
	p := c.ctl[:h.Length]
	if err := c.readFull(p); err != nil {
		return err
	}
	if h.Masked {
		Mask(h.Key, 0, p)
	}
	switch h.Opcode {
	case OpPing: // Section 5.5.2: answer at once with the same payload
		err := c.WriteControl(OpPong, p)
		if err != nil && !errors.Is(err, ErrCloseSent) {
			return err
		}
	case OpPong:
		if c.opts.OnPong != nil {
			c.opts.OnPong(p)
		}
	case OpClose:
		return c.readClose(p)
	}
	return nil
}

// readClose checks the peer's Close and answers it with the same code
// (RFC 6455, Sections 5.5.1 and 7.4).
func (c *Conn) readClose(p []byte) error {
	code, reason := CloseNoStatus, ""
	switch {
	case len(p) == 1:
		return c.fail(CloseProtocolError, "close frame with a 1-byte payload")
	case len(p) >= 2:
		code = int(binary.BigEndian.Uint16(p))
		if !ValidCloseCode(code) {
			return c.fail(CloseProtocolError, "invalid close code "+strconv.Itoa(code))
		}
		if !utf8.Valid(p[2:]) {
			return c.fail(CloseInvalidPayload, "invalid UTF-8 in close reason")
		}
		reason = string(p[2:])
	}
	c.mu.Lock()
	c.peerClosed, c.peerCode, c.peerReason = true, code, reason
	c.mu.Unlock()
	// The peer is closing and may have stopped reading: bound the answer.
	c.nc.SetWriteDeadline(time.Now().Add(LingerTimeout))
	if err := c.WriteControl(OpClose, ClosePayload(code, "")); err != nil && !errors.Is(err, ErrCloseSent) {
		return err
	}
	return io.EOF
}

// readFragment appends one fragment's payload to c.msg, unmasking and
// validating it piece by piece as it arrives.
func (c *Conn) readFragment(h Header) error {
	start := len(c.msg)
	c.msg = growLen(c.msg, start+int(h.Length))
	c.key, c.keyPos = h.Key, 0
	for b := c.msg[start:]; len(b) > 0; {
		n, err := c.br.Read(b)
		if err := c.payloadChunk(b[:n], h.Masked); err != nil {
			return err
		}
		b = b[n:]
		if err != nil && !c.extendDrain(err, true) {
			return noEOF(err)
		}
	}
	return nil
}

// readPayload streams the payload of a single-frame message into p.
func (c *Conn) readPayload(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	// On invalid text, hand over none of this piece: a reader that buffers
	// (bufio.Reader.fill keeps the error for the next call) would otherwise
	// get the whole message with no error and x/net would deliver it.
	if err := c.payloadChunk(p[:n], c.role == Server); err != nil {
		c.readErr = err
		return 0, err
	}
	if c.left == 0 && c.op == OpText && !c.utf.Complete() {
		c.readErr = c.fail(CloseInvalidPayload, "invalid UTF-8 in text message")
		return 0, c.readErr
	}
	if err != nil {
		if c.extendDrain(err, true) {
			return n, nil
		}
		c.readErr = noEOF(err)
		return n, c.readErr
	}
	return n, nil
}

// payloadChunk unmasks and, for text, validates the next piece of a payload.
func (c *Conn) payloadChunk(b []byte, masked bool) error {
	if masked {
		c.keyPos = Mask(c.key, c.keyPos, b)
	}
	if c.op == OpText && !c.utf.Write(b) {
		return c.fail(CloseInvalidPayload, "invalid UTF-8 in text message")
	}
	return nil
}

func (c *Conn) readFull(p []byte) error {
	for len(p) > 0 {
		n, err := c.br.Read(p)
		p = p[n:]
		if err != nil && !c.extendDrain(err, true) {
			return noEOF(err)
		}
	}
	return nil
}

// setXHeader prepares the header of the frame x/net reads for a message of
// length n.
func (c *Conn) setXHeader(n int64) {
	h := Header{Fin: true, Opcode: c.op, Length: n, Masked: c.role == Server}
	c.xhdrN = len(AppendHeader(c.xhdr[:0], h))
	c.xhdrOff = 0
	c.msgLen = n
}

// Next reads ahead to the next message and returns its opcode (OpText or
// OpBinary) and length, before x/net reads it: x/net's next read yields that
// message. A caller that knows the length can read exactly that many bytes
// through x/net's Conn.Read into a buffer of its own, where x/net's Codec
// would allocate a fresh one for every message. (A message of length 0 must
// still be consumed through a Codec, since reading 0 bytes reads nothing.)
// Next must be called from the reading goroutine, between messages, and
// returns the errors Read would.
func (c *Conn) Next() (op byte, n int64, err error) {
	if c.httpRead {
		return 0, 0, errors.New("websocket: Next during the handshake")
	}
	if c.readErr != nil {
		return 0, 0, c.readErr
	}
	if c.xhdrOff == 0 && c.xhdrN > 0 {
		return c.op, c.msgLen, nil // already read ahead
	}
	if c.xhdrOff < c.xhdrN || c.left > 0 || c.msgOff < len(c.msg) {
		return 0, 0, errors.New("websocket: Next in the middle of a message")
	}
	if err := c.nextMessage(); err != nil {
		if !(c.atHeader && isTimeout(err)) {
			c.readErr = err
		}
		return 0, 0, err
	}
	return c.op, c.msgLen, nil
}

// releaseMsg lets go of a large joined message once x/net has it.
func (c *Conn) releaseMsg() {
	if cap(c.msg) > 64<<10 {
		c.msg = nil
	} else {
		c.msg = c.msg[:0]
	}
	c.msgOff = 0
}

// Drain asks the reader to stop at the next message boundary at which the
// peer has gone quiet for the grace period: Read then returns a timeout for
// which Drained reports true. A message already under way is read to its
// end, until the deadline end at the latest, and then the peer has the
// grace period for the next one. Use it to answer everything received
// before a shutdown.
func (c *Conn) Drain(grace time.Duration, end time.Time) {
	c.drainEnd.Store(end.UnixNano())
	c.drainGrace.Store(int64(grace))
	c.draining.Store(true)
	c.nc.SetReadDeadline(time.Now().Add(grace))
}

// waitDrain sets the read deadline to a grace period from now, or the
// drain's end if that comes first. Called by the reader.
func (c *Conn) waitDrain() {
	c.waited = true
	at := time.Now().Add(time.Duration(c.drainGrace.Load()))
	if end := time.Unix(0, c.drainEnd.Load()); end.Before(at) {
		at = end
	}
	c.nc.SetReadDeadline(at)
}

// extendDrain decides what a read error means while draining: a timeout in
// the middle of a message moves the deadline to the drain's end and asks for
// a retry. So does the first timeout at a message boundary, with a grace
// period from now: Drain set the deadline from another goroutine, and it
// may have passed before this one got to wait, with the peer's next message
// already in the socket (Go checks a deadline before it reads).
func (c *Conn) extendDrain(err error, midMessage bool) bool {
	if !c.draining.Load() || !isTimeout(err) {
		return false
	}
	midMessage = midMessage || c.inMsg || c.left > 0
	end := time.Unix(0, c.drainEnd.Load())
	switch {
	case !time.Now().Before(end):
		return false
	case midMessage:
		c.extended = true
		c.nc.SetReadDeadline(end)
		return true
	case !c.waited:
		c.waitDrain()
		return true
	}
	return false
}

// Drained reports whether err ends a drain cleanly, at a message boundary.
func (c *Conn) Drained(err error) bool {
	return c.draining.Load() && isTimeout(err) && c.atHeader && !c.inMsg
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func growLen(b []byte, n int) []byte {
	if n <= cap(b) {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}

// fail fails the connection (RFC 6455, Section 7.1.7): it sends a Close
// with code, and Close will then hang up.
func (c *Conn) fail(code int, reason string) error {
	e := &Error{Code: code, Reason: reason}
	c.mu.Lock()
	if c.failed == nil {
		c.failed = e
	}
	c.mu.Unlock()
	// A peer that broke the rules may not read either: bound the write.
	c.nc.SetWriteDeadline(time.Now().Add(LingerTimeout))
	c.WriteControl(OpClose, ClosePayload(code, reason))
	c.readErr = e
	return e
}

// Failed returns the violation that failed the connection, if any.
func (c *Conn) Failed() *Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

// PeerClose returns the code and reason of the peer's Close frame, and
// whether one has arrived. A Close with no code gives CloseNoStatus.
func (c *Conn) PeerClose() (code int, reason string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerCode, c.peerReason, c.peerClosed
}

// CloseSent reports whether a Close frame has gone out.
func (c *Conn) CloseSent() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.closeSent
}

// WriteClose starts the closing handshake with code and reason (RFC 6455,
// Section 7.1.2); it does not wait for the peer's answer. Read keeps
// returning messages that arrive before the peer's Close, then io.EOF.
func (c *Conn) WriteClose(code int, reason string) error {
	return c.WriteControl(OpClose, ClosePayload(code, reason))
}

// WriteControl writes one control frame between x/net's frames, masked when
// c is a client. After a Close has gone out it returns ErrCloseSent.
func (c *Conn) WriteControl(op byte, payload []byte) error {
	if len(payload) > MaxControlPayload {
		return errors.New("websocket: control payload longer than 125 bytes")
	}
	h := Header{Fin: true, Opcode: op, Masked: c.role == Client}
	if h.Masked {
		rand.Read(h.Key[:])
	}
	var buf [MaxHeaderLen + MaxControlPayload]byte
	frame := AppendFrame(buf[:0], h, payload)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrCloseSent
	}
	if op == OpClose {
		c.closeSent = true
	}
	_, err := c.nc.Write(frame)
	return err
}

// Write implements io.Writer for x/net. Before Start it passes bytes through
// (the handshake). After Start it takes x/net's frame stream and writes each
// frame whole, with one system call, keeping back the start of a frame whose
// end has not come yet. After a Close has gone out, x/net's frames are
// dropped, and a data frame gives ErrCloseSent.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.framing {
		return c.nc.Write(p)
	}
	n := len(p)
	var dropped error
	c.wbufs = c.wbufArr[:0]
	for len(p) > 0 {
		if len(c.wpend) == 0 {
			h, hl, err := ParseHeader(p)
			if err != nil {
				return 0, err
			}
			if hl > 0 && int64(len(p)-hl) >= h.Length {
				end := hl + int(h.Length)
				if !c.queue(h.Opcode, p[:end], nil) {
					dropped = ErrCloseSent
				}
				p = p[end:]
				continue
			}
		}
		var err error
		if p, err = c.pend(p, &dropped); err != nil {
			return 0, err
		}
	}
	if err := c.flush(); err != nil {
		return 0, err
	}
	return n, dropped
}

// pend adds the bytes of p that belong to the frame kept back in wpend. Once
// that frame is whole it is sent, and the rest of p is returned.
func (c *Conn) pend(p []byte, dropped *error) ([]byte, error) {
	for {
		h, hl, err := ParseHeader(c.wpend)
		if err != nil {
			return nil, err
		}
		if hl == 0 { // the header is not whole: take only its bytes
			if len(p) == 0 {
				return nil, nil
			}
			want := 2
			if len(c.wpend) >= 2 {
				want = HeaderLen(c.wpend[1])
			}
			k := min(len(p), want-len(c.wpend))
			c.wpend = append(c.wpend, p[:k]...)
			p = p[k:]
			continue
		}
		need := hl + int(h.Length) - len(c.wpend)
		if len(p) < need {
			c.wpend = append(c.wpend, p...)
			return nil, nil
		}
		if !c.queue(h.Opcode, c.wpend, p[:need]) {
			*dropped = ErrCloseSent
		}
		err = c.flush() // now, so that wpend can be reused
		c.wpend = c.wpend[:0]
		return p[need:], err
	}
}

// queue adds a frame from x/net, in one or two parts, to the next write. It
// reports false for a data frame dropped because a Close has gone out.
// Called with wmu held.
func (c *Conn) queue(op byte, a, b []byte) bool {
	if c.closeSent {
		return IsControl(op)
	}
	if op == OpClose {
		c.closeSent = true
	}
	c.wbufs = append(c.wbufs, a)
	if len(b) > 0 {
		c.wbufs = append(c.wbufs, b)
	}
	return true
}

// flush writes the queued frames. Called with wmu held.
func (c *Conn) flush() error {
	var err error
	switch len(c.wbufs) {
	case 0:
		return nil
	case 1:
		_, err = c.nc.Write(c.wbufs[0])
	default:
		_, err = c.wbufs.WriteTo(c.nc)
	}
	clear(c.wbufArr[:])
	c.wbufs = c.wbufArr[:0]
	return err
}

// Close closes the connection. If the connection was failed, it first
// half-closes and reads what the peer still sends, for LingerTimeout at most,
// so that the peer reads the Close frame rather than a TCP reset.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		if c.Failed() != nil {
			if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			c.nc.SetReadDeadline(time.Now().Add(LingerTimeout))
			io.Copy(io.Discard, io.LimitReader(c.nc, 1<<20))
		}
		c.closeErr = c.nc.Close()
	})
	return c.closeErr
}

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error { return c.nc.SetDeadline(t) }

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

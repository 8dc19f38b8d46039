package wsframe

import (
	"errors"
	"strconv"
)

// firstBuffer is the most a message buffer starts with: beyond it, the
// buffer grows with the payload that has arrived, at most doubling, never
// with the length a header announces.
const firstBuffer = 64 << 10

// ReadMessage reads the next message whole and returns its opcode (OpText
// or OpBinary) and payload. Control frames that arrive meanwhile are
// answered here: a Ping with a Pong, a Close with a Close, after which
// ReadMessage returns io.EOF; a protocol violation fails the connection and
// returns an *Error. A timeout while waiting for a frame header can be
// retried; any other error is returned again by every later read.
//
// The payload is in a buffer the Conn owns, counted against Options.Budget,
// until the next ReadMessage or Release.
func (c *Conn) ReadMessage() (op byte, p []byte, err error) {
	if c.handed {
		c.Release()
	}
	if c.httpRead {
		return 0, nil, errors.New("websocket: ReadMessage during the handshake")
	}
	if c.readErr != nil {
		return 0, nil, c.readErr
	}
	if err := c.readMessage(); err != nil {
		return 0, nil, c.readFailed(err)
	}
	c.handed, c.msgOff = true, len(c.msg) // nothing of it for Read
	return c.op, c.msg, nil
}

// Release gives back the buffer of the message ReadMessage returned, and
// its share of Options.Budget. Call it from the reading goroutine once the
// message is no longer needed, or when the connection ends.
func (c *Conn) Release() {
	if c.buf != nil {
		putBuffer(c.buf)
		c.buf, c.msg = nil, nil
	}
	c.hold.Release()
	c.handed, c.msgOff = false, 0
}

// readFailed records a read error: only a timeout between frames can be
// retried, and keeps the part of a message already read.
func (c *Conn) readFailed(err error) error {
	if c.atHeader && isTimeout(err) {
		return err
	}
	c.readErr = err
	c.inMsg = false
	c.Release()
	return err
}

// readMessage reads frames until a message is whole in c.msg.
func (c *Conn) readMessage() error {
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
		if IsControl(h.Opcode) {
			if err := c.readControl(h); err != nil {
				return err
			}
			continue
		}
		if h.Opcode != OpContinuation {
			c.op, c.inMsg = h.Opcode, true
			c.utf.Reset()
			c.startData(h)
			c.msgState.Add(1)
		}
		if err := c.readData(h); err != nil {
			return err
		}
		if h.Fin {
			c.inMsg = false
			c.msgState.Add(1)
			return c.endMessage()
		}
	}
}

// readHeader reads one frame header and checks it against every rule that
// the header alone can break. It consumes nothing on error, so a timeout can
// be retried.
func (c *Conn) readHeader() (Header, error) {
	c.atHeader = true
	b, err := c.peek(2, false)
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
	if b, err = c.peek(HeaderLen(b[1]), false); err != nil {
		return Header{}, err
	}
	c.atHeader = false
	h, n, err := ParseHeader(b)
	if err != nil {
		return h, c.fail(CloseProtocolError, err.Error())
	}
	c.br.Discard(n)
	if h.Length > 0 || h.Fin || IsControl(h.Opcode) {
		c.progress.Add(1) // an empty frame that ends nothing is no sign of life
	}
	if c.opts.OnFrame != nil {
		c.opts.OnFrame(h.Opcode, h.Length)
	}
	if !IsControl(h.Opcode) && h.Length > c.opts.MaxMessage-int64(len(c.msg)) {
		return h, c.fail(CloseMessageTooBig, "message larger than "+strconv.FormatInt(c.opts.MaxMessage, 10)+" bytes")
	}
	return h, nil
}

// checkStart checks the rules that the first two bytes of a header can
// break; h.Length is the 7-bit length field. It is the one place that
// checks the RSV bits: an extension that defines one (RSV1 for
// permessage-deflate, RFC 7692) allows it here.
func (c *Conn) checkStart(h Header) error {
	switch {
	case c.rsvError(h) != "": // Section 5.2; RFC 7692, Section 6
		return c.fail(CloseProtocolError, c.rsvError(h))
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
// timeout in the middle of a frame (midFrame, or once part of the n bytes
// is in) moves the deadline to the drain's end.
func (c *Conn) peek(n int, midFrame bool) ([]byte, error) {
	for {
		b, err := c.br.Peek(n)
		if err == nil || !c.extendDrain(err, midFrame || len(b) > 0) {
			return b, err
		}
	}
}

// readData appends the payload of data frame h to the message as it
// arrives, straight from the socket's reader into the message buffer. The
// buffer grows with the bytes that have arrived (see grow).
func (c *Conn) readData(h Header) error {
	c.key, c.keyPos = h.Key, 0
	for left := h.Length; left > 0; {
		if len(c.msg) == cap(c.msg) {
			if err := c.grow(left); err != nil {
				return err
			}
		}
		b := c.msg[len(c.msg):cap(c.msg)]
		if int64(len(b)) > left {
			b = b[:left]
		}
		n, err := c.br.Read(b)
		if n > 0 {
			c.progress.Add(1)
			if err := c.dataChunk(b[:n], h.Masked); err != nil {
				return err
			}
			c.msg = c.msg[:len(c.msg)+n]
			left -= int64(n)
		}
		if err != nil && !c.extendDrain(err, true) {
			return noEOF(err)
		}
	}
	return nil
}

// dataChunk is the one function every payload byte of a data message
// passes through, as it arrives: it unmasks it and, for text, validates it.
func (c *Conn) dataChunk(b []byte, masked bool) error {
	if masked {
		c.keyPos = Mask(c.key, c.keyPos, b)
	}
	if c.op == OpText && !c.compressedData() && !c.utf.Write(b) {
		return c.fail(CloseInvalidPayload, "invalid UTF-8 in text message")
	}
	return nil
}

// endMessage checks a message once its last frame is in, and inflates it
// when it is compressed (RFC 7692), checking UTF-8 as it inflates.
func (c *Conn) endMessage() error {
	if c.compressedData() {
		if err := c.inflateMessage(); err != nil {
			return err
		}
	}
	if c.op == OpText && !c.utf.Complete() {
		return c.fail(CloseInvalidPayload, "invalid UTF-8 in text message")
	}
	return nil
}

// grow makes room for more of the message, of which left bytes are still
// to come in the current frame. The new buffer is at most twice the old
// one (firstBuffer to begin with), so memory follows the data that has
// arrived; Options.Budget is charged for it first.
func (c *Conn) grow(left int64) error {
	have := int64(len(c.msg))
	want := min(have+left, max(2*int64(cap(c.msg)), firstBuffer))
	size := bufferSize(int(want))
	if err := c.charge(int64(size - cap(c.msg))); err != nil {
		return err
	}
	nb := getBuffer(size)
	*nb = append((*nb)[:0], c.msg...)
	if c.buf != nil {
		putBuffer(c.buf)
	}
	c.buf, c.msg = nb, *nb
	return nil
}

// charge takes n bytes from Options.Budget for the message buffer. When the
// budget has no room, the reader waits (reading nothing more, so TCP pushes
// back on the peer) for up to Options.MemoryWait, then fails the connection
// with 1013.
func (c *Conn) charge(n int64) error {
	if !c.hold.Grow(n, c.opts.MemoryWait) {
		return c.fail(CloseTryAgainLater, "memory budget for messages spent")
	}
	return nil
}

// readControl reads and acts on one control frame (RFC 6455, Section 5.5).
// Its payload is unmasked and used where it lies, in the reader's buffer.
func (c *Conn) readControl(h Header) error {
	p, err := c.peek(int(h.Length), true)
	if err != nil {
		return noEOF(err)
	}
	defer c.br.Discard(len(p))
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

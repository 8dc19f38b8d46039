package wsframe

import (
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

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
	c.SetWriteDeadline(time.Now().Add(LingerTimeout))
	if err := c.WriteControl(OpClose, ClosePayload(code, "")); err != nil && !errors.Is(err, ErrCloseSent) {
		return err
	}
	return io.EOF
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
	c.SetWriteDeadline(time.Now().Add(LingerTimeout))
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

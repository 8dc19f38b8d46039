package wsframe

// Read implements io.Reader for x/net: each message the peer sends comes
// out whole, as one frame with FIN set and the message's opcode; fragments
// are joined and control frames are answered and never come out. On the
// server the frame carries an all-zero masking key, because x/net insists
// that client frames be masked; the payload is already unmasked. After the
// peer's Close, Read returns io.EOF; after a protocol violation, an *Error.
//
// A Client Conn first passes the handshake response through, up to its
// blank line. Read and ReadMessage must not be mixed within a message.
//
// The server and wsecho's client read messages with ReadMessage; after the
// handshake, Read serves whoever reads through x/net's *websocket.Conn on
// top of a Conn, such as a program reading client.Conn's embedded one.
func (c *Conn) Read(p []byte) (int, error) {
	if c.httpRead {
		return c.readHTTP(p)
	}
	for {
		if c.readErr != nil {
			return 0, c.readErr
		}
		if c.xhdrOff < c.xhdrN {
			n := copy(p, c.xhdr[c.xhdrOff:c.xhdrN])
			c.xhdrOff += n
			return n, nil
		}
		if c.handed {
			n := copy(p, c.msg[c.msgOff:])
			c.msgOff += n
			if c.msgOff == len(c.msg) {
				c.Release()
			}
			if n > 0 || len(p) == 0 {
				return n, nil
			}
			continue
		}
		if err := c.readMessage(); err != nil {
			return 0, c.readFailed(err)
		}
		c.handed, c.msgOff = true, 0
		h := Header{Fin: true, Opcode: c.op, Length: int64(len(c.msg)), Masked: c.role == Server}
		c.xhdrN = len(AppendHeader(c.xhdr[:0], h))
		c.xhdrOff = 0
	}
}

// readHTTP passes the handshake response through, up to its blank line.
func (c *Conn) readHTTP(p []byte) (int, error) {
	if c.offer != nil {
		return c.readHTTPLines(p)
	}
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

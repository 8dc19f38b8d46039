package wsframe

import (
	"crypto/rand"
	"errors"
	"time"
)

// WriteControl writes one control frame between x/net's frames, masked when
// c is a client, within ControlWriteTimeout (or the write deadline, if it
// comes first). After a Close has gone out it returns ErrCloseSent.
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
	if c.werr != nil {
		return c.werr
	}
	if c.closeSent {
		return ErrCloseSent
	}
	if op == OpClose {
		c.closeSent = true
	}
	c.boundControl(true)
	n, err := c.nc.Write(frame)
	c.boundControl(false)
	if err != nil && n > 0 {
		// Part of the frame went out: nothing more can follow it.
		c.werr = err
		c.nc.Close()
	}
	return err
}

// boundControl puts the control frame's bound in force, or lifts it and
// restores the caller's write deadline.
func (c *Conn) boundControl(on bool) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.ctlWriting = on
	t := c.wdl
	if on {
		c.ctlDl = time.Now().Add(ControlWriteTimeout)
		if t.IsZero() || c.ctlDl.Before(t) {
			t = c.ctlDl
		}
	}
	c.nc.SetWriteDeadline(t)
}

// WriteClose starts the closing handshake with code and reason (RFC 6455,
// Section 7.1.2); it does not wait for the peer's answer. ReadMessage keeps
// returning messages that arrive before the peer's Close, then io.EOF.
func (c *Conn) WriteClose(code int, reason string) error {
	return c.WriteControl(OpClose, ClosePayload(code, reason))
}

// CloseSent reports whether a Close frame has gone out.
func (c *Conn) CloseSent() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.closeSent
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
	if c.werr != nil {
		return 0, c.werr
	}
	c.progress.Add(1)
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

// queue adds a frame from x/net, in one or two parts, to the next write:
// compressed, then split, when the Conn does either. It reports false for a
// data frame dropped because a Close has gone out. Called with wmu held.
func (c *Conn) queue(op byte, a, b []byte) bool {
	if c.closeSent {
		return IsControl(op)
	}
	if op == OpClose {
		c.closeSent = true
	}
	if f := c.compressFrame(op, a, b); f != nil {
		a, b = f, nil
	}
	if f := c.fragmentFrame(a, b); f != nil {
		a, b = f, nil
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
	for i, b := range c.wheld {
		putBuffer(b)
		c.wheld[i] = nil
	}
	c.wheld = c.wheld[:0]
	return err
}

package wsframe

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync/atomic"
)

// This file puts permessage-deflate (RFC 7692) on a Conn: RSV1 on the way
// in, inflating each compressed message at the end of the read path, and
// compressing x/net's data frames on the way out.

// rsv1 is the RSV1 bit in a frame's first byte: "Per-Message Compressed"
// (RFC 7692, Section 6).
const rsv1 = 0x40

// connDeflate is a Conn's permessage-deflate state. Without context
// takeover it holds no compressor or inflater between messages.
type connDeflate struct {
	params Deflate

	// Read side, owned by the reading goroutine.
	in         Inflater
	compressed bool  // the message being read has RSV1
	lastWire   int64 // payload bytes on the wire of the last message read, if compressed

	// Write side, guarded by the Conn's wmu.
	out *Compressor

	stats struct {
		msgsIn, wireIn, inflated atomic.Int64
		msgsOut, rawOut, wireOut atomic.Int64
	}
}

// CompressionStats counts a Conn's compressed messages: those received,
// with their payload bytes on the wire and inflated, and those sent, with
// their payload bytes before and after compression. Messages that went
// uncompressed are not counted.
type CompressionStats struct {
	MessagesIn, WireIn, InflatedIn int64
	MessagesOut, RawOut, WireOut   int64
}

// EnableDeflate turns on permessage-deflate with the negotiated
// parameters d: RSV1 is accepted on the first frame of a data message and
// such messages are inflated; data frames x/net writes are compressed
// (those shorter than MinCompress go out as they are). Call it before
// Start; a Client Conn that was given Options.OfferDeflate calls it itself
// when the server accepts.
func (c *Conn) EnableDeflate(d Deflate) {
	z := &connDeflate{params: d, lastWire: -1}
	z.in.Takeover = d.Receiver(c.role)
	z.out = NewCompressor(d.Sender(c.role))
	c.deflate = z
}

// Deflate returns the negotiated permessage-deflate parameters, and
// whether it is in force.
func (c *Conn) Deflate() (Deflate, bool) {
	if c.deflate == nil {
		return Deflate{}, false
	}
	return c.deflate.params, true
}

// CompressionStats returns the counts of compressed messages so far; all
// zero without permessage-deflate. It is safe for concurrent use.
func (c *Conn) CompressionStats() CompressionStats {
	z := c.deflate
	if z == nil {
		return CompressionStats{}
	}
	return CompressionStats{
		MessagesIn: z.stats.msgsIn.Load(), WireIn: z.stats.wireIn.Load(), InflatedIn: z.stats.inflated.Load(),
		MessagesOut: z.stats.msgsOut.Load(), RawOut: z.stats.rawOut.Load(), WireOut: z.stats.wireOut.Load(),
	}
}

// rsvError checks the RSV bits of a frame's first byte (RFC 6455, Section
// 5.2; RFC 7692, Section 6.1): RSV1 only on the first frame of a data
// message, and only when permessage-deflate is in force.
func (c *Conn) rsvError(h Header) string {
	switch {
	case h.Rsv == 0:
		return ""
	case h.Rsv != rsv1 || c.deflate == nil:
		return "reserved bits set"
	case IsControl(h.Opcode):
		return "RSV1 set on a control frame"
	case h.Opcode == OpContinuation:
		return "RSV1 set on a continuation frame"
	}
	return ""
}

// startData notes whether a data message that begins with frame h is
// compressed.
func (c *Conn) startData(h Header) {
	if c.deflate != nil {
		c.deflate.compressed = h.Rsv&rsv1 != 0
		c.deflate.lastWire = -1
	}
}

// LastCompressed reports whether the last message read was compressed, and
// its payload's size on the wire. Call it from the reading goroutine.
func (c *Conn) LastCompressed() (wireSize int64, ok bool) {
	if c.deflate == nil || c.deflate.lastWire < 0 {
		return 0, false
	}
	return c.deflate.lastWire, true
}

// compressedData reports whether the message being read is compressed:
// then its payload is UTF-8 only once inflated.
func (c *Conn) compressedData() bool {
	return c.deflate != nil && c.deflate.compressed
}

// inflateMessage replaces the compressed message in c.msg with its inflated
// form, in a buffer that grows with the inflated data, charged to
// Options.Budget like any message buffer. The compressed buffer goes back
// to its pool once the message is inflated; its charge stays with the
// message's until Release, so the budget counts both. A message that would inflate past
// MaxMessage fails the connection with 1009 as soon as it passes it; one
// that does not inflate, or is not UTF-8 for text, with 1007.
func (c *Conn) inflateMessage() error {
	z := c.deflate
	z.compressed = false
	comp, compBuf := c.msg, c.buf
	c.msg, c.buf = nil, nil
	defer func() {
		if compBuf != nil {
			putBuffer(compBuf)
		}
	}()
	z.in.Reset(bytes.NewReader(comp), c.opts.MaxMessage)
	c.utf.Reset()
	hint := int64(4*len(comp) + 64)
	var one [1]byte
	for {
		full := len(c.msg) == cap(c.msg)
		b := c.msg[len(c.msg):cap(c.msg)]
		if full {
			b = one[:] // one byte before growing: a message that fits grows nothing
		}
		n, err := z.in.Read(b)
		var e *Error
		switch {
		case err == nil, err == io.EOF:
		case errors.As(err, &e):
			return c.fail(e.Code, e.Reason)
		default:
			return err
		}
		if full && n > 0 {
			if err := c.grow(hint); err != nil {
				z.in.Close()
				return err
			}
			hint = c.opts.MaxMessage + 1 - int64(len(c.msg))
			c.msg = append(c.msg, one[0])
		} else {
			c.msg = c.msg[:len(c.msg)+n]
		}
		if c.op == OpText && !c.utf.Write(b[:n]) {
			z.in.Close()
			return c.fail(CloseInvalidPayload, "invalid UTF-8 in text message")
		}
		if err == io.EOF {
			break
		}
	}
	z.lastWire = int64(len(comp))
	z.stats.msgsIn.Add(1)
	z.stats.wireIn.Add(int64(len(comp)))
	z.stats.inflated.Add(int64(len(c.msg)))
	return nil
}

// compressFrame returns the compressed form of a data frame from x/net,
// whose encoding is a followed by b, or nil to send it as it is: a control
// frame, a frame shorter than MinCompress, or no permessage-deflate. The
// frame is queued until the next flush. Called with wmu held.
func (c *Conn) compressFrame(op byte, a, b []byte) []byte {
	z := c.deflate
	if z == nil || (op != OpText && op != OpBinary) {
		return nil
	}
	h, hl, err := ParseHeader(a)
	if err != nil || hl == 0 || !h.Fin || h.Rsv != 0 || h.Length < MinCompress {
		return nil
	}
	// The payload, unmasked, in a pooled buffer.
	raw := getBuffer(int(h.Length))
	defer putBuffer(raw)
	*raw = append(append(*raw, a[hl:]...), b...)
	if h.Masked {
		Mask(h.Key, 0, *raw)
	}
	buf := getBuffer(MaxHeaderLen + int(h.Length))
	payload := z.out.Compress((*buf)[MaxHeaderLen:MaxHeaderLen], *raw)
	if len(payload) >= int(h.Length) && !z.out.takeover {
		// It does not shrink: send it as it is, which RFC 7692 lets a
		// sender choose per message. (With context takeover the message
		// is in the compressor's window now, so it must go compressed,
		// or the peer's window would miss it.)
		putBuffer(buf)
		return nil
	}
	nh := Header{Fin: true, Rsv: rsv1, Opcode: op, Masked: h.Masked, Length: int64(len(payload))}
	if nh.Masked {
		rand.Read(nh.Key[:])
		Mask(nh.Key, 0, payload)
	}
	var hdr [MaxHeaderLen]byte
	hl = len(AppendHeader(hdr[:0], nh))
	var frame []byte
	if cap(payload) == cap(*buf)-MaxHeaderLen {
		// The header goes just before the payload in the same buffer.
		frame = (*buf)[MaxHeaderLen-hl : MaxHeaderLen+len(payload)]
		copy(frame, hdr[:hl])
		c.wheld = append(c.wheld, buf)
	} else {
		// The compressed payload outgrew buf (data that does not shrink,
		// with context takeover): it is in a slice of its own.
		putBuffer(buf)
		frame = append(hdr[:hl:hl], payload...)
	}
	z.stats.msgsOut.Add(1)
	z.stats.rawOut.Add(h.Length)
	z.stats.wireOut.Add(int64(len(payload)))
	return frame
}

// offerState is what a Client Conn that offered permessage-deflate keeps
// while it passes the handshake response through.
type offerState struct {
	line    []byte // the response line being handed over
	off     int    // bytes of line handed over
	midLine bool   // line is a piece of a line longer than the reader's buffer
	done    bool   // line is the blank line that ends the response
	values  []string
}

// readHTTPLines passes the handshake response through line by line, up to
// its blank line, leaving out the Sec-WebSocket-Extensions fields. At the
// blank line it checks them (RFC 7692, Section 7) and turns compression on
// if the server accepted; an answer the client must fail on is returned as
// the error, which ends x/net's handshake.
func (c *Conn) readHTTPLines(p []byte) (int, error) {
	o := c.offer
	for o.off == len(o.line) {
		line, err := c.br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return 0, err
		}
		start := !o.midLine
		o.midLine = err == bufio.ErrBufferFull
		o.line, o.off = append(o.line[:0], line...), 0
		text := strings.TrimRight(string(line), "\r\n")
		switch {
		case !start:
		case !c.statusDone:
			c.statusDone = true
			c.status = append(c.status[:0], text[:min(len(text), 64)]...)
		case text == "" && !o.midLine:
			o.done = true
			d, ok, err := CheckDeflateResponse(o.values)
			if err != nil {
				return 0, errors.New("websocket: " + err.Error())
			}
			if ok {
				c.EnableDeflate(d)
			}
		default:
			name, value, found := strings.Cut(text, ":")
			if found && strings.EqualFold(strings.TrimSpace(name), ExtensionHeader) && !o.midLine {
				o.values = append(o.values, strings.TrimSpace(value))
				o.line = o.line[:0] // kept from x/net
			}
		}
	}
	n := copy(p, o.line[o.off:])
	o.off += n
	if o.done && o.off == len(o.line) {
		c.httpRead, c.offer = false, nil
	}
	return n, nil
}

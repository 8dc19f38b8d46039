package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"wsecho/internal/wsframe"
)

// compressed is a Conn's permessage-deflate state: what the echoes are
// read into and inflated with, and the payload bytes on the wire.
type compressed struct {
	in              wsframe.Inflater
	payload         []byte // the echo's compressed payload
	msgs            int64
	wireOut, wireIn int64 // payload bytes on the wire, all messages
	frameOut        int64 // payload bytes of the message's frame
}

// DialCompressed is DialFrom with permessage-deflate offered as Chrome
// offers it; the server must accept it. The message is size bytes of
// JSON-like text (the same bytes in a binary message with binary),
// compressed once, sent with RSV1 on every round trip; each echo is
// inflated (compressed or not) and compared.
func DialCompressed(ctx context.Context, laddr net.IP, rawURL string, size int, binary bool) (*Conn, error) {
	return dial(ctx, laddr, rawURL, size, binary, true)
}

// compress turns c's message into JSON-like text, compressed with the
// masking key of h.
func (c *Conn) compress(h wsframe.Header) {
	c.want = JSONText(len(c.want))
	p := wsframe.NewCompressor(false, wsframe.MaxWindowBits).Compress(nil, c.want)
	h.Rsv = 0x40 // RSV1: compressed (RFC 7692, Section 6)
	c.frame = wsframe.AppendFrame(nil, h, p)
	c.z = &compressed{frameOut: int64(len(p))}
}

// accepted checks the server's answer to the offer.
func (z *compressed) accepted(values []string) error {
	d, ok, err := wsframe.CheckDeflateResponse(values)
	switch {
	case err != nil:
		return fmt.Errorf("bench: handshake: %w", err)
	case !ok:
		return errors.New("bench: the server declined permessage-deflate")
	}
	// The echo is read with a fresh window unless the server keeps its
	// context; the message is always sent compressed on its own.
	z.in.Takeover = !d.ServerNoContextTakeover
	return nil
}

// readCompressed reads the echo of the compressed message: frames to the
// end of the message, then inflates it (when it came with RSV1) and
// compares it with the message.
func (c *Conn) readCompressed() error {
	z := c.z
	z.payload = z.payload[:0]
	rsv1 := false
	for first := true; ; {
		h, err := c.dataHeader()
		if err != nil {
			return err
		}
		switch {
		case first && h.Opcode != c.op, !first && h.Opcode != wsframe.OpContinuation:
			return errMismatch
		case int64(len(z.payload))+h.Length > int64(2*len(c.want)+64):
			return errMismatch
		}
		if first {
			rsv1, first = h.Rsv&0x40 != 0, false
		}
		start := len(z.payload)
		z.payload = append(z.payload, make([]byte, h.Length)...)
		if _, err := io.ReadFull(c.br, z.payload[start:]); err != nil {
			return err
		}
		if h.Fin {
			break
		}
	}
	z.msgs++
	z.wireOut += z.frameOut
	z.wireIn += int64(len(z.payload))
	got := z.payload
	if rsv1 {
		z.in.Reset(bytes.NewReader(z.payload), int64(len(c.want)))
		n, err := io.ReadFull(&z.in, c.buf)
		if err != nil {
			return fmt.Errorf("%w: %v", errMismatch, err)
		}
		var one [1]byte
		if m, err := z.in.Read(one[:]); m != 0 || err != io.EOF {
			return errMismatch
		}
		got = c.buf[:n]
	}
	if !bytes.Equal(got, c.want) {
		return errMismatch
	}
	return nil
}

// WireBytes returns the average payload bytes on the wire of the
// compressed message and of its echoes so far; zero without compression.
func (c *Conn) WireBytes() (out, in float64) {
	if c.z == nil || c.z.msgs == 0 {
		return 0, 0
	}
	return float64(c.z.wireOut) / float64(c.z.msgs), float64(c.z.wireIn) / float64(c.z.msgs)
}

// JSONText returns n bytes of JSON-like text: price ticks that differ in
// their numbers, the classic push payload. The same n gives the same text.
func JSONText(n int) []byte {
	syms := []string{"BTC-USD", "ETH-USD", "SOL-USD", "EUR-USD", "AAPL", "MSFT"}
	var b []byte
	x := uint32(2463534242)
	next := func() uint32 { // xorshift: deterministic, no dependency
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		return x
	}
	for seq := 0; len(b) < n; seq++ {
		b = fmt.Appendf(b, `{"type":"tick","symbol":%q,"price":%d.%02d,"size":%d.%04d,"side":%q,"seq":%d}`+"\n",
			syms[next()%6], 100+next()%50000, next()%100, next()%10, next()%10000, []string{"buy", "sell"}[next()%2], 1000000+seq)
	}
	return b[:n]
}

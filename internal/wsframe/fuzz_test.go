package wsframe

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzMaxMessage is small so that 1009 is reachable with short inputs, yet
// above 125 so that the 16-bit length form can carry an accepted message.
const fuzzMaxMessage = 300

// handshake101 is the handshake response a Client Conn passes through before
// the fuzzed frames.
const handshake101 = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"

// FuzzRead feeds arbitrary bytes from a fake peer to a Conn, reads it the way
// x/net does, and checks the result against refRead, a plain reference
// reader of RFC 6455: the messages handed out (each one FIN frame, text valid
// UTF-8, no larger than MaxMessage), the frames the Conn wrote back (pongs,
// the echoed or failing Close, each in one Write) and how reading ended
// (io.EOF, io.ErrUnexpectedEOF or an *Error with its code). chunk bounds the
// bytes one read from the peer returns (0: no bound); client selects the
// Client role, where frames must be unmasked.
func FuzzRead(f *testing.F) {
	for _, s := range rfcVectors() {
		f.Add(s.frames, byte(0), s.client)
		f.Add(s.frames, byte(1), s.client)
		f.Add(s.frames, byte(3), s.client)
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk byte, client bool) {
		checkRead(t, data, int(chunk), client)
	})
}

// checkRead is the body of FuzzRead.
func checkRead(t *testing.T, data []byte, chunk int, client bool) {
	role, in, bufSize := Server, data, 16 // the server reads x/net through a 16-byte bufio.Reader
	if client {
		role, in, bufSize = Client, append([]byte(handshake101), data...), 4096 // x/net's client: 4 KiB
	}
	fc := &fakeConn{in: in, chunk: chunk}
	c := NewConn(fc, nil, role, Options{MaxMessage: fuzzMaxMessage})
	br := bufio.NewReaderSize(c, bufSize)
	if client {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("handshake response: %v", err)
			}
			if line == "\r\n" {
				break
			}
		}
		if n := br.Buffered(); n != 0 {
			t.Fatalf("after the handshake response, %d bytes buffered, want 0", n)
		}
		if got, want := c.HandshakeStatus(), "HTTP/1.1 101 Switching Protocols"; got != want {
			t.Fatalf("HandshakeStatus = %q, want %q", got, want)
		}
	}

	want := refRead(data, role, fuzzMaxMessage)
	var got refResult
	var err error
	for i := 0; ; i++ {
		if i > len(data) {
			t.Fatalf("more messages than input bytes")
		}
		var h Header
		var p []byte
		h, p, err = readFrameXNet(br)
		if err != nil {
			break
		}
		if !h.Fin || (h.Opcode != OpText && h.Opcode != OpBinary) || h.Rsv != 0 {
			t.Fatalf("message %d: header %+v, want one FIN text or binary frame", i, h)
		}
		if h.Masked != (role == Server) || h.Key != [4]byte{} {
			t.Fatalf("message %d: masked=%v key=%x, want masked=%v with a zero key", i, h.Masked, h.Key, role == Server)
		}
		if len(p) > fuzzMaxMessage {
			t.Fatalf("message %d: %d bytes, more than MaxMessage", i, len(p))
		}
		if h.Opcode == OpText && !utf8.Valid(p) {
			t.Fatalf("message %d: text %q is not valid UTF-8", i, p)
		}
		got.msgs = append(got.msgs, refFrame{h.Opcode, p})
	}
	got.end = endClass(err)
	if _, err2 := c.Read(make([]byte, 16)); endClass(err2) != got.end {
		t.Errorf("Read after the end: %v, want the same end as %v", err2, err)
	}

	if !slices.EqualFunc(got.msgs, want.msgs, refFrame.equal) {
		t.Errorf("messages:\n got %v\nwant %v", got.msgs, want.msgs)
	}
	if got.end != want.end {
		t.Errorf("end: got %s (%v), want %s", got.end, err, want.end)
	}
	var pe *Error
	if errors.As(err, &pe) {
		if !ValidCloseCode(pe.Code) {
			t.Errorf("*Error code %d is not a valid close code", pe.Code)
		}
		if f := c.Failed(); f != pe {
			t.Errorf("Failed() = %v, want %v", f, pe)
		}
	}

	// ReadMessage, which the server reads with, must see the same
	// messages and the same end.
	fc2 := &fakeConn{in: in, chunk: chunk}
	c2 := NewConn(fc2, nil, role, Options{MaxMessage: fuzzMaxMessage, Budget: NewBudget(1 << 20)})
	for c2.httpRead {
		if _, err := c2.Read(make([]byte, 64)); err != nil {
			t.Fatalf("handshake response: %v", err)
		}
	}
	var msgs []refFrame
	var err2 error
	for {
		var op byte
		var p []byte
		op, p, err2 = c2.ReadMessage()
		if err2 != nil {
			break
		}
		msgs = append(msgs, refFrame{op, bytes.Clone(p)})
	}
	if !slices.EqualFunc(msgs, want.msgs, refFrame.equal) {
		t.Errorf("ReadMessage messages:\n got %v\nwant %v", msgs, want.msgs)
	}
	if endClass(err2) != want.end {
		t.Errorf("ReadMessage end: got %s (%v), want %s", endClass(err2), err2, want.end)
	}
	if used := c2.opts.Budget.Stats().Used; used != 0 {
		t.Errorf("after the end, %d bytes of the budget held, want 0", used)
	}

	// What the Conn wrote: one whole frame per Write, from the right role.
	fc.mu.Lock()
	writes := fc.writes
	fc.mu.Unlock()
	for i, w := range writes {
		h, n, err := ParseHeader(w)
		if err != nil || n == 0 || int64(len(w)-n) != h.Length {
			t.Fatalf("write %d (% x) is not one whole frame", i, w)
		}
		if !h.Fin || h.Rsv != 0 || h.Masked != (role == Client) {
			t.Fatalf("write %d: header %+v", i, h)
		}
		p := bytes.Clone(w[n:])
		if h.Masked {
			Mask(h.Key, 0, p)
		}
		if h.Opcode == OpClose && len(p) > 2 {
			if !utf8.Valid(p[2:]) {
				t.Errorf("write %d: close reason %q is not valid UTF-8", i, p[2:])
			}
			p = p[:2] // the reason is free text
		}
		got.out = append(got.out, refFrame{h.Opcode, p})
	}
	if !slices.EqualFunc(got.out, want.out, refFrame.equal) {
		t.Errorf("frames written:\n got %v\nwant %v", got.out, want.out)
	}
}

// readFrameXNet reads one frame from br the way x/net's hybi reader and
// Codec.Receive do: the header byte by byte from br, then the payload with
// io.ReadAll over an io.LimitReader. A short payload with no error is
// reported as io.ErrUnexpectedEOF.
func readFrameXNet(br *bufio.Reader) (Header, []byte, error) {
	var hdr [MaxHeaderLen]byte
	for i := 0; i < 2; i++ {
		b, err := br.ReadByte()
		if err != nil {
			return Header{}, nil, err
		}
		hdr[i] = b
	}
	n := HeaderLen(hdr[1])
	for i := 2; i < n; i++ {
		b, err := br.ReadByte()
		if err != nil {
			return Header{}, nil, err
		}
		hdr[i] = b
	}
	h, _, err := ParseHeader(hdr[:n])
	if err != nil {
		return h, nil, err
	}
	p, err := io.ReadAll(io.LimitReader(br, h.Length))
	if err != nil {
		return h, p, err
	}
	if int64(len(p)) != h.Length {
		return h, p, io.ErrUnexpectedEOF
	}
	if h.Masked {
		Mask(h.Key, 0, p)
	}
	return h, p, nil
}

// endClass names how reading ended: "eof", "unexpected_eof" or "close=CODE".
func endClass(err error) string {
	var pe *Error
	switch {
	case errors.As(err, &pe):
		return fmt.Sprintf("close=%d", pe.Code)
	case err == io.EOF:
		return "eof"
	case err == io.ErrUnexpectedEOF:
		return "unexpected_eof"
	}
	return fmt.Sprintf("other(%v)", err)
}

// refFrame is a message read or a frame written, for comparison.
type refFrame struct {
	op      byte
	payload []byte
}

func (a refFrame) equal(b refFrame) bool { return a.op == b.op && bytes.Equal(a.payload, b.payload) }

func (a refFrame) String() string {
	if len(a.payload) > 32 {
		return fmt.Sprintf("{op=%d %d bytes}", a.op, len(a.payload))
	}
	return fmt.Sprintf("{op=%d %q}", a.op, a.payload)
}

// refResult is what refRead expects of a Conn.
type refResult struct {
	msgs []refFrame // messages handed out, payload unmasked
	out  []refFrame // frames written back; a Close payload is cut to its code
	end  string     // see endClass
}

// refRead is a reference reader: it reads the whole of in at once, with none
// of Conn's streaming, and says what a Conn of role must hand out, write and
// end with. It follows RFC 6455 directly. Two choices are the Conn's own: the
// input ending at or inside a frame header is "eof" (as x/net reports a peer
// that hung up), inside a payload "unexpected_eof"; and invalid UTF-8 fails
// the connection as soon as a byte arrives that no valid text can continue
// (Section 8.1), before a short frame is noticed.
func refRead(in []byte, role Role, maxMessage int) (r refResult) {
	fail := func(code int) refResult {
		r.out = append(r.out, refFrame{OpClose, binary.BigEndian.AppendUint16(nil, uint16(code))})
		r.end = fmt.Sprintf("close=%d", code)
		return r
	}
	var (
		inMsg bool
		op    byte
		msg   []byte
	)
	for {
		if len(in) < 2 {
			r.end = "eof"
			return r
		}
		b0, b1 := in[0], in[1]
		fin, rsv, opc := b0&0x80 != 0, b0&0x70, b0&0x0f
		masked, l7 := b1&0x80 != 0, b1&0x7f
		hl := 2
		switch l7 {
		case 126:
			hl += 2
		case 127:
			hl += 8
		}
		if masked {
			hl += 4
		}
		// The rules the first two bytes can break fail at once, before the
		// rest of the header is in.
		control := opc >= 0x8
		switch {
		case rsv != 0, // Section 5.2
			opc >= 0x3 && opc <= 0x7, opc >= 0xb, // Section 5.2
			masked != (role == Server),                  // Section 5.1
			control && !fin,                             // Section 5.5
			control && l7 > 125,                         // Section 5.5
			opc == OpContinuation && !inMsg,             // Section 5.4
			(opc == OpText || opc == OpBinary) && inMsg: // Section 5.4
			return fail(CloseProtocolError)
		}
		if len(in) < hl {
			r.end = "eof"
			return r
		}
		length := uint64(l7)
		switch l7 {
		case 126:
			length = uint64(binary.BigEndian.Uint16(in[2:]))
		case 127:
			length = binary.BigEndian.Uint64(in[2:])
		}
		switch {
		case length >= 1<<63: // Section 5.2
			return fail(CloseProtocolError)
		case !control && length > uint64(maxMessage-len(msg)):
			return fail(CloseMessageTooBig)
		}
		var key [4]byte
		if masked {
			copy(key[:], in[hl-4:hl])
		}
		in = in[hl:]
		avail := int(min(length, uint64(len(in))))
		payload := bytes.Clone(in[:avail])
		in = in[avail:]
		if masked {
			for i := range payload {
				payload[i] ^= key[i%4]
			}
		}
		if !control {
			if opc != OpContinuation {
				op, msg = opc, nil
			}
			msg = append(msg, payload...)
			if op == OpText && !validUTF8Prefix(msg) {
				return fail(CloseInvalidPayload)
			}
		}
		if uint64(avail) < length {
			r.end = "unexpected_eof"
			return r
		}
		switch opc {
		case OpPing:
			r.out = append(r.out, refFrame{OpPong, payload})
		case OpPong:
		case OpClose:
			switch {
			case len(payload) == 1:
				return fail(CloseProtocolError)
			case len(payload) >= 2:
				code := int(binary.BigEndian.Uint16(payload))
				if code < 1000 || code >= 5000 || (code >= 1004 && code <= 1006) || (code >= 1015 && code < 3000) {
					return fail(CloseProtocolError)
				}
				if !utf8.Valid(payload[2:]) {
					return fail(CloseInvalidPayload)
				}
				payload = payload[:2]
			}
			r.out = append(r.out, refFrame{OpClose, payload})
			r.end = "eof"
			return r
		default:
			inMsg = !fin
			if fin {
				if op == OpText && !utf8.Valid(msg) {
					return fail(CloseInvalidPayload)
				}
				r.msgs = append(r.msgs, refFrame{op, msg})
				msg = nil
			}
		}
	}
}

// properPrefixes holds every proper prefix of the UTF-8 encoding of every
// code point.
var properPrefixes = sync.OnceValue(func() map[string]bool {
	m := make(map[string]bool)
	var buf [utf8.UTFMax]byte
	for r := rune(0x80); r <= utf8.MaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		n := utf8.EncodeRune(buf[:], r)
		for k := 1; k < n; k++ {
			m[string(buf[:k])] = true
		}
	}
	return m
})

// validUTF8Prefix reports whether some valid UTF-8 text begins with b.
func validUTF8Prefix(b []byte) bool {
	for t := 0; t < utf8.UTFMax && t <= len(b); t++ {
		tail := b[len(b)-t:]
		if utf8.Valid(b[:len(b)-t]) && (t == 0 || properPrefixes()[string(tail)]) {
			return true
		}
	}
	return false
}

// fakeConn is an in-memory peer: Read returns in (at most chunk bytes at a
// time when chunk > 0) and then io.EOF; every Write is recorded.
type fakeConn struct {
	mu     sync.Mutex
	in     []byte
	chunk  int
	writes [][]byte
}

func (f *fakeConn) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.in) == 0 {
		return 0, io.EOF
	}
	if f.chunk > 0 && len(p) > f.chunk {
		p = p[:f.chunk]
	}
	n := copy(p, f.in)
	f.in = f.in[n:]
	return n, nil
}

func (f *fakeConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, bytes.Clone(p))
	return len(p), nil
}

// written returns everything written so far, joined.
func (f *fakeConn) written() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Join(f.writes, nil)
}

func (f *fakeConn) Close() error                       { return nil }
func (f *fakeConn) LocalAddr() net.Addr                { return fakeAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr               { return fakeAddr{} }
func (f *fakeConn) SetDeadline(t time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(t time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(t time.Time) error { return nil }

type fakeAddr struct{}

func (fakeAddr) Network() string { return "fake" }
func (fakeAddr) String() string  { return "fake" }

// rfcVector is a sequence of frames a peer sends, for seeds and tests.
type rfcVector struct {
	name   string
	client bool // the frames come from a server: unmasked
	frames []byte
}

// rfcVectors returns the RFC 6455 Section 5.7 examples, masked for the
// Server role and unmasked for the Client role, and a few neighbours.
func rfcVectors() []rfcVector {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	hello := []byte("Hello")
	frame := func(fin bool, op byte, masked bool, p []byte) []byte {
		return AppendFrame(nil, Header{Fin: fin, Opcode: op, Masked: masked, Key: key}, p)
	}
	bin256 := bytes.Repeat([]byte{0xa5}, 256)
	closeBye := append(ClosePayload(CloseNormal, "bye"), nil...)
	var vs []rfcVector
	for _, client := range []bool{false, true} {
		m := !client
		vs = append(vs,
			rfcVector{"hello", client, frame(true, OpText, m, hello)},
			rfcVector{"fragmented_hello", client, slices.Concat(frame(false, OpText, m, hello[:3]), frame(true, OpContinuation, m, hello[3:]))},
			rfcVector{"ping_hello", client, frame(true, OpPing, m, hello)},
			rfcVector{"pong_hello", client, frame(true, OpPong, m, hello)},
			rfcVector{"binary_256", client, frame(true, OpBinary, m, bin256)},
			rfcVector{"ping_inside_fragments", client, slices.Concat(frame(false, OpText, m, hello[:3]), frame(true, OpPing, m, nil), frame(true, OpContinuation, m, hello[3:]))},
			rfcVector{"hello_then_close", client, slices.Concat(frame(true, OpText, m, hello), frame(true, OpClose, m, closeBye))},
			rfcVector{"invalid_utf8", client, frame(true, OpText, m, []byte{'a', 0xc3, 0x28})},
			rfcVector{"close_1005", client, frame(true, OpClose, m, []byte{0x03, 0xed})},
		)
	}
	// The Section 5.7 examples byte for byte.
	vs = append(vs,
		rfcVector{"rfc_unmasked_hello", true, []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		rfcVector{"rfc_masked_hello", false, []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
		rfcVector{"rfc_fragmented_hello", true, []byte{0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}},
		rfcVector{"rfc_ping", true, []byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		rfcVector{"rfc_masked_pong", false, []byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
		rfcVector{"rfc_binary_256_header", true, []byte{0x82, 0x7e, 0x01, 0x00}},
		rfcVector{"rfc_binary_64k_header", true, []byte{0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}},
	)
	return vs
}

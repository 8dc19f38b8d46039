package wsframe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// cframe is a masked client frame with RSV1 set when rsv1 is true.
func cframe(fin, compressed bool, op byte, payload []byte) []byte {
	h := Header{Fin: fin, Opcode: op, Masked: true, Key: testKey}
	if compressed {
		h.Rsv = rsv1
	}
	return AppendFrame(nil, h, payload)
}

// TestDeflateFraming is every framing case of RFC 7692 on a server Conn:
// what ReadMessage returns for frames from the peer, with permessage-deflate
// negotiated or not.
func TestDeflateFraming(t *testing.T) {
	text := jsonTicks(3000, 7)
	comp := NewCompressor(false, 15).Compress(nil, text)
	hello := []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00} // RFC 7692 §7.2.3.1
	badUTF8 := NewCompressor(false, 15).Compress(nil, []byte("ok \xff\xfe"))
	ping := cframe(true, false, OpPing, []byte("p"))
	tests := []struct {
		name       string
		negotiated bool
		max        int64
		send       [][]byte
		want       []byte // the message, when code is 0
		wantOp     byte
		code       int
	}{
		{name: "hello", negotiated: true, send: [][]byte{cframe(true, true, OpText, hello)}, want: []byte("Hello"), wantOp: OpText},
		{name: "uncompressed_too", negotiated: true, send: [][]byte{cframe(true, false, OpText, []byte("plain"))}, want: []byte("plain"), wantOp: OpText},
		{name: "binary", negotiated: true, send: [][]byte{cframe(true, true, OpBinary, comp)}, want: text, wantOp: OpBinary},
		{name: "fragmented", negotiated: true, send: [][]byte{
			cframe(false, true, OpText, comp[:10]), ping, cframe(false, false, OpContinuation, comp[10:500]), cframe(true, false, OpContinuation, comp[500:])},
			want: text, wantOp: OpText},
		{name: "empty_compressed", negotiated: true, send: [][]byte{cframe(true, true, OpBinary, []byte{0x00})}, want: []byte{}, wantOp: OpBinary},
		{name: "rsv1_not_negotiated", send: [][]byte{cframe(true, true, OpText, hello)}, code: CloseProtocolError},
		{name: "rsv1_continuation", negotiated: true, send: [][]byte{cframe(false, true, OpText, comp[:10]), cframe(true, true, OpContinuation, comp[10:])}, code: CloseProtocolError},
		{name: "rsv1_ping", negotiated: true, send: [][]byte{AppendFrame(nil, Header{Fin: true, Rsv: rsv1, Opcode: OpPing, Masked: true, Key: testKey}, nil)}, code: CloseProtocolError},
		{name: "rsv2", negotiated: true, send: [][]byte{AppendFrame(nil, Header{Fin: true, Rsv: 0x20, Opcode: OpText, Masked: true, Key: testKey}, []byte("x"))}, code: CloseProtocolError},
		{name: "rsv1_rsv3", negotiated: true, send: [][]byte{AppendFrame(nil, Header{Fin: true, Rsv: 0x50, Opcode: OpText, Masked: true, Key: testKey}, hello)}, code: CloseProtocolError},
		{name: "does_not_inflate", negotiated: true, send: [][]byte{cframe(true, true, OpBinary, []byte{0xff, 0xff, 0xff})}, code: CloseInvalidPayload},
		{name: "invalid_utf8_inflated", negotiated: true, send: [][]byte{cframe(true, true, OpText, badUTF8)}, code: CloseInvalidPayload},
		{name: "inflates_past_max", negotiated: true, max: 2999, send: [][]byte{cframe(true, true, OpText, comp)}, code: CloseMessageTooBig},
		{name: "inflates_to_max", negotiated: true, max: 3000, send: [][]byte{cframe(true, true, OpText, comp)}, want: text, wantOp: OpText},
		{name: "bomb", negotiated: true, max: 1 << 20, send: [][]byte{cframe(true, true, OpBinary, bomb64())}, code: CloseMessageTooBig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			budget := NewBudget(1 << 30)
			c, peer, pr := newServerConn(t, Options{MaxMessage: tc.max, Budget: budget})
			if tc.negotiated {
				c.EnableDeflate(Deflate{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15})
			}
			c.Start()
			go func() {
				for _, f := range tc.send {
					if _, err := peer.Write(f); err != nil {
						return
					}
				}
			}()
			op, p, err := c.ReadMessage()
			if tc.code != 0 {
				var e *Error
				if !errors.As(err, &e) || e.Code != tc.code {
					t.Fatalf("ReadMessage: %v, want close %d", err, tc.code)
				}
				for {
					h, payload := readWire(t, pr)
					if h.Opcode == OpClose {
						if got := int(payload[0])<<8 | int(payload[1]); got != tc.code {
							t.Errorf("Close frame with code %d, want %d", got, tc.code)
						}
						break
					}
				}
				peer.Close() // so that Close does not linger
				c.Close()
				if st := budget.Stats(); st.Used != 0 || st.Peak > 4<<20 {
					t.Errorf("budget after failing: %d bytes held, peak %d", st.Used, st.Peak)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadMessage: %v", err)
			}
			if op != tc.wantOp || !bytes.Equal(p, tc.want) {
				t.Fatalf("got op %d, %d bytes %.20q; want op %d, %d bytes", op, len(p), p, tc.wantOp, len(tc.want))
			}
			c.Release()
			if st := budget.Stats(); st.Used != 0 {
				t.Errorf("after Release, %d bytes of budget held", st.Used)
			}
			c.Close()
		})
	}
}

// TestDeflateWrite checks the write side: x/net's data frames of
// MinCompress bytes or more go out compressed with RSV1 and inflate back to
// the same bytes, smaller ones and control frames as they are; on a client
// the compressed frame is masked afresh.
func TestDeflateWrite(t *testing.T) {
	for _, role := range []Role{Server, Client} {
		for _, size := range []int{MinCompress - 1, MinCompress, 5000, 70000} {
			t.Run(fmt.Sprintf("role=%d/size=%d", role, size), func(t *testing.T) {
				fc := &fakeConn{}
				c := NewConn(fc, nil, role, Options{})
				c.httpRead = false
				c.EnableDeflate(Deflate{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15})
				c.Start()
				msg := jsonTicks(size, 3)
				f := AppendFrame(nil, Header{Fin: true, Opcode: OpText, Masked: role == Client, Key: testKey}, msg)
				// In two writes, as x/net's buffered writer does for a large frame.
				if _, err := c.Write(f[:7]); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Write(f[7:]); err != nil {
					t.Fatal(err)
				}
				out := fc.written()
				h, hl, err := ParseHeader(out)
				if err != nil || hl == 0 || int64(len(out)-hl) != h.Length {
					t.Fatalf("written: not one frame (%v, %d bytes)", err, len(out))
				}
				payload := out[hl:]
				if h.Masked != (role == Client) {
					t.Fatalf("masked %v for role %d", h.Masked, role)
				}
				if h.Masked {
					if h.Rsv != 0 && h.Key == testKey {
						t.Errorf("compressed frame reuses x/net's masking key")
					}
					Mask(h.Key, 0, payload)
				}
				if size < MinCompress {
					if h.Rsv != 0 || !bytes.Equal(payload, msg) {
						t.Fatalf("small message: rsv %#x, %d bytes; want it as it is", h.Rsv, len(payload))
					}
					return
				}
				if h.Rsv != rsv1 || int(h.Length) >= size {
					t.Fatalf("rsv %#x, %d bytes for %d: want compressed", h.Rsv, h.Length, size)
				}
				var z Inflater
				z.Reset(bytes.NewReader(payload), int64(size))
				got, err := io.ReadAll(&z)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("inflated %d bytes, %v; want %d", len(got), err, size)
				}
				st := c.CompressionStats()
				if st.MessagesOut != 1 || st.RawOut != int64(size) || st.WireOut != h.Length {
					t.Errorf("stats %+v", st)
				}
			})
		}
	}
}

// TestOfferDeflateResponse checks how a Client Conn that offered
// permessage-deflate passes the handshake response through: the
// Sec-WebSocket-Extensions fields never reach the reader (x/net fails on
// any), an acceptable answer turns compression on, and an answer RFC 7692
// tells a client to fail on ends the handshake with an error.
func TestOfferDeflateResponse(t *testing.T) {
	const head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	tests := []struct {
		name    string
		fields  string // extension fields of the response
		want    string // the Deflate in force, "" for none
		wantErr bool
	}{
		{name: "declined", fields: ""},
		{name: "plain", fields: "Sec-WebSocket-Extensions: permessage-deflate\r\n", want: "permessage-deflate"},
		{name: "params", fields: "sec-websocket-extensions:permessage-deflate; server_no_context_takeover; client_max_window_bits=9\r\n",
			want: "permessage-deflate; server_no_context_takeover; client_max_window_bits=9"},
		{name: "two_fields", fields: "Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Extensions: permessage-deflate\r\n", wantErr: true},
		{name: "unknown_param", fields: "Sec-WebSocket-Extensions: permessage-deflate; foo\r\n", wantErr: true},
		{name: "not_offered", fields: "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := head + tc.fields + "X-After: 1\r\n\r\n"
			frame := AppendFrame(nil, Header{Fin: true, Opcode: OpText}, []byte("hi"))
			fc := &fakeConn{in: append([]byte(resp), frame...), chunk: 7}
			c := NewConn(fc, nil, Client, Options{OfferDeflate: true})
			var passed []byte
			buf := make([]byte, 5)
			var err error
			for c.httpRead && err == nil {
				var n int
				n, err = c.Read(buf)
				passed = append(passed, buf[:n]...)
			}
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error for %q", tc.fields)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if want := head + "X-After: 1\r\n\r\n"; string(passed) != want {
				t.Fatalf("passed through %q, want %q", passed, want)
			}
			d, ok := c.Deflate()
			if got := map[bool]string{true: d.String()}[ok]; got != tc.want {
				t.Fatalf("in force: %q, want %q", got, tc.want)
			}
			c.Start()
			op, p, err := c.ReadMessage()
			if err != nil || op != OpText || string(p) != "hi" {
				t.Fatalf("first message after the response: %d %q %v", op, p, err)
			}
		})
	}
}

// TestDeflateWriteTakeover checks the write side with context takeover:
// every message of MinCompress bytes or more goes out compressed, even one
// that does not shrink (it is in the compressor's window, so the peer's
// window must get it too), and a peer keeping its window reads them all.
func TestDeflateWriteTakeover(t *testing.T) {
	fc := &fakeConn{}
	c := NewConn(fc, nil, Server, Options{})
	c.EnableDeflate(Deflate{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15})
	c.Start()
	noise := make([]byte, 4096-MaxHeaderLen) // fills a pooled buffer: compressed, it outgrows it
	rand.NewChaCha8([32]byte{1}).Read(noise)
	msgs := [][]byte{jsonTicks(2000, 1), noise, jsonTicks(2000, 1), []byte("short"), noise[:3000]}
	for _, m := range msgs {
		if _, err := c.Write(AppendFrame(nil, Header{Fin: true, Opcode: OpBinary}, m)); err != nil {
			t.Fatal(err)
		}
	}
	out := fc.written()
	z := &Inflater{Takeover: true}
	for i, m := range msgs {
		h, hl, err := ParseHeader(out)
		if err != nil || hl == 0 {
			t.Fatalf("frame %d: %v", i, err)
		}
		payload := out[hl : hl+int(h.Length)]
		out = out[hl+int(h.Length):]
		if want := len(m) >= MinCompress; (h.Rsv == rsv1) != want {
			t.Fatalf("frame %d: rsv %#x, want compressed %v", i, h.Rsv, want)
		}
		got := payload
		if h.Rsv == rsv1 {
			z.Reset(bytes.NewReader(payload), 1<<20)
			if got, err = io.ReadAll(z); err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
		}
		if !bytes.Equal(got, m) {
			t.Fatalf("frame %d: %d bytes, want %d", i, len(got), len(m))
		}
	}
}

package client_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"wsecho/client"
	"wsecho/internal/wsframe"
)

// TestConformance sends the client frames that break RFC 6455 from a raw
// server. The client must fail the connection with the right close code
// (read here, on the server side), Run must return the violation, and
// nothing of the bad message may be printed. Each row first sends a good
// message, which must be printed.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		frames [][]byte
		code   int
	}{
		{name: "rsv1", code: wsframe.CloseProtocolError, // §5.2: no extension negotiated
			frames: [][]byte{{0xc1, 0x03, 'b', 'a', 'd'}}},
		{name: "rsv3_binary", code: wsframe.CloseProtocolError, // §5.2
			frames: [][]byte{{0x92, 0x03, 'b', 'a', 'd'}}},
		{name: "reserved_opcode_3", code: wsframe.CloseProtocolError, // §5.2
			frames: [][]byte{{0x83, 0x03, 'b', 'a', 'd'}}},
		{name: "reserved_opcode_b", code: wsframe.CloseProtocolError, // §5.2
			frames: [][]byte{{0x8b, 0x03, 'b', 'a', 'd'}}},
		{name: "masked_server_frame", code: wsframe.CloseProtocolError, // §5.1: a server must not mask
			frames: [][]byte{{0x81, 0x83, 0x37, 0xfa, 0x21, 0x3d, 'b' ^ 0x37, 'a' ^ 0xfa, 'd' ^ 0x21}}},
		{name: "invalid_utf8", code: wsframe.CloseInvalidPayload, // §8.1
			frames: [][]byte{{0x81, 0x05, 'b', 'a', 'd', 0xc3, 0x28}}},
		{name: "invalid_utf8_fragmented", code: wsframe.CloseInvalidPayload, // §8.1, across fragments
			frames: [][]byte{{0x01, 0x04, 'b', 'a', 'd', 0xed}, {0x80, 0x02, 0xa0, 0x80}}}, // a surrogate
		{name: "truncated_utf8", code: wsframe.CloseInvalidPayload, // §8.1: ends inside a character
			frames: [][]byte{{0x81, 0x04, 'b', 'a', 'd', 0xe2}}},
		{name: "fragmented_ping", code: wsframe.CloseProtocolError, // §5.5: control frames are not fragmented
			frames: [][]byte{{0x09, 0x03, 'b', 'a', 'd'}}},
		{name: "long_ping", code: wsframe.CloseProtocolError, // §5.5: at most 125 bytes
			frames: [][]byte{append([]byte{0x89, 0x7e, 0x00, 0x7e}, make([]byte, 126)...)}},
		{name: "close_code_1005", code: wsframe.CloseProtocolError, // §7.4.1: never on the wire
			frames: [][]byte{{0x88, 0x02, 0x03, 0xed}}},
		{name: "close_code_999", code: wsframe.CloseProtocolError, // §7.4.2
			frames: [][]byte{{0x88, 0x02, 0x03, 0xe7}}},
		{name: "close_1_byte", code: wsframe.CloseProtocolError, // §5.5.1
			frames: [][]byte{{0x88, 0x01, 0x03}}},
		{name: "close_reason_utf8", code: wsframe.CloseInvalidPayload, // §5.5.1
			frames: [][]byte{{0x88, 0x04, 0x03, 0xe8, 0xc3, 0x28}}},
		{name: "continuation_first", code: wsframe.CloseProtocolError, // §5.4
			frames: [][]byte{{0x80, 0x03, 'b', 'a', 'd'}}},
		{name: "text_inside_fragmented", code: wsframe.CloseProtocolError, // §5.4
			frames: [][]byte{{0x01, 0x02, 'b', 'a'}, {0x81, 0x01, 'd'}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan int, 1)
			rs := startRaw(t, func(i int, rc *rawConn) {
				rc.writeFrame(wsframe.OpText, []byte("good"))
				for _, f := range tc.frames {
					if err := rc.write(f); err != nil {
						t.Errorf("raw server: write: %v", err)
					}
				}
				code, _, _, err := rc.readClose()
				if err != nil {
					t.Errorf("raw server: no Close from the client: %v", err)
				}
				got <- code
			})
			out := newOutput()
			err := run(t, rs.url, client.Options{Interval: time.Hour}, nil, out)
			if code := <-got; code != tc.code {
				t.Errorf("client sent close %d, want %d", code, tc.code)
			}
			var ce *client.CloseError
			var pe *wsframe.Error
			if !errors.As(err, &ce) || !errors.As(err, &pe) || ce.Code != tc.code || pe.Code != tc.code {
				t.Errorf("Run: %v, want a *CloseError with the violation, code %d", err, tc.code)
			}
			if got := out.String(); got != "good\n" {
				t.Errorf("output %q, want only %q", got, "good\n")
			}
		})
	}
}

// TestFragmentedMessage checks that a fragmented message, with a ping
// between its fragments, prints once and whole, and that the ping is
// answered at once with its payload (RFC 6455, Sections 5.4 and 5.5.2).
func TestFragmentedMessage(t *testing.T) {
	t.Parallel()
	pong := make(chan string, 1)
	rs := startRaw(t, func(i int, rc *rawConn) {
		rc.write([]byte{0x01, 0x03, 'f', 'r', 'a'}) // text, not FIN
		rc.write([]byte{0x89, 0x02, 'p', '!'})      // ping in between
		rc.write([]byte{0x00, 0x02, 'g', 'm'})      // continuation
		rc.write([]byte{0x80, 0x03, 'e', 'n', 't'}) // last fragment
		rc.write([]byte{0x02, 0x01, 0x01})          // binary, not FIN
		rc.write([]byte{0x80, 0x02, 0x02, 0xff})    // last fragment
		h, p, err := rc.readControl()               // after the first time, sent at once
		if err != nil || h.Opcode != wsframe.OpPong {
			t.Errorf("raw server: want a pong, got opcode %d, %v", h.Opcode, err)
		}
		pong <- string(p)
		rc.writeClose(1000, "")
		rc.readClose()
	})
	out := newOutput()
	if err := run(t, rs.url, client.Options{Interval: time.Hour}, nil, out); err != nil {
		t.Errorf("Run: %v", err)
	}
	if got, want := out.String(), "fragment\n0102ff\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	if p := <-pong; p != "p!" {
		t.Errorf("pong payload %q, want %q", p, "p!")
	}
}

// TestClientFrames checks what the client sends: masked frames (checked by
// readFrame), the message types of -binary and text, and Close last.
func TestClientFrames(t *testing.T) {
	t.Parallel()
	type frame struct {
		op   byte
		data string
	}
	frames := make(chan []frame, 1)
	rs := startRaw(t, func(i int, rc *rawConn) {
		var got []frame
		for {
			h, p, err := rc.readFrame()
			if err != nil {
				t.Errorf("raw server: %v", err)
				break
			}
			if !h.Fin || h.Rsv != 0 {
				t.Errorf("frame fin=%v rsv=%#x, want a final frame with no RSV bits", h.Fin, h.Rsv)
			}
			got = append(got, frame{h.Opcode, string(p)})
			if h.Opcode == wsframe.OpClose {
				rc.writeFrame(wsframe.OpClose, p)
				break
			}
		}
		frames <- got
	})
	if err := run(t, rs.url, client.Options{Lines: true, Binary: true, CloseWait: time.Second}, stringsReader("a\nbc\n"), io.Discard); err != nil {
		t.Errorf("Run: %v", err)
	}
	got := <-frames
	want := []frame{{wsframe.OpBinary, "a"}, {wsframe.OpBinary, "bc"}, {wsframe.OpClose, "\x03\xe8"}}
	if len(got) != len(want) {
		t.Fatalf("frames %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("frame %d: %q, want %q", i, got[i], want[i])
		}
	}
}

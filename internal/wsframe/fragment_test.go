package wsframe

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

func TestFragment(t *testing.T) {
	ping := []byte{0x89, 0x00}
	tests := []struct {
		name    string
		frame   []byte
		size    int
		between []byte
		want    []byte
	}{
		{name: "hello_by_2", // RFC 6455 §5.7: the unmasked "Hello", as "He", "ll", "o"
			frame: []byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}, size: 2,
			want: []byte{0x01, 0x02, 'H', 'e', 0x00, 0x02, 'l', 'l', 0x80, 0x01, 'o'}},
		{name: "hello_by_3_ping_between", // §5.5: control frames may come between fragments
			frame: []byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}, size: 3, between: ping,
			want: []byte{0x01, 0x03, 'H', 'e', 'l', 0x89, 0x00, 0x80, 0x02, 'l', 'o'}},
		{name: "binary_by_1",
			frame: []byte{0x82, 0x02, 0xaa, 0xbb}, size: 1,
			want: []byte{0x02, 0x01, 0xaa, 0x80, 0x01, 0xbb}},
		{name: "rsv1_first_only", // RFC 7692 §6: RSV1 on the first frame of a compressed message
			frame: []byte{0xc1, 0x03, 0xf2, 0x48, 0x01}, size: 2,
			want: []byte{0x41, 0x02, 0xf2, 0x48, 0x80, 0x01, 0x01}},
		{name: "fits",
			frame: []byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}, size: 5,
			want: []byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}},
		{name: "control_unchanged", // §5.5: control frames are never fragmented
			frame: []byte{0x89, 0x05, 'H', 'e', 'l', 'l', 'o'}, size: 1,
			want: []byte{0x89, 0x05, 'H', 'e', 'l', 'l', 'o'}},
		{name: "not_fin_unchanged",
			frame: []byte{0x01, 0x03, 'H', 'e', 'l'}, size: 1,
			want: []byte{0x01, 0x03, 'H', 'e', 'l'}},
		{name: "masked_hello_by_3", // §5.7's masked "Hello"; "lo" masked again from the key's start
			frame: []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, size: 3,
			want: []byte{0x01, 0x83, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d,
				0x80, 0x82, 0x37, 0xfa, 0x21, 0x3d, 'l' ^ 0x37, 'o' ^ 0xfa}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte{0xee}
			got, err := Fragment(prefix, tc.frame, tc.size, tc.between)
			if err != nil {
				t.Fatal(err)
			}
			if want := append([]byte{0xee}, tc.want...); !bytes.Equal(got, want) {
				t.Errorf("got % x\nwant % x", got, want)
			}
		})
	}
}

func TestFragmentCap(t *testing.T) {
	payload := bytes.Repeat([]byte{'a'}, 2*MaxFragments+1)
	frame := AppendFrame(nil, Header{Fin: true, Opcode: OpBinary}, payload)
	out, err := Fragment(nil, frame, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	frames, joined := 0, []byte(nil)
	for len(out) > 0 {
		h, hl, err := ParseHeader(out)
		if err != nil || hl == 0 {
			t.Fatalf("bad frame at %d: %v", frames, err)
		}
		if h.Length > 3 {
			t.Fatalf("fragment %d: %d bytes, want at most 3", frames, h.Length)
		}
		joined = append(joined, out[hl:hl+int(h.Length)]...)
		out = out[hl+int(h.Length):]
		frames++
	}
	if frames > MaxFragments {
		t.Errorf("%d frames, want at most %d", frames, MaxFragments)
	}
	if !bytes.Equal(joined, payload) {
		t.Error("payload changed")
	}
}

func TestFragmentErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		size  int
	}{
		{"short", []byte{0x81, 0x05, 'H'}, 2},
		{"two_frames", []byte{0x81, 0x01, 'H', 0x81, 0x01, 'i'}, 2},
		{"header_only_part", []byte{0x81}, 2},
		{"zero_size", []byte{0x81, 0x01, 'H'}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Fragment(nil, tc.frame, tc.size, nil); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestFragmentWrite checks SetFragmentation on the write path: x/net's data
// frame, written in two parts, goes out in one write as fragments of at most
// the size, with an empty ping between two of them when asked; with
// permessage-deflate the message is compressed first and then split, RSV1
// on the first frame only (RFC 7692, Section 6), and the fragments'
// payloads joined inflate to the message. A client masks every frame.
func TestFragmentWrite(t *testing.T) {
	const size = 100
	msg := jsonTicks(5000, 3)
	for _, role := range []Role{Server, Client} {
		for _, compress := range []bool{false, true} {
			for _, ping := range []bool{false, true} {
				t.Run(fmt.Sprintf("role=%d/compress=%v/ping=%v", role, compress, ping), func(t *testing.T) {
					fc := &fakeConn{}
					c := NewConn(fc, nil, role, Options{})
					c.httpRead = false
					if compress {
						c.EnableDeflate(Deflate{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15})
					}
					c.Start()
					c.SetFragmentation(size, ping)
					f := AppendFrame(nil, Header{Fin: true, Opcode: OpText, Masked: role == Client, Key: testKey}, msg)
					// In two writes, as x/net's buffered writer does for a large frame.
					for _, part := range [][]byte{f[:7], f[7:]} {
						if _, err := c.Write(part); err != nil {
							t.Fatal(err)
						}
					}
					if len(fc.writes) != 1 {
						t.Errorf("%d writes, want the whole message in one", len(fc.writes))
					}
					out := fc.written()
					var joined []byte
					frames, pings := 0, 0
					for len(out) > 0 {
						h, hl, err := ParseHeader(out)
						if err != nil || hl == 0 || int64(len(out)-hl) < h.Length {
							t.Fatalf("frame %d: not whole (%v)", frames+pings, err)
						}
						p := bytes.Clone(out[hl : hl+int(h.Length)])
						out = out[hl+int(h.Length):]
						if h.Masked != (role == Client) {
							t.Fatalf("frame %d: masked %v for role %d", frames+pings, h.Masked, role)
						}
						if h.Masked {
							Mask(h.Key, 0, p)
						}
						if h.Opcode == OpPing {
							if !h.Fin || h.Rsv != 0 || h.Length != 0 || frames == 0 || len(out) == 0 {
								t.Errorf("ping %+v after %d fragments: want an empty ping between two", h, frames)
							}
							pings++
							continue
						}
						wantOp, wantRsv := byte(OpContinuation), byte(0)
						if frames == 0 {
							wantOp = OpText
							if compress {
								wantRsv = rsv1
							}
						}
						if h.Opcode != wantOp || h.Rsv != wantRsv || h.Fin != (len(out) == 0) || h.Length > size {
							t.Errorf("fragment %d: opcode %d rsv %#x fin %v length %d; want opcode %d rsv %#x, fin on the last, at most %d bytes",
								frames, h.Opcode, h.Rsv, h.Fin, h.Length, wantOp, wantRsv, size)
						}
						joined = append(joined, p...)
						frames++
					}
					if wantPings := map[bool]int{false: 0, true: frames - 1}[ping]; frames < 2 || pings != wantPings {
						t.Errorf("%d fragments, %d pings; want 2 or more fragments and %d pings", frames, pings, wantPings)
					}
					got := joined
					if compress {
						var z Inflater
						z.Reset(bytes.NewReader(joined), int64(len(msg)))
						var err error
						if got, err = io.ReadAll(&z); err != nil {
							t.Fatalf("inflate: %v", err)
						}
						if st := c.CompressionStats(); st.MessagesOut != 1 || st.WireOut != int64(len(joined)) || len(joined) >= len(msg) {
							t.Errorf("stats %+v for %d bytes on the wire: want one compressed message", st, len(joined))
						}
					}
					if !bytes.Equal(got, msg) {
						t.Errorf("got %d bytes, want the %d-byte message", len(got), len(msg))
					}
					if len(c.wheld) != 0 {
						t.Errorf("%d buffers held after the write", len(c.wheld))
					}
				})
			}
		}
	}
}

// TestFragmentWriteUnchanged: with SetFragmentation, control frames and a
// message that fits in one fragment go out as x/net wrote them, and size 0
// turns splitting off.
func TestFragmentWriteUnchanged(t *testing.T) {
	fc := &fakeConn{}
	c := NewConn(fc, nil, Server, Options{})
	c.Start()
	c.SetFragmentation(5, true)
	frames := [][]byte{
		{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'},      // fits
		{0x8a, 0x06, 'p', 'o', 'n', 'g', 'e', 'd'}, // a control frame longer than the size
	}
	for _, f := range frames {
		c.Write(f)
	}
	c.SetFragmentation(0, true)
	long := []byte{0x82, 0x07, 1, 2, 3, 4, 5, 6, 7}
	c.Write(long)
	if got, want := fc.written(), bytes.Join(append(frames, long), nil); !bytes.Equal(got, want) {
		t.Errorf("got % x\nwant % x", got, want)
	}
}

package wsframe

import (
	"bytes"
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

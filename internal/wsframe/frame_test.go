package wsframe

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestHeaderRoundTrip(t *testing.T) {
	lengths := []struct {
		n      int64
		extLen int // bytes of extended length (RFC 6455, Section 5.2)
	}{
		{0, 0}, {1, 0}, {125, 0},
		{126, 2}, {127, 2}, {65535, 2},
		{65536, 8}, {1 << 32, 8}, {1<<63 - 1, 8},
	}
	for _, l := range lengths {
		for _, masked := range []bool{false, true} {
			t.Run(fmt.Sprintf("len=%d/masked=%v", l.n, masked), func(t *testing.T) {
				h := Header{Fin: true, Rsv: 0x50, Opcode: OpBinary, Masked: masked, Length: l.n}
				if masked {
					h.Key = [4]byte{1, 2, 3, 4}
				}
				b := AppendHeader([]byte{0xee}, h)[1:] // appends after what is there
				want := 2 + l.extLen
				if masked {
					want += 4
				}
				if len(b) != want || HeaderLen(b[1]) != want {
					t.Fatalf("header % x: %d bytes, HeaderLen %d, want %d", b, len(b), HeaderLen(b[1]), want)
				}
				got, n, err := ParseHeader(append(b, 0xaa, 0xbb)) // payload bytes follow
				if err != nil || n != len(b) || got != h {
					t.Fatalf("ParseHeader(% x) = %+v, %d, %v; want %+v, %d, nil", b, got, n, err, h, len(b))
				}
				for i := range len(b) {
					if _, n, err := ParseHeader(b[:i]); n != 0 || err != nil {
						t.Errorf("ParseHeader of %d of %d bytes: n=%d err=%v, want 0, nil", i, len(b), n, err)
					}
				}
			})
		}
	}
}

func TestHeaderFields(t *testing.T) {
	for b0 := range 256 {
		for _, b1 := range []byte{0x00, 0x05, 0x85} {
			in := []byte{byte(b0), b1, 9, 9, 9, 9, 9}
			h, n, err := ParseHeader(in)
			if err != nil || n != HeaderLen(b1) {
				t.Fatalf("% x: n=%d err=%v", in[:2], n, err)
			}
			if h.Fin != (b0&0x80 != 0) || h.Rsv != byte(b0)&0x70 || h.Opcode != byte(b0)&0x0f || h.Masked != (b1&0x80 != 0) || h.Length != int64(b1&0x7f) {
				t.Fatalf("% x: %+v", in[:2], h)
			}
			if out := AppendHeader(nil, h); !bytes.Equal(out, in[:n]) {
				t.Fatalf("AppendHeader(%+v) = % x, want % x", h, out, in[:n])
			}
		}
	}
}

// TestRFCExamples checks the examples of RFC 6455, Section 5.7, both ways.
func TestRFCExamples(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	bin256 := bytes.Repeat([]byte{0x5a}, 256)
	bin64k := bytes.Repeat([]byte{0xa5}, 65536)
	tests := []struct {
		name    string
		h       Header
		payload []byte
		want    []byte // the frame on the wire
	}{
		{name: "unmasked_hello", // a single-frame unmasked text message
			h:       Header{Fin: true, Opcode: OpText},
			payload: []byte("Hello"),
			want:    []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{name: "masked_hello", // a single-frame masked text message
			h:       Header{Fin: true, Opcode: OpText, Masked: true, Key: key},
			payload: []byte("Hello"),
			want:    []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
		{name: "fragment_hel", // a fragmented unmasked text message: first fragment
			h:       Header{Opcode: OpText},
			payload: []byte("Hel"),
			want:    []byte{0x01, 0x03, 0x48, 0x65, 0x6c}},
		{name: "fragment_lo", // ... and the last
			h:       Header{Fin: true, Opcode: OpContinuation},
			payload: []byte("lo"),
			want:    []byte{0x80, 0x02, 0x6c, 0x6f}},
		{name: "unmasked_ping", // unmasked Ping with body "Hello"
			h:       Header{Fin: true, Opcode: OpPing},
			payload: []byte("Hello"),
			want:    []byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}},
		{name: "masked_pong", // masked Pong with body "Hello", answering it
			h:       Header{Fin: true, Opcode: OpPong, Masked: true, Key: key},
			payload: []byte("Hello"),
			want:    []byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
		{name: "binary_256", // 256 bytes binary message in a single unmasked frame
			h:       Header{Fin: true, Opcode: OpBinary},
			payload: bin256,
			want:    slices.Concat([]byte{0x82, 0x7e, 0x01, 0x00}, bin256)},
		{name: "binary_64k", // 64KiB binary message in a single unmasked frame
			h:       Header{Fin: true, Opcode: OpBinary},
			payload: bin64k,
			want:    slices.Concat([]byte{0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}, bin64k)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := bytes.Clone(tc.payload)
			got := AppendFrame(nil, tc.h, tc.payload)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("AppendFrame = % x, want % x", head(got), head(tc.want))
			}
			if !bytes.Equal(tc.payload, orig) {
				t.Fatal("AppendFrame changed the payload it was given")
			}
			h, n, err := ParseHeader(tc.want)
			wantH := tc.h
			wantH.Length = int64(len(tc.payload))
			if err != nil || h != wantH {
				t.Fatalf("ParseHeader = %+v, %v; want %+v", h, err, wantH)
			}
			p := bytes.Clone(tc.want[n:])
			if h.Masked {
				Mask(h.Key, 0, p)
			}
			if !bytes.Equal(p, tc.payload) {
				t.Fatalf("payload = %q, want %q", head(p), head(tc.payload))
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

// TestParseHeaderLength checks that a 64-bit length with its most
// significant bit set is refused (RFC 6455, Section 5.2).
func TestParseHeaderLength(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"msb_unmasked", []byte{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		{"msb_masked", []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}},
		{"all_ones", []byte{0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := ParseHeader(tc.in); !errors.Is(err, ErrLength) {
				t.Errorf("ParseHeader(% x): err %v, want ErrLength", tc.in, err)
			}
		})
	}
}

// maskBytewise is the reference: x/net's loop.
func maskBytewise(key [4]byte, pos int, b []byte) int {
	for i := range b {
		b[i] ^= key[pos%4]
		pos++
	}
	return pos
}

func TestMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	data := make([]byte, 1<<20+13)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	check := func(t *testing.T, pos int, in []byte) {
		t.Helper()
		got, want := bytes.Clone(in), bytes.Clone(in)
		gp, wp := Mask(key, pos, got), maskBytewise(key, pos, want)
		if gp != wp || !bytes.Equal(got, want) {
			t.Fatalf("Mask(pos=%d, %d bytes): returned %d, want %d; equal %v", pos, len(in), gp, wp, bytes.Equal(got, want))
		}
	}
	for n := 0; n <= 100; n++ {
		for pos := range 4 {
			check(t, pos, data[:n])
			check(t, pos, data[1:n+1]) // an unaligned slice
		}
	}
	check(t, 0, data)
	check(t, 3, data[5:])
	check(t, 6, data[:4097]) // pos past the key's length

	// Masking in pieces at any split gives the same bytes as in one go, and
	// masking twice restores the input.
	msg := data[:300]
	whole := bytes.Clone(msg)
	Mask(key, 0, whole)
	for i := 0; i <= len(msg); i += 7 {
		p := bytes.Clone(msg)
		Mask(key, Mask(key, 0, p[:i]), p[i:])
		if !bytes.Equal(p, whole) {
			t.Fatalf("masked in two pieces split at %d: differs", i)
		}
		Mask(key, 0, p)
		if !bytes.Equal(p, msg) {
			t.Fatalf("masked twice: not the input")
		}
	}
}

// TestValidCloseCode checks every code against the list of RFC 6455,
// Section 7.4, and the IANA registry.
func TestValidCloseCode(t *testing.T) {
	for code := range 1 << 16 {
		want := (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
		if got := ValidCloseCode(code); got != want {
			t.Errorf("ValidCloseCode(%d) = %v, want %v", code, got, want)
		}
	}
	for _, code := range []int{-1, 1 << 16, 1<<16 + 1000} {
		if ValidCloseCode(code) {
			t.Errorf("ValidCloseCode(%d) = true, want false", code)
		}
	}
}

func TestClosePayload(t *testing.T) {
	long := strings.Repeat("x", 200)
	accents := strings.Repeat("é", 62) // 124 bytes: the cut falls inside a rune
	tests := []struct {
		name   string
		code   int
		reason string
		want   []byte
	}{
		{"normal", CloseNormal, "", []byte{0x03, 0xe8}},
		{"going_away_reason", CloseGoingAway, "bye", []byte{0x03, 0xe9, 'b', 'y', 'e'}},
		{"protocol_error", CloseProtocolError, "", []byte{0x03, 0xea}},
		{"app_4999", 4999, "", []byte{0x13, 0x87}},
		{"no_status", CloseNoStatus, "ignored", nil},
		{"long_reason", CloseNormal, long, append([]byte{0x03, 0xe8}, long[:123]...)},
		{"rune_cut", CloseNormal, accents, append([]byte{0x03, 0xe8}, accents[:122]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ClosePayload(tc.code, tc.reason)
			if !bytes.Equal(got, tc.want) {
				t.Errorf("ClosePayload(%d, %q) = % x, want % x", tc.code, head([]byte(tc.reason)), head(got), head(tc.want))
			}
			if len(got) > MaxControlPayload {
				t.Errorf("%d bytes, more than a control frame holds", len(got))
			}
			if len(got) > 2 && !utf8.Valid(got[2:]) {
				t.Errorf("reason % x is not valid UTF-8", got[2:])
			}
		})
	}
}

func TestOpcodeClasses(t *testing.T) {
	for op := range byte(16) {
		control := op >= 0x8
		reserved := (op >= 0x3 && op <= 0x7) || op >= 0xb
		if IsControl(op) != control || IsReservedOpcode(op) != reserved {
			t.Errorf("opcode %#x: IsControl %v, IsReservedOpcode %v; want %v, %v", op, IsControl(op), IsReservedOpcode(op), control, reserved)
		}
	}
}

package wsframe

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// BenchmarkMask compares Mask with its previous version, 8 bytes a step
// (maskWord8), and with the byte-at-a-time loop x/net unmasks with.
func BenchmarkMask(b *testing.B) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	impls := []struct {
		name string
		mask func([4]byte, int, []byte) int
	}{
		{"wsframe", Mask},
		{"word8", maskWord8},
		{"bytewise", maskBytewise},
	}
	for _, impl := range impls {
		for _, n := range []int{32, 4096, 65536, 1 << 20} {
			b.Run(fmt.Sprintf("impl=%s/size=%d", impl.name, n), func(b *testing.B) {
				buf := make([]byte, n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					impl.mask(key, 1, buf)
				}
			})
		}
	}
}

// BenchmarkUTF8 compares the incremental validator, fed the whole text,
// with utf8.Valid.
func BenchmarkUTF8(b *testing.B) {
	texts := []struct {
		name string
		unit string
	}{
		{"ascii", "The quick brown fox jumps over the lazy dog. "},
		{"mixed", "Hello, κόσμε! 日本語 🙂 ünïcödé text; "},
	}
	impls := []struct {
		name  string
		valid func([]byte) bool
	}{
		{"wsframe", func(p []byte) bool {
			var v UTF8
			return v.Write(p) && v.Complete()
		}},
		{"stdlib", utf8.Valid},
	}
	for _, text := range texts {
		for _, n := range []int{4096, 65536} {
			s := strings.Repeat(text.unit, n/len(text.unit)+1)[:n]
			for !utf8.ValidString(s) { // cut between code points
				s = s[:len(s)-1]
			}
			p := []byte(s)
			for _, impl := range impls {
				b.Run(fmt.Sprintf("text=%s/size=%d/impl=%s", text.name, n, impl.name), func(b *testing.B) {
					b.SetBytes(int64(len(p)))
					b.ReportAllocs()
					for b.Loop() {
						if !impl.valid(p) {
							b.Fatal("valid text rejected")
						}
					}
				})
			}
		}
	}
}

// maskWord8 is Mask as it was before it went 64 bytes a step: one 8-byte
// word at a time.
func maskWord8(key [4]byte, pos int, b []byte) int {
	if len(b) == 0 {
		return pos
	}
	var k [4]byte
	for i := range k {
		k[i] = key[(pos+i)&3]
	}
	if len(b) >= 16 {
		k32 := binary.LittleEndian.Uint32(k[:])
		k64 := uint64(k32)<<32 | uint64(k32)
		for len(b) >= 8 {
			v := binary.LittleEndian.Uint64(b)
			binary.LittleEndian.PutUint64(b, v^k64)
			b = b[8:]
			pos += 8
		}
	}
	for i := range b {
		b[i] ^= k[i&3]
	}
	return pos + len(b)
}

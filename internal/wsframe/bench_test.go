package wsframe

import (
	"encoding/binary"
	"fmt"
	"net"
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

// BenchmarkFragmentWrite measures the write path: each op is one x/net
// frame of size bytes, written in two parts as x/net's buffered writer does
// for a large frame, compressed if asked, split into fragments of at most
// frag bytes with a ping between (frag=0: not split), and sent with one
// write to a connection that discards it.
//
//	go test -run='^$' -bench=FragmentWrite -benchtime=2000x ./internal/wsframe
func BenchmarkFragmentWrite(b *testing.B) {
	for _, compress := range []bool{false, true} {
		for _, frag := range []int{0, 1024} {
			for _, size := range []int{4 << 10, 64 << 10} {
				b.Run(fmt.Sprintf("compress=%v/frag=%d/size=%d", compress, frag, size), func(b *testing.B) {
					c := NewConn(discardConn{}, nil, Server, Options{})
					if compress {
						c.EnableDeflate(Deflate{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15})
					}
					c.Start()
					c.SetFragmentation(frag, true)
					f := AppendFrame(nil, Header{Fin: true, Opcode: OpText}, jsonTicks(size, 1))
					b.SetBytes(int64(size))
					b.ReportAllocs()
					for b.Loop() {
						c.Write(f[:10])
						c.Write(f[10:])
					}
				})
			}
		}
	}
}

// discardConn is a connection that takes every write and keeps nothing.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

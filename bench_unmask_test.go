package main

import (
	"fmt"
	"testing"

	"wsecho/internal/wsframe"
)

// xnetFrameReader has the fields of x/net's hybiFrameReader that its Read
// method touches while it unmasks (golang.org/x/net@v0.62.0/websocket/hybi.go).
type xnetFrameReader struct {
	header struct{ MaskingKey []byte }
	pos    int64
}

// unmask is the loop of x/net's hybiFrameReader.Read, copied in shape: one
// byte at a time, the key a []byte indexed by an int64 position kept in the
// frame reader. x/net runs it for every frame a server reads, and ours too,
// since x/net rejects unmasked frames from a client: the wire layer hands it
// an all-zero key, which costs the same. It is not inlined, as the original
// is reached through an interface.
//
//go:noinline
func (frame *xnetFrameReader) unmask(msg []byte, n int) {
	if frame.header.MaskingKey != nil {
		for i := 0; i < n; i++ {
			msg[i] = msg[i] ^ frame.header.MaskingKey[frame.pos%4]
			frame.pos++
		}
	}
}

// TestXnetUnmaskLoop checks that the copy of x/net's loop unmasks as
// wsframe.Mask does, at every starting position in the key, so that the
// benchmark below compares two implementations of the same function.
func TestXnetUnmaskLoop(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 100} {
		for start := range 4 {
			t.Run(fmt.Sprintf("n=%d/pos=%d", n, start), func(t *testing.T) {
				want := make([]byte, n)
				for i := range want {
					want[i] = byte(i*7 + 1)
				}
				got := append([]byte(nil), want...)
				wsframe.Mask(key, start, want)
				r := &xnetFrameReader{pos: int64(start)}
				r.header.MaskingKey = key[:]
				r.unmask(got, len(got))
				if string(got) != string(want) {
					t.Errorf("x/net loop: got % x, want % x", got, want)
				}
				if r.pos != int64(start+n) {
					t.Errorf("x/net loop: pos %d, want %d", r.pos, start+n)
				}
			})
		}
	}
}

// BenchmarkUnmask compares x/net's byte-at-a-time unmask loop with the wire
// layer's word-at-a-time wsframe.Mask, per message size. The x/net loop
// runs on the server's payload of every echoed message, after the wire
// layer has already unmasked it, so its time per byte is a floor under our
// round-trip time that gorilla does not have (see BENCHMARKS.md).
//
//	go test -run='^$' -bench=Unmask -count=10 . > unmask.txt
//	benchstat -col /impl unmask.txt
func BenchmarkUnmask(b *testing.B) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	for _, size := range []int{32, 4 << 10, 64 << 10, 1 << 20} {
		buf := make([]byte, size)
		b.Run(fmt.Sprintf("size=%d/impl=xnet_loop", size), func(b *testing.B) {
			r := &xnetFrameReader{}
			r.header.MaskingKey = key[:]
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				r.unmask(buf, len(buf))
			}
		})
		b.Run(fmt.Sprintf("size=%d/impl=wsframe", size), func(b *testing.B) {
			pos := 0
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				pos = wsframe.Mask(key, pos, buf)
			}
		})
	}
}

package wsframe

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"testing"
)

// BenchmarkCompressLevel compresses JSON-like messages with a pooled
// writer reset for each message (no context takeover) at each level, and
// reports the wire size per message byte: the measurement behind
// CompressLevel.
func BenchmarkCompressLevel(b *testing.B) {
	for _, level := range []int{flate.BestSpeed, 2, 4, flate.DefaultCompression} {
		for _, size := range []int{256, 4 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("level=%d/size=%d", level, size), func(b *testing.B) {
				m := jsonTicks(size, 1)
				var out appendWriter
				fw, _ := flate.NewWriter(&out, level)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					out.b = out.b[:0]
					fw.Reset(&out)
					fw.Write(m)
					fw.Flush()
				}
				b.ReportMetric(float64(len(out.b)-4)/float64(size), "wire/byte")
			})
		}
	}
}

// BenchmarkCompressWindow compresses a 64 KiB JSON-like message so that
// no back-reference reaches further than 2^bits bytes: mode=pieces
// compresses it in pieces of 2^bits bytes, each with a reset compressor
// and a sync flush; mode=huffman is what Compressor does, Huffman coding
// only. The third choice, sending the message uncompressed, costs no CPU
// and gives wire/byte 1.
func BenchmarkCompressWindow(b *testing.B) {
	m := jsonTicks(64<<10, 1)
	for _, bits := range []int{8, 9, 10, 12} {
		b.Run(fmt.Sprintf("mode=pieces/bits=%d", bits), func(b *testing.B) {
			var out appendWriter
			fw, _ := flate.NewWriter(&out, CompressLevel)
			b.SetBytes(int64(len(m)))
			b.ReportAllocs()
			for b.Loop() {
				out.b = out.b[:0]
				for p := m; len(p) > 0; {
					n := min(len(p), 1<<bits)
					fw.Reset(&out)
					fw.Write(p[:n])
					fw.Flush()
					p = p[n:]
				}
			}
			b.ReportMetric(float64(len(out.b)-4)/float64(len(m)), "wire/byte")
		})
	}
	b.Run("mode=huffman", func(b *testing.B) {
		c := NewCompressor(false, 8)
		var out []byte
		b.SetBytes(int64(len(m)))
		b.ReportAllocs()
		for b.Loop() {
			out = c.Compress(out[:0], m)
		}
		b.ReportMetric(float64(len(out))/float64(len(m)), "wire/byte")
	})
}

// BenchmarkInflate inflates a JSON-like message with a decompressor taken
// from the pool for each message (how the Inflater works) and with one kept
// for the connection's life: the cost of pooling per message.
func BenchmarkInflate(b *testing.B) {
	for _, size := range []int{256, 4 << 10, 64 << 10} {
		m := jsonTicks(size, 1)
		p := NewCompressor(false, 15).Compress(nil, m)
		buf := make([]byte, size)
		b.Run(fmt.Sprintf("mode=pooled/size=%d", size), func(b *testing.B) {
			var z Inflater
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				z.Reset(bytes.NewReader(p), int64(size))
				if _, err := io.ReadFull(&z, buf); err != nil {
					b.Fatal(err)
				}
				if _, err := z.Read(buf[:1]); err != io.EOF {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("mode=kept/size=%d", size), func(b *testing.B) {
			src := &inflateSource{}
			fr := flate.NewReader(src)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				*src = inflateSource{r: bytes.NewReader(p)}
				fr.(flate.Resetter).Reset(src, nil)
				if _, err := io.ReadFull(fr, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

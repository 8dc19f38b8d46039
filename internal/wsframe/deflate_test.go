package wsframe

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"wsecho/internal/testpeer"
)

// jsonTicks returns n bytes of JSON-like text, the classic push payload:
// price ticks that differ in their numbers. The same seed gives the same
// text.
func jsonTicks(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	syms := []string{"BTC-USD", "ETH-USD", "SOL-USD", "EUR-USD", "AAPL", "MSFT"}
	var b []byte
	for seq := 0; len(b) < n; seq++ {
		b = fmt.Appendf(b, `{"type":"tick","symbol":%q,"price":%.2f,"size":%.4f,"side":%q,"time":"2026-12-02T04:%02d:%02d.%03dZ","seq":%d}`+"\n",
			syms[r.IntN(len(syms))], 100+r.Float64()*50000, r.Float64()*10, []string{"buy", "sell"}[r.IntN(2)],
			r.IntN(60), r.IntN(60), r.IntN(1000), 1000000+seq)
	}
	return b[:n]
}

// inflate reads one message through z from payload, read in pieces of at
// most chunk bytes (0: whole).
func inflate(z *Inflater, payload []byte, limit int64, chunk int) ([]byte, error) {
	var src io.Reader = bytes.NewReader(payload)
	if chunk > 0 {
		src = &chunkReader{b: payload, n: chunk}
	}
	z.Reset(src, limit)
	var out []byte
	buf := make([]byte, 1000)
	for {
		n, err := z.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[n:]
	return n, nil
}

func closeCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestCompressRoundTrip(t *testing.T) {
	msgs := [][]byte{{}, []byte("a"), jsonTicks(200, 1), jsonTicks(5000, 2), jsonTicks(70000, 3), bytes.Repeat([]byte{0}, 100000)}
	noise := make([]byte, 40000)
	chacha := rand.NewChaCha8([32]byte{9})
	chacha.Read(noise)
	msgs = append(msgs, noise)
	for _, takeover := range []bool{false, true} {
		for bits := MinWindowBits; bits <= MaxWindowBits; bits++ {
			t.Run(fmt.Sprintf("takeover=%v/bits=%d", takeover, bits), func(t *testing.T) {
				c := NewCompressor(takeover, bits)
				defer c.Close()
				z := &Inflater{Takeover: takeover}
				defer z.Close()
				for i, m := range msgs {
					p := c.Compress(nil, m)
					if bytes.HasSuffix(p, deflateTail[:]) && len(p) > 4 {
						t.Errorf("message %d: compressed payload ends with the tail", i)
					}
					got, err := inflate(z, p, int64(len(m)), 7*i+1)
					if err != nil {
						t.Fatalf("message %d (%d bytes): %v", i, len(m), err)
					}
					if !bytes.Equal(got, m) {
						t.Fatalf("message %d: got %d bytes, want %d", i, len(got), len(m))
					}
				}
			})
		}
	}
}

// TestCompressRatio checks that a long message is compressed with
// back-references when the window allows it: 64 KiB of JSON-like text at
// 15 bits to about a fifth, Huffman-only (no references) at 9 bits.
func TestCompressRatio(t *testing.T) {
	m := jsonTicks(64<<10, 8)
	for _, tc := range []struct {
		bits     int
		min, max float64
	}{{15, 0.1, 0.3}, {9, 0.5, 0.7}} {
		p := NewCompressor(false, tc.bits).Compress(nil, m)
		if r := float64(len(p)) / float64(len(m)); r < tc.min || r > tc.max {
			t.Errorf("bits=%d: compressed to %.3f of the size, want %.1f-%.1f", tc.bits, r, tc.min, tc.max)
		}
	}
}

// TestCompressTakeover checks that context takeover refers back into
// earlier messages (a smaller second message) and that an inflater without
// the window cannot read it.
func TestCompressTakeover(t *testing.T) {
	m := jsonTicks(2000, 4)
	c := NewCompressor(true, MaxWindowBits)
	defer c.Close()
	first := c.Compress(nil, m)
	second := c.Compress(nil, m)
	if len(second) >= len(first)/4 {
		t.Errorf("second identical message: %d bytes compressed, first %d: no context kept", len(second), len(first))
	}
	z := &Inflater{Takeover: true}
	for i, p := range [][]byte{first, second} {
		got, err := inflate(z, p, 1<<20, 0)
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("takeover message %d: %d bytes, %v", i, len(got), err)
		}
	}
	if _, err := inflate(&Inflater{}, second, 1<<20, 0); closeCode(err) != CloseInvalidPayload {
		t.Errorf("second message without the window: err %v, want close 1007", err)
	}
}

// zlibInflate is a Python program that inflates a raw DEFLATE stream from
// stdin with a window of argv[1] bits. It asks for one byte at a time:
// zlib lets a back-reference reach anywhere into the output of the same
// call, and checks only those that reach into its window, which then
// holds everything before.
const zlibInflate = `import sys, zlib
d = zlib.decompressobj(wbits=-int(sys.argv[1]))
data, out = sys.stdin.buffer.read(), bytearray()
while data:
    out += d.decompress(data, 1)
    data = d.unconsumed_tail
sys.stdout.buffer.write(out)
`

// TestCompressWindow checks that a compressor with a window of 2^bits
// never refers further back, with zlib's raw inflater set to that window
// (which fails with "invalid distance too far back" otherwise).
func TestCompressWindow(t *testing.T) {
	py := testpeer.Python(t)
	m := jsonTicks(20000, 5)
	zlib := func(bits int, p []byte) ([]byte, error) {
		cmd := exec.Command(py, "-c", zlibInflate, strconv.Itoa(bits))
		cmd.Stdin = bytes.NewReader(append(p, deflateTail[:]...))
		return cmd.Output()
	}
	for bits := MinWindowBits; bits <= MaxWindowBits; bits++ {
		out, err := zlib(bits, NewCompressor(false, bits).Compress(nil, m))
		if err != nil {
			t.Fatalf("bits=%d: zlib with that window: %v", bits, err)
		}
		if !bytes.Equal(out, m) {
			t.Fatalf("bits=%d: zlib inflated %d bytes, want %d", bits, len(out), len(m))
		}
	}
	// The check can fail: a whole-window stream is too far back for 9 bits.
	if _, err := zlib(9, NewCompressor(false, 15).Compress(nil, m)); err == nil {
		t.Errorf("a 15-bit stream inflated with a 9-bit window: the check proves nothing")
	}
}

func TestInflateErrors(t *testing.T) {
	m := jsonTicks(3000, 6)
	good := NewCompressor(false, 15).Compress(nil, m)
	var final bytes.Buffer // a stream ended by a final block, as zlib's Z_FINISH makes
	fw, _ := flate.NewWriter(&final, flate.BestSpeed)
	fw.Write(m)
	fw.Close()
	srcErr := errors.New("source broke")
	tests := []struct {
		name  string
		src   io.Reader
		limit int64
		want  []byte
		code  int   // 0: no close code
		err   error // with code 0: the error wanted (nil: none)
	}{
		{name: "ok", src: bytes.NewReader(good), limit: 3000, want: m},
		{name: "limit_exact", src: bytes.NewReader(good), limit: int64(len(m)), want: m},
		{name: "limit_minus_1", src: bytes.NewReader(good), limit: int64(len(m)) - 1, code: CloseMessageTooBig},
		{name: "final_block", src: bytes.NewReader(final.Bytes()), limit: 3000, want: m},
		{name: "final_block_then_bytes", src: bytes.NewReader(append(final.Bytes(), 1, 2, 3)), limit: 3000, want: m},
		{name: "truncated", src: bytes.NewReader(good[:len(good)/2]), limit: 3000, code: CloseInvalidPayload},
		{name: "garbage", src: strings.NewReader("\xff\xff\xff\xff\xff"), limit: 3000, code: CloseInvalidPayload},
		{name: "reserved_block_type", src: strings.NewReader("\x07"), limit: 3000, code: CloseInvalidPayload},
		{name: "empty_payload", src: strings.NewReader(""), limit: 3000, code: CloseInvalidPayload},
		{name: "empty_message", src: strings.NewReader("\x00"), limit: 0, want: []byte{}},
		{name: "empty_blocks", src: strings.NewReader("\x00\x00\x00\xff\xff\x00\x00\x00\xff\xff\x00"), limit: 0, want: []byte{}},
		{name: "source_error", src: io.MultiReader(bytes.NewReader(good[:100]), iotest.ErrReader(srcErr)), limit: 3000, err: srcErr},
		{name: "source_timeout", src: iotest.TimeoutReader(bytes.NewReader(good)), limit: 3000, err: iotest.ErrTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := &Inflater{}
			z.Reset(tc.src, tc.limit)
			got, err := io.ReadAll(z)
			if tc.code != 0 || tc.err != nil {
				if closeCode(err) != tc.code || (tc.err != nil && !errors.Is(err, tc.err)) {
					t.Fatalf("err = %v, want code %d / %v", err, tc.code, tc.err)
				}
				if int64(len(got)) > tc.limit {
					t.Errorf("handed out %d bytes past a limit of %d", len(got), tc.limit)
				}
				if z.st != nil {
					t.Errorf("pooled state kept after an error")
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %d bytes, err %v; want %d bytes", len(got), err, len(tc.want))
			}
			if z.st != nil {
				t.Errorf("pooled state kept after the message")
			}
		})
	}
}

// bomb64 is a bomb of 64 MiB, made once.
var bomb64 = sync.OnceValue(func() []byte { return bomb(64 << 20) })

// bomb returns a compressed message of zeros that inflates to n bytes.
func bomb(n int) []byte {
	var b bytes.Buffer
	fw, _ := flate.NewWriter(&b, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, len(zeros))
		fw.Write(zeros[:k])
		n -= k
	}
	fw.Flush()
	return bytes.TrimSuffix(b.Bytes(), deflateTail[:])
}

// TestInflateBomb reads a message of about 65 KB that inflates to 64 MiB
// with a limit of 1 MiB: it must fail with 1009 once the limit is passed,
// having read only the start of the message and allocated nothing in
// proportion to it (flate's state is about 50 KB, the window 64 KiB).
func TestInflateBomb(t *testing.T) {
	p := bomb64()
	if len(p) > 70000 {
		t.Fatalf("bomb is %d bytes compressed", len(p))
	}
	const limit = 1 << 20
	src := bytes.NewReader(p)
	buf := make([]byte, 32<<10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	z := &Inflater{Takeover: true}
	z.Reset(src, limit)
	var out int64
	var err error
	for err == nil {
		var n int
		n, err = z.Read(buf)
		out += int64(n)
	}
	runtime.ReadMemStats(&after)
	if closeCode(err) != CloseMessageTooBig {
		t.Fatalf("err = %v, want close 1009", err)
	}
	if out > limit {
		t.Errorf("handed out %d bytes, limit %d", out, limit)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<10 {
		t.Errorf("allocated %d bytes reading a bomb", alloc)
	}
	if read := len(p) - src.Len(); read > len(p)/32 {
		t.Errorf("read %d of %d compressed bytes before failing", read, len(p))
	}
}

// TestMinCompress measures where compressing a message on its own (no
// context takeover) starts to pay on JSON-like text: MinCompress must be
// the first size at which it saves at least a tenth, among sizes in steps
// of 16 bytes, averaged over 20 different messages.
func TestMinCompress(t *testing.T) {
	c := NewCompressor(false, MaxWindowBits)
	saving := func(n int) float64 {
		var raw, wire int
		for seed := range uint64(20) {
			m := jsonTicks(n, seed)
			raw += n
			wire += len(c.Compress(nil, m))
		}
		return 1 - float64(wire)/float64(raw)
	}
	first := 0
	for n := 16; n <= 512; n += 16 {
		s := saving(n)
		t.Logf("size %4d: saves %5.1f%%", n, 100*s)
		if first == 0 && s >= 0.10 {
			first = n
		}
	}
	if first != MinCompress {
		t.Errorf("compression first saves 10%% at %d bytes; MinCompress is %d", first, MinCompress)
	}
}

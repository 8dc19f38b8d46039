package wsframe

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"testing"
)

// fuzzInflateLimit is small so that 1009 is reachable with short inputs.
const fuzzInflateLimit = 4096

// FuzzInflate feeds arbitrary bytes to the Inflater as one message's
// compressed payload, read in pieces of at most split bytes, and checks the
// outcome against compress/flate reading the same payload with the tail
// appended: the same bytes when both succeed, 1009 exactly when the
// reference inflates past the limit, 1007 when the reference fails, and
// never more than the limit handed out. Then it compresses data with the
// Compressor (window of 8 + bits%8 bits, context takeover or not) and
// checks that the Inflater gives data back, twice in a row.
func FuzzInflate(f *testing.F) {
	m := jsonTicks(600, 1)
	for _, bits := range []int{8, 9, 15} {
		f.Add(NewCompressor(false, bits).Compress(nil, m), byte(0), byte(bits), false)
	}
	f.Add(NewCompressor(false, 15).Compress(nil, bytes.Repeat([]byte{0}, 10000)), byte(7), byte(15), true)
	f.Add(bomb(fuzzInflateLimit+1), byte(1), byte(0), false)
	f.Add([]byte{0x00}, byte(0), byte(0), false)                                       // empty message
	f.Add([]byte{0x01, 0x03, 0x00, 0xfc, 0xff, 'a', 'b', 'c'}, byte(2), byte(9), true) // stored, final
	f.Add([]byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, byte(3), byte(0), false)   // RFC 7692 §7.2.3.1 "Hello"
	f.Add([]byte{0xff, 0xff}, byte(0), byte(0), false)
	f.Fuzz(func(t *testing.T, data []byte, split, bits byte, takeover bool) {
		checkInflate(t, data, int(split))
		checkCompress(t, data, MinWindowBits+int(bits%8), takeover)
	})
}

func checkInflate(t *testing.T, data []byte, split int) {
	want, wantErr := refInflate(data, fuzzInflateLimit)
	z := &Inflater{}
	var src io.Reader = bytes.NewReader(data)
	if split > 0 {
		src = &chunkReader{b: data, n: split}
	}
	z.Reset(src, fuzzInflateLimit)
	got, err := io.ReadAll(z)
	if len(got) > fuzzInflateLimit {
		t.Fatalf("handed out %d bytes, limit %d", len(got), fuzzInflateLimit)
	}
	if z.st != nil {
		t.Fatalf("pooled state kept after the message")
	}
	switch {
	case errors.Is(wantErr, errRefTooBig):
		if closeCode(err) != CloseMessageTooBig {
			t.Fatalf("reference: too big; got err %v", err)
		}
	case wantErr != nil:
		// A stream cut inside a block reads on into the appended tail,
		// which may decode to more than the limit before the stream
		// breaks: then 1009 is as right as 1007.
		if code := closeCode(err); code != CloseInvalidPayload && code != CloseMessageTooBig {
			t.Fatalf("reference: %v; got %d bytes, err %v", wantErr, len(got), err)
		}
	case err != nil:
		t.Fatalf("reference: %d bytes; got err %v", len(want), err)
	case !bytes.Equal(got, want):
		t.Fatalf("got %q, reference %q", got, want)
	}
	// What zlib-based peers make of a message, with no final block
	// appended, comes first in it: a message whose data stops inside a
	// block may take more from the appended bytes, never less.
	if err == nil {
		if plain, ok := plainInflate(data, fuzzInflateLimit); ok && !bytes.HasPrefix(got, plain) {
			t.Fatalf("got %q, which does not start with %q (the data with only the RFC 7692 tail)", got, plain)
		}
	}
}

var errRefTooBig = errors.New("too big")

// refInflate is the reference: compress/flate reading the payload followed
// by inflateTail (the tail of RFC 7692 Section 7.2.2 and an empty final
// block) to the end of the DEFLATE stream, as one plain read with no limit
// checked along the way, pooling or pieces.
func refInflate(data []byte, limit int) ([]byte, error) {
	b := append(bytes.Clone(data), inflateTail[:]...)
	out, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), int64(limit)+1))
	if len(out) > limit {
		return nil, errRefTooBig
	}
	return out, err
}

// plainInflate inflates the payload with only the tail of RFC 7692
// Section 7.2.2 appended, as zlib-based peers do, and returns what comes
// out before the data ends, and whether it ended without an error other
// than the end of the data.
func plainInflate(data []byte, limit int) ([]byte, bool) {
	b := append(bytes.Clone(data), deflateTail[:]...)
	out, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), int64(limit)+1))
	return out, err == nil || err == io.ErrUnexpectedEOF
}

func checkCompress(t *testing.T, data []byte, bits int, takeover bool) {
	c := NewCompressor(takeover, bits)
	defer c.Close()
	z := &Inflater{Takeover: takeover}
	for i := range 2 {
		p := c.Compress(nil, data)
		z.Reset(bytes.NewReader(p), int64(len(data)))
		got, err := io.ReadAll(z)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("compressed message %d (bits=%d takeover=%v): got %d bytes, err %v; want %d bytes", i, bits, takeover, len(got), err, len(data))
		}
	}
}

package wsframe

import (
	"compress/flate"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"
)

// This file compresses and inflates messages for permessage-deflate
// (RFC 7692, Section 7.2) with the standard library's compress/flate.
// Compressors and decompressors come from pools and go back after each
// message, so an idle connection holds none; only context takeover keeps
// per-connection state (the last 32 KiB of a direction's messages).

// deflateTail ends every compressed message on the wire before the sender
// strips it (RFC 7692, Section 7.2.1): the empty stored block of a sync
// flush.
var deflateTail = [4]byte{0x00, 0x00, 0xff, 0xff}

// inflateTail is what the receiver appends to a message's payload: the
// stripped tail (Section 7.2.2), then an empty final stored block, so that
// compress/flate reports io.EOF at the end of a whole message and an error
// for one cut in the middle of a block. (Rarely, the appended bytes can
// finish a block cut short; the message then takes the bytes they decode
// to. zlib-based peers report no error for such a message at all, and
// FuzzInflate checks that what they would read comes first.)
var inflateTail = [...]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// windowSize is the largest LZ77 window, 2^MaxWindowBits: how far back a
// compressor may refer, and what context takeover keeps.
const windowSize = 1 << MaxWindowBits

// MinCompress is the smallest message worth compressing. A message
// compressed on its own carries a block header and Huffman codes; on
// JSON-like text it first saves a tenth at 112 bytes (TestMinCompress:
// -9% at 64, +2% at 80, +10% at 112, +40% at 256), so anything smaller goes
// out uncompressed, which RFC 7692 (Section 6) lets a sender choose per
// message.
const MinCompress = 112

// CompressLevel is the compress/flate level messages are compressed at.
// BestSpeed: on JSON-like text it compresses 64 KiB at 390 MB/s to 0.195 of
// its size, where level 2 manages 56 MB/s for 0.178 and the default level
// 44 MB/s for 0.158 (BenchmarkCompressLevel).
const CompressLevel = flate.BestSpeed

// flateWriters holds idle compressors: [0] at CompressLevel, [1] Huffman
// only, for messages longer than a window below 15 bits.
var flateWriters [2]sync.Pool

var flateReaders sync.Pool // *inflateState

// Compressor compresses the messages one end of a connection sends. The
// zero value is not ready; use NewCompressor. It is not safe for concurrent
// use.
type Compressor struct {
	takeover   bool
	windowBits int
	fw         *flate.Writer // kept across messages with context takeover
	out        appendWriter
}

// NewCompressor returns a Compressor for a sender that keeps its context
// across messages (takeover) or not, with a window of 2^windowBits bytes
// (8-15). Without takeover it holds no compressor between messages; with a
// window below 15 bits there is no takeover.
func NewCompressor(takeover bool, windowBits int) *Compressor {
	return &Compressor{takeover: takeover && windowBits == MaxWindowBits, windowBits: windowBits}
}

// Compress appends the compressed payload of msg to dst, without the
// final 00 00 ff ff (RFC 7692, Section 7.2.1).
//
// compress/flate's window is always 2^15 bytes. A window of fewer bits
// (RFC 7692, Section 7.1.2) is honoured for a message no longer than it
// trivially, and a longer message is Huffman-coded only, with no
// back-references at all. On 64 KiB of JSON-like text that gives 0.61 of
// the size at 250-320 MB/s, where compressing in pieces of the window's
// size with a reset compressor each gives 0.62 at 15-23 MB/s for 8 bits,
// 0.44 at 16-35 MB/s for 9, 0.32 at 23-44 MB/s for 10, 0.23 at 48-121 MB/s
// for 12 (BenchmarkCompressWindow; BENCHMARKS.md): pieces would let a peer
// that asks for a small window make each byte cost the server many times
// the CPU (11-21 times at 8 bits).
func (z *Compressor) Compress(dst, msg []byte) []byte {
	z.out.b = dst
	// Building Huffman codes takes a 1.4 KB frame (see onOwnStack).
	onOwnStack(func() {
		switch {
		case z.takeover:
			if z.fw == nil {
				z.fw = getFlateWriter(0, &z.out)
			}
			z.fw.Write(msg)
			z.fw.Flush()
		default:
			pool := 0
			if z.windowBits < MaxWindowBits && len(msg) > 1<<z.windowBits {
				pool = 1 // flate's own window is 15 bits
			}
			fw := getFlateWriter(pool, &z.out)
			fw.Write(msg)
			fw.Flush()
			flateWriters[pool].Put(fw)
		}
	})
	b := z.out.b
	z.out.b = nil
	return b[:len(b)-len(deflateTail)] // Flush always ends with the tail
}

// Close releases the compressor kept for context takeover.
func (z *Compressor) Close() {
	if z.fw != nil {
		z.fw.Reset(io.Discard)
		flateWriters[0].Put(z.fw)
		z.fw = nil
	}
}

func getFlateWriter(pool int, w io.Writer) *flate.Writer {
	if fw, ok := flateWriters[pool].Get().(*flate.Writer); ok {
		fw.Reset(w)
		return fw
	}
	level := CompressLevel
	if pool == 1 {
		level = flate.HuffmanOnly
	}
	fw, _ := flate.NewWriter(w, level) // the level is valid
	return fw
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Inflater inflates the messages one end of a connection receives, one at
// a time, never producing more than a limit. The zero value is ready for a
// peer without context takeover. It is not safe for concurrent use.
type Inflater struct {
	// Takeover keeps the last 32 KiB of inflated data across messages,
	// for a peer that keeps its compressor's context (RFC 7692, Section
	// 7.1.1).
	Takeover bool

	st     *inflateState // from the pool while a message is being read
	limit  int64
	n      int64 // bytes inflated from this message
	window []byte
	err    error
}

// inflateState is the pooled part of an Inflater.
type inflateState struct {
	fr  io.ReadCloser // a flate reader, also a flate.Resetter
	src inflateSource
}

// Reset starts a message: src yields its compressed payload (the frames'
// payloads joined, unmasked) and then io.EOF; Read will yield at most
// limit inflated bytes.
func (z *Inflater) Reset(src io.Reader, limit int64) {
	if z.st == nil {
		z.st, _ = flateReaders.Get().(*inflateState)
		if z.st == nil {
			z.st = new(inflateState)
		}
	}
	z.st.src = inflateSource{r: src}
	var dict []byte
	if z.Takeover {
		dict = z.window
	}
	if z.st.fr == nil {
		z.st.fr = flate.NewReaderDict(&z.st.src, dict)
	} else {
		st := z.st
		onOwnStack(func() { st.fr.(flate.Resetter).Reset(&st.src, dict) })
	}
	z.limit, z.n, z.err = limit, 0, nil
}

// Read yields the inflated message, then io.EOF. A message that does not
// inflate gives an *Error with code 1007; one that would inflate past the
// limit, an *Error with code 1009 as soon as the limit is passed. An error
// from src is returned as it is.
func (z *Inflater) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if z.st == nil {
		return 0, errors.New("websocket: Inflater.Read without Reset")
	}
	// One byte past the limit is enough to know the message is too big.
	if room := z.limit - z.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := z.st.fr.Read(p)
	z.n += int64(n)
	if z.n > z.limit {
		z.finish()
		z.err = &Error{Code: CloseMessageTooBig, Reason: "message inflates to more than " + strconv.FormatInt(z.limit, 10) + " bytes"}
		return 0, z.err
	}
	if z.Takeover {
		z.keep(p[:n])
	}
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		// A final block ends the stream: read what the peer sent after it
		// (nothing but the appended tail, normally) to the message's end.
		if err := z.st.src.drain(); err != nil {
			z.err = err
		} else {
			z.err = io.EOF
		}
	case z.st.src.err != nil:
		z.err = z.st.src.err // the source failed: not the data's fault
	default:
		z.err = &Error{Code: CloseInvalidPayload, Reason: "message does not inflate: " + err.Error()}
	}
	z.finish()
	if z.err == io.EOF {
		return n, io.EOF
	}
	return 0, z.err
}

// keep appends b to the window, which holds at least the last windowSize
// bytes inflated; it slides at twice that size, so that each byte is
// copied a bounded number of times. (flate uses the dictionary's last
// windowSize bytes.)
func (z *Inflater) keep(b []byte) {
	if z.window == nil {
		z.window = make([]byte, 0, 2*windowSize)
	}
	if len(b) >= windowSize {
		z.window = append(z.window[:0], b[len(b)-windowSize:]...)
		return
	}
	if len(z.window)+len(b) > cap(z.window) {
		z.window = z.window[:copy(z.window, z.window[len(z.window)-windowSize:])]
	}
	z.window = append(z.window, b...)
}

// finish returns the pooled state once the message is over.
func (z *Inflater) finish() {
	if z.st != nil {
		z.st.src = inflateSource{}
		flateReaders.Put(z.st)
		z.st = nil
	}
}

// Close releases what the Inflater holds; it may be Reset again.
func (z *Inflater) Close() {
	z.finish()
	z.window = nil
}

// onOwnStack runs f on another goroutine and waits for it.
// compress/flate's decompressor Reset has a 4.4 KB stack frame and its
// Huffman code builder 1.4 KB: called on a connection's goroutine, deep in
// the read or the write path, they would double that goroutine's stack to
// 8 KB for the rest of the connection (Go shrinks a stack only when a
// quarter of it is in use), 4 KB more per idle connection (measured with
// TestIdleMemory). So they run on flate workers, goroutines whose stacks
// have grown once: an idle worker takes the job, or a new one starts; a
// worker with nothing to do for flateWorkerIdle ends. A new goroutine for
// every call costs more than the compression of a small message (its stack
// grows twice); a hand-over to a waiting worker, well under a microsecond.
func onOwnStack(f func()) {
	done, _ := flateDone.Get().(chan struct{})
	if done == nil {
		done = make(chan struct{}, 1)
	}
	select {
	case flateJobs <- flateJob{f, done}:
	default:
		go flateWorker(flateJob{f, done})
	}
	<-done
	flateDone.Put(done)
}

// flateWorkerIdle is how long a flate worker waits for work before it ends.
const flateWorkerIdle = 250 * time.Millisecond

type flateJob struct {
	f    func()
	done chan struct{}
}

var (
	flateJobs = make(chan flateJob) // to an idle worker, if one waits
	flateDone sync.Pool             // chan struct{} with room for one
)

func flateWorker(j flateJob) {
	idle := time.NewTimer(flateWorkerIdle)
	defer idle.Stop()
	for {
		j.f()
		j.done <- struct{}{}
		idle.Reset(flateWorkerIdle)
		select {
		case j = <-flateJobs:
		case <-idle.C:
			return
		}
	}
}

// inflateSource feeds compress/flate one message: the payload from r, then
// inflateTail. It implements io.ByteReader, so flate reads no further than
// it needs, and keeps a small buffer of its own.
type inflateSource struct {
	r    io.Reader
	buf  [512]byte
	b    []byte // unread bytes of buf or of inflateTail
	tail bool   // r is done: b is (part of) inflateTail
	err  error  // r's error other than io.EOF
}

func (s *inflateSource) ReadByte() (byte, error) {
	if len(s.b) == 0 {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c, nil
}

func (s *inflateSource) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		if err := s.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

func (s *inflateSource) fill() error {
	if s.tail {
		return io.EOF
	}
	if s.err != nil {
		return s.err
	}
	for {
		n, err := s.r.Read(s.buf[:])
		s.b = s.buf[:n]
		switch {
		case err == io.EOF:
			if n == 0 {
				s.tail, s.b = true, inflateTail[:]
			}
			return nil
		case err != nil:
			if n > 0 {
				return nil // the error comes again on the next read
			}
			s.err = err
			return err
		case n > 0:
			return nil
		}
	}
}

// drain reads r to its end, for a message that ended its DEFLATE stream
// with a final block before its payload's end.
func (s *inflateSource) drain() error {
	for !s.tail {
		s.b = nil
		if err := s.fill(); err != nil {
			return err
		}
	}
	return nil
}

package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"wsecho/internal/wsframe"
	"wsecho/server"
)

// FuzzDifferential sends the same bytes, after a valid opening handshake,
// to our server and to the gorilla reference, half-closes, and compares
// what each sent back: the frames (echoes and pongs) and the close code.
//
// The two may differ only where the Conformance table in README.md says
// they do: our server stops early on text that is not UTF-8 (1007) or a
// message over its limit (1009), where gorilla echoes on; and on the last
// frame before the end they may give different close codes for a 1-byte
// Close payload, close code 1014, a Close reason that is not UTF-8, or a
// length with its top bit set.
//
//	go test -run='^$' -fuzz=FuzzDifferential -fuzztime=5m .
func FuzzDifferential(f *testing.F) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	frame := func(b0 byte, payload string) []byte {
		return wsframe.AppendFrame(nil, wsframe.Header{Fin: b0&0x80 != 0, Rsv: b0 & 0x70, Opcode: b0 & 0x0f, Masked: true, Key: key}, []byte(payload))
	}
	closing := func(code int, reason string) []byte {
		return frame(0x88, string(wsframe.ClosePayload(code, reason)))
	}
	for _, seed := range [][]byte{
		{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, // RFC 6455 §5.7 "Hello"
		slices.Concat(frame(0x01, "Hel"), frame(0x89, "ping"), frame(0x80, "lo")),
		slices.Concat(frame(0x82, "\x00\x01\xfe\xff"), closing(1000, "bye")),
		slices.Concat(frame(0x81, "ok"), frame(0x81, "\xed\xa0\x80"), frame(0x81, "after")),
		slices.Concat(frame(0x81, "ok"), frame(0xc1, "rsv1")),
		slices.Concat(frame(0x83, "reserved"), frame(0x81, "after")),
		closing(1014, ""),
		closing(4000, "\xff"),
		frame(0x88, "\x03"),
		frame(0x89, string(make([]byte, 126))),
	} {
		f.Add(seed)
	}
	quiet := server.Options{Logger: slog.New(slog.DiscardHandler)}
	ours := startServerOpts(f, "xnet", quiet)
	ref := startServerOpts(f, "gorilla", quiet)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		o := diffExchange(t, ours, data)
		g := diffExchange(t, ref, data)
		if err := o.compatible(g); err != nil {
			t.Errorf("%v\ninput: %q\nours:    %v\ngorilla: %v", err, data, o, g)
		}
	})
}

// outcome is what a server sent back for some bytes.
type outcome struct {
	frames []wireFrame // data frames and pongs, in order
	code   int         // the close code, wsframe.CloseNoStatus for an empty Close, 0 for none
}

// diffExchange writes data to a fresh connection to wsURL, half-closes, and
// reads until the server hangs up.
func diffExchange(t *testing.T, wsURL string, data []byte) outcome {
	c := dialWire(t, wsURL)
	if _, err := c.nc.Write(data); err != nil && !isReset(err) {
		t.Fatalf("write: %v", err)
	}
	c.nc.(*net.TCPConn).CloseWrite()
	var o outcome
	for {
		fr, err := readWireFrame(c.br)
		if err != nil {
			// The end, clean or reset: gorilla hangs up without reading
			// what is left, so the kernel may answer with a reset.
			if !isEnd(err) {
				t.Fatalf("read: %v", err)
			}
			return o
		}
		if fr.op == wsframe.OpClose {
			o.code = wsframe.CloseNoStatus
			if len(fr.payload) >= 2 {
				o.code = int(binary.BigEndian.Uint16(fr.payload))
			}
			continue // the server hangs up next
		}
		o.frames = append(o.frames, fr)
	}
}

// isEnd reports whether err ends a read at the server's hang-up: EOF, or
// a reset.
func isEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// compatible reports why g (gorilla's outcome) cannot be explained by the
// known differences from o (ours), or nil.
func (o outcome) compatible(g outcome) error {
	n := min(len(o.frames), len(g.frames))
	for i := range n {
		if !o.frames[i].matches(g.frames[i]) {
			return errors.New("frame " + strconv.Itoa(i) + " differs")
		}
	}
	switch {
	case len(o.frames) < len(g.frames):
		// Only our server stops early, and only on what gorilla does not check.
		if o.code != wsframe.CloseInvalidPayload && o.code != wsframe.CloseMessageTooBig {
			return errors.New("ours sent fewer frames without a 1007 or 1009")
		}
	case len(o.frames) > len(g.frames):
		return errors.New("gorilla sent fewer frames")
	case o.code != g.code && o.code != 0 && g.code != 0 && !knownCloseDifference(o.code, g.code):
		return errors.New("close codes differ")
	case o.code == 0 && g.code != 0:
		return errors.New("ours sent no Close where gorilla did")
	}
	return nil
}

// knownCloseDifference reports whether ours closing with o where gorilla
// closes with g is one of the differences in the Conformance table.
func knownCloseDifference(o, g int) bool {
	switch {
	case o == wsframe.CloseProtocolError && g == wsframe.CloseNoStatus: // a 1-byte Close payload
		return true
	case o == 1014 && g == wsframe.CloseProtocolError: // gorilla's valid codes stop at 1013
		return true
	case o == wsframe.CloseInvalidPayload && g == wsframe.CloseProtocolError: // a Close reason that is not UTF-8
		return true
	case o == wsframe.CloseInvalidPayload || o == wsframe.CloseMessageTooBig: // gorilla reads on and fails later
		return true
	}
	return false
}

func (o outcome) String() string {
	var b bytes.Buffer
	for _, f := range o.frames {
		b.WriteString(f.String())
		b.WriteString("; ")
	}
	b.WriteString("close ")
	b.WriteString(strconv.Itoa(o.code))
	return b.String()
}

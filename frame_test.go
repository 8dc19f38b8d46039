package main

// RFC 6455 wire tests: a raw TCP peer speaks hand-written bytes to our
// server and to the gorilla reference server side by side, and compares
// what comes back: the frames (opcode and payload; a Close by its code),
// and whether the server then closes the TCP connection. Our server must
// produce the RFC outcome; where gorilla's differs, the table records
// gorilla's outcome with the reason, and the test checks that too.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"wsecho/internal/wsframe"
	"wsecho/server"
)

// wireAccept is the Sec-WebSocket-Accept a server must answer the RFC 6455
// §1.3 sample key dGhlIHNhbXBsZSBub25jZQ== with.
const wireAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

// handshakeRequest is a valid opening handshake (RFC 6455, Section 4.1)
// with the §1.3 sample key; %s is the host.
const handshakeRequest = "GET /echo HTTP/1.1\r\n" +
	"Host: %s\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"\r\n"

// wireTimeout is the deadline of every raw connection, so that a server
// that stays silent fails a test in seconds.
const wireTimeout = 5 * time.Second

// wireLimit is our server's MaxMessage in TestWireMessageTooBig.
const wireLimit = 64

// wireMaskKey masks the frames built with clientFrame: the key of the
// RFC 6455 §5.7 examples. Hand-written frames use it too, or the all-zero
// key so that their payloads read as they are.
var wireMaskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// A wireStep is one exchange of a wire test: the client writes send, then
// reads the frames in want.
type wireStep struct {
	send     []byte // written with one Write
	bytewise bool   // write send one byte per Write instead
	want     []byte // the frames the server sends next, as on the wire; a Close is compared by its code
	eof      bool   // the server then closes the TCP connection, with nothing more sent
}

// A wireCase is one rule of RFC 6455. Its steps are run against our server
// and against gorilla's; when they do not end with the TCP connection
// closed, the closing handshake follows, so that every row also checks
// that the connection is still in step.
type wireCase struct {
	name  string
	steps []wireStep // the exchange with our server: the RFC outcome
	// fail, if not 0, is the close code with which our server then fails
	// the connection: it sends that Close, closes the TCP connection
	// without echoing anything more, and logs one "protocol error" line.
	fail int
	// gorilla is the exchange with the gorilla server where its outcome
	// differs from ours; nil means the same steps and fail.
	gorilla []wireStep
}

// sendOnly is the step that writes b and expects nothing back yet.
func sendOnly(b ...byte) []wireStep { return []wireStep{{send: b}} }

// closeStep closes a connection that is still open: Close 1000 from
// the client (masked, RFC 6455 §5.5.1) is answered with Close 1000, then
// the server closes the TCP connection (§7.1.1).
var closeStep = wireStep{
	send: []byte{0x88, 0x82, 0x37, 0xfa, 0x21, 0x3d, 0x34, 0x12}, // Close 1000, masked
	want: []byte{0x88, 0x02, 0x03, 0xe8},                         // Close 1000
	eof:  true,
}

// clientFrame returns a frame as a client sends it, masked with
// wireMaskKey: b0 is its first byte (FIN, RSV1-3, opcode).
func clientFrame(b0 byte, payload string) []byte {
	h := wsframe.Header{Fin: b0&0x80 != 0, Rsv: b0 & 0x70, Opcode: b0 & 0x0f, Masked: true, Key: wireMaskKey}
	return wsframe.AppendFrame(nil, h, []byte(payload))
}

// serverFrame returns a frame as a server sends it: FIN, unmasked.
func serverFrame(op byte, payload string) []byte {
	return wsframe.AppendFrame(nil, wsframe.Header{Fin: true, Opcode: op}, []byte(payload))
}

// clientClose returns a client's Close with code, any code at all, and
// reason.
func clientClose(code int, reason string) []byte {
	return clientFrame(0x80|wsframe.OpClose, string(binary.BigEndian.AppendUint16(nil, uint16(code)))+reason)
}

// serverClose returns a server's Close with code (its reason is not
// compared).
func serverClose(code int) []byte {
	return serverFrame(wsframe.OpClose, string(binary.BigEndian.AppendUint16(nil, uint16(code))))
}

// fragmented returns one message of type op in fragments, one per part
// (RFC 6455, Section 5.4).
func fragmented(op byte, parts ...string) []byte {
	var b []byte
	for i, p := range parts {
		b0 := op
		if i > 0 {
			b0 = wsframe.OpContinuation
		}
		if i == len(parts)-1 {
			b0 |= 0x80
		}
		b = append(b, clientFrame(b0, p)...)
	}
	return b
}

// cutFrame splits a frame after its header and the first n bytes of its payload.
func cutFrame(frame []byte, n int) (head, rest []byte) {
	_, hl, err := wsframe.ParseHeader(frame)
	if err != nil || hl == 0 || hl+n > len(frame) {
		panic("cut: not a frame")
	}
	return frame[:hl+n], frame[hl+n:]
}

// probePing is a Ping sent to gorilla after bytes our server fails on at
// once: its Pong (probePong) shows that gorilla has read them and not failed.
var (
	probePing = clientFrame(0x80|wsframe.OpPing, "probe")
	probePong = serverFrame(wsframe.OpPong, "probe")
)

// runWire runs each case against our server (with opts) and gorilla's, as
// subtests name/impl=xnet and name/impl=gorilla.
func runWire(t *testing.T, cases []wireCase, opts server.Options) {
	t.Helper()
	logs := &wireLogs{}
	urls := make(map[string]string)
	for _, impl := range impls {
		o := opts
		if impl == "xnet" {
			o.Logger = slog.New(&wireLogHandler{next: testLogger(t).Handler(), sink: logs})
		}
		urls[impl] = startServerOpts(t, impl, o)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, impl := range impls {
				t.Run("impl="+impl, func(t *testing.T) {
					t.Parallel()
					steps, fail := tc.steps, tc.fail
					if impl == "gorilla" && tc.gorilla != nil {
						steps, fail = tc.gorilla, 0
					}
					if fail != 0 {
						steps = append(slices.Clip(steps), wireStep{want: serverClose(fail), eof: true})
					} else if len(steps) == 0 || !steps[len(steps)-1].eof {
						steps = append(slices.Clip(steps), closeStep)
					}
					c := dialWire(t, urls[impl])
					c.run(t, steps)
					if impl == "xnet" {
						// The server logs the end of a connection before it
						// closes it, and the client has read that close.
						logs.check(t, c.nc.LocalAddr().String(), tc.fail)
					}
				})
			}
		})
	}
}

// TestWireBasic covers the echo of RFC 6455's own examples (§5.7).
func TestWireBasic(t *testing.T) {
	t.Parallel()
	bin256 := strings.Repeat("\x00\x01\xfe\xff", 64)
	bin64k := strings.Repeat("wsecho!\xff", 8192)
	runWire(t, []wireCase{
		{name: "masked_text", // RFC 6455 §5.7: a single-frame masked text message
			steps: []wireStep{{
				send: []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, // "Hello"
				want: []byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'},
			}}},
		{name: "binary", // RFC 6455 §5.6: binary data, §5.3: masked with 37 fa 21 3d
			steps: []wireStep{{
				send: []byte{0x82, 0x84, 0x37, 0xfa, 0x21, 0x3d, 0x37, 0xfb, 0xdf, 0xc2}, // 00 01 fe ff
				want: []byte{0x82, 0x04, 0x00, 0x01, 0xfe, 0xff},
			}}},
		{name: "three_fragments", // RFC 6455 §5.4, §5.7: echoed as one message (gorilla's ReadMessage joins too)
			steps: []wireStep{{
				send: []byte{
					0x01, 0x82, 0, 0, 0, 0, 'H', 'e', // text, not FIN: "He"
					0x00, 0x82, 0, 0, 0, 0, 'l', 'l', // continuation, not FIN: "ll"
					0x80, 0x81, 0, 0, 0, 0, 'o', // continuation, FIN: "o"
				},
				want: []byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'},
			}}},
		{name: "ping", // RFC 6455 §5.5.2, §5.7: a Pong with the Ping's payload
			steps: []wireStep{{
				send: []byte{0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, // Ping "Hello"
				want: []byte{0x8a, 0x05, 'H', 'e', 'l', 'l', 'o'},                              // Pong "Hello"
			}}},
		{name: "ping_empty", // RFC 6455 §5.5.2
			steps: []wireStep{{
				send: []byte{0x89, 0x80, 0x37, 0xfa, 0x21, 0x3d},
				want: []byte{0x8a, 0x00},
			}}},
		{name: "ping_125", // RFC 6455 §5.5: 125 bytes is the largest control payload
			steps: []wireStep{{
				send: clientFrame(0x89, strings.Repeat("p", 125)),
				want: serverFrame(wsframe.OpPong, strings.Repeat("p", 125)),
			}}},
		{name: "close_1000", // RFC 6455 §5.5.1: Close answered with Close, then TCP closes (§7.1.1)
			steps: []wireStep{{
				send: []byte{0x88, 0x82, 0x37, 0xfa, 0x21, 0x3d, 0x34, 0x12}, // Close 1000
				want: []byte{0x88, 0x02, 0x03, 0xe8},                         // Close 1000
				eof:  true,
			}}},
		{name: "length_16bit", // RFC 6455 §5.2, §5.7: 256 bytes, 16-bit extended length
			steps: []wireStep{{
				send: append([]byte{0x82, 0xfe, 0x01, 0x00, 0, 0, 0, 0}, bin256...),
				want: append([]byte{0x82, 0x7e, 0x01, 0x00}, bin256...),
			}}},
		{name: "length_64bit", // RFC 6455 §5.2, §5.7: 64 KiB, 64-bit extended length
			steps: []wireStep{{
				send: clientFrame(0x82, bin64k),
				want: append([]byte{0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}, bin64k...),
			}}},
		{name: "two_messages", // RFC 6455 §5.6: each message echoed in order, with its type
			steps: []wireStep{{
				send: []byte{
					0x81, 0x81, 0, 0, 0, 0, 'a', // text "a"
					0x82, 0x81, 0, 0, 0, 0, 'b', // binary "b"
				},
				want: []byte{0x81, 0x01, 'a', 0x82, 0x01, 'b'},
			}}},
	}, server.Options{})
}

// TestWireFraming covers the frame rules of RFC 6455 §5.1, §5.2 and §5.5,
// and failing the connection (§7.1.7): the server sends a Close, closes
// the TCP connection, and never echoes the offending data or what follows.
func TestWireFraming(t *testing.T) {
	t.Parallel()
	cases := []wireCase{
		{name: "rsv1", fail: 1002, // RFC 6455 §5.2: no extension was negotiated
			steps: sendOnly(0xc1, 0x82, 0, 0, 0, 0, 'h', 'i')},
		{name: "rsv2", fail: 1002, // RFC 6455 §5.2
			steps: sendOnly(0xa1, 0x82, 0, 0, 0, 0, 'h', 'i')},
		{name: "rsv3", fail: 1002, // RFC 6455 §5.2
			steps: sendOnly(0x91, 0x82, 0, 0, 0, 0, 'h', 'i')},
		{name: "rsv1_ping", fail: 1002, // RFC 6455 §5.2: control frames too
			steps: sendOnly(0xc9, 0x80, 0, 0, 0, 0)},
		{name: "ping_not_fin", fail: 1002, // RFC 6455 §5.5: control frames must not be fragmented
			steps: sendOnly(0x09, 0x80, 0, 0, 0, 0)},
		{name: "close_not_fin", fail: 1002, // RFC 6455 §5.5
			steps: sendOnly(0x08, 0x82, 0, 0, 0, 0, 0x03, 0xe8)},
		{name: "pong_not_fin", fail: 1002, // RFC 6455 §5.5
			steps: sendOnly(0x0a, 0x80, 0, 0, 0, 0)},
		{name: "ping_126", fail: 1002, // RFC 6455 §5.5: control payloads are at most 125 bytes
			steps: sendOnly(append([]byte{0x89, 0xfe, 0x00, 0x7e, 0, 0, 0, 0}, bytes.Repeat([]byte{'p'}, 126)...)...)},
		{name: "unmasked_text", fail: 1002, // RFC 6455 §5.1: a client masks every frame
			steps: sendOnly(0x81, 0x02, 'h', 'i')},
		{name: "unmasked_ping", fail: 1002, // RFC 6455 §5.1
			steps: sendOnly(0x89, 0x00)},
		{name: "length_msb_set", fail: 1002, // RFC 6455 §5.2: the most significant bit must be 0
			steps: sendOnly(0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0),
			// gorilla reads a negative length as ErrReadLimit and hangs up
			// without a Close.
			gorilla: []wireStep{{send: []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0}, eof: true}}},
		{name: "pong_unsolicited", // RFC 6455 §5.5.3: an unsolicited Pong needs no answer
			steps: []wireStep{{
				send: []byte{
					0x8a, 0x82, 0, 0, 0, 0, 'h', 'b', // Pong "hb"
					0x81, 0x82, 0, 0, 0, 0, 'h', 'i', // text "hi"
				},
				want: []byte{0x81, 0x02, 'h', 'i'},
			}}},
		{name: "echo_then_rsv1", fail: 1002, // RFC 6455 §7.1.7: what came before the violation is echoed
			steps: []wireStep{{
				send: []byte{
					0x81, 0x82, 0, 0, 0, 0, 'h', 'i', // text "hi"
					0xc1, 0x82, 0, 0, 0, 0, 'n', 'o', // RSV1 text "no"
				},
				want: []byte{0x81, 0x02, 'h', 'i'},
			}}},
		{name: "rsv1_then_text", fail: 1002, // RFC 6455 §7.1.7: nothing after the violation is echoed
			steps: sendOnly(
				0xc1, 0x82, 0, 0, 0, 0, 'n', 'o', // RSV1 text "no"
				0x81, 0x82, 0, 0, 0, 0, 'h', 'i', // text "hi"
			)},
		{name: "fragment_then_opcode_3", fail: 1002, // RFC 6455 §7.1.7: the open message is dropped
			steps: sendOnly(
				0x01, 0x82, 0, 0, 0, 0, 'h', 'i', // text, not FIN: "hi"
				0x83, 0x80, 0, 0, 0, 0, // reserved opcode 0x3
			)},
	}
	// RFC 6455 §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
	for _, op := range []byte{0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf} {
		cases = append(cases, wireCase{name: fmt.Sprintf("opcode=%#x", op), fail: 1002,
			steps: sendOnly(0x80|op, 0x82, 0, 0, 0, 0, 'h', 'i')})
	}
	runWire(t, cases, server.Options{})
}

// TestWireFragmentation covers RFC 6455 §5.4.
func TestWireFragmentation(t *testing.T) {
	t.Parallel()
	// One-byte fragments, written one byte per TCP write: every header and
	// every code point arrives cut.
	const multi = "Hé€𝄞" // 1-, 2-, 3- and 4-byte code points
	var oneByte []string
	for i := range len(multi) {
		oneByte = append(oneByte, multi[i:i+1])
	}
	runWire(t, []wireCase{
		{name: "ping_between_fragments", // RFC 6455 §5.4: control frames may come between fragments, §5.5.2: answered at once
			steps: []wireStep{{
				send: []byte{
					0x01, 0x83, 0, 0, 0, 0, 'H', 'e', 'l', // text, not FIN: "Hel"
					0x89, 0x84, 0, 0, 0, 0, 'p', 'i', 'n', 'g', // Ping "ping"
				},
				want: []byte{0x8a, 0x04, 'p', 'i', 'n', 'g'}, // Pong "ping", before the message ends
			}, {
				send: []byte{0x80, 0x82, 0, 0, 0, 0, 'l', 'o'}, // continuation, FIN: "lo"
				want: []byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'},
			}}},
		{name: "pong_between_fragments", // RFC 6455 §5.4, §5.5.3
			steps: []wireStep{{
				send: []byte{
					0x01, 0x82, 0, 0, 0, 0, 'h', 'e', // text, not FIN: "he"
					0x8a, 0x80, 0, 0, 0, 0, // Pong
					0x80, 0x82, 0, 0, 0, 0, 'y', '!', // continuation, FIN: "y!"
				},
				want: []byte{0x81, 0x04, 'h', 'e', 'y', '!'},
			}}},
		{name: "binary_fragments", // RFC 6455 §5.4: the first fragment gives the type
			steps: []wireStep{{
				send: []byte{
					0x02, 0x82, 0, 0, 0, 0, 0x00, 0xff, // binary, not FIN
					0x80, 0x81, 0, 0, 0, 0, 0x80, // continuation, FIN
				},
				want: []byte{0x82, 0x03, 0x00, 0xff, 0x80},
			}}},
		{name: "empty_fragments", // RFC 6455 §5.4: fragments may be empty
			steps: []wireStep{{
				send: []byte{
					0x01, 0x80, 0, 0, 0, 0, // text, not FIN: ""
					0x00, 0x82, 0, 0, 0, 0, 'h', 'i', // continuation, not FIN: "hi"
					0x80, 0x80, 0, 0, 0, 0, // continuation, FIN: ""
				},
				want: []byte{0x81, 0x02, 'h', 'i'},
			}}},
		{name: "continuation_no_message", fail: 1002, // RFC 6455 §5.4: a continuation needs an open message
			steps: sendOnly(0x80, 0x82, 0, 0, 0, 0, 'h', 'i')},
		{name: "continuation_after_message", fail: 1002, // RFC 6455 §5.4: the FIN frame ended the message
			steps: []wireStep{{
				send: []byte{
					0x81, 0x82, 0, 0, 0, 0, 'h', 'i', // text, FIN: "hi"
					0x80, 0x82, 0, 0, 0, 0, 'h', 'o', // continuation, FIN: "ho"
				},
				want: []byte{0x81, 0x02, 'h', 'i'},
			}}},
		{name: "text_inside_message", fail: 1002, // RFC 6455 §5.4: fragments of one message are not interleaved
			steps: sendOnly(
				0x01, 0x82, 0, 0, 0, 0, 'h', 'i', // text, not FIN
				0x81, 0x82, 0, 0, 0, 0, 'h', 'o', // text, FIN
			)},
		{name: "binary_inside_message", fail: 1002, // RFC 6455 §5.4
			steps: sendOnly(
				0x01, 0x82, 0, 0, 0, 0, 'h', 'i', // text, not FIN
				0x82, 0x82, 0, 0, 0, 0, 'h', 'o', // binary, FIN
			)},
		{name: "close_inside_message", // RFC 6455 §5.4, §5.5.1: the open message is dropped
			steps: []wireStep{{
				send: []byte{
					0x01, 0x82, 0, 0, 0, 0, 'h', 'i', // text, not FIN
					0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8, // Close 1000
				},
				want: []byte{0x88, 0x02, 0x03, 0xe8},
				eof:  true,
			}}},
		{name: "one_byte_writes", // RFC 6455 §5.4: one-byte fragments, each byte its own TCP write
			steps: []wireStep{{
				send:     fragmented(wsframe.OpText, oneByte...),
				bytewise: true,
				want:     serverFrame(wsframe.OpText, multi),
			}}},
	}, server.Options{})
}

// TestWireUTF8 covers RFC 6455 §8.1: text must be UTF-8, and a server
// fails the connection with 1007 as soon as the bytes it has cannot begin
// valid UTF-8, before the rest of the message is sent. gorilla's echo
// loop does not validate text, so the table records that it echoes the
// invalid bytes.
func TestWireUTF8(t *testing.T) {
	t.Parallel()
	const valid = "κόσμε"
	cases := []wireCase{
		{name: "valid", // RFC 6455 §8.1
			steps: []wireStep{{send: clientFrame(0x81, valid), want: serverFrame(wsframe.OpText, valid)}}},
		{name: "binary_not_utf8", // RFC 6455 §5.6: binary data is not checked
			steps: []wireStep{{
				send: []byte{0x82, 0x82, 0, 0, 0, 0, 0xff, 0xfe},
				want: []byte{0x82, 0x02, 0xff, 0xfe},
			}}},
		{name: "ping_inside_code_point", // RFC 6455 §5.4, §8.1: a Ping between the two halves of "€"
			steps: []wireStep{{
				send: []byte{
					0x01, 0x82, 0, 0, 0, 0, 'a', 0xe2, // text, not FIN: "a" and half of "€"
					0x89, 0x81, 0, 0, 0, 0, 'p', // Ping "p"
				},
				want: []byte{0x8a, 0x01, 'p'},
			}, {
				send: []byte{0x80, 0x82, 0, 0, 0, 0, 0x82, 0xac}, // continuation, FIN: the rest of "€"
				want: []byte{0x81, 0x04, 'a', 0xe2, 0x82, 0xac},
			}}},
		{name: "truncated_frame", fail: 1007, // RFC 6455 §8.1: the message ends inside a code point
			steps:   sendOnly(0x81, 0x83, 0, 0, 0, 0, 'a', 0xe2, 0x82),
			gorilla: []wireStep{{send: []byte{0x81, 0x83, 0, 0, 0, 0, 'a', 0xe2, 0x82}, want: []byte{0x81, 0x03, 'a', 0xe2, 0x82}}}},
		{name: "truncated_message", fail: 1007, // RFC 6455 §8.1: the last fragment ends inside a code point
			steps: sendOnly(
				0x01, 0x82, 0, 0, 0, 0, 'a', 0xe2, // text, not FIN
				0x80, 0x81, 0, 0, 0, 0, 0x82, // continuation, FIN
			),
			gorilla: []wireStep{{
				send: []byte{
					0x01, 0x82, 0, 0, 0, 0, 'a', 0xe2,
					0x80, 0x81, 0, 0, 0, 0, 0x82,
				},
				want: []byte{0x81, 0x03, 'a', 0xe2, 0x82},
			}}},
	}
	// A valid message split into two fragments at every byte position,
	// inside each code point too, is echoed intact.
	const split = "κ€𝄞"
	for i := range len(split) + 1 {
		cases = append(cases, wireCase{name: fmt.Sprintf("split=%d", i), // RFC 6455 §5.4, §8.1
			steps: []wireStep{{
				send: fragmented(wsframe.OpText, split[:i], split[i:]),
				want: serverFrame(wsframe.OpText, split),
			}}})
	}
	// Each invalid sequence (RFC 3629, Section 3) fails the connection
	// with 1007 (RFC 6455, Section 8.1) as soon as it arrives: in a whole
	// frame, in the first or a middle fragment before the last is sent,
	// and inside one frame before the rest of its payload is sent.
	for _, s := range []struct{ name, seq string }{
		{"byte_ff", "\xff"},                  // never appears in UTF-8
		{"overlong", "\xc0\xaf"},             // "/" in two bytes
		{"overlong_3", "\xe0\x80\xaf"},       // "/" in three bytes
		{"surrogate", "\xed\xa0\x80"},        // U+D800
		{"above_max", "\xf4\x90\x80\x80"},    // U+110000
		{"bad_continuation", "\xe2\x28\xa1"}, // a lead byte, then ASCII
		{"lone_continuation", "\x80"},        // a continuation byte with no lead
	} {
		bad := "a" + s.seq
		whole := clientFrame(0x81, bad+"z")
		first := clientFrame(0x01, bad)
		middle := append(clientFrame(0x01, "ab"), clientFrame(0x00, s.seq)...)
		last := clientFrame(0x80, "z")
		head, rest := cutFrame(clientFrame(0x81, bad+"xyz"), len(bad))
		cases = append(cases,
			wireCase{name: s.name + "_frame", fail: 1007,
				steps:   sendOnly(whole...),
				gorilla: []wireStep{{send: whole, want: serverFrame(wsframe.OpText, bad+"z")}}},
			wireCase{name: s.name + "_first_fragment", fail: 1007,
				steps: sendOnly(first...),
				gorilla: []wireStep{
					{send: append(slices.Clip(first), probePing...), want: probePong},
					{send: last, want: serverFrame(wsframe.OpText, bad+"z")},
				}},
			wireCase{name: s.name + "_middle_fragment", fail: 1007,
				steps: sendOnly(middle...),
				gorilla: []wireStep{
					{send: append(slices.Clip(middle), probePing...), want: probePong},
					{send: last, want: serverFrame(wsframe.OpText, "ab"+s.seq+"z")},
				}},
			wireCase{name: s.name + "_partial_frame", fail: 1007,
				steps: sendOnly(head...),
				gorilla: []wireStep{
					{send: head},
					{send: rest, want: serverFrame(wsframe.OpText, bad+"xyz")},
				}},
		)
	}
	runWire(t, cases, server.Options{})
}

// TestWireClose covers the closing handshake: RFC 6455 §5.5.1, §7.1 and
// the close codes of §7.4.
func TestWireClose(t *testing.T) {
	t.Parallel()
	cases := []wireCase{
		{name: "empty", // RFC 6455 §5.5.1: a Close with no code is answered with an empty Close
			steps: []wireStep{{
				send: []byte{0x88, 0x80, 0x37, 0xfa, 0x21, 0x3d},
				want: []byte{0x88, 0x00},
				eof:  true,
			}}},
		{name: "one_byte", fail: 1002, // RFC 6455 §5.5.1: a body starts with a 2-byte code
			steps: sendOnly(0x88, 0x81, 0, 0, 0, 0, 0x03),
			// gorilla reads a body shorter than 2 bytes as "no code" and
			// answers with an empty Close.
			gorilla: []wireStep{{send: []byte{0x88, 0x81, 0, 0, 0, 0, 0x03}, want: []byte{0x88, 0x00}, eof: true}}},
		{name: "reason", // RFC 6455 §5.5.1: the reason follows the code
			steps: []wireStep{{send: clientClose(1000, "bye"), want: serverClose(1000), eof: true}}},
		{name: "reason_123", // RFC 6455 §5.5: the largest Close body, 2 + 123 bytes
			steps: []wireStep{{send: clientClose(1000, strings.Repeat("r", 123)), want: serverClose(1000), eof: true}}},
		{name: "reason_invalid_utf8", fail: 1007, // RFC 6455 §5.5.1: the reason is UTF-8, §8.1
			steps: sendOnly(0x88, 0x83, 0, 0, 0, 0, 0x03, 0xe8, 0xff),
			// gorilla fails a Close with an invalid reason with 1002.
			gorilla: []wireStep{{send: []byte{0x88, 0x83, 0, 0, 0, 0, 0x03, 0xe8, 0xff}, want: serverClose(1002), eof: true}}},
		{name: "data_after_close", // RFC 6455 §5.5.1: data after a Close is not echoed
			steps: []wireStep{{
				send: []byte{
					0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8, // Close 1000
					0x81, 0x82, 0, 0, 0, 0, 'h', 'i', // text "hi"
				},
				want: []byte{0x88, 0x02, 0x03, 0xe8},
				eof:  true,
			}}},
		{name: "ping_after_close", // RFC 6455 §5.5.1: no frame follows the server's Close
			steps: []wireStep{{
				send: []byte{
					0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8, // Close 1000
					0x89, 0x80, 0, 0, 0, 0, // Ping
				},
				want: []byte{0x88, 0x02, 0x03, 0xe8},
				eof:  true,
			}}},
		{name: "message_then_close", // RFC 6455 §7.1.2: a message before the Close is echoed first
			steps: []wireStep{{
				send: []byte{
					0x81, 0x82, 0, 0, 0, 0, 'h', 'i', // text "hi"
					0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8, // Close 1000
				},
				want: []byte{0x81, 0x02, 'h', 'i', 0x88, 0x02, 0x03, 0xe8},
				eof:  true,
			}}},
	}
	// RFC 6455 §7.4.1, §7.4.2 and the IANA registry: codes a peer may
	// send are answered with the same code.
	for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		tc := wireCase{name: fmt.Sprintf("code=%d", code),
			steps: []wireStep{{send: clientClose(code, ""), want: serverClose(code), eof: true}}}
		if code == 1014 {
			// gorilla's list of valid codes stops at 1013: it fails the
			// connection on 1014 (Bad Gateway, registered with IANA).
			tc.gorilla = []wireStep{{send: clientClose(code, ""), want: serverClose(1002), eof: true}}
		}
		cases = append(cases, tc)
	}
	// RFC 6455 §7.4.1, §7.4.2: codes a peer must not send fail the
	// connection with 1002.
	for _, code := range []int{0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535} {
		cases = append(cases, wireCase{name: fmt.Sprintf("code=%d", code), fail: 1002,
			steps: sendOnly(clientClose(code, "")...)})
	}
	runWire(t, cases, server.Options{})
}

// TestWireMessageTooBig covers the message size limit (RFC 6455, Sections
// 7.4.1 and 10.4): our server, with MaxMessage wireLimit, fails a larger
// message with 1009 as soon as a frame header says it is too big, before
// the payload or the last fragment is sent. gorilla's default Upgrader has
// no limit: it echoes these messages.
func TestWireMessageTooBig(t *testing.T) {
	t.Parallel()
	cases := []wireCase{
		{name: "at_limit", // RFC 6455 §10.4: the limit itself is allowed
			steps: []wireStep{{
				send: clientFrame(0x82, strings.Repeat("b", wireLimit)),
				want: serverFrame(wsframe.OpBinary, strings.Repeat("b", wireLimit)),
			}}},
		{name: "fragments_at_limit", // RFC 6455 §5.4, §10.4: the limit counts the message
			steps: []wireStep{{
				send: fragmented(wsframe.OpText, strings.Repeat("t", 40), strings.Repeat("u", wireLimit-40)),
				want: serverFrame(wsframe.OpText, strings.Repeat("t", 40)+strings.Repeat("u", wireLimit-40)),
			}}},
		{name: "control_not_counted", // RFC 6455 §5.5: a Ping inside a message is not part of it
			steps: []wireStep{{
				send: slices.Concat(
					clientFrame(0x01, strings.Repeat("t", wireLimit/2)),
					clientFrame(0x89, strings.Repeat("p", 125)),
					clientFrame(0x80, strings.Repeat("u", wireLimit/2)),
				),
				want: slices.Concat(
					serverFrame(wsframe.OpPong, strings.Repeat("p", 125)),
					serverFrame(wsframe.OpText, strings.Repeat("t", wireLimit/2)+strings.Repeat("u", wireLimit/2)),
				),
			}}},
	}
	// One frame over the limit, with a 7-bit, 16-bit and 64-bit length: we
	// send its header only.
	for _, n := range []int{wireLimit + 1, 200, 70000} {
		payload := strings.Repeat("x", n)
		head, rest := cutFrame(clientFrame(0x82, payload), 0)
		cases = append(cases, wireCase{name: fmt.Sprintf("header_len=%d", n), fail: 1009, // RFC 6455 §10.4
			steps: sendOnly(head...),
			gorilla: []wireStep{
				{send: head},
				{send: rest, want: serverFrame(wsframe.OpBinary, payload)},
			}})
	}
	// A fragmented message whose running total passes the limit fails
	// before its last fragment is sent.
	for _, m := range []struct {
		name string
		op   byte
	}{{"text", wsframe.OpText}, {"binary", wsframe.OpBinary}} {
		over := append(clientFrame(m.op, strings.Repeat("f", 40)), clientFrame(0x00, strings.Repeat("g", 30))...)
		cases = append(cases, wireCase{name: m.name + "_fragments_over_limit", fail: 1009, // RFC 6455 §5.4, §10.4
			steps: sendOnly(over...),
			gorilla: []wireStep{
				{send: append(slices.Clip(over), probePing...), want: probePong},
				{send: clientFrame(0x80, "!"), want: serverFrame(m.op, strings.Repeat("f", 40)+strings.Repeat("g", 30)+"!")},
			}})
	}
	runWire(t, cases, server.Options{MaxMessage: wireLimit})
}

// TestHandshake covers the opening handshake (RFC 6455, Section 4.2): the
// §1.3 sample key, and requests a server must refuse with an HTTP error
// and a complete response (the connection is not left hanging).
func TestHandshake(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		req     string // the request; %s is the host
		status  int    // our server's status
		gorilla int    // gorilla's status where it differs
		header  string // a header the response must carry, as "Name: value"
	}{
		{name: "ok", // RFC 6455 §1.3, §4.2.2
			req:    handshakeRequest,
			status: http.StatusSwitchingProtocols, header: "Sec-WebSocket-Accept: " + wireAccept},
		{name: "key_10_bytes", // RFC 6455 §4.1 point 7: the key is the base64 of 16 bytes
			req: "GET /echo HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
			status: http.StatusBadRequest},
		{name: "key_not_base64", // RFC 6455 §4.1 point 7
			req: "GET /echo HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: the sample nonce\r\nSec-WebSocket-Version: 13\r\n\r\n",
			status: http.StatusBadRequest},
		{name: "key_missing", // RFC 6455 §4.2.1 point 5
			req: "GET /echo HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Version: 13\r\n\r\n",
			status: http.StatusBadRequest},
		{name: "version_12", // RFC 6455 §4.2.2 point 4: "such as 426", with the versions supported
			req: "GET /echo HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 12\r\n\r\n",
			// gorilla answers 400, as in the example of RFC 6455 §4.4.
			status: http.StatusUpgradeRequired, gorilla: http.StatusBadRequest, header: "Sec-WebSocket-Version: 13"},
		{name: "version_missing", // RFC 6455 §4.2.1 point 6
			req: "GET /echo HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
			status: http.StatusUpgradeRequired, gorilla: http.StatusBadRequest, header: "Sec-WebSocket-Version: 13"},
		{name: "no_upgrade_headers", // RFC 6455 §4.2.1 points 3 and 4: a plain HTTP request
			req:    "GET /echo HTTP/1.1\r\nHost: %s\r\n\r\n",
			status: http.StatusBadRequest},
		{name: "method_post", // RFC 6455 §4.2.1 point 1: the method is GET
			req: "POST /echo HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n",
			status: http.StatusMethodNotAllowed},
	}
	urls := make(map[string]string)
	for _, impl := range impls {
		urls[impl] = startServer(t, impl)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, impl := range impls {
				t.Run("impl="+impl, func(t *testing.T) {
					t.Parallel()
					want := tc.status
					if impl == "gorilla" && tc.gorilla != 0 {
						want = tc.gorilla
					}
					nc, br, host := rawDial(t, urls[impl])
					if _, err := fmt.Fprintf(nc, tc.req, host); err != nil {
						t.Fatalf("write handshake: %v", err)
					}
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("read handshake response: %v", err)
					}
					if resp.StatusCode != want {
						t.Fatalf("status: got %d, want %d", resp.StatusCode, want)
					}
					if tc.header != "" {
						name, value, _ := strings.Cut(tc.header, ": ")
						if got := resp.Header.Get(name); got != value {
							t.Errorf("%s: got %q, want %q", name, got, value)
						}
					}
					if want == http.StatusSwitchingProtocols {
						checkWireUpgrade(t, resp)
						c := &wireConn{nc: nc, br: br}
						c.run(t, []wireStep{closeStep})
						return
					}
					// The error comes as a short text, and whole: reading it
					// to its end does not wait for the deadline.
					body, err := io.ReadAll(resp.Body)
					if err != nil {
						t.Fatalf("read error body: %v", err)
					}
					if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
						t.Errorf("Content-Type: got %q, want text/plain", ct)
					}
					if len(body) == 0 || len(body) > 200 || !utf8.Valid(body) {
						t.Errorf("body: got %q, want a short text", body)
					}
				})
			}
		})
	}
}

// rawDial opens a TCP connection to the host of wsURL, with a deadline of
// wireTimeout, closed when the test ends.
func rawDial(t *testing.T, wsURL string) (nc net.Conn, br *bufio.Reader, host string) {
	t.Helper()
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	nc, err = net.DialTimeout("tcp", u.Host, wireTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", u.Host, err)
	}
	t.Cleanup(func() { nc.Close() })
	if err := nc.SetDeadline(time.Now().Add(wireTimeout)); err != nil {
		t.Fatal(err)
	}
	return nc, bufio.NewReader(nc), u.Host
}

// wireConn is the client end of a WebSocket connection, spoken raw.
type wireConn struct {
	nc net.Conn
	br *bufio.Reader // frames that came with the handshake response are here
}

// dialWire connects to wsURL and does the opening handshake with the
// RFC 6455 §1.3 sample key.
func dialWire(t *testing.T, wsURL string) *wireConn {
	t.Helper()
	nc, br, host := rawDial(t, wsURL)
	if _, err := fmt.Fprintf(nc, handshakeRequest, host); err != nil {
		t.Fatalf("write handshake: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read handshake response: %v", err)
	}
	checkWireUpgrade(t, resp)
	return &wireConn{nc: nc, br: br}
}

// checkWireUpgrade checks a handshake response to the §1.3 sample key
// (RFC 6455, Section 4.2.2).
func checkWireUpgrade(t *testing.T, resp *http.Response) {
	t.Helper()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status: got %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != wireAccept {
		t.Fatalf("Sec-WebSocket-Accept: got %q, want %q", got, wireAccept)
	}
	if got := resp.Header.Get("Upgrade"); !strings.EqualFold(got, "websocket") {
		t.Errorf("Upgrade: got %q, want websocket", got)
	}
	if got := resp.Header.Get("Connection"); !strings.EqualFold(got, "upgrade") {
		t.Errorf("Connection: got %q, want Upgrade", got)
	}
}

// run plays steps and stops the test at the first difference.
func (c *wireConn) run(t *testing.T, steps []wireStep) {
	t.Helper()
	for i, s := range steps {
		if s.bytewise {
			for j := range s.send {
				if _, err := c.nc.Write(s.send[j : j+1]); err != nil {
					t.Fatalf("wireStep %d: write byte %d: %v", i, j, err)
				}
			}
		} else if len(s.send) > 0 {
			if _, err := c.nc.Write(s.send); err != nil {
				t.Fatalf("wireStep %d: write: %v", i, err)
			}
		}
		want, err := readWireFrames(bufio.NewReader(bytes.NewReader(s.want)))
		if err != nil {
			t.Fatalf("wireStep %d: bad want in the table: %v", i, err)
		}
		for j, w := range want {
			got, err := readWireFrame(c.br)
			if err != nil {
				t.Fatalf("wireStep %d: frame %d: got %v, want %v", i, j, err, w)
			}
			if !got.matches(w) {
				t.Fatalf("wireStep %d: frame %d: got %v, want %v", i, j, got, w)
			}
		}
		if s.eof {
			switch f, err := readWireFrame(c.br); {
			case err == nil:
				t.Fatalf("wireStep %d: got %v, want the TCP connection closed", i, f)
			case !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET):
				t.Fatalf("wireStep %d: got %v, want the TCP connection closed", i, err)
			}
		}
	}
}

// wireFrame is one frame as read off the wire, unmasked.
type wireFrame struct {
	fin     bool
	rsv     byte
	op      byte
	masked  bool
	payload []byte
}

// matches reports whether f is the frame want: the same header bits and
// payload, except that a Close is compared by its code and must carry a
// UTF-8 reason.
func (f wireFrame) matches(want wireFrame) bool {
	if f.fin != want.fin || f.rsv != want.rsv || f.op != want.op || f.masked != want.masked {
		return false
	}
	if f.op == wsframe.OpClose && len(want.payload) >= 2 {
		return len(f.payload) >= 2 && bytes.Equal(f.payload[:2], want.payload[:2]) && utf8.Valid(f.payload[2:])
	}
	return bytes.Equal(f.payload, want.payload)
}

func (f wireFrame) String() string {
	var b strings.Builder
	switch f.op {
	case wsframe.OpContinuation:
		b.WriteString("continuation")
	case wsframe.OpText:
		b.WriteString("text")
	case wsframe.OpBinary:
		b.WriteString("binary")
	case wsframe.OpClose:
		b.WriteString("close")
	case wsframe.OpPing:
		b.WriteString("ping")
	case wsframe.OpPong:
		b.WriteString("pong")
	default:
		fmt.Fprintf(&b, "opcode %#x", f.op)
	}
	if !f.fin {
		b.WriteString(" (not FIN)")
	}
	if f.rsv != 0 {
		fmt.Fprintf(&b, " (RSV %#x)", f.rsv)
	}
	if f.masked {
		b.WriteString(" (masked)")
	}
	p := f.payload
	if f.op == wsframe.OpClose && len(p) >= 2 {
		fmt.Fprintf(&b, " %d", binary.BigEndian.Uint16(p))
		p = p[2:]
	}
	if len(p) > 32 {
		fmt.Fprintf(&b, " %q… (%d bytes)", p[:32], len(p))
	} else {
		fmt.Fprintf(&b, " %q", p)
	}
	return b.String()
}

// readWireFrame reads one frame. It returns io.EOF if the stream ends before
// the frame begins, io.ErrUnexpectedEOF if inside it.
func readWireFrame(r *bufio.Reader) (wireFrame, error) {
	b, err := r.Peek(2)
	if err == nil {
		b, err = r.Peek(wsframe.HeaderLen(b[1]))
	}
	if err != nil {
		if err == io.EOF && len(b) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return wireFrame{}, err
	}
	h, hl, err := wsframe.ParseHeader(b)
	if err != nil {
		return wireFrame{}, err
	}
	if h.Length > 1<<20 {
		return wireFrame{}, fmt.Errorf("frame of %d bytes", h.Length)
	}
	r.Discard(hl)
	f := wireFrame{fin: h.Fin, rsv: h.Rsv, op: h.Opcode, masked: h.Masked, payload: make([]byte, h.Length)}
	if _, err := io.ReadFull(r, f.payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return wireFrame{}, err
	}
	if h.Masked {
		wsframe.Mask(h.Key, 0, f.payload)
	}
	return f, nil
}

// readWireFrames reads frames to the end of r.
func readWireFrames(r *bufio.Reader) ([]wireFrame, error) {
	var fs []wireFrame
	for {
		f, err := readWireFrame(r)
		if err == io.EOF {
			return fs, nil
		}
		if err != nil {
			return fs, err
		}
		fs = append(fs, f)
	}
}

// wireLogs keeps the records our server logs in a wire test.
type wireLogs struct {
	mu   sync.Mutex
	recs []wireLogRecord
}

type wireLogRecord struct {
	level  slog.Level
	msg    string
	remote string
	code   int64
}

// check checks the lines our server logged for the connection from remote:
// one line for its end, which is a "protocol error" warning with the close
// code fail if the server failed the connection.
func (s *wireLogs) check(t *testing.T, remote string, fail int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var ends []wireLogRecord
	for _, r := range s.recs {
		if r.remote == remote && (r.msg == "closed" || r.msg == "protocol error") {
			ends = append(ends, r)
		}
	}
	if len(ends) != 1 {
		t.Fatalf("server log: got %d lines for the end of the connection, want 1: %+v", len(ends), ends)
	}
	got := ends[0]
	switch {
	case fail != 0 && (got.msg != "protocol error" || got.level != slog.LevelWarn || got.code != int64(fail)):
		t.Errorf("server log: got %s %q code=%d, want WARN \"protocol error\" code=%d", got.level, got.msg, got.code, fail)
	case fail == 0 && got.msg != "closed":
		t.Errorf("server log: got %s %q code=%d, want \"closed\"", got.level, got.msg, got.code)
	}
}

// wireLogHandler records the message, remote and code of each record in a
// wireLogs, and passes the record on.
type wireLogHandler struct {
	next  slog.Handler
	sink  *wireLogs
	attrs []slog.Attr // from WithAttrs; the server uses no groups
}

func (h *wireLogHandler) Enabled(ctx context.Context, l slog.Level) bool { return true }

func (h *wireLogHandler) Handle(ctx context.Context, r slog.Record) error {
	rec := wireLogRecord{level: r.Level, msg: r.Message}
	visit := func(a slog.Attr) bool {
		switch a.Key {
		case "remote":
			rec.remote = a.Value.String()
		case "code":
			if a.Value.Kind() == slog.KindInt64 {
				rec.code = a.Value.Int64()
			}
		}
		return true
	}
	for _, a := range h.attrs {
		visit(a)
	}
	r.Attrs(visit)
	h.sink.mu.Lock()
	h.sink.recs = append(h.sink.recs, rec)
	h.sink.mu.Unlock()
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *wireLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &wireLogHandler{next: h.next.WithAttrs(as), sink: h.sink, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h *wireLogHandler) WithGroup(name string) slog.Handler {
	return &wireLogHandler{next: h.next.WithGroup(name), sink: h.sink, attrs: h.attrs}
}

// deflateRequest is handshakeRequest with Sec-WebSocket-Extensions: %s is
// the host, %s the offer.
const deflateRequest = "GET /echo HTTP/1.1\r\n" +
	"Host: %s\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Sec-WebSocket-Extensions: %s\r\n" +
	"\r\n"

// deflateImpls are the servers the permessage-deflate wire tests compare:
// ours, and gorilla's with EnableCompression.
var deflateImpls = []string{"xnet", "gorilla-deflate"}

// dialDeflate connects to wsURL with offer in Sec-WebSocket-Extensions and
// returns the connection and the response's Sec-WebSocket-Extensions.
func dialDeflate(t *testing.T, wsURL, offer string) (*wireConn, string) {
	t.Helper()
	nc, br, host := rawDial(t, wsURL)
	if _, err := fmt.Fprintf(nc, deflateRequest, host, offer); err != nil {
		t.Fatalf("write handshake: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read handshake response: %v", err)
	}
	checkWireUpgrade(t, resp)
	return &wireConn{nc: nc, br: br}, strings.Join(resp.Header.Values("Sec-WebSocket-Extensions"), ", ")
}

// TestWireDeflateNegotiation is every negotiation case of RFC 7692 (Sections
// 5-7) against our server and gorilla's with EnableCompression: the
// Sec-WebSocket-Extensions of the response to each offer ("" declined).
// gorilla accepts any offer named permessage-deflate with the same answer,
// whatever its parameters: it never answers server_max_window_bits (which
// RFC 7692 Section 7.1.2.1 requires when accepting it, and which gorilla
// does not honour: its compressor always uses 15 bits) and accepts offers
// with unknown, repeated or invalid parameters, which a server must
// decline (Section 7), and offers in a header it cannot parse.
func TestWireDeflateNegotiation(t *testing.T) {
	t.Parallel()
	const pmd = "permessage-deflate"
	const ours = pmd + "; server_no_context_takeover; client_no_context_takeover"
	const gorillas = ours // gorilla's one answer
	tests := []struct {
		name         string
		offer        string
		want         string
		gorilla      string // gorilla's answer where it differs ("-": the same)
		rfcViolation bool   // gorilla's answer breaks RFC 7692
	}{
		{name: "other_extension", offer: "x-webkit-deflate-frame", want: "", gorilla: "-"},
		{name: "plain", offer: pmd, want: ours, gorilla: "-"},
		{name: "chrome", offer: pmd + "; client_max_window_bits", want: ours, gorilla: "-"},
		{name: "firefox_like", offer: pmd + "; client_no_context_takeover; server_no_context_takeover", want: ours, gorilla: "-"},
		{name: "server_bits_8", offer: pmd + "; server_max_window_bits=8", want: ours + "; server_max_window_bits=8", gorilla: gorillas, rfcViolation: true},
		{name: "server_bits_9", offer: pmd + "; server_max_window_bits=9", want: ours + "; server_max_window_bits=9", gorilla: gorillas, rfcViolation: true},
		{name: "server_bits_15", offer: pmd + "; server_max_window_bits=15", want: ours + "; server_max_window_bits=15", gorilla: gorillas, rfcViolation: true},
		{name: "client_bits_10", offer: pmd + "; client_max_window_bits=10", want: ours + "; client_max_window_bits=10", gorilla: gorillas},
		{name: "bits_7", offer: pmd + "; server_max_window_bits=7", want: "", gorilla: gorillas, rfcViolation: true},
		{name: "bits_16", offer: pmd + "; client_max_window_bits=16", want: "", gorilla: gorillas, rfcViolation: true},
		{name: "bits_leading_zero", offer: pmd + "; server_max_window_bits=09", want: "", gorilla: gorillas, rfcViolation: true},
		{name: "server_bits_no_value", offer: pmd + "; server_max_window_bits", want: "", gorilla: gorillas, rfcViolation: true},
		{name: "flag_with_value", offer: pmd + "; client_no_context_takeover=1", want: "", gorilla: gorillas, rfcViolation: true},
		{name: "unknown_param", offer: pmd + "; foo=bar", want: "", gorilla: gorillas, rfcViolation: true},
		{name: "duplicate_param", offer: pmd + "; server_no_context_takeover; server_no_context_takeover", want: "", gorilla: gorillas, rfcViolation: true},
		{name: "first_acceptable_of_several", offer: pmd + "; foo, " + pmd + "; server_max_window_bits=10", want: ours + "; server_max_window_bits=10", gorilla: gorillas, rfcViolation: true},
		{name: "malformed", offer: pmd + `; server_max_window_bits="10`, want: "", gorilla: gorillas},
	}
	urls := map[string]string{}
	for _, impl := range deflateImpls {
		urls[impl] = startServerOpts(t, impl, server.Options{})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, impl := range deflateImpls {
				t.Run("impl="+impl, func(t *testing.T) {
					t.Parallel()
					want := tc.want
					if impl != "xnet" && tc.gorilla != "-" {
						want = tc.gorilla
					}
					c, got := dialDeflate(t, urls[impl], tc.offer)
					if got != want {
						t.Fatalf("offer %q: answer %q, want %q", tc.offer, got, want)
					}
					if impl == "xnet" {
						if tc.rfcViolation && want == tc.gorilla {
							t.Errorf("our answer is gorilla's, recorded as breaking RFC 7692")
						}
						// The answer parses as RFC 7692 says a client must check it.
						if _, _, err := wsframe.CheckDeflateResponse([]string{got}); got != "" && err != nil {
							t.Errorf("our answer %q: %v", got, err)
						}
					}
					c.run(t, []wireStep{closeStep})
				})
			}
		})
	}
}

// deflateReply is what a server sends back for one step of a
// permessage-deflate wire test: a message (inflated when it came with
// RSV1), or a Close code.
type deflateReply struct {
	op         byte
	data       string
	compressed bool
	code       int  // a Close: its code
	eof        bool // the server closed the TCP connection with no Close
}

// readDeflateReply reads the next message or Close from the server,
// joining fragments and inflating a compressed message.
func readDeflateReply(t *testing.T, br *bufio.Reader) deflateReply {
	t.Helper()
	var r deflateReply
	var payload []byte
	for first := true; ; {
		f, err := readWireFrame(br)
		if err == io.EOF && first {
			return deflateReply{eof: true}
		}
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		if f.op == wsframe.OpClose {
			if len(f.payload) >= 2 {
				r.code = int(binary.BigEndian.Uint16(f.payload))
			}
			return r
		}
		if wsframe.IsControl(f.op) {
			continue
		}
		if first {
			r.op, r.compressed = f.op, f.rsv&0x40 != 0
			first = false
		} else if f.rsv != 0 {
			t.Fatalf("RSV bits %#x on a continuation frame", f.rsv)
		}
		payload = append(payload, f.payload...)
		if f.fin {
			break
		}
	}
	if r.compressed {
		var z wsframe.Inflater
		z.Reset(bytes.NewReader(payload), 1<<30)
		out, err := io.ReadAll(&z)
		if err != nil {
			t.Fatalf("inflate the server's message: %v", err)
		}
		payload = out
	}
	r.data = string(payload)
	return r
}

// deflateFrame is a masked client frame: RSV1 set when compressed.
func deflateFrame(fin, compressed bool, op byte, payload []byte) []byte {
	h := wsframe.Header{Fin: fin, Opcode: op, Masked: true, Key: wireMaskKey}
	if compressed {
		h.Rsv = 0x40
	}
	return wsframe.AppendFrame(nil, h, payload)
}

// TestWireDeflateFraming is every framing case of RFC 7692 against our
// server and gorilla's with EnableCompression, after a plain offer
// accepted by both: compressed messages whole and fragmented, uncompressed
// ones, RSV1 where it is not allowed, data that does not inflate, and the
// limit on inflated size. Differences are recorded as gorilla's outcome.
func TestWireDeflateFraming(t *testing.T) {
	t.Parallel()
	compress := func(s string) []byte { return wsframe.NewCompressor(false, 15).Compress(nil, []byte(s)) }
	ticks := strings.Repeat(`{"symbol":"BTC-USD","price":43125.17,"size":0.25}`, 80)
	small := "tiny"
	hello := []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00} // RFC 7692 §7.2.3.1
	comp := compress(ticks)
	bomb := func() []byte { // about 65 KB that inflate to 64 MiB of zeros
		var b bytes.Buffer
		fw, _ := flate.NewWriter(&b, flate.BestCompression)
		zeros := make([]byte, 1<<20)
		for range 64 {
			fw.Write(zeros)
		}
		fw.Flush()
		return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
	}
	const limit = 1 << 20
	tests := []struct {
		name    string
		send    [][]byte
		want    deflateReply
		gorilla *deflateReply // gorilla's reply where it differs
	}{
		{name: "hello_rfc7692", send: [][]byte{deflateFrame(true, true, wsframe.OpText, hello)}, // §7.2.3.1
			want: deflateReply{op: wsframe.OpText, data: "Hello"},
			// gorilla compresses every echo; ours leave a 5-byte one as it is.
			gorilla: &deflateReply{op: wsframe.OpText, data: "Hello", compressed: true}},
		{name: "compressed_text", send: [][]byte{deflateFrame(true, true, wsframe.OpText, comp)},
			want: deflateReply{op: wsframe.OpText, data: ticks, compressed: true}},
		{name: "compressed_binary", send: [][]byte{deflateFrame(true, true, wsframe.OpBinary, comp)},
			want: deflateReply{op: wsframe.OpBinary, data: ticks, compressed: true}},
		{name: "uncompressed_large", send: [][]byte{deflateFrame(true, false, wsframe.OpText, []byte(ticks))},
			want: deflateReply{op: wsframe.OpText, data: ticks, compressed: true}},
		{name: "uncompressed_small", send: [][]byte{deflateFrame(true, false, wsframe.OpText, []byte(small))},
			want:    deflateReply{op: wsframe.OpText, data: small},
			gorilla: &deflateReply{op: wsframe.OpText, data: small, compressed: true}},
		{name: "fragmented_with_ping", send: [][]byte{
			deflateFrame(false, true, wsframe.OpText, comp[:7]),
			deflateFrame(true, false, wsframe.OpPing, nil),
			deflateFrame(false, false, wsframe.OpContinuation, comp[7:60]),
			deflateFrame(true, false, wsframe.OpContinuation, comp[60:])},
			want: deflateReply{op: wsframe.OpText, data: ticks, compressed: true}},
		{name: "empty_compressed", send: [][]byte{deflateFrame(true, true, wsframe.OpBinary, []byte{0x00})},
			want:    deflateReply{op: wsframe.OpBinary, data: ""},
			gorilla: &deflateReply{op: wsframe.OpBinary, data: "", compressed: true}},
		{name: "rsv1_continuation", send: [][]byte{ // RFC 7692 §6.1: RSV1 on the first frame only
			deflateFrame(false, true, wsframe.OpText, comp[:7]), deflateFrame(true, true, wsframe.OpContinuation, comp[7:])},
			want: deflateReply{code: wsframe.CloseProtocolError},
			// gorilla lets RSV1 on a continuation frame pass.
			gorilla: &deflateReply{op: wsframe.OpText, data: ticks, compressed: true}},
		{name: "rsv1_ping", send: [][]byte{deflateFrame(true, true, wsframe.OpPing, nil), deflateFrame(true, false, wsframe.OpText, []byte(small))},
			want: deflateReply{code: wsframe.CloseProtocolError},
			// gorilla lets RSV1 on a control frame pass.
			gorilla: &deflateReply{op: wsframe.OpText, data: small, compressed: true}},
		{name: "rsv2", send: [][]byte{wsframe.AppendFrame(nil, wsframe.Header{Fin: true, Rsv: 0x20, Opcode: wsframe.OpText, Masked: true, Key: wireMaskKey}, []byte("x"))},
			want: deflateReply{code: wsframe.CloseProtocolError}},
		{name: "does_not_inflate", send: [][]byte{deflateFrame(true, true, wsframe.OpBinary, []byte{0xff, 0xff, 0xff, 0xff})},
			want:    deflateReply{code: wsframe.CloseInvalidPayload},
			gorilla: &deflateReply{eof: true}}, // gorilla hangs up with no Close
		{name: "invalid_utf8_inflated", send: [][]byte{deflateFrame(true, true, wsframe.OpText, compress("bad \xff text, long enough to be compressed"))},
			want: deflateReply{code: wsframe.CloseInvalidPayload},
			// gorilla checks no UTF-8 in compressed text: it echoes it.
			gorilla: &deflateReply{op: wsframe.OpText, data: "bad \xff text, long enough to be compressed", compressed: true}},
		{name: "bomb", send: [][]byte{deflateFrame(true, true, wsframe.OpBinary, bomb())},
			want: deflateReply{code: wsframe.CloseMessageTooBig},
			// gorilla's example sets no read limit, and its limit would
			// count compressed bytes: it inflates the whole 64 MiB and
			// echoes it.
			gorilla: &deflateReply{op: wsframe.OpBinary, data: string(make([]byte, 64<<20)), compressed: true}},
	}
	urls := map[string]string{}
	for _, impl := range deflateImpls {
		urls[impl] = startServerOpts(t, impl, server.Options{MaxMessage: limit})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, impl := range deflateImpls {
				t.Run("impl="+impl, func(t *testing.T) {
					t.Parallel()
					want := tc.want
					if impl != "xnet" && tc.gorilla != nil {
						want = *tc.gorilla
					}
					c, ext := dialDeflate(t, urls[impl], "permessage-deflate")
					if !strings.HasPrefix(ext, "permessage-deflate") {
						t.Fatalf("offer declined: %q", ext)
					}
					if tc.name == "bomb" {
						c.nc.SetDeadline(time.Now().Add(4 * wireTimeout))
					}
					go func() {
						for _, f := range tc.send {
							if _, err := c.nc.Write(f); err != nil {
								return
							}
						}
					}()
					got := readDeflateReply(t, c.br)
					if got.op != want.op || got.data != want.data || got.compressed != want.compressed || got.code != want.code || got.eof != want.eof {
						t.Fatalf("reply: op %d, %d bytes %.30q, compressed %v, close %d; want op %d, %d bytes %.30q, compressed %v, close %d",
							got.op, len(got.data), got.data, got.compressed, got.code, want.op, len(want.data), want.data, want.compressed, want.code)
					}
					if want.code == 0 && !want.eof {
						c.run(t, []wireStep{closeStep})
					}
				})
			}
		})
	}
}

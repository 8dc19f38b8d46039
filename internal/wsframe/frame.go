// Package wsframe is the RFC 6455 wire layer that wsecho puts beneath
// golang.org/x/net/websocket.
//
// x/net hands its caller one frame at a time and checks almost nothing: it
// accepts reserved bits and opcodes, fragmented or oversized control frames,
// text that is not UTF-8 and invalid close codes, and it never answers a
// Close. A [Conn] sits between the socket and x/net on both sides of a
// connection. It reads every frame, enforces the rules, answers pings and
// closes itself, and returns each message whole, in a pooled buffer, from
// [Conn.ReadMessage], which wsecho's server and client read with; x/net's
// own reader, for a program that still reads through it, gets one checked
// frame per message from [Conn.Read]. On the way out it writes x/net's
// frames whole (compressed with permessage-deflate and split into fragments
// when asked), so its own control frames never land inside one of them.
//
// The package also has the frame codec that the tests and the bench command
// use to build raw frames: [Header], [AppendFrame], [ParseHeader] and [Mask].
package wsframe

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf8"
)

// Opcodes (RFC 6455, Section 5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Close codes (RFC 6455, Section 7.4.1, and the IANA registry).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupportedData = 1003
	CloseNoStatus        = 1005 // never on the wire: a Close with no code
	CloseAbnormal        = 1006 // never on the wire: the connection dropped
	CloseInvalidPayload  = 1007
	ClosePolicyViolation = 1008
	CloseMessageTooBig   = 1009
	CloseInternalError   = 1011
	CloseServiceRestart  = 1012
	CloseTryAgainLater   = 1013
)

// MaxControlPayload is the largest payload a control frame may carry
// (RFC 6455, Section 5.5).
const MaxControlPayload = 125

// MaxHeaderLen is the longest frame header: 2 bytes, 8 of extended length
// and a 4-byte masking key (RFC 6455, Section 5.2).
const MaxHeaderLen = 14

// Header is one frame header (RFC 6455, Section 5.2).
type Header struct {
	Fin    bool
	Rsv    byte // RSV1-3 as they stand in the first byte (mask 0x70)
	Opcode byte
	Masked bool
	Key    [4]byte // valid when Masked
	Length int64
}

// IsControl reports whether op is a control opcode (RFC 6455, Section 5.5).
func IsControl(op byte) bool { return op&0x8 != 0 }

// IsReservedOpcode reports whether op is reserved for future use
// (RFC 6455, Section 5.2: 0x3-0x7 and 0xB-0xF).
func IsReservedOpcode(op byte) bool {
	return (op >= 0x3 && op <= 0x7) || op >= 0xB
}

// ValidCloseCode reports whether a peer may send code in a Close frame
// (RFC 6455, Sections 7.4.1 and 7.4.2): 1000-1003, 1007-1014 and 3000-4999.
func ValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ErrLength is returned by ParseHeader for a 64-bit length with its most
// significant bit set (RFC 6455, Section 5.2).
var ErrLength = errors.New("frame length has its most significant bit set")

// HeaderLen returns the length of a frame header whose second byte is b1.
func HeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// ParseHeader parses the frame header at the start of b and returns it with
// its length in bytes. It returns n == 0 and no error when b does not yet
// hold the whole header.
func ParseHeader(b []byte) (h Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	n = HeaderLen(b[1])
	if len(b) < n {
		return h, 0, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = b[0] & 0x70
	h.Opcode = b[0] & 0x0f
	h.Masked = b[1]&0x80 != 0
	i := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:]))
		i += 2
	case 127:
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return h, n, ErrLength
		}
		h.Length = int64(u)
		i += 8
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		copy(h.Key[:], b[i:i+4])
	}
	return h, n, nil
}

// AppendHeader appends the encoding of h to dst, with the shortest length
// form (RFC 6455, Section 5.2).
func AppendHeader(dst []byte, h Header) []byte {
	b0 := h.Rsv&0x70 | h.Opcode&0x0f
	if h.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if h.Masked {
		b1 = 0x80
	}
	switch {
	case h.Length <= 125:
		dst = append(dst, b0, b1|byte(h.Length))
	case h.Length <= 0xffff:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(h.Length))
	default:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(h.Length))
	}
	if h.Masked {
		dst = append(dst, h.Key[:]...)
	}
	return dst
}

// AppendFrame appends a frame with header h and the given payload to dst,
// masking the payload with h.Key when h.Masked. h.Length is set from the
// payload.
func AppendFrame(dst []byte, h Header, payload []byte) []byte {
	h.Length = int64(len(payload))
	dst = AppendHeader(dst, h)
	start := len(dst)
	dst = append(dst, payload...)
	if h.Masked {
		Mask(h.Key, 0, dst[start:])
	}
	return dst
}

// ClosePayload returns the payload of a Close frame with code and reason
// (RFC 6455, Section 5.5.1). A code of CloseNoStatus gives an empty payload.
// The reason is cut, between code points, to fit a control frame.
func ClosePayload(code int, reason string) []byte {
	if code == CloseNoStatus {
		return nil
	}
	if n := MaxControlPayload - 2; len(reason) > n {
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n-- // cut between code points: the reason must stay UTF-8
		}
		reason = reason[:n]
	}
	b := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(b, uint16(code))
	return append(b, reason...)
}

// Error is a violation of RFC 6455 by the peer: the connection was failed
// with a Close frame carrying Code.
type Error struct {
	Code   int    // the close code sent to the peer
	Reason string // what the peer did wrong
}

func (e *Error) Error() string {
	return "websocket: " + e.Reason + " (close " + strconv.Itoa(e.Code) + ")"
}

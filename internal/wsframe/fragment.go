package wsframe

import (
	"crypto/rand"
	"errors"
)

// MaxFragments is the most frames Fragment splits one message into; a
// message that would need more gets larger fragments.
const MaxFragments = 4096

// Fragment appends to dst the complete frame in frame, split into a
// fragmented message with payloads of at most size bytes (RFC 6455, Section
// 5.4): the first frame keeps the opcode and the RSV bits (with
// permessage-deflate, RSV1 marks the first frame of a compressed message
// only, RFC 7692, Section 6), the others are continuation frames with RSV
// clear, and only the last has FIN set. If between is not nil it is appended
// between two fragments (a control frame, such as a ping, which may come in
// the middle of a fragmented message, Section 5.5). A masked frame keeps
// its key, each fragment masked from the key's start.
//
// A control frame, a frame without FIN, and a frame whose payload fits in
// size are appended unchanged. It returns an error if frame is not exactly
// one whole frame.
func Fragment(dst, frame []byte, size int, between []byte) ([]byte, error) {
	h, hl, err := ParseHeader(frame)
	if err != nil {
		return dst, err
	}
	if hl == 0 || int64(len(frame)-hl) != h.Length {
		return dst, errors.New("wsframe: fragment: not one whole frame")
	}
	if size < 1 {
		return dst, errors.New("wsframe: fragment: size must be at least 1")
	}
	if !splits(h, size) {
		return append(dst, frame...), nil
	}
	return appendFragments(dst, h, frame[hl:], nil, size, between), nil
}

// splits reports whether Fragment splits a frame with header h.
func splits(h Header, size int) bool {
	return !IsControl(h.Opcode) && h.Fin && h.Length > int64(size)
}

// fragmentSize returns the payload size of the fragments a payload of n
// bytes is split into: size, or more if it would take over MaxFragments.
func fragmentSize(n, size int) int {
	if (n+size-1)/size > MaxFragments {
		return (n + MaxFragments - 1) / MaxFragments
	}
	return size
}

// appendFragments appends the frame with header h and payload a followed
// by b, split as Fragment does.
func appendFragments(dst []byte, h Header, a, b []byte, size int, between []byte) []byte {
	n := len(a) + len(b)
	size = fragmentSize(n, size)
	for off := 0; off < n; off += size {
		end := min(off+size, n)
		f := Header{Fin: end == n, Masked: h.Masked, Key: h.Key, Length: int64(end - off)}
		if off == 0 {
			f.Opcode, f.Rsv = h.Opcode, h.Rsv
		} else if between != nil {
			dst = append(dst, between...)
		}
		dst = AppendHeader(dst, f)
		start := len(dst)
		if off < len(a) {
			dst = append(dst, a[off:min(end, len(a))]...)
		}
		if end > len(a) {
			dst = append(dst, b[max(off-len(a), 0):end-len(a)]...)
		}
		if h.Masked && off > 0 {
			// Unmask at the payload's offset, mask again from the key's start.
			Mask(h.Key, off, dst[start:])
			Mask(h.Key, 0, dst[start:])
		}
	}
	return dst
}

// SetFragmentation makes every data message written after it go out as a
// fragmented message, split as Fragment does into frames of at most size
// payload bytes, with an empty Ping between two fragments if pingBetween.
// With permessage-deflate the message is compressed first, then split, so
// that RSV1 marks its first frame only (RFC 7692, Section 6). The frames
// of one message, and the pings between them, go out in one write, so the
// Conn's own control frames come only before or after them. A size of 0
// turns it off.
func (c *Conn) SetFragmentation(size int, pingBetween bool) {
	var between []byte
	if size > 0 && pingBetween {
		h := Header{Fin: true, Opcode: OpPing, Masked: c.role == Client}
		if h.Masked {
			rand.Read(h.Key[:])
		}
		between = AppendHeader(nil, h)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.fragSize, c.fragBetween = max(size, 0), between
}

// fragmentFrame returns x/net's data frame, whose encoding is a followed by
// b, split as SetFragmentation asked, or nil to send it as it is: no
// fragmentation, a control frame, or a payload that fits in one fragment.
// The frames are held until the next flush. Called with wmu held.
func (c *Conn) fragmentFrame(a, b []byte) []byte {
	if c.fragSize == 0 {
		return nil
	}
	h, hl, err := ParseHeader(a)
	if err != nil || hl == 0 || !splits(h, c.fragSize) {
		return nil
	}
	n := int(h.Length)
	size := fragmentSize(n, c.fragSize)
	frames := (n + size - 1) / size
	buf := getBuffer(n + frames*(MaxHeaderLen+len(c.fragBetween)))
	*buf = appendFragments(*buf, h, a[hl:], b, c.fragSize, c.fragBetween)
	c.wheld = append(c.wheld, buf)
	return *buf
}

package wsframe

import "errors"

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
	if IsControl(h.Opcode) || !h.Fin || h.Length <= int64(size) {
		return append(dst, frame...), nil
	}
	payload := frame[hl:]
	if n := (len(payload) + size - 1) / size; n > MaxFragments {
		size = (len(payload) + MaxFragments - 1) / MaxFragments
	}
	for off := 0; off < len(payload); off += size {
		end := min(off+size, len(payload))
		f := Header{Fin: end == len(payload), Masked: h.Masked, Key: h.Key, Length: int64(end - off)}
		if off == 0 {
			f.Opcode, f.Rsv = h.Opcode, h.Rsv
		} else if between != nil {
			dst = append(dst, between...)
		}
		dst = AppendHeader(dst, f)
		start := len(dst)
		dst = append(dst, payload[off:end]...)
		if h.Masked && off > 0 {
			// Unmask at the payload's offset, mask again from the key's start.
			Mask(h.Key, off, dst[start:])
			Mask(h.Key, 0, dst[start:])
		}
	}
	return dst, nil
}

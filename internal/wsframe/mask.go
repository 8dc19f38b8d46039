package wsframe

import "encoding/binary"

// Mask XORs b in place with key, starting at byte pos of the key stream
// (RFC 6455, Section 5.3), and returns the position after b. Masking and
// unmasking are the same operation.
//
// It goes 64 bytes at a time, as eight independent 8-byte words, which
// runs at memory speed on a 64-bit machine; the tail goes 8 bytes and
// then one byte at a time.
func Mask(key [4]byte, pos int, b []byte) int {
	if len(b) == 0 {
		return pos
	}
	// Rotate the key so that it starts at pos.
	var k [4]byte
	for i := range k {
		k[i] = key[(pos+i)&3]
	}
	end := pos + len(b)
	if len(b) >= 16 {
		k32 := binary.LittleEndian.Uint32(k[:])
		k64 := uint64(k32)<<32 | uint64(k32)
		for len(b) >= 64 {
			w := b[:64:64]
			le := binary.LittleEndian
			le.PutUint64(w[0:], le.Uint64(w[0:])^k64)
			le.PutUint64(w[8:], le.Uint64(w[8:])^k64)
			le.PutUint64(w[16:], le.Uint64(w[16:])^k64)
			le.PutUint64(w[24:], le.Uint64(w[24:])^k64)
			le.PutUint64(w[32:], le.Uint64(w[32:])^k64)
			le.PutUint64(w[40:], le.Uint64(w[40:])^k64)
			le.PutUint64(w[48:], le.Uint64(w[48:])^k64)
			le.PutUint64(w[56:], le.Uint64(w[56:])^k64)
			b = b[64:]
		}
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= k[i&3]
	}
	return end
}

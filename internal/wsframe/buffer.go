package wsframe

import (
	"math/bits"
	"sync"
)

// Message buffers come from pools by power-of-two size class, from 512
// bytes to 1 MiB, so that reading does not allocate in steady state and a
// connection between messages holds no buffer. Larger buffers are made for
// one message and left to the garbage collector, so that a burst of large
// messages does not stay in a pool.
const (
	minClass    = 9  // 512 bytes
	maxClass    = 20 // 1 MiB
	MaxPooled   = 1 << maxClass
	minPoolSize = 1 << minClass
)

var pools [maxClass + 1]sync.Pool

// bufferSize returns the capacity getBuffer gives a buffer of n bytes.
func bufferSize(n int) int {
	if n > MaxPooled {
		return n
	}
	return 1 << max(bits.Len(uint(n-1)), minClass)
}

// getBuffer returns an empty buffer with capacity for n bytes, from the
// pools that message buffers come from; putBuffer gives it back.
func getBuffer(n int) *[]byte {
	size := bufferSize(n)
	if size <= MaxPooled {
		if p, ok := pools[bits.Len(uint(size-1))].Get().(*[]byte); ok {
			*p = (*p)[:0]
			return p
		}
	}
	b := make([]byte, 0, size)
	return &b
}

// putBuffer returns a buffer to its pool, or leaves it to the garbage
// collector if it is too large to pool.
func putBuffer(p *[]byte) {
	size := cap(*p)
	if size > MaxPooled || size < minPoolSize || size&(size-1) != 0 {
		return
	}
	*p = (*p)[:0]
	pools[bits.Len(uint(size-1))].Put(p)
}

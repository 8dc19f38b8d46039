package server

import (
	"math/bits"
	"sync"
)

// Message buffers come from pools by power-of-two size class, from 512 bytes
// to 64 MiB, so that echoing does not allocate in steady state and an idle
// connection holds no buffer at all.
const (
	minClass = 9  // 512 bytes
	maxClass = 26 // 64 MiB
)

var pools [maxClass + 1]sync.Pool

// getBuffer returns a buffer of length n; putBuffer takes it back.
func getBuffer(n int) *[]byte {
	c := max(bits.Len(uint(n-1)), minClass)
	if n == 0 || c > maxClass {
		b := make([]byte, n)
		return &b
	}
	if p, ok := pools[c].Get().(*[]byte); ok {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n, 1<<c)
	return &b
}

func putBuffer(p *[]byte) {
	c := bits.Len(uint(cap(*p) - 1))
	if cap(*p) != 1<<c || c < minClass || c > maxClass {
		return
	}
	pools[c].Put(p)
}

package wsframe

import "unicode/utf8"

// UTF8 validates a text message incrementally, in pieces split at any byte
// (RFC 6455, Section 8.1). It fails as soon as the bytes seen so far cannot
// begin valid UTF-8: a byte that never appears in UTF-8, an overlong form, a
// surrogate, a code point above U+10FFFF or a bad continuation byte. The zero
// value is ready for a new message.
type UTF8 struct {
	need   uint8 // continuation bytes still expected
	lo, hi byte  // bounds of the next continuation byte
}

// Reset prepares v for a new message.
func (v *UTF8) Reset() { *v = UTF8{} }

// Complete reports whether the bytes seen so far end on a whole code point.
func (v *UTF8) Complete() bool { return v.need == 0 }

// Write feeds p to the validator and reports whether the bytes seen so far
// can still begin valid UTF-8. After it reports false, v must be Reset.
func (v *UTF8) Write(p []byte) bool {
	i := 0
	// Finish a code point left open by the previous piece.
	for v.need > 0 {
		if i == len(p) {
			return true
		}
		if !v.cont(p[i]) {
			return false
		}
		i++
	}
	// Whole code points go to the standard library's validator; only a
	// code point cut at the end of p is checked byte by byte, so that the
	// next piece can finish it.
	cut := len(p)
	for j := len(p) - 1; j >= i && j >= len(p)-utf8.UTFMax+1; j-- {
		if utf8.RuneStart(p[j]) {
			if !utf8.FullRune(p[j:]) {
				cut = j
			}
			break
		}
	}
	if !utf8.Valid(p[i:cut]) {
		return false
	}
	if cut < len(p) {
		if !v.start(p[cut]) {
			return false
		}
		for _, b := range p[cut+1:] {
			if !v.cont(b) {
				return false
			}
		}
	}
	return true
}

// start begins a multi-byte code point with lead byte b (RFC 3629, Section 4).
func (v *UTF8) start(b byte) bool {
	v.lo, v.hi = 0x80, 0xbf
	switch {
	case b >= 0xc2 && b <= 0xdf:
		v.need = 1
	case b == 0xe0:
		v.need, v.lo = 2, 0xa0 // no overlong forms
	case b == 0xed:
		v.need, v.hi = 2, 0x9f // no surrogates
	case b >= 0xe1 && b <= 0xef:
		v.need = 2
	case b == 0xf0:
		v.need, v.lo = 3, 0x90 // no overlong forms
	case b == 0xf4:
		v.need, v.hi = 3, 0x8f // nothing above U+10FFFF
	case b >= 0xf1 && b <= 0xf3:
		v.need = 3
	default:
		return false
	}
	return true
}

// cont checks one continuation byte.
func (v *UTF8) cont(b byte) bool {
	if b < v.lo || b > v.hi {
		return false
	}
	v.need--
	v.lo, v.hi = 0x80, 0xbf
	return true
}

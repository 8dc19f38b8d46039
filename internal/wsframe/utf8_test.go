package wsframe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// utf8Corpus holds valid text and the classic malformed cases of Markus
// Kuhn's UTF-8 decoder stress test.
var utf8Corpus = []struct {
	name string
	in   string
}{
	{"empty", ""},
	{"ascii", "Hello, world"},
	{"ascii_long", strings.Repeat("0123456789abcdef", 9)},
	{"greek", "κόσμε"},
	{"cjk", "日本語のテキスト"},
	{"emoji", "🙂 smile 😀"},
	{"mixed_long", strings.Repeat("abcdefgh€ñ𝄞", 20)},
	{"boundaries", "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff\ud7ff\ue000\ufffd\ufffe"},
	{"ascii_then_2byte_at_8", "abcdefgh\u00e9abcdefg\u00e9"},
	{"nul", "a\x00b"},

	// Kuhn 3.1: unexpected continuation bytes.
	{"cont_80", "\x80"},
	{"cont_bf", "\xbf"},
	{"cont_inside", "ab\x80cd"},
	{"cont_after_ascii_run", "abcdefghijklmnop\xbf"},
	{"cont_run", "\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f"},
	// Kuhn 3.2: lonely start characters.
	{"lonely_c0", "\xc0 "},
	{"lonely_e0", "\xe0 "},
	{"lonely_f0", "\xf0 "},
	// Kuhn 3.3: sequences with the last byte missing, then text.
	{"missing_last_2", "\xc2a"},
	{"missing_last_3", "\xe2\x82a"},
	{"missing_last_4", "\xf0\x9f\x98a"},
	{"missing_last_concat", "\xc2\xe2\x82\xf0\x9f\x98"},
	// Truncated at the end of the input (a valid prefix, but not whole).
	{"truncated_2", "a\xc3"},
	{"truncated_3", "ab\xe2\x82"},
	{"truncated_4", "abc\xf0\x9f\x98"},
	// Kuhn 3.5: impossible bytes.
	{"c0", "\xc0"},
	{"c1", "\xc1\xbf"},
	{"f5", "\xf5\x80\x80\x80"},
	{"f7", "\xf7\xbf\xbf\xbf"},
	{"f8_5byte", "\xf8\x88\x80\x80\x80"},
	{"fc_6byte", "\xfc\x84\x80\x80\x80\x80"},
	{"fe", "\xfe"},
	{"ff", "a\xff"},
	{"fffe_bytes", "\xfe\xfe\xff\xff"},
	// Kuhn 4: overlong forms.
	{"overlong_slash_2", "\xc0\xaf"},
	{"overlong_slash_3", "\xe0\x80\xaf"},
	{"overlong_slash_4", "\xf0\x80\x80\xaf"},
	{"overlong_max_3", "\xe0\x9f\xbf"},
	{"overlong_max_4", "\xf0\x8f\xbf\xbf"},
	{"overlong_nul_2", "\xc0\x80"},
	// Kuhn 5: surrogates.
	{"surrogate_d800", "\xed\xa0\x80"},
	{"surrogate_dfff", "\xed\xbf\xbf"},
	{"surrogate_pair", "\xed\xa0\x80\xed\xb0\x80"},
	{"surrogate_after_text", "κόσμε\xed\xa0\x80"},
	// Above U+10FFFF.
	{"above_max_f4_90", "\xf4\x90\x80\x80"},
	{"above_max_f4_bf", "\xf4\xbf\xbf\xbf"},
	// Bad continuation bytes.
	{"bad_cont_2", "\xc3\x28"},
	{"bad_cont_3_second", "\xe2\x28\xa1"},
	{"bad_cont_3_third", "\xe2\x82\x28"},
	{"bad_cont_4", "\xf0\x28\x8c\x28"},
	{"bad_cont_4_last", "\xf0\x90\x8c\x28"},
	{"valid_then_invalid", "Hello-µ@ßöäüàá-UTF-8!!\xc3\x28tail"},
}

// feed runs v over pieces and reports what the validator says of their
// concatenation: every Write true and Complete at the end.
func feed(pieces ...string) bool {
	var v UTF8
	for _, p := range pieces {
		if !v.Write([]byte(p)) {
			return false
		}
	}
	return v.Complete()
}

func TestUTF8Corpus(t *testing.T) {
	for _, tc := range utf8Corpus {
		t.Run(tc.name, func(t *testing.T) {
			in, want := tc.in, utf8.ValidString(tc.in)
			if got := feed(in); got != want {
				t.Errorf("whole: got %v, want %v", got, want)
			}
			for i := 0; i <= len(in); i++ {
				if got := feed(in[:i], in[i:]); got != want {
					t.Errorf("split at %d: got %v, want %v", i, got, want)
				}
				for j := i; j <= len(in) && len(in) <= 64; j++ {
					if got := feed(in[:i], in[i:j], in[j:]); got != want {
						t.Errorf("split at %d and %d: got %v, want %v", i, j, got, want)
					}
				}
			}
			pieces := make([]string, len(in))
			for i := range len(in) {
				pieces[i] = in[i : i+1]
			}
			if got := feed(pieces...); got != want {
				t.Errorf("byte by byte: got %v, want %v", got, want)
			}
		})
	}
}

// TestUTF8ValidPrefix checks the reference that TestUTF8FailFast relies on.
func TestUTF8ValidPrefix(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", true},
		{"abc", true},
		{"\xc2", true},
		{"\xc1", false},
		{"\xe0", true},
		{"\xe0\x9f", false}, // overlong
		{"\xe0\xa0", true},
		{"\xed\x9f", true},
		{"\xed\xa0", false}, // surrogate
		{"\xf0\x8f", false}, // overlong
		{"\xf0\x90\x80", true},
		{"\xf4\x8f\xbf", true},
		{"\xf4\x90", false}, // above U+10FFFF
		{"\xf5", false},
		{"\x80", false},
		{"\xe2\x82\xac", true},
		{"\xe2\x82\xac\x80", false},
	}
	for _, tc := range tests {
		if got := validUTF8Prefix([]byte(tc.in)); got != tc.want {
			t.Errorf("validUTF8Prefix(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// firstBad returns the index of the first byte of b at which no valid UTF-8
// text can go on, or -1.
func firstBad(b []byte) int {
	for k := range b {
		if !validUTF8Prefix(b[:k+1]) {
			return k
		}
	}
	return -1
}

// TestUTF8FailFast checks that Write fails on the piece that holds the first
// byte no valid text can continue with, and not before (RFC 6455, Section
// 8.1: fail the connection as soon as the text is known to be invalid).
func TestUTF8FailFast(t *testing.T) {
	for _, tc := range utf8Corpus {
		if utf8.ValidString(tc.in) {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			k := firstBad(in)
			if k < 0 { // a valid prefix, cut short
				var v UTF8
				if !v.Write(in) || v.Complete() {
					t.Fatalf("truncated %q: Write true and Complete false wanted", in)
				}
				return
			}
			for s := 0; s <= k; s++ {
				var v UTF8
				if !v.Write(in[:s]) || !v.Write(in[s:k]) {
					t.Fatalf("prefix %q split at %d: Write false before byte %d", in[:k], s, k)
				}
				if v.Write(in[k : k+1]) {
					t.Fatalf("byte %d (%#x) after %q split at %d: Write true, want false", k, in[k], in[:k], s)
				}
			}
			var v UTF8
			if v.Write(in[:k+1]) {
				t.Errorf("Write(%q) in one piece = true, want false", in[:k+1])
			}
		})
	}
}

// TestUTF8TwoBytes compares the validator with utf8.Valid for every 2-byte
// input, whole and split, and with the prefix rule.
func TestUTF8TwoBytes(t *testing.T) {
	var b [2]byte
	for i := range 1 << 16 {
		b[0], b[1] = byte(i>>8), byte(i)
		want := utf8.Valid(b[:])
		var v, w UTF8
		got := v.Write(b[:]) && v.Complete()
		split := w.Write(b[:1]) && w.Write(b[1:]) && w.Complete()
		if got != want || split != want {
			t.Fatalf("% x: whole %v, split %v, want %v", b, got, split, want)
		}
		var p UTF8
		if got, want := p.Write(b[:]), validUTF8Prefix(b[:]); got != want {
			t.Fatalf("% x: Write = %v, valid prefix %v", b, got, want)
		}
	}
}

// TestUTF8EveryRune feeds every code point whole and byte by byte, and every
// surrogate as the three bytes an encoder that allowed them would write.
func TestUTF8EveryRune(t *testing.T) {
	var buf [utf8.UTFMax]byte
	for r := rune(0); r <= utf8.MaxRune; r++ {
		var enc []byte
		if r >= 0xd800 && r <= 0xdfff {
			buf[0], buf[1], buf[2] = 0xed, byte(0x80|(r>>6)&0x3f), byte(0x80|r&0x3f)
			enc = buf[:3]
		} else {
			enc = buf[:utf8.EncodeRune(buf[:], r)]
		}
		want := utf8.Valid(enc)
		var v UTF8
		ok := true
		for i := range enc {
			ok = ok && v.Write(enc[i:i+1])
		}
		if got := feed(string(enc)); got != want || (ok && v.Complete()) != want {
			t.Fatalf("U+%04X (% x): whole %v, byte by byte %v, want %v", r, enc, got, ok && v.Complete(), want)
		}
	}
}

func TestUTF8Reset(t *testing.T) {
	var v UTF8
	if !v.Write([]byte("\xe2\x82")) || v.Complete() {
		t.Fatal("open code point: want Write true, Complete false")
	}
	v.Reset()
	if !v.Complete() {
		t.Fatal("after Reset: Complete false")
	}
	if v.Write([]byte("\xac")) {
		t.Fatal("after Reset: a continuation byte was accepted")
	}
	v.Reset()
	if !v.Write([]byte("€")) || !v.Complete() {
		t.Fatal("after Reset: valid text rejected")
	}
}

// FuzzUTF8 checks the validator against utf8.Valid whole, split at a fuzzed
// position, and byte by byte, where every Write must say whether the bytes
// so far begin valid text.
func FuzzUTF8(f *testing.F) {
	for _, tc := range utf8Corpus {
		f.Add([]byte(tc.in), uint16(len(tc.in)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		want := utf8.Valid(in)
		var v UTF8
		if got := v.Write(in) && v.Complete(); got != want {
			t.Fatalf("whole %q: got %v, want %v", in, got, want)
		}
		i := int(split) % (len(in) + 1)
		var w UTF8
		first := w.Write(in[:i])
		if first != validUTF8Prefix(in[:i]) {
			t.Fatalf("first piece %q: Write = %v, want %v", in[:i], first, !first)
		}
		if got := first && w.Write(in[i:]) && w.Complete(); got != want {
			t.Fatalf("%q split at %d: got %v, want %v", in, i, got, want)
		}
		if len(in) > 256 {
			return
		}
		var b UTF8
		for k := range in {
			if got, want := b.Write(in[k:k+1]), validUTF8Prefix(in[:k+1]); got != want {
				t.Fatalf("%q byte by byte: Write of byte %d = %v, want %v", in, k, got, want)
			}
			if !validUTF8Prefix(in[:k+1]) {
				break
			}
		}
	})
}

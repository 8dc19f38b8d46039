package client

import (
	"strings"
	"testing"
)

// TestEditor checks the line editor's keys, byte by byte as a raw terminal
// sends them, and what it draws.
func TestEditor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		keys    []string // separate reads
		want    []inputEvent
		wantOut string // what was drawn after the first prompt
	}{
		{name: "line", keys: []string{"hi\r"}, want: []inputEvent{{inLine, "hi"}}, wantOut: "hi\n> "},
		{name: "newline", keys: []string{"hi\n"}, want: []inputEvent{{inLine, "hi"}}, wantOut: "hi\n> "},
		{name: "crlf_paste", keys: []string{"a\r\nb\r\n"}, want: []inputEvent{{inLine, "a"}, {inLine, "b"}}, wantOut: "a\n> b\n> "},
		{name: "empty_line", keys: []string{"\r"}, want: nil, wantOut: "\n> "},
		{name: "backspace", keys: []string{"abc\x7f\x7fd\r"}, want: []inputEvent{{inLine, "ad"}},
			wantOut: "abc\r\x1b[J> ab\r\x1b[J> ad\n> "},
		{name: "ctrl_u", keys: []string{"abc\x15x\r"}, want: []inputEvent{{inLine, "x"}}, wantOut: "abc\r\x1b[J> x\n> "},
		{name: "ctrl_w", keys: []string{"ab cd\x17\r"}, want: []inputEvent{{inLine, "ab "}}, wantOut: "ab cd\r\x1b[J> ab \n> "},
		{name: "arrows_ignored", keys: []string{"a\x1b[A\x1b[1;5Cb\x1bOPc\r"}, want: []inputEvent{{inLine, "abc"}}, wantOut: "abc\n> "},
		{name: "escape_split", keys: []string{"a\x1b", "[", "D", "b\r"}, want: []inputEvent{{inLine, "ab"}}, wantOut: "ab\n> "},
		{name: "utf8_split", keys: []string{"\xc3", "\xa9\xe2\x9c", "\x93\r"}, want: []inputEvent{{inLine, "é✓"}}, wantOut: "é✓\n> "},
		{name: "ctrl_d_empty", keys: []string{"\x04"}, want: []inputEvent{{kind: inEOF}}},
		{name: "ctrl_d_typed", keys: []string{"a\x04\r"}, want: []inputEvent{{inLine, "a"}}, wantOut: "a\n> "},
		{name: "ctrl_c", keys: []string{"ab\x03"}, want: []inputEvent{{kind: inInterrupt}}, wantOut: "ab^C"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			e := newEditor(&out, func() int { return 80 })
			e.start()
			if out.String() != "> " {
				t.Fatalf("prompt %q", out.String())
			}
			out.Reset()
			var got []inputEvent
			for _, k := range tc.keys {
				got = append(got, e.feed([]byte(k))...)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("events %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("event %d: %v, want %v", i, got[i], tc.want[i])
				}
			}
			if out.String() != tc.wantOut {
				t.Errorf("drawn %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}

// TestEditorPrint checks that output goes above the line being typed,
// which is drawn again after it, also when it wraps.
func TestEditorPrint(t *testing.T) {
	for _, tc := range []struct {
		name  string
		width int
		typed string
		want  string
	}{
		{name: "one_row", width: 80, typed: "hel", want: "\r\x1b[J< news\n> hel"},
		{name: "wrapped", width: 4, typed: "abcdefg", want: "\r\x1b[2A\x1b[J< news\n> abcdefg"}, // 9 columns: 3 rows
		{name: "exact_fill", width: 5, typed: "abc", want: "\r\x1b[J< news\n> abc"},             // 5 columns: 1 row
		{name: "unknown_width", width: 0, typed: "abcdefg", want: "\r\x1b[J< news\n> abcdefg"},  // assume one row
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			e := newEditor(&out, func() int { return tc.width })
			e.start()
			e.feed([]byte(tc.typed))
			out.Reset()
			e.print("< news")
			if out.String() != tc.want {
				t.Errorf("drawn %q, want %q", out.String(), tc.want)
			}
			out.Reset()
			e.finish()
			e.print("late")
			if strings.Contains(out.String(), "> ") {
				t.Errorf("after finish the prompt was drawn again: %q", out.String())
			}
		})
	}
}

package client_test

import (
	"io"
	"regexp"
	"strings"
	"testing"

	"wsecho/client"
)

// TestInteractiveCommands drives interactive mode over a pipe (no
// terminal, so no raw mode: the lines sent are printed with "> "): each
// command against our server, one after the other.
func TestInteractiveCommands(t *testing.T) {
	t.Parallel()
	url := startEcho(t)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	out := newOutput()
	opts := client.Options{Lines: true, Interactive: true}
	wait := startRun(t, t.Context(), url, opts, pr, out)
	out.waitFor(t, "* connected to "+url+"; /help lists the commands\n")
	for _, step := range []struct {
		name string
		in   string
		want string // a regexp the new output must match
	}{
		{name: "text", in: "hello", want: `^> hello\n< hello\n$`},
		{name: "ping", in: "/ping are you there", want: `^\* pong "are you there" in \d+(\.\d+)?(µs|ms|s)\n$`},
		{name: "ping_empty", in: "/ping", want: `^\* pong "" in \S+\n$`},
		{name: "binary", in: "/binary 48 69 0a", want: `^> \[binary 3 B\] 48690a\n< \[binary 3 B\] 48690a\n$`},
		{name: "bad_hex", in: "/binary xyz", want: `^\* not hex: .*\n$`},
		{name: "slash", in: "//etc/passwd", want: `^> /etc/passwd\n< /etc/passwd\n$`},
		{name: "help", in: "/help", want: `^\* commands:\n(\* .*\n)*\* +/ping \[text\].*\n(\* .*\n)*\* Ctrl-D .*\n$`},
		{name: "unknown", in: "/nope", want: `^\* unknown command /nope; /help lists the commands .*\n$`},
		{name: "bad_close_code", in: "/close 1006", want: `^\* not a close code a client may send: 1006\n$`},
	} {
		before := len(out.String())
		io.WriteString(pw, step.in+"\n")
		re := regexp.MustCompile(step.want)
		if !out.waitUntil(func(s string) bool { return re.MatchString(s[before:]) }) {
			t.Fatalf("%s: after %q the output is %q, want to match %s", step.name, step.in, out.String()[before:], step.want)
		}
	}
	before := len(out.String())
	io.WriteString(pw, "/close 4000 all done\n")
	if err := wait(); err != nil {
		t.Errorf("Run after /close: %v, want nil", err)
	}
	if got, want := out.String()[before:], "* sent close: 4000 all done\n* server closed: 4000\n"; got != want {
		t.Errorf("after /close: %q, want %q", got, want)
	}
}

// TestInteractiveEOF checks that the end of input closes normally in
// interactive mode, and that a line read ahead of the end is still sent.
func TestInteractiveEOF(t *testing.T) {
	t.Parallel()
	url := startEcho(t)
	out := newOutput()
	opts := client.Options{Lines: true, Interactive: true, Timestamps: true}
	if err := run(t, url, opts, strings.NewReader("one\ntwo"), out); err != nil {
		t.Fatalf("Run: %v", err)
	}
	ts := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\S* `
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	index := func(re string) int {
		r := regexp.MustCompile("^" + re + "$")
		for i, l := range lines {
			if r.MatchString(l) {
				return i
			}
		}
		t.Errorf("no line matches %s in:\n%s", re, out)
		return -1
	}
	connected, sent1, sent2 := index(`\* connected to .*`), index(`> `+ts+`one`), index(`> `+ts+`two`)
	recv1, recv2 := index(`< `+ts+`one`), index(`< `+ts+`two`)
	closeSent, closed := index(`\* sent close: 1000`), index(`\* server closed: 1000`)
	if len(lines) != 7 || connected != 0 || sent1 > sent2 || recv1 > recv2 || sent2 > closeSent || sent1 > recv1 || closed != 6 {
		t.Errorf("lines out of order:\n%s", out)
	}
}

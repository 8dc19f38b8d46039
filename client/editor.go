package client

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/term"
)

// editor is the input line of interactive mode on a raw terminal, on
// golang.org/x/term's Terminal: the prompt, line editing (Left/Right,
// Home/End, Ctrl-A/E, Ctrl-W, Ctrl-U, Ctrl-K), and a history of the lines
// entered (Up/Down), kept while the client runs. Received messages are
// printed above the line being typed, which is then drawn again, so that
// output never garbles the input. print is safe for concurrent use with
// readLine, which runs on the goroutine that reads the terminal.
type editor struct {
	t    *term.Terminal
	keys *keyReader
	out  io.Writer
	size func() (w, h int) // the terminal's size; 0, 0 when unknown

	mu   sync.Mutex
	w, h int
	done bool
}

// keyReader passes the terminal's keys to the Terminal and notes Ctrl-C,
// which the Terminal reports as the end of input, as Ctrl-D.
type keyReader struct {
	r           io.Reader
	interrupted atomic.Bool
}

func (k *keyReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	for _, c := range p[:n] {
		if c == 0x03 {
			k.interrupted.Store(true)
		}
	}
	return n, err
}

// inputKind says what an input event is.
type inputKind uint8

const (
	inLine      inputKind = iota // a line to send or a command
	inEOF                        // the end of the input (Ctrl-D on an empty line)
	inInterrupt                  // Ctrl-C on a raw terminal
)

type inputEvent struct {
	kind inputKind
	line string
}

func newEditor(in io.Reader, out io.Writer, size func() (w, h int)) *editor {
	keys := &keyReader{r: in}
	e := &editor{keys: keys, out: out, size: size}
	e.t = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{keys, out}, "> ")
	e.resize()
	return e
}

// resize tells the Terminal the size of the screen, when it has changed,
// so that long lines wrap where the terminal wraps them.
func (e *editor) resize() {
	w, h := e.size()
	if w <= 0 || h <= 0 || w == e.w && h == e.h {
		return
	}
	e.w, e.h = w, h
	e.t.SetSize(w, h)
}

// readLine reads keys until a line is entered (an empty one is skipped),
// Ctrl-D on an empty line or Ctrl-C.
func (e *editor) readLine() inputEvent {
	for {
		e.mu.Lock()
		e.resize()
		e.mu.Unlock()
		line, err := e.t.ReadLine()
		switch {
		case e.keys.interrupted.Load():
			return inputEvent{kind: inInterrupt}
		case err != nil && !errors.Is(err, term.ErrPasteIndicator):
			return inputEvent{kind: inEOF}
		case line != "":
			return inputEvent{kind: inLine, line: line}
		}
	}
}

// print writes s and a newline above the input line, which the Terminal
// then draws again.
func (e *editor) print(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done {
		writeCRLF(e.out, s+"\n")
		return
	}
	e.resize()
	e.t.Write([]byte(s + "\n"))
}

// finish clears the input line and stops drawing it; the Terminal's
// reading goroutine may still echo a key that arrives before it ends.
func (e *editor) finish() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.done {
		e.done = true
		// The prompt and what was typed, on one row when the line is short.
		io.WriteString(e.out, "\r\x1b[J")
	}
}

// writeCRLF writes s to a terminal in raw mode, which does not return the
// carriage on a newline.
func writeCRLF(w io.Writer, s string) {
	b := make([]byte, 0, len(s)+8)
	for i := range len(s) {
		if s[i] == '\n' {
			b = append(b, '\r')
		}
		b = append(b, s[i])
	}
	w.Write(b)
}

// withFd runs fn with f's descriptor. It goes through SyscallConn, not Fd,
// which would stop f's deadlines from working.
func withFd(f *os.File, fn func(fd int)) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) }) == nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	ok := false
	withFd(f, func(fd int) { ok = term.IsTerminal(fd) })
	return ok
}

// makeRaw puts the terminal f in raw mode, as the line editor needs: no
// line buffering, no echo, and no signals from Ctrl-C or Ctrl-Z, which
// arrive as keys. The returned function puts the terminal back.
func makeRaw(f *os.File) (restore func(), err error) {
	var st *term.State
	err = errors.New("not a terminal")
	withFd(f, func(fd int) { st, err = term.MakeRaw(fd) })
	if err != nil {
		return nil, err
	}
	return func() { withFd(f, func(fd int) { term.Restore(fd, st) }) }, nil
}

// terminalSize returns the columns and rows of the terminal f, or 0, 0.
func terminalSize(f *os.File) (w, h int) {
	withFd(f, func(fd int) {
		var err error
		if w, h, err = term.GetSize(fd); err != nil {
			w, h = 0, 0
		}
	})
	return w, h
}

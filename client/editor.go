package client

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// editor is the input line of interactive mode on a raw terminal: it echoes
// what is typed after a prompt, handles editing keys, and prints received
// messages above the line being typed, which it then draws again, so that
// output never garbles the input. It is safe for concurrent use: feed runs
// on the goroutine that reads the terminal, print on any other.
//
// It assumes one column per character and a terminal that understands the
// ANSI sequences for cursor up (CSI n A) and erase below (CSI J). Output
// processing stays on, so "\n" moves to the start of the next line.
type editor struct {
	mu     sync.Mutex
	out    io.Writer
	prompt string
	width  func() int // columns of the terminal; 0 when unknown
	buf    []rune     // the line being typed
	shown  int        // runes of prompt and line on the screen
	esc    byte       // escape sequence state: 0, escESC, escCSI or escSS3
	pend   []byte     // the start of a character split across reads
	lastCR bool
	done   bool
}

const (
	escESC byte = 1 + iota // after ESC
	escCSI                 // after ESC [, until a final byte
	escSS3                 // after ESC O, one more byte
)

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

func newEditor(out io.Writer, width func() int) *editor {
	return &editor{out: out, prompt: "> ", width: width}
}

// start draws the first prompt.
func (e *editor) start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.draw()
}

// feed handles keys typed on the terminal and returns the events they
// complete.
func (e *editor) feed(b []byte) []inputEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	var evs []inputEvent
	var typed []rune // printable keys echoed in one write
	flush := func() {
		if len(typed) > 0 {
			e.buf = append(e.buf, typed...)
			e.shown += len(typed)
			io.WriteString(e.out, string(typed))
			typed = typed[:0]
		}
	}
	for _, c := range b {
		if e.done {
			break
		}
		cr := c == '\r'
		switch {
		case e.esc == escESC:
			switch c {
			case '[':
				e.esc = escCSI
			case 'O':
				e.esc = escSS3
			default:
				e.esc = 0 // Alt+key: ignored
			}
		case e.esc == escCSI:
			if c >= 0x40 && c <= 0x7e {
				e.esc = 0 // arrows and the like: ignored
			}
		case e.esc == escSS3:
			e.esc = 0
		case c == 0x1b:
			flush()
			e.esc = escESC
		case c == '\r' || c == '\n':
			if c == '\n' && e.lastCR {
				break // the \n of a pasted \r\n
			}
			flush()
			line := string(e.buf)
			e.buf = e.buf[:0]
			io.WriteString(e.out, "\n")
			e.shown = 0
			e.draw()
			if line != "" {
				evs = append(evs, inputEvent{kind: inLine, line: line})
			}
		case c == 0x7f || c == 0x08: // Backspace
			flush()
			if len(e.buf) > 0 {
				e.buf = e.buf[:len(e.buf)-1]
				e.redraw()
			}
		case c == 0x15: // Ctrl-U: erase the line
			flush()
			e.buf = e.buf[:0]
			e.redraw()
		case c == 0x17: // Ctrl-W: erase the word before the cursor
			flush()
			n := len(e.buf)
			for n > 0 && e.buf[n-1] == ' ' {
				n--
			}
			for n > 0 && e.buf[n-1] != ' ' {
				n--
			}
			e.buf = e.buf[:n]
			e.redraw()
		case c == 0x03: // Ctrl-C
			flush()
			io.WriteString(e.out, "^C")
			e.shown += 2
			evs = append(evs, inputEvent{kind: inInterrupt})
		case c == 0x04: // Ctrl-D: the end of input on an empty line
			flush()
			if len(e.buf) == 0 {
				evs = append(evs, inputEvent{kind: inEOF})
			}
		case c == '\t':
			typed = append(typed, ' ')
		case c < 0x20:
			// other control keys: ignored
		default:
			e.pend = append(e.pend, c)
			for len(e.pend) > 0 && utf8.FullRune(e.pend) {
				r, n := utf8.DecodeRune(e.pend)
				e.pend = e.pend[n:]
				typed = append(typed, r)
			}
			if len(e.pend) == 0 {
				e.pend = nil
			}
		}
		e.lastCR = cr
	}
	flush()
	return evs
}

// print writes s and a newline above the input line, then draws the input
// line again.
func (e *editor) print(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clear()
	io.WriteString(e.out, s+"\n")
	if !e.done {
		e.draw()
	}
}

// finish clears the input line and stops drawing it.
func (e *editor) finish() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.done {
		e.clear()
		e.done = true
	}
}

// clear moves to the start of the input line and erases it and everything
// below. The line may have wrapped over several rows.
func (e *editor) clear() {
	var b strings.Builder
	b.WriteByte('\r')
	if w := e.width(); w > 0 && e.shown > 0 {
		// The cursor stays on the last row of a line that fills it exactly.
		if up := (e.shown - 1) / w; up > 0 {
			b.WriteString("\x1b[" + strconv.Itoa(up) + "A")
		}
	}
	b.WriteString("\x1b[J")
	io.WriteString(e.out, b.String())
	e.shown = 0
}

// draw writes the prompt and the line typed so far.
func (e *editor) draw() {
	s := e.prompt + string(e.buf)
	io.WriteString(e.out, s)
	e.shown = utf8.RuneCountInString(s)
}

func (e *editor) redraw() {
	e.clear()
	e.draw()
}

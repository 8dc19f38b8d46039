//go:build linux

package client_test

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"wsecho/client"
	"wsecho/internal/testpeer"
	"wsecho/internal/wsframe"
)

func ioctl(t *testing.T, f *os.File, req uint, arg unsafe.Pointer) {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
	}); err != nil {
		t.Fatal(err)
	}
	if errno != 0 {
		t.Fatalf("ioctl %#x: %v", req, errno)
	}
}

// openPTY opens a pseudo-terminal pair: the master, where a test types and
// reads the screen, and the terminal the client runs on, 24x200.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		testpeer.Missing(t, "no pseudo-terminal (needs /dev/ptmx): %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	ioctl(t, master, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock))
	var n uint32
	ioctl(t, master, syscall.TIOCGPTN, unsafe.Pointer(&n))
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	ws := struct{ Row, Col, X, Y uint16 }{24, 200, 0, 0}
	ioctl(t, tty, syscall.TIOCSWINSZ, unsafe.Pointer(&ws))
	return master, tty
}

// render plays terminal output onto a screen and returns its lines: text,
// CR, LF and the sequences the line editor uses (cursor moves CSI n A, B,
// C and D; CSI J, CSI K).
func render(out string) []string {
	lines := [][]rune{nil}
	row, col := 0, 0
	for i := 0; i < len(out); {
		c := out[i]
		switch {
		case c == '\r':
			col = 0
			i++
		case c == '\n':
			row++
			if row == len(lines) {
				lines = append(lines, nil)
			}
			i++
		case c == 0x1b && i+1 < len(out) && out[i+1] == '[':
			j := i + 2
			for j < len(out) && (out[j] < 0x40 || out[j] > 0x7e) {
				j++
			}
			if j == len(out) {
				return toStrings(lines) // an incomplete sequence: not yet arrived
			}
			n, err := strconv.Atoi(out[i+2 : j])
			if err != nil {
				n = 1
			}
			switch out[j] {
			case 'A':
				row = max(0, row-n)
			case 'B':
				row += n
				for row >= len(lines) {
					lines = append(lines, nil)
				}
			case 'C':
				col += n
			case 'D':
				col = max(0, col-n)
			case 'K':
				if col < len(lines[row]) {
					lines[row] = lines[row][:col]
				}
			case 'J':
				if col < len(lines[row]) {
					lines[row] = lines[row][:col]
				}
				lines = lines[:row+1]
			}
			i = j + 1
		default:
			r, size := utf8.DecodeRuneInString(out[i:])
			for len(lines[row]) < col {
				lines[row] = append(lines[row], ' ')
			}
			if col < len(lines[row]) {
				lines[row][col] = r
			} else {
				lines[row] = append(lines[row], r)
			}
			col++
			i += size
		}
	}
	return toStrings(lines)
}

func toStrings(lines [][]rune) []string {
	s := make([]string, len(lines))
	for i, l := range lines {
		s[i] = string(l)
	}
	return s
}

// watchScreen collects what the client draws on the terminal whose master
// is given. waitScreen waits until the rendered screen is want, line by
// line; typeKeys types on the terminal.
func watchScreen(t *testing.T, master *os.File) (screen *output, waitScreen func(step string, want ...string), typeKeys func(string)) {
	screen = newOutput()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { master.Close() }) // runs before wg.Wait
	wg.Go(func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	})
	waitScreen = func(step string, want ...string) {
		t.Helper()
		ok := screen.waitUntil(func(s string) bool {
			return strings.Join(render(s), "\n") == strings.Join(want, "\n")
		})
		if !ok {
			t.Fatalf("%s: screen:\n%s\nwant:\n%s\nraw output: %q", step, strings.Join(render(screen.String()), "\n"), strings.Join(want, "\n"), screen.String())
		}
	}
	typeKeys = func(s string) {
		t.Helper()
		if _, err := master.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	return screen, waitScreen, typeKeys
}

// pushed is a message a test has the server send.
type pushed struct {
	op   byte
	data []byte
}

// startPushEcho starts a raw echo server (onText as for rawConn.echo) that
// also sends what the test pushes.
func startPushEcho(t *testing.T, onText func(string) bool) (*rawServer, chan<- pushed) {
	push := make(chan pushed)
	rs := startRaw(t, func(i int, rc *rawConn) {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case m := <-push:
					rc.writeFrame(m.op, m.data)
				case <-done:
					return
				}
			}
		})
		rc.echo(t, onText)
		close(done)
		wg.Wait()
	})
	return rs, push
}

// TestTerminalSession drives interactive mode through a pseudo-terminal,
// as a person would: the prompt, typing, a message that arrives in the
// middle of a typed line (which must come out above it, with the typed
// text intact below), the echo of the sent line, a command, and Ctrl-D.
func TestTerminalSession(t *testing.T) {
	t.Parallel()
	master, tty := openPTY(t)

	rs, push := startPushEcho(t, nil)

	screen, waitScreen, typeKeys := watchScreen(t, master)

	wait := startRun(t, t.Context(), rs.url, client.Options{Lines: true}, tty, tty)
	connected := "* connected to " + rs.url + "; /help lists the commands"
	waitScreen("prompt", connected, "> ")
	typeKeys("hel")
	// Raw mode: the editor echoes once; the terminal itself echoes nothing.
	waitScreen("typing", connected, "> hel")
	push <- pushed{wsframe.OpText, []byte("news")}
	waitScreen("message while typing", connected, "< news", "> hel")
	typeKeys("lo\r")
	waitScreen("echo", connected, "< news", "> hello", "< hello", "> ")
	typeKeys("/ping x\r")
	ok := screen.waitUntil(func(s string) bool {
		l := render(s)
		return len(l) == 7 && l[5] != "" && strings.HasPrefix(l[5], `* pong "x" in `) && l[6] == "> "
	})
	if !ok {
		t.Fatalf("no pong on the screen:\n%s", strings.Join(render(screen.String()), "\n"))
	}
	pongLine := render(screen.String())[5]
	typeKeys("\x04") // Ctrl-D
	if err := wait(); err != nil {
		t.Errorf("Run after Ctrl-D: %v, want nil", err)
	}
	waitScreen("closed", connected, "< news", "> hello", "< hello", "> /ping x", pongLine,
		"* sent close: 1000", "* server closed: 1000", "")

	// The terminal is back in the mode it was in.
	var tio syscall.Termios
	ioctl(t, tty, syscall.TCGETS, unsafe.Pointer(&tio))
	if tio.Lflag&(syscall.ICANON|syscall.ECHO|syscall.ISIG) != syscall.ICANON|syscall.ECHO|syscall.ISIG {
		t.Errorf("terminal not restored: lflag %#x", tio.Lflag)
	}
}

// TestTerminalInterrupt checks Ctrl-C on the raw terminal: it closes the
// connection normally (the key no longer raises SIGINT, so the client
// reads it) and Run returns nil.
func TestTerminalInterrupt(t *testing.T) {
	t.Parallel()
	master, tty := openPTY(t)
	codes := make(chan int, 1)
	rs := startRaw(t, func(i int, rc *rawConn) { codes <- rc.echo(t, nil) })
	screen, _, _ := watchScreen(t, master)
	wait := startRun(t, t.Context(), rs.url, client.Options{Lines: true, CloseCode: 4001}, tty, tty)
	screen.waitFor(t, "> ")
	master.WriteString("typed\x03")
	if err := wait(); err != nil {
		t.Errorf("Run after Ctrl-C: %v, want nil", err)
	}
	if code := <-codes; code != 4001 {
		t.Errorf("client sent close %d, want 4001", code)
	}
}

// TestTerminalEditing checks the line editor's cursor keys and history
// through a pseudo-terminal: Left/Right, Home/End and Ctrl-A/E move within
// the line and typing inserts there; Up/Down recall the lines entered; a
// message that arrives while the cursor is mid-line leaves the line and
// the cursor where they were; received binary is marked.
func TestTerminalEditing(t *testing.T) {
	t.Parallel()
	master, tty := openPTY(t)
	seen := make(chan string, 16)
	rs, push := startPushEcho(t, func(p string) bool { seen <- p; return true })
	_, waitScreen, typeKeys := watchScreen(t, master)
	wait := startRun(t, t.Context(), rs.url, client.Options{Lines: true}, tty, tty)
	connected := "* connected to " + rs.url + "; /help lists the commands"
	sent := func(want string) {
		t.Helper()
		select {
		case got := <-seen:
			if got != want {
				t.Fatalf("the server got %q, want %q", got, want)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("the server got nothing, want %q", want)
		}
	}
	const left, right, up, down, home, end = "\x1b[D", "\x1b[C", "\x1b[A", "\x1b[B", "\x1b[H", "\x1b[F"
	waitScreen("prompt", connected, "> ")
	typeKeys("world\r")
	sent("world")
	waitScreen("first line", connected, "> world", "< world", "> ")

	typeKeys("hello" + left + left + "XY" + home + "<" + end + ">" + "\x01a\x05e" + left + right)
	waitScreen("cursor keys", connected, "> world", "< world", "> a<helXYlo>e")
	typeKeys("\r")
	sent("a<helXYlo>e")
	waitScreen("edited line", connected, "> world", "< world", "> a<helXYlo>e", "< a<helXYlo>e", "> ")

	// A message while the cursor is mid-line: typing goes on where it was.
	typeKeys("abc" + left)
	waitScreen("mid-line", connected, "> world", "< world", "> a<helXYlo>e", "< a<helXYlo>e", "> abc")
	push <- pushed{wsframe.OpBinary, []byte{0, 1, 2, 0xff}}
	waitScreen("binary while editing", connected, "> world", "< world", "> a<helXYlo>e", "< a<helXYlo>e",
		"< [binary 4 B] 000102ff", "> abc")
	typeKeys("X\r")
	sent("abXc")

	// History: Up recalls the lines entered, most recent first; Down goes
	// back towards the newest.
	typeKeys(up + up + up + down + "\r")
	sent("a<helXYlo>e")
	typeKeys("\x04")
	if err := wait(); err != nil {
		t.Errorf("Run after Ctrl-D: %v, want nil", err)
	}
}

//go:build linux

package client

import (
	"os"
	"syscall"
	"unsafe"
)

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	var t syscall.Termios
	return ioctl(f, syscall.TCGETS, unsafe.Pointer(&t)) == nil
}

// makeRaw puts the terminal f in raw input mode, as the line editor needs:
// no line buffering, no echo, and no signals from Ctrl-C or Ctrl-Z, which
// arrive as keys. Output processing stays on. The returned function puts
// the terminal back as it was.
func makeRaw(f *os.File) (restore func(), err error) {
	var old syscall.Termios
	if err := ioctl(f, syscall.TCGETS, unsafe.Pointer(&old)); err != nil {
		return nil, err
	}
	t := old
	t.Lflag &^= syscall.ICANON | syscall.ECHO | syscall.ISIG | syscall.IEXTEN
	t.Iflag &^= syscall.IXON
	t.Iflag |= syscall.ICRNL
	t.Cc[syscall.VMIN] = 1
	t.Cc[syscall.VTIME] = 0
	if err := ioctl(f, syscall.TCSETS, unsafe.Pointer(&t)); err != nil {
		return nil, err
	}
	return func() { ioctl(f, syscall.TCSETS, unsafe.Pointer(&old)) }, nil
}

// terminalWidth returns the number of columns of the terminal f, or 0.
func terminalWidth(f *os.File) int {
	var ws struct{ Row, Col, X, Y uint16 }
	if ioctl(f, syscall.TIOCGWINSZ, unsafe.Pointer(&ws)) != nil {
		return 0
	}
	return int(ws.Col)
}

// ioctl runs one ioctl on f's descriptor. It goes through SyscallConn, not
// Fd, which would stop f's deadlines from working.
func ioctl(f *os.File, req uint, arg unsafe.Pointer) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	err = rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

//go:build !linux

package client

import (
	"errors"
	"os"
)

// isTerminal reports whether f looks like a terminal: a character device.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// makeRaw is not supported here: interactive mode runs on the terminal's
// own line editing, and received messages may land inside a typed line.
func makeRaw(*os.File) (func(), error) {
	return nil, errors.New("raw terminal mode is supported on Linux only")
}

func terminalWidth(*os.File) int { return 0 }

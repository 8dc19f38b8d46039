// Package leakcheck finds goroutines that a test binary left running.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs the tests, then fails the binary if goroutines other than the
// runtime's and the testing package's are still running after a grace
// period of up to one second. Call it from TestMain: os.Exit(leakcheck.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if code != 0 {
		return code
	}
	var leaked []string
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		leaked = Interesting()
		if len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "leakcheck: %d goroutines still running after the tests:\n\n%s\n",
			len(leaked), strings.Join(leaked, "\n\n"))
		return 1
	}
	return 0
}

// Interesting returns the stacks of running goroutines that belong to this
// project, net/http, x/net, gorilla or os/exec: the goroutines a test could
// leave behind. The runtime's and the testing package's own are left out.
func Interesting() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // the calling goroutine
			continue
		}
		for _, s := range []string{"wsecho", "net/http.", "golang.org/x/net", "github.com/gorilla", "os/exec."} {
			if strings.Contains(g, s) && !strings.Contains(g, "leakcheck.Interesting") {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

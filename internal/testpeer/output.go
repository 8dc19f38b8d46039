package testpeer

import (
	"strings"
	"sync"
	"time"
)

// Output is an io.Writer that collects what a client or a peer writes and
// lets a test wait for it. Its zero value is ready to use; it is safe for
// concurrent use.
type Output struct {
	mu      sync.Mutex
	buf     strings.Builder
	changed chan struct{} // closed and replaced on every write
}

// Write appends p and wakes every WaitUntil.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if o.changed != nil {
		close(o.changed)
	}
	o.changed = make(chan struct{})
	return len(p), nil
}

// String returns what has been written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// WaitUntil calls ok with the output so far, then again after every write,
// and reports whether ok returned true within timeout.
func (o *Output) WaitUntil(timeout time.Duration, ok func(string) bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		o.mu.Lock()
		if o.changed == nil {
			o.changed = make(chan struct{})
		}
		s, ch := o.buf.String(), o.changed
		o.mu.Unlock()
		if ok(s) {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}

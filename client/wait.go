package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"wsecho/internal/wsframe"
)

// ErrNoCloseReply is the cause in a CloseError when the server did not
// answer the client's Close: the closing handshake did not complete.
var ErrNoCloseReply = errors.New("the server did not answer our close")

const (
	defaultCloseWait = time.Second
	defaultWait      = time.Second
)

func (s *session) closeWait() time.Duration {
	if s.opts.CloseWait > 0 {
		return s.opts.CloseWait
	}
	return defaultCloseWait
}

func (s *session) closeCode() int {
	if s.opts.CloseCode != 0 {
		return s.opts.CloseCode
	}
	return wsframe.CloseNormal
}

// closeAfter closes l's connection wait after ctx ends, wherever the
// goroutine serving it is blocked (a write to a server that does not read
// blocks for ever, and holds the lock the closing handshake needs), and
// marks it cut. The returned function cancels it.
func closeAfter(ctx context.Context, l *live, wait time.Duration) (stop func()) {
	var mu sync.Mutex
	var t *time.Timer
	over := false
	stopCtx := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !over {
			t = time.AfterFunc(wait, func() {
				l.cut.Store(true)
				l.c.Close()
			})
		}
	})
	return func() {
		stopCtx()
		mu.Lock()
		defer mu.Unlock()
		over = true
		if t != nil {
			t.Stop()
		}
	}
}

// endOfInput ends a connection whose input is over (line mode, Count
// messages sent, a file): it waits for the replies as Options.Wait says,
// then closes normally. It is the end of the session: no reconnect follows
// a normal close.
func (l *live) endOfInput(ctx context.Context) error {
	s := l.s
	s.finished = true
	wait := s.opts.Wait
	if wait == 0 {
		wait = defaultWait
	}
	var idle <-chan time.Time
	var t *time.Timer
	if wait > 0 {
		t = time.NewTimer(wait)
		defer t.Stop()
		idle = t.C
	}
	// A negative wait: until the server closes (or Ctrl-C).
	for wait < 0 || int64(l.sent) > l.recv.Load() {
		select {
		case <-ctx.Done():
			return l.closeNormally(ctx, s.closeCode(), s.opts.CloseReason)
		case err := <-l.readErr:
			return l.ended(err)
		case pg := <-l.c.pongs:
			l.pong(pg)
		case <-l.got:
			if t != nil {
				t.Reset(wait) // a reply: the idle wait starts again
			}
		case <-idle:
			return l.closeNormally(ctx, s.closeCode(), s.opts.CloseReason)
		}
	}
	return l.closeNormally(ctx, s.closeCode(), s.opts.CloseReason)
}

// closeNormally sends a Close with code and reason and waits for the
// server's Close, for CloseWait at most after the last message that
// arrives; once ctx has ended (Ctrl-C), for CloseWait at most in all, since
// closeAfter then closes the connection. It returns nil when the server
// answered, a CloseError with ErrNoCloseReply when it did not, and the
// server's own result when it broke the protocol meanwhile or had closed
// first: then the server's close code decides, as if the client had not
// been closing.
func (l *live) closeNormally(ctx context.Context, code int, reason string) error {
	s := l.s
	wait := s.closeWait()
	// The write blocks when the server does not read: bound it.
	guard := time.AfterFunc(wait, func() { l.c.Close() })
	err := l.c.WriteClose(code, reason)
	guard.Stop()
	// ErrCloseSent: the server closed first, and the wire layer answered.
	serverFirst := errors.Is(err, wsframe.ErrCloseSent)
	if !serverFirst {
		if err != nil {
			s.log.Debug("send close", "err", err)
		}
		s.p.closed("send", code, reason, time.Now())
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	// Once ctx has ended, the wait is no longer extended.
	done := ctx.Done()
	if ctx.Err() != nil {
		done = nil
	}
	for {
		select {
		case err := <-l.readErr:
			var pe *wsframe.Error
			if serverFirst || errors.As(err, &pe) {
				return l.ended(err) // the server's close code decides
			}
			if code, reason, ok := l.c.CloseStatus(); ok {
				s.p.closed("recv", code, reason, time.Now())
				return nil
			}
			if l.cut.Load() {
				return l.noReply(fmt.Errorf("%w within %s", ErrNoCloseReply, wait))
			}
			return l.noReply(fmt.Errorf("%w: the connection ended first (%v)", ErrNoCloseReply, err))
		case <-l.got:
			if done != nil {
				timer.Reset(wait)
			}
		case <-done:
			done = nil // closeAfter closes the connection in time
		case <-timer.C:
			l.c.Close()
			<-l.readErr
			if _, _, ok := l.c.CloseStatus(); ok {
				return nil
			}
			return l.noReply(fmt.Errorf("%w within %s", ErrNoCloseReply, wait))
		}
	}
}

// noReply reports a closing handshake the server did not complete.
func (l *live) noReply(cause error) error {
	err := &CloseError{Code: wsframe.CloseAbnormal, Err: cause}
	l.s.p.failed(err, time.Now())
	return err
}

// lost ends a connection that stopped answering.
func (l *live) lost(cause error) error {
	l.c.Close()
	<-l.readErr
	return l.ended(cause)
}

// writeFailed ends the connection after a failed write. The reading
// goroutine gets CloseWait to read what the server sent before the failure,
// such as a Close that explains it; ErrCloseSent means the wire layer has
// answered the server's Close already.
func (l *live) writeFailed(werr error) error {
	timer := time.NewTimer(l.s.closeWait())
	defer timer.Stop()
	var err error
	select {
	case err = <-l.readErr:
	case <-timer.C:
		l.c.Close()
		err = <-l.readErr
	}
	var pe *wsframe.Error
	if _, _, ok := l.c.CloseStatus(); ok || errors.As(err, &pe) {
		return l.ended(err)
	}
	if l.cut.Load() { // by closeAfter, after Ctrl-C: the session ends
		return l.noReply(fmt.Errorf("%w: it stopped reading, and the connection was closed %s after the interrupt",
			ErrNoCloseReply, l.s.closeWait()))
	}
	return l.ended(werr)
}

package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"wsecho/internal/wsframe"
)

// stableAfter is how long a connection must last, exchanging messages, for
// the reconnect backoff to start again from its shortest wait.
const stableAfter = time.Second

// Connect dials url and runs the client over the connection, as Dial and
// Run do. With Options.Reconnect it also retries the first connection,
// each attempt bounded by ConnectTimeout, with the same backoff as a
// reconnect, until it succeeds or ctx ends; then Run's guarantees apply.
// Input that arrives meanwhile is kept for the connection.
//
// When ctx ends before the first connection is made, Connect returns an
// error that says it was interrupted while connecting.
func Connect(ctx context.Context, url string, opts Options, in io.Reader, out io.Writer) error {
	if !opts.Reconnect {
		c, err := Dial(ctx, url, opts)
		if err != nil {
			return err
		}
		return Run(ctx, c, in, out)
	}
	return runSession(ctx, nil, url, opts, in, out)
}

// runSession is Run and Connect: c is nil when the first connection is
// still to be dialled.
func runSession(ctx context.Context, c *Conn, url string, opts Options, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := newSession(opts, url, in, out)
	s.interrupt = cancel
	defer s.finish()
	return s.run(ctx, c)
}

// run serves c and, with Reconnect, the connections that follow it; c nil
// dials the first one.
func (s *session) run(ctx context.Context, c *Conn) error {
	attempt := 0
	if c == nil {
		var err error
		if c, err = s.redial(ctx, &attempt, nil); c == nil {
			return err
		}
	}
	s.connected = true
	for {
		err := s.serve(ctx, c)
		c.Close()
		if err == nil || !s.opts.Reconnect || s.finished || ctx.Err() != nil || !reconnectable(err) {
			return err
		}
		if s.exchanged {
			attempt = 0 // a connection that worked: start again from the shortest wait
		}
		if c, _ = s.redial(ctx, &attempt, err); c == nil {
			return err
		}
	}
}

// redial dials until it succeeds, waiting the backoff before each attempt
// after a connection ended with cause (or, with cause nil, before each but
// the first). It returns nil when Run should end instead: ctx ended, or the
// input ended with nothing left to send; the error is then the last dial's
// (the caller returns its own when a connection had been made).
func (s *session) redial(ctx context.Context, attempt *int, cause error) (*Conn, error) {
	var last error
	for {
		if cause != nil {
			d := s.backoff(*attempt)
			*attempt++
			s.p.reconnecting(cause, d, *attempt, s.doubt, s.dropped, !s.connected, time.Now())
			s.doubt, s.dropped = 0, 0
			if !s.waitToReconnect(ctx, d) {
				return nil, s.gaveUp(ctx, last)
			}
		}
		c, err := Dial(ctx, s.url, s.opts)
		if ctx.Err() != nil {
			if c != nil {
				c.Close()
			}
			return nil, s.gaveUp(ctx, err)
		}
		if err == nil {
			return c, nil
		}
		last, cause = err, err
	}
}

// gaveUp is redial's error when no connection is made: the last dial's,
// said to be interrupted when ctx ended.
func (s *session) gaveUp(ctx context.Context, last error) error {
	if ctx.Err() == nil {
		return last
	}
	if last == nil || errors.Is(last, context.Canceled) {
		return &InterruptedError{URL: s.url}
	}
	return &InterruptedError{URL: s.url, Last: last}
}

// waitToReconnect waits d before a reconnect attempt, keeping the input
// that arrives meanwhile for the next connection. It reports false when Run
// should end instead: ctx ended (or Ctrl-C), or the input ended with
// nothing left to send.
func (s *session) waitToReconnect(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case ev := <-s.input:
			if ev.kind == inEOF {
				s.eof = true
				if len(s.retry) == 0 && len(s.queued) == 0 {
					return false
				}
				continue
			}
			s.queued = append(s.queued, ev)
		case <-t.C:
			return true
		}
	}
}

// reconnectable reports whether Reconnect applies to how a connection
// ended: it dropped, or the server went away or is restarting.
func reconnectable(err error) bool {
	var ce *CloseError
	if !errors.As(err, &ce) {
		return false
	}
	var pe *wsframe.Error
	if errors.As(ce.Err, &pe) || errors.Is(ce.Err, ErrNoCloseReply) {
		return false
	}
	switch ce.Code {
	case wsframe.CloseAbnormal, wsframe.CloseGoingAway, wsframe.CloseServiceRestart:
		return true
	}
	return false
}

func (s *session) maxDelay() time.Duration {
	if s.opts.ReconnectMaxDelay > 0 {
		return s.opts.ReconnectMaxDelay
	}
	return defaultReconnectMaxDelay
}

// backoff returns the wait before reconnect attempt n (from 0): the base
// delay doubled n times, capped, drawn at random from its upper half.
func (s *session) backoff(n int) time.Duration {
	d := s.opts.ReconnectDelay
	if d <= 0 {
		d = defaultReconnectDelay
	}
	for ; n > 0 && d < s.maxDelay(); n-- {
		d *= 2
	}
	d = min(d, s.maxDelay())
	return d/2 + rand.N(d/2+1)
}

// InterruptedError reports that ctx ended (Ctrl-C) before a connection was
// made; Last is the last failed attempt's error, if any.
type InterruptedError struct {
	URL  string
	Last error
}

func (e *InterruptedError) Error() string {
	if e.Last != nil {
		return fmt.Sprintf("interrupted while connecting to %s (last attempt: %v)", e.URL, e.Last)
	}
	return "interrupted while connecting to " + e.URL
}

func (e *InterruptedError) Unwrap() error { return e.Last }

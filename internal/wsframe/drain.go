package wsframe

import "time"

// Drain asks the reader to stop at the next message boundary at which the
// peer has gone quiet for the grace period: the read then returns a timeout
// for which Drained reports true. A message already under way is read to
// its end, until the deadline end at the latest, and then the peer has the
// grace period for the next one. Use it to answer everything received
// before a shutdown.
func (c *Conn) Drain(grace time.Duration, end time.Time) {
	c.drainEnd.Store(end.UnixNano())
	c.drainGrace.Store(int64(grace))
	c.draining.Store(true)
	c.nc.SetReadDeadline(time.Now().Add(grace))
}

// waitDrain sets the read deadline to a grace period from now, or the
// drain's end if that comes first. Called by the reader.
func (c *Conn) waitDrain() {
	c.waited = true
	at := time.Now().Add(time.Duration(c.drainGrace.Load()))
	if end := time.Unix(0, c.drainEnd.Load()); end.Before(at) {
		at = end
	}
	c.nc.SetReadDeadline(at)
}

// extendDrain decides what a read error means while draining: a timeout in
// the middle of a message moves the deadline to the drain's end and asks for
// a retry. So does the first timeout at a message boundary, with a grace
// period from now: Drain set the deadline from another goroutine, and it
// may have passed before this one got to wait, with the peer's next message
// already in the socket (Go checks a deadline before it reads).
func (c *Conn) extendDrain(err error, midMessage bool) bool {
	if !c.draining.Load() || !isTimeout(err) {
		return false
	}
	midMessage = midMessage || c.inMsg
	end := time.Unix(0, c.drainEnd.Load())
	switch {
	case !time.Now().Before(end):
		return false
	case midMessage:
		c.extended = true
		c.nc.SetReadDeadline(end)
		return true
	case !c.waited:
		c.waitDrain()
		return true
	}
	return false
}

// Drained reports whether err ends a drain cleanly, at a message boundary.
func (c *Conn) Drained(err error) bool {
	return c.draining.Load() && isTimeout(err) && c.atHeader && !c.inMsg
}

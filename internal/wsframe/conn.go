package wsframe

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Role says which end of a connection a Conn is.
type Role uint8

const (
	Server Role = iota // frames from the peer must be masked
	Client             // frames from the peer must not be masked
)

// DefaultMaxMessage is the message size limit when Options.MaxMessage is 0.
const DefaultMaxMessage = 32 << 20

// DefaultMemoryWait is how long a read waits for Options.Budget when
// Options.MemoryWait is 0.
const DefaultMemoryWait = 10 * time.Second

// LingerTimeout bounds how long Close waits for the peer to hang up after
// the connection was failed, so that the Close frame is read rather than
// lost to a TCP reset.
const LingerTimeout = time.Second

// ControlWriteTimeout bounds every control frame the Conn writes (a Pong,
// a Close, a Ping): a peer that does not read cannot block the reader, or
// the closing handshake, for longer. A control frame that does not go out
// in time leaves the stream unusable, so the connection is closed.
const ControlWriteTimeout = 5 * time.Second

// ErrCloseSent is returned for a data frame written after a Close frame has
// gone out (RFC 6455, Section 5.5.1).
var ErrCloseSent = errors.New("websocket: close frame already sent")

// Options configure a Conn. The zero value is ready to use.
type Options struct {
	// MaxMessage is the largest message accepted, in bytes; a larger one
	// fails the connection with 1009. If 0, DefaultMaxMessage.
	MaxMessage int64

	// Budget, if set, is charged for every byte of message buffer the Conn
	// holds, shared with other Conns. If nil, only MaxMessage bounds it.
	Budget *Budget

	// MemoryWait is how long a read waits for Budget to have room before
	// it fails the connection with 1013 (try again later). Meanwhile the
	// Conn reads nothing more, so TCP pushes back on the peer. If 0,
	// DefaultMemoryWait.
	MemoryWait time.Duration

	// OnFrame, if set, is called from the reading goroutine for every frame
	// read from the peer, with its opcode and payload length.
	OnFrame func(opcode byte, length int64)

	// OnPong, if set, is called from the reading goroutine with the payload
	// of every Pong. The slice is valid only during the call.
	OnPong func(payload []byte)

	// OfferDeflate tells a Client Conn that the handshake request offered
	// permessage-deflate (DeflateOffer). The Conn then takes the server's
	// Sec-WebSocket-Extensions out of the response it passes through (x/net
	// fails a handshake whose response has one), checks it, and turns
	// compression on when the server accepted; an answer RFC 7692 forbids
	// fails the handshake.
	OfferDeflate bool
}

// Conn is the wire layer of one WebSocket connection.
//
// ReadMessage reads whole messages. Conn also implements net.Conn for x/net:
// Read yields one well-formed frame per message (for a reader that goes
// through x/net), and Write takes x/net's frame stream and sends each frame
// whole.
//
// The read methods must be called from one goroutine at a time. Write, the
// control-frame methods, Close, Progress and the deadline methods are safe
// for concurrent use.
type Conn struct {
	nc   net.Conn
	br   *bufio.Reader
	role Role
	opts Options

	// Read side, owned by the reading goroutine (see read.go, xnet.go).
	httpRead   bool   // client: still passing the handshake response through
	lineLen    int    // bytes in the response line being passed through
	status     []byte // the response's status line, cut short
	statusDone bool
	xhdr       [MaxHeaderLen]byte
	xhdrN      int // length of the header handed to x/net
	xhdrOff    int // bytes of it already handed over
	key        [4]byte
	keyPos     int
	op         byte    // opcode of the message being read
	inMsg      bool    // a message is under way: its first frame has been read
	buf        *[]byte // the message buffer, from the pool; nil when none is held
	msg        []byte  // the message read so far, in *buf
	msgOff     int     // bytes of msg handed to x/net
	handed     bool    // msg is a whole message handed out: released at the next read
	hold       Hold    // this connection's share of Options.Budget
	utf        UTF8
	deflate    *connDeflate // permessage-deflate, when negotiated (compress.go)
	offer      *offerState  // client: reading the answer to OfferDeflate
	readErr    error        // sticky
	atHeader   bool         // waiting for a frame header: a timeout here can be retried
	draining   atomic.Bool
	drainEnd   atomic.Int64 // unix nanoseconds: the read deadline once a message is under way
	drainGrace atomic.Int64 // the drain's grace period
	extended   bool         // the read deadline was moved to drainEnd for a message under way
	waited     bool         // at this message boundary, the reader set the drain's deadline itself

	// progress counts signs of life: frame headers and payload read, and
	// writes from x/net. msgState counts message starts and ends: it is odd
	// while a message is under way. A timer samples both (see Progress).
	progress atomic.Uint64
	msgState atomic.Uint64

	// Write side, guarded by wmu.
	wmu       sync.Mutex
	framing   bool   // past the handshake: Write carries frames
	wpend     []byte // the start of an x/net frame whose end has not come yet
	wbufArr   [4][]byte
	wbufs     net.Buffers // frames queued for one write, in wbufArr
	closeSent bool
	werr      error // sticky: a control frame did not go out whole

	// Also guarded by wmu: the pooled buffers of the queued frames
	// (compressed, split), given back at flush, and SetFragmentation's
	// fragment size (0: none) and the control frame between fragments.
	wheld       []*[]byte
	fragSize    int
	fragBetween []byte

	// Write deadlines, guarded by dmu: the caller's, and whether a control
	// frame's own bound is in force.
	dmu        sync.Mutex
	wdl        time.Time
	ctlWriting bool
	ctlDl      time.Time

	// Close state, guarded by mu.
	mu         sync.Mutex
	peerClosed bool
	peerCode   int
	peerReason string
	failed     *Error
	closeOnce  sync.Once
	closeErr   error
}

// minReadBuffer is the least buffer the reader beneath a Conn has: a whole
// control frame fits in it, and is read in place.
const minReadBuffer = MaxHeaderLen + MaxControlPayload

// NewConn returns the wire layer over nc. br, if not nil, is a reader on nc
// that may already hold bytes that arrived with the handshake (the reader
// http.Hijacker returns); otherwise Conn makes its own.
//
// A Client Conn first passes the handshake response through Read unchanged
// and stops at its blank line, so that the bufio.Reader x/net reads it with
// never holds frame bytes. Writes pass through unchanged until Start.
func NewConn(nc net.Conn, br *bufio.Reader, role Role, opts Options) *Conn {
	if br == nil {
		br = bufio.NewReader(nc)
	}
	if br.Size() < minReadBuffer {
		br = bufio.NewReaderSize(br, minReadBuffer)
	}
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = DefaultMaxMessage
	}
	if opts.MemoryWait <= 0 {
		opts.MemoryWait = DefaultMemoryWait
	}
	c := &Conn{nc: nc, br: br, role: role, opts: opts, httpRead: role == Client, hold: NewHold(opts.Budget)}
	if role == Client && opts.OfferDeflate {
		c.offer = new(offerState)
	}
	return c
}

// HandshakeStatus returns the status line of the handshake response a
// Client Conn passed through, such as "HTTP/1.1 403 Forbidden".
func (c *Conn) HandshakeStatus() string { return string(c.status) }

// Start switches Write from the handshake to frames. Call it once the
// opening handshake has succeeded, before any frame is written.
func (c *Conn) Start() {
	c.wmu.Lock()
	c.framing = true
	c.wmu.Unlock()
}

// NetConn returns the connection beneath c.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Progress returns two counters for a timer to sample, so that keeping
// track of a connection costs no clock reading per frame: signs of life
// (frame headers and payload read, writes of data), which an empty data
// frame that ends nothing does not advance; and message starts and ends,
// odd while a message is under way.
func (c *Conn) Progress() (life, messages uint64) {
	return c.progress.Load(), c.msgState.Load()
}

// MemoryWaits returns how many times a read has waited for Options.Budget.
// Call it from the reading goroutine.
func (c *Conn) MemoryWaits() int { return c.hold.Waits() }

// Close closes the connection. If the connection was failed, it first
// half-closes and reads what the peer still sends, for LingerTimeout at most,
// so that the peer reads the Close frame rather than a TCP reset.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		if c.Failed() != nil {
			if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			c.nc.SetReadDeadline(time.Now().Add(LingerTimeout))
			io.Copy(io.Discard, io.LimitReader(c.nc, 1<<20))
		}
		c.closeErr = c.nc.Close()
	})
	return c.closeErr
}

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.nc.SetReadDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// SetWriteDeadline implements net.Conn. While a control frame is being
// written, the earlier of t and the frame's own bound is in force.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.wdl = t
	if c.ctlWriting && (t.IsZero() || c.ctlDl.Before(t)) {
		t = c.ctlDl
	}
	return c.nc.SetWriteDeadline(t)
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

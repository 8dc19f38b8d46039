package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestReadMessageGrowsWithData checks that a header announcing 32 MiB
// makes the reader hold what has arrived, not what was announced: before
// the read path was rewritten, the wire layer allocated the whole announced
// length of a fragment at once.
func TestReadMessageGrowsWithData(t *testing.T) {
	t.Parallel()
	budget := NewBudget(1 << 30)
	c, peer, _ := newServerConn(t, Options{Budget: budget})
	// A first fragment announcing 32 MiB - 1, with 1 KiB of payload; then
	// the peer hangs up.
	h := AppendHeader(nil, Header{Opcode: OpBinary, Masked: true, Key: testKey, Length: 32<<20 - 1})
	write(t, peer, h, make([]byte, 1024))
	peer.(*net.TCPConn).CloseWrite()
	_, _, err := c.ReadMessage()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadMessage: %v, want io.ErrUnexpectedEOF", err)
	}
	st := budget.Stats()
	if st.Peak > firstBuffer {
		t.Errorf("peak charge %d bytes for 1 KiB that arrived, want at most %d", st.Peak, firstBuffer)
	}
	if st.Used != 0 {
		t.Errorf("after the end, %d bytes held, want 0", st.Used)
	}
}

// TestReadMessageLarge reads a message far larger than firstBuffer in
// fragments of odd sizes, and checks the bytes and that the buffer never
// got ahead of the data by more than twice.
func TestReadMessageLarge(t *testing.T) {
	t.Parallel()
	budget := NewBudget(1 << 30)
	c, peer, _ := newServerConn(t, Options{Budget: budget})
	msg := make([]byte, 3<<20+17)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	var frames [][]byte
	for off, i := 0, 0; off < len(msg); i++ {
		n := min(len(msg)-off, 100_000+i*3)
		op := OpContinuation
		if off == 0 {
			op = OpBinary
		}
		frames = append(frames, frame(off+n == len(msg), op, true, msg[off:off+n]))
		off += n
	}
	go func() {
		if _, err := peer.Write(slices.Concat(frames...)); err != nil {
			t.Errorf("peer write: %v", err)
		}
	}()
	op, p, err := c.ReadMessage()
	if err != nil || op != OpBinary || !bytes.Equal(p, msg) {
		t.Fatalf("ReadMessage: op %d, %d bytes, %v; want the %d-byte binary message", op, len(p), err, len(msg))
	}
	if peak := budget.Stats().Peak; peak > 2*int64(len(msg)) {
		t.Errorf("peak charge %d for a %d-byte message, want at most twice", peak, len(msg))
	}
	c.Release()
	if used := budget.Stats().Used; used != 0 {
		t.Errorf("after Release, %d bytes held, want 0", used)
	}
}

// TestBudgetWait checks that a message that needs more than the budget has
// left waits, reading nothing, while a small message on another connection
// goes through on the reserve; and that it then fails with 1013.
func TestBudgetWait(t *testing.T) {
	t.Parallel()
	budget := NewBudget(2 << 20) // 256 KiB kept for small messages
	opts := Options{Budget: budget, MemoryWait: 300 * time.Millisecond}
	holder, holderPeer, _ := newServerConn(t, opts)
	big, bigPeer, bigBr := newServerConn(t, opts)
	small, smallPeer, _ := newServerConn(t, opts)

	// holder reads a 1 MiB message and keeps it: 1 MiB of the budget held.
	go holderPeer.Write(frame(true, OpBinary, true, make([]byte, 1<<20)))
	if _, p, err := holder.ReadMessage(); err != nil || len(p) != 1<<20 {
		t.Fatalf("holder: %d bytes, %v", len(p), err)
	}
	// big's 1 MiB message gets to 512 KiB, then needs more than is left
	// outside the reserve.
	go bigPeer.Write(frame(true, OpBinary, true, make([]byte, 1<<20))) // fails once big is failed
	done := make(chan error, 1)
	go func() {
		_, _, err := big.ReadMessage()
		done <- err
	}()
	for i := range 20 {
		write(t, smallPeer, frame(true, OpText, true, []byte("small")))
		if _, p, err := small.ReadMessage(); err != nil || string(p) != "small" {
			t.Fatalf("small message %d: %q, %v", i, p, err)
		}
	}
	err := <-done
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CloseTryAgainLater {
		t.Fatalf("big message: %v, want an *Error with 1013", err)
	}
	if h, p := readWire(t, bigBr); h.Opcode != OpClose || binary.BigEndian.Uint16(p) != CloseTryAgainLater {
		t.Errorf("big peer got opcode %d payload %q, want Close 1013", h.Opcode, p)
	}
	if big.MemoryWaits() != 1 {
		t.Errorf("MemoryWaits = %d, want 1", big.MemoryWaits())
	}
	holder.Release()
	small.Release()
	st := budget.Stats()
	if st.Waits != 1 || st.Refused != 1 || st.Used != 0 {
		t.Errorf("budget stats %+v, want 1 wait, 1 refusal, nothing held", st)
	}
}

// TestBudgetRelease checks that a waiting holder gets its memory as soon as
// another releases it, and that a holder is refused at once when every
// other holder is waiting too.
func TestBudgetRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(8 << 20) // 1 MiB reserve
		h1, h2, h3 := NewHold(b), NewHold(b), NewHold(b)
		if !h1.Grow(6<<20, time.Second) {
			t.Fatal("first grow refused")
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			h1.Release()
		}()
		start := time.Now()
		if !h2.Grow(4<<20, time.Second) || h2.Waits() != 1 || time.Since(start) != 100*time.Millisecond {
			t.Errorf("second grow: %d waits, after %v; want it at 100ms", h2.Waits(), time.Since(start))
		}
		if h3.Grow(8<<20, time.Second) {
			t.Error("a holding larger than the budget less its reserve was granted")
		}

		// h2 holds 4 MiB and h3 2 MiB; both want 2 MiB more, where 1 MiB
		// is free outside the reserve. h3 waits for h2, whose request is
		// refused at once, since h3 is waiting too; h2's release lets h3
		// go on.
		if !h3.Grow(2<<20, time.Second) {
			t.Fatal("h3's first grow refused")
		}
		got := make(chan bool, 1)
		go func() { got <- h3.Grow(2<<20, time.Second) }()
		synctest.Wait() // h3 is waiting
		start = time.Now()
		if h2.Grow(2<<20, time.Second) {
			t.Fatal("h2 was granted memory that is not there")
		}
		if time.Since(start) != 0 {
			t.Errorf("h2 was refused after %v, want at once", time.Since(start))
		}
		h2.Release()
		if !<-got {
			t.Error("h3 was refused after h2 released its memory")
		}
		if st := b.Stats(); st.Used != 4<<20 || st.Refused != 2 {
			t.Errorf("stats %+v, want 4 MiB used and 2 refusals", st)
		}
	})
}

// TestControlWriteBound checks that a Pong to a peer that does not read
// cannot block the reader: it gives up after ControlWriteTimeout and the
// connection ends.
func TestControlWriteBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local, peer := net.Pipe() // no buffer: a write blocks until the peer reads
		defer peer.Close()
		c := NewConn(local, nil, Server, Options{})
		defer c.Close()
		go peer.Write(frame(true, OpPing, true, []byte("are you there")))
		start := time.Now()
		_, _, err := c.ReadMessage()
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != ControlWriteTimeout {
			t.Errorf("ReadMessage: %v after %v; want a timeout after %v", err, time.Since(start), ControlWriteTimeout)
		}
	})
}

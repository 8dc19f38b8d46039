package wsframe

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKey is the masking key of RFC 6455, Section 5.7.
var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// tcpPair returns both ends of a loopback TCP connection, each with a
// deadline so that a silent end fails the test in seconds.
func tcpPair(t *testing.T) (local, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	local, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		local.Close()
		t.Fatal(r.err)
	}
	peer = r.c
	deadline := time.Now().Add(10 * time.Second)
	local.SetDeadline(deadline)
	peer.SetDeadline(deadline)
	t.Cleanup(func() {
		local.Close()
		peer.Close()
	})
	return local, peer
}

// frame builds one frame: masked with testKey when masked.
func frame(fin bool, op byte, masked bool, payload []byte) []byte {
	return AppendFrame(nil, Header{Fin: fin, Opcode: op, Masked: masked, Key: testKey}, payload)
}

// write sends raw bytes from the peer.
func write(t *testing.T, w io.Writer, b ...[]byte) {
	t.Helper()
	if _, err := w.Write(slices.Concat(b...)); err != nil {
		t.Fatalf("peer write: %v", err)
	}
}

// readWire reads one frame as the peer sees it on the wire, unmasked.
func readWire(t *testing.T, br *bufio.Reader) (Header, []byte) {
	t.Helper()
	b, err := br.Peek(2)
	if err != nil {
		t.Fatalf("peer read header: %v", err)
	}
	b, err = br.Peek(HeaderLen(b[1]))
	if err != nil {
		t.Fatalf("peer read header: %v", err)
	}
	h, n, err := ParseHeader(b)
	if err != nil {
		t.Fatalf("peer parse header % x: %v", b, err)
	}
	br.Discard(n)
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatalf("peer read payload: %v", err)
	}
	if h.Masked {
		Mask(h.Key, 0, p)
	}
	return h, p
}

// newServerConn returns a Server Conn over one end of a TCP pair and the
// peer's end, with a reader on it.
func newServerConn(t *testing.T, opts Options) (*Conn, net.Conn, *bufio.Reader) {
	t.Helper()
	local, peer := tcpPair(t)
	return NewConn(local, nil, Server, opts), peer, bufio.NewReader(peer)
}

// newClientConn returns a Client Conn past a 101 response, and x/net's
// 4 KiB reader over it.
func newClientConn(t *testing.T, opts Options) (c *Conn, xr *bufio.Reader, peer net.Conn, pr *bufio.Reader) {
	t.Helper()
	local, peer := tcpPair(t)
	c = NewConn(local, nil, Client, opts)
	write(t, peer, []byte(handshake101))
	xr = bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(xr, nil)
	if err != nil {
		t.Fatalf("read handshake response: %v", err)
	}
	resp.Body.Close()
	c.Start()
	return c, xr, peer, bufio.NewReader(peer)
}

// xnetServerReader is the reader the server hands x/net: 16 bytes.
func xnetServerReader(c *Conn) *bufio.Reader { return bufio.NewReaderSize(c, 16) }

type message struct {
	op      byte
	payload string
}

func TestServerRead(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("0123456789", 7000) // 70000 bytes: the 64-bit length form
	tests := []struct {
		name   string
		frames [][]byte
		want   []message
	}{
		{name: "masked_hello", // RFC 6455 §5.7
			frames: [][]byte{{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}},
			want:   []message{{OpText, "Hello"}}},
		{name: "fragmented_hello", // §5.4, the §5.7 fragments masked
			frames: [][]byte{frame(false, OpText, true, []byte("Hel")), frame(true, OpContinuation, true, []byte("lo"))},
			want:   []message{{OpText, "Hello"}}},
		{name: "binary_three_fragments", // §5.4, with an empty middle fragment
			frames: [][]byte{frame(false, OpBinary, true, []byte{0, 1}), frame(false, OpContinuation, true, nil), frame(true, OpContinuation, true, []byte{0xff})},
			want:   []message{{OpBinary, "\x00\x01\xff"}}},
		{name: "empty_text", // §5.6
			frames: [][]byte{frame(true, OpText, true, nil)},
			want:   []message{{OpText, ""}}},
		{name: "empty_fragments", // §5.4
			frames: [][]byte{frame(false, OpText, true, nil), frame(true, OpContinuation, true, nil)},
			want:   []message{{OpText, ""}}},
		{name: "text_split_in_a_rune", // §5.6: UTF-8 is checked across fragments
			frames: [][]byte{frame(false, OpText, true, []byte("a\xe2\x82")), frame(true, OpContinuation, true, []byte("\xac"))},
			want:   []message{{OpText, "a€"}}},
		{name: "large_single", // §5.2: 64-bit length
			frames: [][]byte{frame(true, OpText, true, []byte(big))},
			want:   []message{{OpText, big}}},
		{name: "large_fragmented",
			frames: [][]byte{frame(false, OpText, true, []byte(big[:40000])), frame(true, OpContinuation, true, []byte(big[40000:]))},
			want:   []message{{OpText, big}}},
		{name: "pong_ignored", // §5.5.3: an unsolicited Pong needs no answer
			frames: [][]byte{frame(true, OpPong, true, []byte("x")), frame(true, OpText, true, []byte("a"))},
			want:   []message{{OpText, "a"}}},
		{name: "three_messages",
			frames: [][]byte{frame(true, OpText, true, []byte("a")), frame(true, OpBinary, true, []byte("b")), frame(true, OpText, true, []byte("c"))},
			want:   []message{{OpText, "a"}, {OpBinary, "b"}, {OpText, "c"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, peer, _ := newServerConn(t, Options{})
			var wg sync.WaitGroup
			defer func() {
				c.NetConn().Close() // on failure, unblocks the writer
				wg.Wait()
			}()
			wg.Go(func() { // large frames fill the socket buffers
				if _, err := peer.Write(slices.Concat(tc.frames...)); err != nil {
					t.Errorf("peer write: %v", err)
				}
			})
			xr := xnetServerReader(c)
			for i, want := range tc.want {
				// The header exactly: FIN, the message's opcode, masked with
				// an all-zero key (x/net insists on a masked client frame).
				wantHdr := AppendHeader(nil, Header{Fin: true, Opcode: want.op, Masked: true, Length: int64(len(want.payload))})
				hdr := make([]byte, len(wantHdr))
				if _, err := io.ReadFull(xr, hdr); err != nil {
					t.Fatalf("message %d: read header: %v", i, err)
				}
				if !bytes.Equal(hdr, wantHdr) {
					t.Fatalf("message %d: header % x, want % x", i, hdr, wantHdr)
				}
				p, err := io.ReadAll(io.LimitReader(xr, int64(len(want.payload))))
				if err != nil || string(p) != want.payload {
					t.Fatalf("message %d: payload %q, %v; want %q", i, head(p), err, head([]byte(want.payload)))
				}
			}
		})
	}
}

// TestServerPingBetweenFragments checks that a Ping between two fragments is
// answered at once (RFC 6455, Section 5.5.2), before the message is whole:
// the peer sends the last fragment only after it has read the Pong.
func TestServerPingBetweenFragments(t *testing.T) {
	t.Parallel()
	c, peer, pr := newServerConn(t, Options{})
	type result struct {
		h   Header
		p   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		h, p, err := readFrameXNet(xnetServerReader(c))
		done <- result{h, p, err}
	}()
	write(t, peer, frame(false, OpText, true, []byte("Hel")), frame(true, OpPing, true, []byte("ping!")))
	h, p := readWire(t, pr)
	if h.Opcode != OpPong || !h.Fin || h.Masked || string(p) != "ping!" {
		t.Fatalf("answer to Ping: %+v %q, want an unmasked Pong \"ping!\"", h, p)
	}
	select {
	case r := <-done:
		t.Fatalf("Read returned before the last fragment: %+v %q %v", r.h, r.p, r.err)
	default:
	}
	write(t, peer, frame(true, OpContinuation, true, []byte("lo")))
	r := <-done
	if r.err != nil || r.h.Opcode != OpText || string(r.p) != "Hello" {
		t.Fatalf("message: %+v %q %v; want text \"Hello\"", r.h, r.p, r.err)
	}
}

func TestCloseEcho(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		payload    []byte // of the peer's Close
		wantEcho   []byte
		wantCode   int
		wantReason string
	}{
		{"normal_with_reason", ClosePayload(CloseNormal, "bye"), []byte{0x03, 0xe8}, CloseNormal, "bye"}, // §5.5.1: echo the code
		{"no_status", nil, nil, CloseNoStatus, ""},                                                       // §7.1.5: no code is 1005
		{"going_away", ClosePayload(CloseGoingAway, ""), []byte{0x03, 0xe9}, CloseGoingAway, ""},
		{"app_code", ClosePayload(4000, "app"), []byte{0x0f, 0xa0}, 4000, "app"},
		{"reason_utf8", ClosePayload(CloseNormal, "€"), []byte{0x03, 0xe8}, CloseNormal, "€"},
	}
	for _, tc := range tests {
		for _, role := range []Role{Server, Client} {
			t.Run(fmt.Sprintf("%s/role=%s", tc.name, roleName(role)), func(t *testing.T) {
				t.Parallel()
				c, xr, peer, pr := roleConn(t, role, Options{})
				write(t, peer, frame(true, OpText, role == Server, []byte("last")), frame(true, OpClose, role == Server, tc.payload))
				_, p, err := readFrameXNet(xr)
				if err != nil || string(p) != "last" {
					t.Fatalf("message before the Close: %q %v", p, err)
				}
				if _, _, err := readFrameXNet(xr); err != io.EOF {
					t.Fatalf("after the Close: %v, want io.EOF", err)
				}
				if _, err := c.Read(make([]byte, 8)); err != io.EOF {
					t.Fatalf("Read again: %v, want io.EOF", err)
				}
				h, echo := readWire(t, pr)
				if h.Opcode != OpClose || h.Masked != (role == Client) || !bytes.Equal(echo, tc.wantEcho) {
					t.Fatalf("echo: %+v % x, want Close % x masked=%v", h, echo, tc.wantEcho, role == Client)
				}
				code, reason, ok := c.PeerClose()
				if !ok || code != tc.wantCode || reason != tc.wantReason {
					t.Errorf("PeerClose = %d %q %v, want %d %q true", code, reason, ok, tc.wantCode, tc.wantReason)
				}
				if !c.CloseSent() || c.Failed() != nil {
					t.Errorf("CloseSent %v, Failed %v; want true, nil", c.CloseSent(), c.Failed())
				}
			})
		}
	}
}

// TestCloseAnswer checks the closing handshake we start: the peer's answer
// ends Read with io.EOF and is not answered again.
func TestCloseAnswer(t *testing.T) {
	t.Parallel()
	c, peer, pr := newServerConn(t, Options{})
	if err := c.WriteClose(CloseGoingAway, "going away"); err != nil {
		t.Fatal(err)
	}
	h, p := readWire(t, pr)
	if h.Opcode != OpClose || !bytes.Equal(p, ClosePayload(CloseGoingAway, "going away")) {
		t.Fatalf("our Close: %+v %q", h, p)
	}
	write(t, peer, frame(true, OpText, true, []byte("late")), frame(true, OpClose, true, ClosePayload(CloseGoingAway, "")))
	xr := xnetServerReader(c)
	if _, p, err := readFrameXNet(xr); err != nil || string(p) != "late" {
		t.Fatalf("message after our Close: %q %v, want it read", p, err)
	}
	if _, _, err := readFrameXNet(xr); err != io.EOF {
		t.Fatalf("after the answer: %v, want io.EOF", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(pr); err != nil || len(b) != 0 {
		t.Fatalf("after the closing handshake the peer read % x, %v; want nothing, then EOF", b, err)
	}
}

func roleName(r Role) string {
	if r == Client {
		return "client"
	}
	return "server"
}

// roleConn returns a Conn of role past any handshake, the reader x/net
// would use over it, and the peer.
func roleConn(t *testing.T, role Role, opts Options) (*Conn, *bufio.Reader, net.Conn, *bufio.Reader) {
	t.Helper()
	if role == Client {
		return newClientConn(t, opts)
	}
	c, peer, pr := newServerConn(t, opts)
	return c, xnetServerReader(c), peer, pr
}

// TestViolations checks that each breach of RFC 6455 fails the connection:
// Read returns an *Error with the code, a Close with that code goes out,
// no message is handed over, and Close half-closes so the peer reads it.
func TestViolations(t *testing.T) {
	t.Parallel()
	const max = 64
	long := bytes.Repeat([]byte{'a'}, max+1)
	tests := []struct {
		name  string
		role  Role
		sends [][]byte
		code  int
	}{
		{name: "rsv1", // §5.2: no extension negotiated
			sends: [][]byte{{0xc1, 0x80, 1, 2, 3, 4}}, code: CloseProtocolError},
		{name: "rsv3_on_ping", // §5.2
			sends: [][]byte{{0x99, 0x80, 1, 2, 3, 4}}, code: CloseProtocolError},
		{name: "reserved_opcode_3", // §5.2
			sends: [][]byte{frame(true, 0x3, true, nil)}, code: CloseProtocolError},
		{name: "reserved_opcode_b", // §5.2
			sends: [][]byte{frame(true, 0xb, true, nil)}, code: CloseProtocolError},
		{name: "unmasked_client_frame", // §5.1
			sends: [][]byte{{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}}, code: CloseProtocolError},
		{name: "masked_server_frame", role: Client, // §5.1
			sends: [][]byte{{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}}, code: CloseProtocolError},
		{name: "fragmented_ping", // §5.5
			sends: [][]byte{frame(false, OpPing, true, nil)}, code: CloseProtocolError},
		{name: "long_ping", // §5.5: at most 125 bytes
			sends: [][]byte{frame(true, OpPing, true, bytes.Repeat([]byte{'p'}, 126))}, code: CloseProtocolError},
		{name: "continuation_first", // §5.4
			sends: [][]byte{frame(true, OpContinuation, true, []byte("x"))}, code: CloseProtocolError},
		{name: "text_inside_fragments", // §5.4
			sends: [][]byte{frame(false, OpText, true, []byte("a")), frame(true, OpText, true, []byte("b"))}, code: CloseProtocolError},
		{name: "length_msb", // §5.2
			sends: [][]byte{{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}}, code: CloseProtocolError},
		{name: "close_one_byte", // §5.5.1
			sends: [][]byte{frame(true, OpClose, true, []byte{0x03})}, code: CloseProtocolError},
		{name: "close_1005", // §7.4.1: never on the wire
			sends: [][]byte{frame(true, OpClose, true, []byte{0x03, 0xed})}, code: CloseProtocolError},
		{name: "close_999", // §7.4.2
			sends: [][]byte{frame(true, OpClose, true, []byte{0x03, 0xe7})}, code: CloseProtocolError},
		{name: "close_5000", // §7.4.2
			sends: [][]byte{frame(true, OpClose, true, []byte{0x13, 0x88})}, code: CloseProtocolError},
		{name: "close_reason_utf8", // §5.5.1
			sends: [][]byte{frame(true, OpClose, true, []byte{0x03, 0xe8, 0xff})}, code: CloseInvalidPayload},
		{name: "text_invalid_utf8", // §8.1
			sends: [][]byte{frame(true, OpText, true, []byte("a\xc3\x28"))}, code: CloseInvalidPayload},
		{name: "text_truncated_utf8", // §8.1: the message ends inside a rune
			sends: [][]byte{frame(true, OpText, true, []byte("a\xe2\x82"))}, code: CloseInvalidPayload},
		{name: "text_invalid_utf8_client", role: Client, // §8.1
			sends: [][]byte{frame(true, OpText, false, []byte("\xff"))}, code: CloseInvalidPayload},
		{name: "fragments_invalid_utf8", // §8.1
			sends: [][]byte{frame(false, OpText, true, []byte("a\xed")), frame(true, OpContinuation, true, []byte("\xa0\x80"))}, code: CloseInvalidPayload},
		{name: "fragments_truncated_utf8", // §8.1
			sends: [][]byte{frame(false, OpText, true, []byte("a")), frame(true, OpContinuation, true, []byte("\xf0\x9f"))}, code: CloseInvalidPayload},
		{name: "too_big_single", // our limit: 1009
			sends: [][]byte{frame(true, OpBinary, true, long)}, code: CloseMessageTooBig},
		{name: "too_big_fragments",
			sends: [][]byte{frame(false, OpBinary, true, long[:40]), frame(true, OpContinuation, true, long[40:])}, code: CloseMessageTooBig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, xr, peer, pr := roleConn(t, tc.role, Options{MaxMessage: max})
			write(t, peer, tc.sends...)
			h, p, err := readFrameXNet(xr)
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != tc.code {
				t.Fatalf("read: %+v %q %v; want an *Error with code %d", h, p, err, tc.code)
			}
			if c.Failed() != pe {
				t.Errorf("Failed() = %v, want %v", c.Failed(), pe)
			}
			if _, err := c.Read(make([]byte, 8)); err != pe {
				t.Errorf("Read again: %v, want the same *Error", err)
			}
			wh, wp := readWire(t, pr)
			if wh.Opcode != OpClose || wh.Masked != (tc.role == Client) || len(wp) < 2 || int(wp[0])<<8|int(wp[1]) != tc.code {
				t.Fatalf("on the wire: %+v % x, want a Close with code %d", wh, wp, tc.code)
			}
			closed := make(chan error, 1)
			go func() { closed <- c.Close() }()
			// Close half-closes: the peer reads EOF after the Close frame.
			if rest, err := io.ReadAll(pr); err != nil || len(rest) != 0 {
				t.Errorf("after the Close frame the peer read % x, %v; want EOF", rest, err)
			}
			peer.Close()
			if err := <-closed; err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestClientHandshake checks that a Client Conn passes the handshake
// response through and stops exactly at its blank line, even when frames
// come in the same TCP segment, so that x/net's 4 KiB reader never holds
// frame bytes; the frames then come through the wire layer.
func TestClientHandshake(t *testing.T) {
	t.Parallel()
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	frames := slices.Concat(
		frame(false, OpText, false, []byte("Hel")), // §5.7, fragmented
		frame(true, OpPing, false, []byte("p")),
		frame(true, OpContinuation, false, []byte("lo")),
		frame(true, OpBinary, false, []byte{1, 2, 3}),
	)
	for _, readSize := range []int{1, 7, 4096} {
		t.Run(fmt.Sprintf("read=%d", readSize), func(t *testing.T) {
			t.Parallel()
			local, peer := tcpPair(t)
			c := NewConn(local, nil, Client, Options{})
			write(t, peer, []byte(resp), frames) // one segment
			var got []byte
			buf := make([]byte, readSize)
			for !bytes.HasSuffix(got, []byte("\r\n\r\n")) && len(got) < 2*len(resp) {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("read response: %v", err)
				}
				got = append(got, buf[:n]...)
			}
			if string(got) != resp {
				t.Fatalf("passed through %q, want %q", got, resp)
			}
			if s := c.HandshakeStatus(); s != "HTTP/1.1 101 Switching Protocols" {
				t.Errorf("HandshakeStatus = %q", s)
			}
			c.Start()
			xr := bufio.NewReaderSize(c, 4096)
			h, p, err := readFrameXNet(xr)
			if err != nil || h.Opcode != OpText || !h.Fin || h.Masked || string(p) != "Hello" {
				t.Fatalf("first message: %+v %q %v; want unmasked text \"Hello\"", h, p, err)
			}
			h, p, err = readFrameXNet(xr)
			if err != nil || h.Opcode != OpBinary || !bytes.Equal(p, []byte{1, 2, 3}) {
				t.Fatalf("second message: %+v %q %v", h, p, err)
			}
			// The Ping was answered with a masked Pong (RFC 6455, Section 5.1).
			wh, wp := readWire(t, bufio.NewReader(peer))
			if wh.Opcode != OpPong || !wh.Masked || string(wp) != "p" {
				t.Fatalf("answer to Ping: %+v %q, want a masked Pong \"p\"", wh, wp)
			}
		})
	}
	t.Run("xnet_reader", func(t *testing.T) {
		t.Parallel()
		local, peer := tcpPair(t)
		c := NewConn(local, nil, Client, Options{})
		write(t, peer, []byte(resp), frames)
		xr := bufio.NewReaderSize(c, 4096)
		r, err := http.ReadResponse(xr, nil)
		if err != nil || r.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("ReadResponse: %v %v", r, err)
		}
		if n := xr.Buffered(); n != 0 {
			t.Fatalf("x/net's reader holds %d bytes after the response, want 0", n)
		}
		c.Start()
		if _, p, err := readFrameXNet(xr); err != nil || string(p) != "Hello" {
			t.Fatalf("message: %q %v", p, err)
		}
	})
	t.Run("status_403", func(t *testing.T) {
		t.Parallel()
		local, peer := tcpPair(t)
		c := NewConn(local, nil, Client, Options{})
		write(t, peer, []byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"))
		r, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
		if err != nil || r.StatusCode != http.StatusForbidden {
			t.Fatalf("ReadResponse: %v %v", r, err)
		}
		if s := c.HandshakeStatus(); s != "HTTP/1.1 403 Forbidden" {
			t.Errorf("HandshakeStatus = %q", s)
		}
	})
}

// checkWhole is a writer in front of a Conn that checks, after every Write,
// that the Conn has passed on only whole frames.
type checkWhole struct {
	t  *testing.T
	c  *Conn
	fc *fakeConn
}

func (w checkWhole) Write(p []byte) (int, error) {
	n, err := w.c.Write(p)
	if rest := wholeFrames(w.fc.written()); len(rest) != 0 {
		w.t.Errorf("after a Write of %d bytes, %d bytes of a partial frame went out", len(p), len(rest))
	}
	return n, err
}

// wholeFrames returns what remains of b after its whole frames.
func wholeFrames(b []byte) []byte {
	for len(b) > 0 {
		h, n, err := ParseHeader(b)
		if err != nil || n == 0 || int64(len(b)-n) < h.Length {
			return b
		}
		b = b[n+int(h.Length):]
	}
	return b
}

// TestWriteWhole checks that frames x/net writes through its bufio.Writer,
// which splits a frame at the buffer's size, leave whole.
func TestWriteWhole(t *testing.T) {
	t.Parallel()
	for _, role := range []Role{Server, Client} {
		masked := role == Client
		frames := [][]byte{
			frame(true, OpText, masked, []byte("Hello")),
			frame(true, OpBinary, masked, bytes.Repeat([]byte{0xab}, 300)),
			frame(false, OpText, masked, bytes.Repeat([]byte{'x'}, 5000)),
			frame(true, OpContinuation, masked, nil),
			frame(true, OpBinary, masked, bytes.Repeat([]byte{0xcd}, 70000)),
			frame(true, OpClose, masked, ClosePayload(CloseNormal, "")),
		}
		for _, size := range []int{16, 512, 4096} {
			t.Run(fmt.Sprintf("role=%s/buf=%d", roleName(role), size), func(t *testing.T) {
				fc := &fakeConn{}
				c := NewConn(fc, nil, role, Options{})
				c.Start()
				bw := bufio.NewWriterSize(checkWhole{t, c, fc}, size)
				for _, f := range frames {
					// x/net writes the header, then the payload, then flushes.
					_, hl, _ := ParseHeader(f)
					bw.Write(f[:hl])
					bw.Write(f[hl:])
					if err := bw.Flush(); err != nil {
						t.Fatalf("flush: %v", err)
					}
				}
				if got, want := fc.written(), slices.Concat(frames...); !bytes.Equal(got, want) {
					t.Fatalf("wrote %d bytes, want the %d bytes of the frames", len(got), len(want))
				}
			})
		}
	}
}

// TestWriteSplits writes a stream of frames in three Writes, cut at every
// pair of positions, including inside headers of every length form.
func TestWriteSplits(t *testing.T) {
	t.Parallel()
	stream := slices.Concat(
		frame(true, OpText, true, []byte("Hello")),
		frame(true, OpBinary, false, bytes.Repeat([]byte{1}, 130)), // 16-bit length
		[]byte{0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c'},  // 64-bit length, not the shortest form
		frame(true, OpPing, true, nil),
		frame(true, OpClose, false, ClosePayload(CloseNormal, "")),
	)
	for i := 0; i <= len(stream); i++ {
		for j := i; j <= len(stream); j += 3 {
			fc := &fakeConn{}
			c := NewConn(fc, nil, Server, Options{})
			c.Start()
			w := checkWhole{t, c, fc}
			for _, p := range [][]byte{stream[:i], stream[i:j], stream[j:]} {
				if n, err := w.Write(p); n != len(p) || err != nil {
					t.Fatalf("split %d,%d: Write = %d, %v", i, j, n, err)
				}
			}
			if got := fc.written(); !bytes.Equal(got, stream) {
				t.Fatalf("split %d,%d: wrote % x, want % x", i, j, got, stream)
			}
		}
	}
}

// TestWriteTCP writes frames split by x/net's buffer over TCP while another
// goroutine sends Pings: the peer must read every frame intact, the Pings
// only between them.
func TestWriteTCP(t *testing.T) {
	t.Parallel()
	local, peer := tcpPair(t)
	c := NewConn(local, nil, Server, Options{})
	c.Start()
	payloads := [][]byte{[]byte("a"), bytes.Repeat([]byte{'b'}, 4096), bytes.Repeat([]byte{'c'}, 100000), bytes.Repeat([]byte{'d'}, 200)}
	const rounds, pings = 20, 50
	var wg sync.WaitGroup
	defer func() {
		local.Close() // on failure, unblocks the writers
		wg.Wait()
	}()
	wg.Go(func() {
		bw := bufio.NewWriterSize(c, 4096)
		for range rounds {
			for _, p := range payloads {
				f := frame(true, OpBinary, false, p)
				bw.Write(f[:len(f)-len(p)])
				bw.Write(p)
				if err := bw.Flush(); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		}
	})
	wg.Go(func() {
		for i := range pings {
			if err := c.WriteControl(OpPing, []byte{byte(i)}); err != nil {
				t.Errorf("ping: %v", err)
				return
			}
		}
	})
	pr := bufio.NewReader(peer)
	var data, ping int
	for data < rounds*len(payloads) || ping < pings {
		h, p := readWire(t, pr)
		switch h.Opcode {
		case OpPing:
			if p[0] != byte(ping) {
				t.Fatalf("ping %d carries %d", ping, p[0])
			}
			ping++
		case OpBinary:
			if want := payloads[data%len(payloads)]; !bytes.Equal(p, want) {
				t.Fatalf("frame %d: %d bytes, want %d bytes of %q", data, len(p), len(want), want[0])
			}
			data++
		default:
			t.Fatalf("unexpected frame %+v", h)
		}
	}
}

// TestWriteAfterClose checks RFC 6455, Section 5.5.1: after a Close has
// gone out, no data frame follows it, and no second Close.
func TestWriteAfterClose(t *testing.T) {
	t.Parallel()
	text := frame(true, OpText, false, []byte("data"))
	xnetClose := frame(true, OpClose, false, ClosePayload(CloseNormal, ""))
	tests := []struct {
		name  string
		first func(c *Conn) error // sends the first Close
	}{
		{"ours", func(c *Conn) error { return c.WriteClose(CloseGoingAway, "") }},
		{"xnet", func(c *Conn) error { _, err := c.Write(xnetClose); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			local, peer := tcpPair(t)
			c := NewConn(local, nil, Server, Options{})
			c.Start()
			if n, err := c.Write(text); n != len(text) || err != nil {
				t.Fatalf("Write before the Close: %d %v", n, err)
			}
			if err := tc.first(c); err != nil {
				t.Fatalf("first Close: %v", err)
			}
			if n, err := c.Write(xnetClose); n != len(xnetClose) || err != nil {
				t.Errorf("x/net's Close after a Close: %d %v, want it dropped without error", n, err)
			}
			if _, err := c.Write(text); !errors.Is(err, ErrCloseSent) {
				t.Errorf("data frame after the Close: %v, want ErrCloseSent", err)
			}
			if _, err := c.Write(slices.Concat(frame(true, OpPong, false, nil), text)); !errors.Is(err, ErrCloseSent) {
				t.Errorf("Pong and data frame after the Close: %v, want ErrCloseSent", err)
			}
			if err := c.WriteClose(CloseNormal, ""); !errors.Is(err, ErrCloseSent) {
				t.Errorf("WriteClose after the Close: %v, want ErrCloseSent", err)
			}
			if err := c.WriteControl(OpPing, nil); !errors.Is(err, ErrCloseSent) {
				t.Errorf("WriteControl after the Close: %v, want ErrCloseSent", err)
			}
			if !c.CloseSent() {
				t.Error("CloseSent = false")
			}
			c.Close()
			pr := bufio.NewReader(peer)
			if _, p := readWire(t, pr); string(p) != "data" {
				t.Fatalf("first frame: %q, want \"data\"", p)
			}
			if h, _ := readWire(t, pr); h.Opcode != OpClose {
				t.Fatalf("second frame: %+v, want the Close", h)
			}
			if rest, err := io.ReadAll(pr); err != nil || len(rest) != 0 {
				t.Fatalf("after the Close the peer read % x, %v; want nothing", rest, err)
			}
		})
	}
	t.Run("in_one_write", func(t *testing.T) {
		t.Parallel()
		fc := &fakeConn{}
		c := NewConn(fc, nil, Server, Options{})
		c.Start()
		in := slices.Concat(text, xnetClose, text, xnetClose)
		if n, err := c.Write(in); n != len(in) || !errors.Is(err, ErrCloseSent) {
			t.Errorf("Write = %d, %v; want %d, ErrCloseSent", n, err, len(in))
		}
		if got, want := fc.written(), slices.Concat(text, xnetClose); !bytes.Equal(got, want) {
			t.Errorf("wrote % x, want % x", got, want)
		}
	})
}

func TestWriteControl(t *testing.T) {
	t.Parallel()
	for _, role := range []Role{Server, Client} {
		t.Run("role="+roleName(role), func(t *testing.T) {
			t.Parallel()
			fc := &fakeConn{}
			c := NewConn(fc, nil, role, Options{})
			if err := c.WriteControl(OpPing, []byte("hi")); err != nil {
				t.Fatal(err)
			}
			if err := c.WriteControl(OpPing, make([]byte, MaxControlPayload+1)); err == nil {
				t.Error("a 126-byte control payload was accepted")
			}
			w := fc.written()
			h, n, err := ParseHeader(w)
			if err != nil || n == 0 || h.Opcode != OpPing || !h.Fin || h.Masked != (role == Client) || h.Length != 2 || len(w) != n+2 {
				t.Fatalf("wrote % x (%+v), want one Ping masked=%v", w, h, role == Client)
			}
			p := w[n:]
			if h.Masked {
				Mask(h.Key, 0, p)
			}
			if string(p) != "hi" {
				t.Errorf("payload %q, want \"hi\"", p)
			}
		})
	}
}

// TestWriteBeforeStart checks that the handshake passes through unchanged.
func TestWriteBeforeStart(t *testing.T) {
	t.Parallel()
	fc := &fakeConn{}
	c := NewConn(fc, nil, Client, Options{})
	req := "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n\x81" // ends like the start of a frame
	if n, err := c.Write([]byte(req)); n != len(req) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := string(fc.written()); got != req {
		t.Errorf("wrote %q, want %q", got, req)
	}
}

// deadlineConn reports every read deadline set on it, and every read that
// brought bytes.
type deadlineConn struct {
	net.Conn
	set  chan time.Time
	read chan struct{}
}

func newDeadlineConn(nc net.Conn) *deadlineConn {
	return &deadlineConn{Conn: nc, set: make(chan time.Time, 8), read: make(chan struct{}, 1)}
}

func (d *deadlineConn) SetReadDeadline(t time.Time) error {
	err := d.Conn.SetReadDeadline(t)
	select {
	case d.set <- t:
	default:
	}
	return err
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	n, err := d.Conn.Read(p)
	if n > 0 {
		select {
		case d.read <- struct{}{}:
		default:
		}
	}
	return n, err
}

// recv waits for a value from ch, for 10 seconds at most.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestDrainQuiet(t *testing.T) {
	t.Parallel()
	c, peer, _ := newServerConn(t, Options{})
	xr := xnetServerReader(c)
	write(t, peer, frame(true, OpText, true, []byte("one")))
	if _, p, err := readFrameXNet(xr); err != nil || string(p) != "one" {
		t.Fatalf("message: %q %v", p, err)
	}
	c.Drain(time.Millisecond, time.Now().Add(10*time.Second))
	_, _, err := readFrameXNet(xr)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !c.Drained(err) {
		t.Fatalf("quiet peer: %v, Drained %v; want a timeout and true", err, c.Drained(err))
	}
	// A timeout at a message boundary can be retried.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	write(t, peer, frame(true, OpText, true, []byte("two")))
	if _, p, err := readFrameXNet(xr); err != nil || string(p) != "two" {
		t.Fatalf("message after the drain's timeout: %q %v", p, err)
	}
	if c.Drained(io.EOF) {
		t.Error("Drained(io.EOF) = true")
	}
}

// TestDrainNotDraining checks that a plain read timeout is not a drain.
func TestDrainNotDraining(t *testing.T) {
	t.Parallel()
	c, _, _ := newServerConn(t, Options{})
	c.SetReadDeadline(time.Now())
	_, err := c.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) || c.Drained(err) {
		t.Fatalf("Read: %v, Drained %v; want a timeout and false", err, c.Drained(err))
	}
}

// TestDrainMidMessage checks that a message under way when the drain starts
// is read to its end: the grace timeout moves the deadline to the drain's
// end, and only then does the peer send the rest. A quiet peer then ends the
// drain at the next message boundary.
func TestDrainMidMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		first, rest []byte
	}{
		{"fragmented", frame(false, OpText, true, []byte("Hel")), frame(true, OpContinuation, true, []byte("lo"))},
		{"single_frame", frame(true, OpText, true, []byte("Hello"))[:8], frame(true, OpText, true, []byte("Hello"))[8:]},
		{"inside_header", frame(true, OpText, true, []byte("Hello"))[:3], frame(true, OpText, true, []byte("Hello"))[3:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			local, peer := tcpPair(t)
			dc := newDeadlineConn(local)
			c := NewConn(dc, nil, Server, Options{})
			type result struct {
				p   []byte
				err error
			}
			done := make(chan result, 2)
			go func() {
				xr := xnetServerReader(c)
				_, p, err := readFrameXNet(xr)
				done <- result{p, err}
				_, p, err = readFrameXNet(xr)
				done <- result{p, err}
			}()
			write(t, peer, tc.first)
			recv(t, dc.read, "the first bytes to be read") // the message is under way
			end := time.Now().Add(10 * time.Second)
			c.Drain(time.Millisecond, end)
			recv(t, dc.set, "the grace deadline")
			if got := recv(t, dc.set, "the deadline to move"); !got.Equal(end) {
				t.Fatalf("read deadline moved to %v, want the drain's end %v", got, end)
			}
			write(t, peer, tc.rest)
			if r := recv(t, done, "the message"); r.err != nil || string(r.p) != "Hello" {
				t.Fatalf("message under way: %q %v; want \"Hello\"", r.p, r.err)
			}
			// The peer stays quiet: the drain ends at the next boundary.
			if r := recv(t, done, "the end"); !errors.Is(r.err, os.ErrDeadlineExceeded) || !c.Drained(r.err) {
				t.Fatalf("after the message: %v, Drained %v; want a timeout and true", r.err, c.Drained(r.err))
			}
		})
	}
}

// TestDrainEndPassed checks that a message still under way at the drain's
// end fails with the timeout, which is not a clean drain.
func TestDrainEndPassed(t *testing.T) {
	t.Parallel()
	local, peer := tcpPair(t)
	dc := newDeadlineConn(local)
	c := NewConn(dc, nil, Server, Options{})
	done := make(chan error, 1)
	go func() {
		_, _, err := readFrameXNet(xnetServerReader(c))
		done <- err
	}()
	write(t, peer, frame(false, OpText, true, []byte("Hel")))
	recv(t, dc.read, "the first fragment to be read")
	c.Drain(time.Millisecond, time.Now())
	err := recv(t, done, "the read to fail")
	if !errors.Is(err, os.ErrDeadlineExceeded) || c.Drained(err) {
		t.Fatalf("read: %v, Drained %v; want a timeout and false", err, c.Drained(err))
	}
}

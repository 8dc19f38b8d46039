package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
	"golang.org/x/net/websocket"

	"wsecho/client"
	"wsecho/internal/wsframe"
	"wsecho/internal/wsmsg"
)

// upgrade sends an upgrade request for target (a path and query), with any
// extra header lines ("Name: value"), over a raw connection and returns the
// response; on 101, br reads the frames.
func upgrade(t *testing.T, addr, target string, header ...string) (*http.Response, string, net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { nc.Close() })
	req := "GET " + target + " HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + sampleKey + "\r\n"
	for _, line := range header {
		req += line + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	var body string
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
	}
	return resp, body, nc, br
}

func TestBehaviourParams(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{IdleTimeout: time.Minute})
	bad := []struct{ query, param string }{
		{"delay=-1s", "delay="},
		{"delay=31s", "delay="},
		{"delay=soon", "delay="},
		{"fragment=0", "fragment="},
		{"fragment=x", "fragment="},
		{"ping-between=1", "ping-between="},
		{"fragment=2&ping-between=maybe", "ping-between="},
		{"greeting=" + strings.Repeat("a", MaxGreeting+1), "greeting="},
		{"greeting=%ff", "greeting="},
		{"after=2", "after="},
		{"after=-1&drop=1", "after="},
		{"close=1005", "close="},
		{"close=1010", "close="},
		{"close=999", "close="},
		{"close=5000", "close="},
		{"reason=x", "reason="},
		{"close=1000&reason=" + strings.Repeat("r", 124), "reason="},
		{"close=1000&drop=1", "drop="},
		{"ping=10ms", "ping="},
		{"ping=1m", "ping="}, // not shorter than the idle timeout
		{"push=50ms", "push="},
		{"push-size=300", "push-size="},
		{"push=1s&push-size=100", "push-size="},
		{"push=1s&push-size=70000", "push-size="},
		{"fragmnet=3", `"fragmnet"`},
		{"delay=1s&delay=2s", "delay:"},
		{"fragment=%zz", "bad query"},
	}
	for _, tc := range bad {
		t.Run(tc.query[:min(len(tc.query), 24)], func(t *testing.T) {
			resp, body, _, _ := upgrade(t, s.addr, "/echo?"+tc.query)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.param) ||
				strings.Count(strings.TrimSpace(body), "\n") != 0 {
				t.Errorf("got %s %q, want 400 with one line naming %s", resp.Status, body, tc.param)
			}
		})
	}
	good := []string{"delay=30s", "fragment=1&ping-between=1", "greeting=", "after=0&close=4999&reason=bye",
		"after=3&drop=true", "ping=100ms", "push=100ms&push-size=256", "push=1h&push-size=65536", "close=1014"}
	for _, q := range good {
		t.Run("ok/"+q, func(t *testing.T) {
			if resp, body, _, _ := upgrade(t, s.addr, "/echo?"+q); resp.StatusCode != http.StatusSwitchingProtocols {
				t.Errorf("got %s %q, want 101", resp.Status, body)
			}
		})
	}
	rejected := s.h.Metrics().Get("handshakes_rejected").(*expvar.Map).Get(rejectParam).String()
	if want := fmt.Sprint(len(bad)); rejected != want {
		t.Errorf("handshakes_rejected[%s] = %s, want %s", rejectParam, rejected, want)
	}
}

// TestBehaviourDisabled: with DisableBehaviours the query is ignored, even
// a bad one, and the echo is one plain frame.
func TestBehaviourDisabled(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{DisableBehaviours: true})
	resp, body, nc, br := upgrade(t, s.addr, "/echo?fragment=0&greeting=hi&bad=%zz")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %s %q, want 101", resp.Status, body)
	}
	resp.Body.Close()
	nc.Close()
	_, _, nc, br = upgrade(t, s.addr, "/echo?fragment=2&greeting=hi")
	writeFrame(nc, true, wsframe.OpText, []byte("hello"))
	h, p, err := readFrame(br)
	if err != nil || !h.Fin || h.Opcode != wsframe.OpText || string(p) != "hello" {
		t.Errorf("got %+v %q %v, want one text frame \"hello\" (no greeting, no fragments)", h, p, err)
	}
}

// TestBehaviourFragmentWire checks the frames on the wire: fragments of at
// most N bytes, continuation opcodes, FIN on the last, pings between. On a
// compressed connection the echo is compressed, then split: RSV1 on the
// first fragment only (RFC 7692, Section 6), and the fragments' payloads
// joined inflate to the message.
func TestBehaviourFragmentWire(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{})
	for _, pingBetween := range []bool{false, true} {
		t.Run(fmt.Sprint("ping-between=", pingBetween), func(t *testing.T) {
			q := "/echo?fragment=3"
			if pingBetween {
				q += "&ping-between=1"
			}
			_, _, nc, br := upgrade(t, s.addr, q)
			writeFrame(nc, true, wsframe.OpBinary, []byte("hello world"))
			var got []string
			for {
				h, p, err := readFrame(br)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%x:%v:%s", h.Opcode, h.Fin, p))
				if h.Fin && !wsframe.IsControl(h.Opcode) {
					break
				}
			}
			want := []string{"2:false:hel", "0:false:lo ", "0:false:wor", "0:true:ld"}
			if pingBetween {
				want = []string{"2:false:hel", "9:true:", "0:false:lo ", "9:true:", "0:false:wor", "9:true:", "0:true:ld"}
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("frames: got %q, want %q", got, want)
			}
		})
		t.Run(fmt.Sprint("compressed/ping-between=", pingBetween), func(t *testing.T) {
			const size = 16
			q := fmt.Sprint("/echo?fragment=", size)
			if pingBetween {
				q += "&ping-between=1"
			}
			resp, _, nc, br := upgrade(t, s.addr, q, wsframe.ExtensionHeader+": permessage-deflate")
			if ext := resp.Header.Get(wsframe.ExtensionHeader); !strings.HasPrefix(ext, "permessage-deflate") {
				t.Fatalf("%s: %q, want permessage-deflate", wsframe.ExtensionHeader, ext)
			}
			msg := strings.Repeat("compressed, then split into fragments; ", 8)
			writeFrame(nc, true, wsframe.OpText, []byte(msg))
			var got []string
			var joined []byte
			for {
				h, p, err := readFrame(br)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case h.Opcode == wsframe.OpPing:
					got = append(got, "ping")
					continue
				case h.Length > size:
					t.Errorf("fragment of %d bytes, want at most %d", h.Length, size)
				}
				got = append(got, fmt.Sprintf("%x:%#x", h.Opcode, h.Rsv))
				joined = append(joined, p...)
				if h.Fin {
					break
				}
			}
			// RSV1 (0x40) on the first frame, continuations without RSV.
			want := []string{"1:0x40"}
			for range (len(joined)+size-1)/size - 1 {
				if pingBetween {
					want = append(want, "ping")
				}
				want = append(want, "0:0x0")
			}
			if strings.Join(got, " ") != strings.Join(want, " ") || len(want) < 3 {
				t.Errorf("frames: got %q, want %q", got, want)
			}
			var z wsframe.Inflater
			z.Reset(bytes.NewReader(joined), int64(len(msg)))
			if b, err := io.ReadAll(&z); err != nil || string(b) != msg {
				t.Errorf("%d bytes on the wire inflate to %q, %v; want the message", len(joined), b, err)
			}
		})
	}
}

// peerConn is one client of the behaviour tests: ours or gorilla's.
type peerConn interface {
	send(text string) error
	// recv returns the next message, or the close code when the
	// connection ends (1006 when it dropped with no Close).
	recv() (typ int, data string, code int, err error)
	close()
}

type ourPeer struct{ c *client.Conn }

func (p ourPeer) send(s string) error {
	return wsmsg.Codec.Send(p.c.Conn, &wsmsg.Message{Type: websocket.TextFrame, Data: []byte(s)})
}

func (p ourPeer) recv() (int, string, int, error) {
	var m wsmsg.Message
	if err := wsmsg.Codec.Receive(p.c.Conn, &m); err != nil {
		if code, _, ok := p.c.CloseStatus(); ok {
			return 0, "", code, nil
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, "", wsframe.CloseAbnormal, nil
		}
		return 0, "", 0, err
	}
	return int(m.Type), string(m.Data), 0, nil
}

func (p ourPeer) close() { p.c.Close() }

type gorillaConn struct{ c *gorilla.Conn }

func (p gorillaConn) send(s string) error { return p.c.WriteMessage(gorilla.TextMessage, []byte(s)) }

func (p gorillaConn) recv() (int, string, int, error) {
	typ, b, err := p.c.ReadMessage()
	var ce *gorilla.CloseError
	if errors.As(err, &ce) {
		return 0, "", ce.Code, nil
	}
	return typ, string(b), 0, err
}

func (p gorillaConn) close() { p.c.Close() }

// dialPeerConn connects client impl ("wsecho" or "gorilla") to url. With
// compress it offers permessage-deflate, and fails the test unless the
// server accepted.
func dialPeerConn(t *testing.T, impl, url string, compress bool) peerConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var p peerConn
	var ext string
	switch impl {
	case "wsecho":
		c, err := client.Dial(ctx, url, client.Options{Logger: testLog(t), Compress: compress})
		if err != nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		p = ourPeer{c}
		ext, _ = c.Compression()
	default:
		d := *gorilla.DefaultDialer
		d.EnableCompression = compress
		c, resp, err := d.DialContext(ctx, url, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		p = gorillaConn{c}
		ext = resp.Header.Get(wsframe.ExtensionHeader)
	}
	t.Cleanup(p.close)
	if compress && !strings.HasPrefix(ext, "permessage-deflate") {
		t.Fatalf("%s: compression not negotiated (extensions %q)", impl, ext)
	}
	return p
}

// exchange sends each of sends through p, then returns the next n things p
// receives: "text:DATA", "tick" for a push of a JSON tick, or "close:CODE".
func exchange(t *testing.T, p peerConn, sends []string, n int) []string {
	t.Helper()
	for _, m := range sends {
		if err := p.send(m); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for range n {
		typ, data, code, err := p.recv()
		switch {
		case err != nil:
			t.Fatalf("after %q: %v", got, err)
		case code != 0:
			got = append(got, fmt.Sprint("close:", code))
		case typ == gorilla.TextMessage && strings.HasPrefix(data, `{"seq":`):
			got = append(got, "tick")
		case typ == gorilla.TextMessage:
			got = append(got, "text:"+data)
		default:
			got = append(got, fmt.Sprintf("type%d:%q", typ, data))
		}
	}
	return got
}

// TestBehaviourClients runs each behaviour against our client and
// gorilla's: both must see a fragmented echo as one message, the greeting
// first, the close code asked for, and a drop as 1006.
func TestBehaviourClients(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{})
	tests := []struct {
		name, query string
		sends       []string
		want        []string // "text:DATA", or "close:CODE"
		end         endLine
	}{
		{"fragment", "fragment=2", []string{"hello, wsecho"}, []string{"text:hello, wsecho"}, endLine{}},
		{"fragment_ping_between", "fragment=1&ping-between=1", []string{"fragments"}, []string{"text:fragments"}, endLine{}},
		{"fragment_utf8_split", "fragment=1", []string{"é€😀"}, []string{"text:é€😀"}, endLine{}},
		{"greeting", "greeting=hello+there", []string{"a"}, []string{"text:hello there", "text:a"}, endLine{}},
		{"close_1013", "after=2&close=1013&reason=later", []string{"a", "b"}, []string{"text:a", "text:b", "close:1013"},
			endLine{msg: "closed", code: 1013, by: "server", reason: "close=1013"}},
		{"close_at_once", "greeting=bye&after=0&close=4001", nil, []string{"text:bye", "close:4001"},
			endLine{msg: "closed", code: 4001, by: "server", reason: "close=4001"}},
		{"drop", "after=1&drop=1", []string{"a"}, []string{"text:a", "close:1006"},
			endLine{msg: "closed", code: 1006, by: "server", reason: "drop=1"}},
		{"all", "fragment=1&greeting=hi&delay=10ms&after=1&close=1011", []string{"xyz"}, []string{"text:hi", "text:xyz", "close:1011"},
			endLine{msg: "closed", code: 1011, by: "server", reason: "close=1011"}},
	}
	for _, impl := range []string{"wsecho", "gorilla"} {
		for _, tc := range tests {
			t.Run("impl="+impl+"/"+tc.name, func(t *testing.T) {
				p := dialPeerConn(t, impl, s.url+"?"+tc.query, false)
				if got := exchange(t, p, tc.sends, len(tc.want)); strings.Join(got, "|") != strings.Join(tc.want, "|") {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			})
		}
	}
	// The server's log line for each connection that a behaviour ended.
	wantEnds := map[endLine]int{}
	for _, tc := range tests {
		if tc.end.msg != "" {
			wantEnds[tc.end] += 2
		}
	}
	total := 0
	for _, n := range wantEnds {
		total += n
	}
	for range 2 * len(tests) {
		e := s.log.next(t)
		if e.by == "server" {
			wantEnds[e]--
		}
	}
	for e, n := range wantEnds {
		if n != 0 {
			t.Errorf("end line %+v: %d missing", e, n)
		}
	}
}

// TestBehaviourCompressed runs every behaviour on a compressed connection,
// with our client and gorilla's offering permessage-deflate: each message
// arrives whole and in order, the close code and the drop as asked, and
// every message the server sent went out compressed (compressed_messages_out),
// fragmented echoes included (compressed first, then split).
func TestBehaviourCompressed(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{})
	long := strings.Repeat("compressed, then split; ", 12)
	greeting := strings.Repeat("hello there, ", 10)
	tests := []struct {
		name, query string
		sends       []string
		want        []string // "text:DATA", "tick" (a push), or "close:CODE"
		compressed  int      // messages the server sent compressed (with pushes, at least)
	}{
		{"fragment", "fragment=16", []string{long}, []string{"text:" + long}, 1},
		{"fragment_ping_between", "fragment=8&ping-between=1", []string{long}, []string{"text:" + long}, 1},
		{"greeting", "greeting=" + url.QueryEscape(greeting) + "&fragment=32", []string{long},
			[]string{"text:" + greeting, "text:" + long}, 2},
		{"push", "push=100ms&push-size=256&fragment=64", nil, []string{"tick", "tick"}, 2},
		{"after_close", "fragment=7&after=1&close=1013", []string{long}, []string{"text:" + long, "close:1013"}, 1},
		{"after_drop", "fragment=50&after=1&drop=1", []string{long}, []string{"text:" + long, "close:1006"}, 1},
		{"delay", "delay=10ms&fragment=64", []string{long, greeting}, []string{"text:" + long, "text:" + greeting}, 2},
	}
	for _, impl := range []string{"wsecho", "gorilla"} {
		for _, tc := range tests {
			t.Run("impl="+impl+"/"+tc.name, func(t *testing.T) {
				before := s.h.metrics.compressedOut.Value()
				p := dialPeerConn(t, impl, s.url+"?"+tc.query, true)
				if got := exchange(t, p, tc.sends, len(tc.want)); strings.Join(got, "|") != strings.Join(tc.want, "|") {
					t.Errorf("got %q, want %q", got, tc.want)
				}
				p.close()
				s.log.next(t) // the connection has ended and its counts are in
				n := s.h.metrics.compressedOut.Value() - before
				if n < int64(tc.compressed) || n > int64(tc.compressed) && !strings.Contains(tc.query, "push=") {
					t.Errorf("compressed_messages_out went up by %d, want %d", n, tc.compressed)
				}
			})
		}
	}
}

func testLog(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

// TestBehaviourDelay: echoes wait delay= each, stay in order, and a delay
// longer than the idle timeout does not trip it.
func TestBehaviourDelay(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{IdleTimeout: 300 * time.Millisecond})
	p := dialPeerConn(t, "gorilla", s.url+"?delay=500ms", false)
	start := time.Now()
	for _, m := range []string{"1", "2", "3"} {
		if err := p.send(m); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []string{"1", "2", "3"} {
		_, got, code, err := p.recv()
		if err != nil || code != 0 || got != want {
			t.Fatalf("echo %d: got %q, close %d, %v; want %q", i, got, code, err, want)
		}
		// A lower bound only: the echoes cannot come sooner, however
		// loaded the machine.
		if d, min := time.Since(start), time.Duration(i+1)*500*time.Millisecond; d < min {
			t.Errorf("echo %d after %v, want at least %v", i, d, min)
		}
	}
}

// TestBehaviourPush: pushes come unasked, padded to push-size, between the
// echoes.
func TestBehaviourPush(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{})
	for _, impl := range []string{"wsecho", "gorilla"} {
		t.Run("impl="+impl, func(t *testing.T) {
			p := dialPeerConn(t, impl, s.url+"?push=100ms&push-size=300", false)
			var pushes, echoes int
			for i := 0; pushes < 3 || echoes < 1; i++ {
				if i == 1 {
					p.send("mine")
				}
				_, data, code, err := p.recv()
				if err != nil || code != 0 {
					t.Fatalf("after %d pushes: close %d, %v", pushes, code, err)
				}
				if data == "mine" {
					echoes++
					continue
				}
				var tk struct {
					Seq                    int64
					Open, High, Low, Close float64
				}
				if err := json.Unmarshal([]byte(data), &tk); err != nil || len(data) != 300 || tk.High < tk.Low {
					t.Fatalf("push %d: %d bytes %q (%v), want a 300-byte tick", pushes, len(data), data, err)
				}
				pushes++
			}
		})
	}
	t.Run("time", func(t *testing.T) {
		p := dialPeerConn(t, "gorilla", s.url+"?push=100ms", false)
		_, data, _, err := p.recv()
		if _, perr := time.Parse(time.RFC3339Nano, data); err != nil || perr != nil {
			t.Errorf("push: %q, %v, %v; want the time", data, err, perr)
		}
	})
}

// TestBehaviourPing: ping= replaces the server's ping interval.
func TestBehaviourPing(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{PingInterval: time.Hour})
	c := s.dialURL(t, s.url+"?ping=100ms")
	pings := make(chan struct{}, 10)
	c.SetPingHandler(func(string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return nil
	})
	go c.ReadMessage() // runs the ping handler; ends with the cleanup's Close
	for i := range 3 {
		select {
		case <-pings:
		case <-time.After(10 * time.Second):
			t.Fatalf("ping %d: none within 10s", i)
		}
	}
}

// TestBehaviourShutdown: shutdown cuts a delay short and stops pushes; the
// connection gets its echo and Close 1001.
func TestBehaviourShutdown(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{})
	c := s.dialURL(t, s.url+"?delay=30s&push=1h")
	c.WriteMessage(gorilla.TextMessage, []byte("late"))
	for deadline := time.Now().Add(10 * time.Second); s.h.metrics.msgsIn.Value() == 0; runtime.Gosched() {
		if time.Now().After(deadline) { // wait until the message is in the delay
			t.Fatal("message not received within 10s")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.h.Shutdown(ctx) }()
	_, b, err := c.ReadMessage()
	if err != nil || string(b) != "late" {
		t.Fatalf("echo: %q, %v", b, err)
	}
	_, _, err = c.ReadMessage()
	var ce *gorilla.CloseError
	if !errors.As(err, &ce) || ce.Code != 1001 {
		t.Errorf("after the echo: %v, want Close 1001", err)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// dialURL connects a gorilla client to url; the cleanup closes it.
func (s *testServer) dialURL(t *testing.T, url string) *gorilla.Conn {
	t.Helper()
	c, _, err := gorilla.DefaultDialer.DialContext(t.Context(), url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

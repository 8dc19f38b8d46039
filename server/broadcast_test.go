package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
	"golang.org/x/net/websocket"

	"wsecho/client"
	"wsecho/internal/testpeer"
	"wsecho/internal/wsmsg"
)

// roomConn is one member of a room, on gorilla's client or on ours.
type roomConn interface {
	send(typ byte, p []byte) error
	recv() (typ byte, p []byte, err error)
	close()
}

type gorillaMember struct{ c *gorilla.Conn }

func (g gorillaMember) send(typ byte, p []byte) error { return g.c.WriteMessage(int(typ), p) }
func (g gorillaMember) recv() (byte, []byte, error) {
	typ, p, err := g.c.ReadMessage()
	return byte(typ), p, err
}
func (g gorillaMember) close() { g.c.Close() }

type ourMember struct{ c *client.Conn }

func (o ourMember) send(typ byte, p []byte) error {
	return wsmsg.Codec.Send(o.c.Conn, &wsmsg.Message{Type: typ, Data: p})
}
func (o ourMember) recv() (byte, []byte, error) {
	var m wsmsg.Message
	err := wsmsg.Codec.Receive(o.c.Conn, &m)
	return m.Type, m.Data, err
}
func (o ourMember) close() { o.c.Close() }

// joinRoom connects member i of room url (even i: gorilla, odd i: our
// client), and returns once the room has echoed its hello, so that it is
// known to be in the room.
func joinRoom(t *testing.T, url string, i int) roomConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var m roomConn
	if i%2 == 0 {
		c, _, err := gorilla.DefaultDialer.DialContext(ctx, url, nil)
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		m = gorillaMember{c}
	} else {
		c, err := client.Dial(ctx, url, client.Options{})
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		m = ourMember{c}
	}
	t.Cleanup(m.close)
	hello := fmt.Sprintf("hello %d", i)
	if err := m.send(websocket.TextFrame, []byte(hello)); err != nil {
		t.Fatal(err)
	}
	for {
		_, p, err := m.recv()
		if err != nil {
			t.Fatalf("member %d waiting for its hello: %v", i, err)
		}
		if string(p) == hello {
			return m
		}
	}
}

// Fifty members, half on gorilla's client and half on ours, each send four
// messages (two text, two binary) at once: every member receives all 200,
// each once, with its type, in the same order as every other member.
func TestBroadcastOrder(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{})
	url := "ws://" + s.addr + "/broadcast?room=order"
	const members, each = 50, 4
	conns := make([]roomConn, members)
	for i := range conns {
		conns[i] = joinRoom(t, url, i)
	}

	type got struct {
		typ byte
		p   string
	}
	received := make([][]got, members)
	var wg sync.WaitGroup
	errs := make(chan error, 2*members)
	for i, c := range conns {
		wg.Go(func() {
			for k := range each {
				typ := byte(websocket.TextFrame)
				if k%2 == 1 {
					typ = websocket.BinaryFrame
				}
				if err := c.send(typ, fmt.Appendf(nil, "m %d.%d", i, k)); err != nil {
					errs <- fmt.Errorf("member %d send: %w", i, err)
					return
				}
			}
		})
		wg.Go(func() {
			for len(received[i]) < members*each {
				typ, p, err := c.recv()
				if err != nil {
					errs <- fmt.Errorf("member %d after %d messages: %w", i, len(received[i]), err)
					return
				}
				if !strings.HasPrefix(string(p), "hello ") { // later members' hellos
					received[i] = append(received[i], got{typ, string(p)})
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	for _, g := range received[0] {
		if seen[g.p] {
			t.Errorf("member 0 received %q twice", g.p)
		}
		seen[g.p] = true
		var i, k int
		fmt.Sscanf(g.p, "m %d.%d", &i, &k)
		if want := byte(websocket.TextFrame + k%2); g.typ != want {
			t.Errorf("%q arrived with type %d, want %d", g.p, g.typ, want)
		}
	}
	if len(seen) != members*each {
		t.Errorf("member 0 received %d distinct messages, want %d", len(seen), members*each)
	}
	for i := 1; i < members; i++ {
		if !slices.Equal(received[i], received[0]) {
			t.Errorf("member %d received the room's messages in another order than member 0", i)
		}
	}
}

// A member that stops reading is closed with 1013 once its queue is full,
// while the others receive every message; the server's live heap stays
// bounded, although the slow member was sent far more than its queue holds.
func TestBroadcastSlowMember(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{})
	url := "ws://" + s.addr + "/broadcast?room=slow"
	fast := []roomConn{joinRoom(t, url, 0), joinRoom(t, url, 1)}

	// The slow member reads nothing after its hello, with a small socket
	// buffer.
	d := gorilla.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		nc, err := net.Dial(network, addr)
		if err == nil {
			nc.(*net.TCPConn).SetReadBuffer(4 << 10)
		}
		return nc, err
	}}
	slow, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := slow.WriteMessage(gorilla.TextMessage, []byte("hello slow")); err != nil {
		t.Fatal(err)
	}
	for {
		_, p, err := slow.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(p) == "hello slow" {
			break
		}
	}

	const n, size = 1000, 32 << 10 // 32 MB through the room
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := heap()
	var peak uint64
	var sent atomic.Int64
	slowEnd := make(chan endLine, 1)
	slowAt := make(chan int64, 1)
	var slowTime atomic.Int64 // when its end line came, in Unix nanoseconds
	// The first connection to end is the slow member.
	go func() {
		select {
		case e := <-s.log.ends:
			slowTime.Store(time.Now().UnixNano())
			slowAt <- sent.Load()
			slowEnd <- e
		case <-time.After(30 * time.Second):
			slowAt <- -1
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, len(fast))
	for i, c := range fast[1:] {
		wg.Go(func() {
			for k := 0; k < n; {
				_, p, err := c.recv()
				if err != nil {
					errs <- fmt.Errorf("fast member %d after %d messages: %w", i+1, k, err)
					return
				}
				if len(p) == size {
					if want := fmt.Sprintf("%06d", k); string(p[:6]) != want {
						errs <- fmt.Errorf("fast member %d: message %q, want %q", i+1, p[:6], want)
						return
					}
					k++
				}
			}
		})
	}
	// Member 0 sends and reads its own messages back, one window at a time.
	msg := make([]byte, size)
	for k := 0; k < n; k++ {
		copy(msg, fmt.Sprintf("%06d", k))
		if err := fast[0].send(websocket.BinaryFrame, msg); err != nil {
			t.Fatal(err)
		}
		for {
			_, p, err := fast[0].recv()
			if err != nil {
				t.Fatalf("sender after %d messages: %v", k, err)
			}
			if len(p) == size {
				break
			}
		}
		sent.Add(1)
		if k%100 == 99 {
			peak = max(peak, heap())
		}
	}
	allSent := time.Now()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The slow member's Close 1013 cannot reach it through its full
	// socket; the server's end line says how it ended, and when.
	at := <-slowAt
	if at < 0 {
		t.Fatal("the slow member was not closed within 30s")
	}
	if end := <-slowEnd; end.code != 1013 || end.by != "server" {
		t.Errorf("slow member: ended with %+v, want code 1013 by the server", end)
	}
	// It overflowed while the room was busy (broadcast_overflows, below);
	// its Close gets broadcastCloseWait to go out, then it is dropped. How
	// many messages went by meanwhile depends on the machine's speed.
	if late := time.Unix(0, slowTime.Load()).Sub(allSent); late > broadcastCloseWait+2*time.Second {
		t.Errorf("slow member closed %v after the room's last message, want within %v", late, broadcastCloseWait+2*time.Second)
	}
	t.Logf("slow member closed after %d of %d messages", at, n)
	growth := int64(peak) - int64(base)
	t.Logf("heap: base %d KiB, peak %d KiB while %d MiB went through the room", base>>10, peak>>10, n*size>>20)
	if growth > 16<<20 {
		t.Errorf("heap grew by %d MiB while the slow member stalled, want under 16 MiB (its queue is bounded at %d MiB)", growth>>20, broadcastQueueBytes>>20)
	}
	if got := s.h.metrics.vars.Get("broadcast_overflows").String(); got != "1" {
		t.Errorf("broadcast_overflows: got %s, want 1", got)
	}
}

// A bad room name is refused before the upgrade, naming the parameter.
func TestBroadcastBadRoom(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{})
	for _, room := range []string{"%01", strings.Repeat("r", maxRoomName+1)} {
		_, resp, err := gorilla.DefaultDialer.Dial("ws://"+s.addr+"/broadcast?room="+room, nil)
		if err == nil || resp == nil {
			t.Fatalf("room %q: got %v, want a failed handshake", room, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(string(body), "room: ") {
			t.Errorf("room %q: got %s %q, want 400 naming room", room, resp.Status, body)
		}
	}
}

// Shutdown closes every member with 1001 after what the room had queued.
func TestBroadcastShutdown(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{})
	m := joinRoom(t, "ws://"+s.addr+"/broadcast", 0).(gorillaMember)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.h.Shutdown(ctx) }()
	_, _, err := m.c.ReadMessage()
	var ce *gorilla.CloseError
	if !errors.As(err, &ce) || ce.Code != 1001 {
		t.Errorf("member at shutdown: got %v, want Close 1001", err)
	}
	m.c.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(1001, ""), time.Now().Add(time.Second))
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// Third-party clients in a room: two connections of Python's websockets and
// two of Node's ws each send one text and one binary message, and all four
// must receive the same eight messages, with their types, in the same order.
func TestBroadcastThirdParty(t *testing.T) {
	t.Parallel()
	const python = `
import asyncio, sys, websockets
async def member(url, i, start):
    async with websockets.connect(url) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        start.append(ws)
        if len(start) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 10)
        await ws.send("text %d" % i)
        await ws.send(b"binary %d" % i)
        got = []
        while len(got) < 4:
            m = await asyncio.wait_for(ws.recv(), 10)
            if m == "hello":
                continue  # the other member's
            got.append(("b:" + m.decode()) if isinstance(m, bytes) else ("t:" + m))
        return got
both = None
async def main():
    global both
    both = asyncio.Event()
    start = []
    a, b = await asyncio.gather(member(sys.argv[1], 0, start), member(sys.argv[1], 1, start))
    assert a == b, (a, b)
    print("|".join(a))
asyncio.run(main())
`
	const node = `
const WebSocket = require('ws');
const url = process.argv[1];
let ready = 0;
const results = [];
const members = [0, 1].map((i) => {
  const ws = new WebSocket(url);
  const got = [];
  let joined = false;
  ws.on('open', () => ws.send('hello'));
  ws.on('message', (data, isBinary) => {
    if (!joined) { joined = true; if (++ready === 2) members.forEach((m, k) => { m.send('text ' + k); m.send(Buffer.from('binary ' + k)); }); return; }
    if (!isBinary && data.toString() === 'hello') return; // the other member's
    got.push((isBinary ? 'b:' : 't:') + data.toString());
    if (got.length === 4) { results[i] = got.join('|'); ws.close(); if (results.filter(Boolean).length === 2) {
      if (results[0] !== results[1]) { console.log('FAIL', results); process.exit(1); }
      console.log(results[0]);
    } }
  });
  return ws;
});
setTimeout(() => { console.log('FAIL timeout'); process.exit(1); }, 10000).unref();
`
	for _, peer := range []string{"python", "node"} {
		t.Run(peer, func(t *testing.T) {
			t.Parallel()
			s := startEcho(t, Options{})
			url := "ws://" + s.addr + "/broadcast?room=" + peer
			var cmd *exec.Cmd
			if peer == "python" {
				cmd = exec.Command(testpeer.Python(t), "-c", python, url)
			} else {
				path, env := testpeer.Node(t)
				cmd = exec.Command(path, "-e", node, url)
				cmd.Env = env
			}
			cmd.Stderr = t.Output()
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v: %s", peer, err, out)
			}
			got := strings.Split(strings.TrimSpace(string(out)), "|")
			slices.Sort(got)
			want := []string{"b:binary 0", "b:binary 1", "t:text 0", "t:text 1"}
			if !slices.Equal(got, want) {
				t.Errorf("%s members received %q, want %q in one order", peer, out, want)
			}
		})
	}
}

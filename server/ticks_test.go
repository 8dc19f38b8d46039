package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
)

func TestTickPure(t *testing.T) {
	a := tickSource{seed: 7, interval: time.Second}
	b := tickSource{seed: 7, interval: time.Second}
	other := tickSource{seed: 8, interval: time.Second}
	differ := 0
	for seq := int64(60_000_000); seq < 60_000_200; seq++ {
		ta, tb := a.tick(seq), b.tick(seq)
		if string(ta.appendJSON(nil, 0)) != string(tb.appendJSON(nil, 0)) {
			t.Fatalf("seq %d: two sources with one seed differ", seq)
		}
		if ta.open != a.tick(seq-1).close {
			t.Errorf("seq %d: open %d, previous close %d", seq, ta.open, a.tick(seq-1).close)
		}
		if ta.high < max(ta.open, ta.close) || ta.low > min(ta.open, ta.close) || ta.low <= 0 {
			t.Errorf("seq %d: %+v is not a candle", seq, ta)
		}
		if ta.close != other.tick(seq).close {
			differ++
		}
	}
	if differ < 100 {
		t.Errorf("seeds 7 and 8 differ in %d ticks of 200", differ)
	}
	// One known value, so that a change to the formula (which would break
	// resuming across versions) is noticed.
	if got, want := string(a.tick(60_000_000).appendJSON(nil, 0)),
		`{"seq":60000000,"time":"2026-11-26T10:40:00Z","open":96.65,"high":97.08,"low":96.36,"close":96.71}`; got != want {
		t.Errorf("tick 60000000:\n got %s\nwant %s", got, want)
	}
	for _, size := range []int{256, 300, 65536} {
		if n := len(a.tick(1).appendJSON(nil, size)); n != size {
			t.Errorf("padded to %d: %d bytes", size, n)
		}
	}
}

type wireTick struct {
	Seq                    int64
	Time                   string
	Open, High, Low, Close float64
}

// readTicks reads n ticks from c.
func readTicks(t *testing.T, c *gorilla.Conn, n int) []wireTick {
	t.Helper()
	var out []wireTick
	for range n {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d ticks: %v", len(out), err)
		}
		var tk wireTick
		if err := json.Unmarshal(b, &tk); err != nil {
			t.Fatalf("tick %q: %v", b, err)
		}
		out = append(out, tk)
	}
	return out
}

// TestTicks: two subscribers see the same ticks; a client that comes back
// with from= sees no gap and no duplicate; from= out of reach is refused.
func TestTicks(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{TickInterval: 20 * time.Millisecond, TickSeed: 42})
	ticksURL := strings.TrimSuffix(s.url, "/echo") + "/ticks"
	cur := s.h.ticks.seqAt(time.Now())
	from := cur - 5 // a few from the past, then live

	var wg sync.WaitGroup
	got := make([][]wireTick, 2)
	for i := range got {
		c := s.dialURL(t, ticksURL+"?from="+strconv.FormatInt(from, 10))
		wg.Go(func() { got[i] = readTicks(t, c, 15) })
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := range got[0] {
		if got[0][i] != got[1][i] {
			t.Fatalf("tick %d: subscribers differ: %+v and %+v", i, got[0][i], got[1][i])
		}
		if got[0][i].Seq != from+int64(i) {
			t.Fatalf("tick %d: seq %d, want %d", i, got[0][i].Seq, from+int64(i))
		}
	}

	// Disconnect, come back with from = the next seq: no gap, no duplicate.
	c := s.dialURL(t, ticksURL)
	first := readTicks(t, c, 3)
	c.Close()
	next := first[2].Seq + 1
	c = s.dialURL(t, ticksURL+"?from="+strconv.FormatInt(next, 10))
	again := readTicks(t, c, 3)
	for i, tk := range again {
		if tk.Seq != next+int64(i) {
			t.Fatalf("after reconnecting: tick %d is seq %d, want %d", i, tk.Seq, next+int64(i))
		}
	}

	// Out of reach: Close 1008 with the reason.
	c = s.dialURL(t, ticksURL+"?from=1")
	_, _, err := c.ReadMessage()
	var ce *gorilla.CloseError
	if !errors.As(err, &ce) || ce.Code != 1008 || !strings.Contains(ce.Text, "older than the oldest tick") {
		t.Errorf("from=1: %v, want Close 1008 naming the oldest tick", err)
	}
	for _, q := range []string{"from=-1", "from=x", "from=1&from=2", "delay=1s"} {
		if resp, body, _, _ := upgrade(t, s.addr, "/ticks?"+q); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("/ticks?%s: %s %q, want 400", q, resp.Status, body)
		}
	}
}

// sseEvent is one event of a text/event-stream.
type sseEvent struct{ id, event, data string }

// readEvents reads n events (not comments) from an SSE body.
func readEvents(t *testing.T, br *bufio.Reader, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	var ev sseEvent
	for len(out) < n {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		line = strings.TrimSuffix(line, "\n")
		name, value, _ := strings.Cut(line, ": ")
		switch name {
		case "":
			if ev != (sseEvent{}) {
				out = append(out, ev)
			}
			ev = sseEvent{}
		case "id":
			ev.id = value
		case "event":
			ev.event = value
		case "data":
			ev.data = value
		}
	}
	return out
}

func getSSE(t *testing.T, url string, hdr map[string]string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestSSE: the stream's headers and ids, resuming after Last-Event-ID, a
// gap event for an id out of reach, the origin policy, the connection
// limit, and the end of the stream at shutdown.
func TestSSE(t *testing.T) {
	t.Parallel()
	s := startEcho(t, Options{TickInterval: 20 * time.Millisecond, MaxConns: 3,
		CheckOrigin: AllowOrigins([]string{"http://page.example"})})
	url := s.ts.URL + "/sse"

	resp := getSSE(t, url, nil)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET /sse: %s, %q", resp.Status, ct)
	}
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); line != "retry: 2000\n" {
		t.Errorf("first line %q, want the retry", line)
	}
	evs := readEvents(t, br, 3)
	for i, ev := range evs {
		var tk wireTick
		if err := json.Unmarshal([]byte(ev.data), &tk); err != nil || ev.id != strconv.FormatInt(tk.Seq, 10) {
			t.Fatalf("event %d: %+v (%v): id must be the seq", i, ev, err)
		}
	}
	last, _ := strconv.ParseInt(evs[2].id, 10, 64)

	resp = getSSE(t, url, map[string]string{"Last-Event-ID": evs[2].id, "Origin": "http://page.example"})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://page.example" {
		t.Errorf("Access-Control-Allow-Origin: %q", got)
	}
	br = bufio.NewReader(resp.Body)
	if ev := readEvents(t, br, 1)[0]; ev.id != strconv.FormatInt(last+1, 10) {
		t.Errorf("resumed after %d at %q, want %d", last, ev.id, last+1)
	}

	// At the limit (these two streams and one more), a fourth gets 503.
	gap := getSSE(t, url, map[string]string{"Last-Event-ID": "3"})
	if ev := readEvents(t, bufio.NewReader(gap.Body), 1)[0]; ev.event != "gap" || !strings.Contains(ev.data, "older than") {
		t.Errorf("Last-Event-ID out of reach: %+v, want a gap event", ev)
	}
	if r := getSSE(t, url, nil); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("fourth stream: %s, want 503", r.Status)
	}
	gap.Body.Close()

	for _, tc := range []struct {
		hdr  map[string]string
		want int
	}{
		{map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{map[string]string{"Last-Event-ID": "x"}, http.StatusBadRequest},
	} {
		if r := getSSE(t, url, tc.hdr); r.StatusCode != tc.want {
			t.Errorf("%v: %s, want %d", tc.hdr, r.Status, tc.want)
		}
	}

	// Shutdown ends the stream.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.h.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	rest, err := readRest(br)
	if err != nil || !strings.HasSuffix(rest, ": server shutting down\n\n") {
		t.Errorf("after shutdown: %v, stream ended with %q", err, rest[max(0, len(rest)-40):])
	}
	if v := s.h.Metrics().Get("sse_streams_total").String(); v != "3" {
		t.Errorf("sse_streams_total %s, want 3", v)
	}
}

func readRest(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	_, err := br.WriteTo(&sb)
	return sb.String(), err
}

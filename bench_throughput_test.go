package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"wsecho/internal/bench"
)

// TestThroughput is the headline measurement of BENCHMARKS.md: echo round
// trips per second through our server, gorilla's reference design, lxzan/gws
// and a plain TCP echo, each server in a process of its own (pinned with
// WSECHO_SERVER_CPUS, while the load generator, this process, is pinned by
// running the test binary under taskset), in rounds whose order rotates, so
// that every server sees the same load from the other users of the machine.
// It reports, per size, the median round trips/s of each, the median of
// the paired ratios (ours over each other, within one round), and the
// server's CPU time per round trip (from /proc), which other processes on
// the machine disturb far less than the rates.
//
// It measures only when WSECHO_TP_ROUNDS is set (at least 5 for the
// headline); WSECHO_TP_SIZES (default "32,4096,65536,1048576"),
// WSECHO_TP_CONNS (64), WSECHO_TP_DURATION (3s a run), WSECHO_TP_IMPLS
// ("xnet,gorilla,gws,tcp"); WSECHO_TP_OUT names a file for benchfmt lines
// (BenchmarkProcessEcho), for benchstat and internal/benchchart. See
// BENCHMARKS.md.
func TestThroughput(t *testing.T) {
	rounds := envInt(t, "WSECHO_TP_ROUNDS", 0)
	if rounds <= 0 {
		t.Skip("a measurement, not a check: set WSECHO_TP_ROUNDS=5 (and WSECHO_SERVER_CPUS=1, the test binary under taskset -c 0) to measure round trips/s against gorilla, gws and TCP (see BENCHMARKS.md)")
	}
	conns := envInt(t, "WSECHO_TP_CONNS", 64)
	duration := 3 * time.Second
	if v := os.Getenv("WSECHO_TP_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("WSECHO_TP_DURATION: %v", err)
		}
		duration = d
	}
	var sizes []int
	for f := range strings.SplitSeq(cmp.Or(os.Getenv("WSECHO_TP_SIZES"), "32,4096,65536,1048576"), ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("WSECHO_TP_SIZES: %v", err)
		}
		sizes = append(sizes, n)
	}
	impls := strings.Split(cmp.Or(os.Getenv("WSECHO_TP_IMPLS"), "xnet,gorilla,gws,tcp"), ",")
	var out *os.File
	if path := os.Getenv("WSECHO_TP_OUT"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out = f
	}

	servers := make(map[string]*helperServer)
	for _, impl := range impls {
		servers[impl] = startHelper(t, impl)
	}
	rates := make(map[string]map[int][]float64) // impl -> size -> rt/s by round
	cpus := make(map[string]map[int][]float64)  // impl -> size -> server CPU ns per round trip
	for _, impl := range impls {
		rates[impl] = make(map[int][]float64)
		cpus[impl] = make(map[int][]float64)
	}
	for r := range rounds {
		for _, size := range sizes {
			order := slices.Clone(impls)
			k := r % len(order) // rotate, so that no server always runs first
			order = append(order[k:], order[:k]...)
			for _, impl := range order {
				cfg := bench.Config{URL: servers[impl].url, Conns: conns, Size: size, Duration: duration, Binary: true}
				ctx, cancel := context.WithTimeout(context.Background(), duration+time.Minute)
				cpu0 := procCPU(t, servers[impl].pid)
				rep, err := bench.Run(ctx, cfg, nil)
				cpu := procCPU(t, servers[impl].pid) - cpu0
				cancel()
				if err != nil {
					t.Fatalf("impl=%s size=%d: %v", impl, size, err)
				}
				if rep.ErrorsTotal > 0 {
					t.Errorf("impl=%s size=%d round=%d: %d errors: %v", impl, size, r, rep.ErrorsTotal, rep.Errors)
				}
				rates[impl][size] = append(rates[impl][size], rep.PerSecond)
				cpuRT := float64(cpu) / float64(rep.RoundTrips)
				cpus[impl][size] = append(cpus[impl][size], cpuRT)
				t.Logf("run round=%d impl=%s conns=%d size=%d rt/s=%.0f srv-cpu-ns/rt=%.0f p50=%v p99=%v", r, impl, conns, size, rep.PerSecond, cpuRT, rep.Latency.P50, rep.Latency.P99)
				if out != nil {
					fmt.Fprintf(out, "BenchmarkProcessEcho/conns=%d/size=%d/impl=%s 1 %.0f ns/op %.0f rt/s %.0f srv-cpu-ns/rt\n",
						conns, size, impl, 1e9/rep.PerSecond, rep.PerSecond, cpuRT)
				}
			}
		}
	}
	for _, size := range sizes {
		line := fmt.Sprintf("result conns=%d size=%d", conns, size)
		for _, impl := range impls {
			line += fmt.Sprintf(" %s=%.0f", impl, median(rates[impl][size]))
		}
		for _, other := range impls {
			if other == "xnet" || rates["xnet"] == nil {
				continue
			}
			var ratios []float64
			for i, v := range rates["xnet"][size] {
				ratios = append(ratios, v/rates[other][size][i])
			}
			line += fmt.Sprintf(" xnet/%s=%.2f [%s]", other, median(ratios), fmtRatios(ratios))
		}
		t.Log(line)
		line = fmt.Sprintf("result conns=%d size=%d srv-cpu-ns/rt", conns, size)
		for _, impl := range impls {
			line += fmt.Sprintf(" %s=%.0f", impl, median(cpus[impl][size]))
		}
		t.Log(line)
	}
}

func fmtRatios(v []float64) string {
	var b strings.Builder
	for i, r := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.2f", r)
	}
	return b.String()
}

// startGwsEcho starts lxzan/gws's echo server (its example's handler, with
// UTF-8 checks on, as ours has, and no compression) and returns its URL.
// gws is imported only by this test file, for comparison.
func startGwsEcho(t testing.TB) string {
	e := &gwsEcho{conns: make(map[*gws.Conn]struct{})}
	up := gws.NewUpgrader(e, &gws.ServerOption{CheckUtf8Enabled: true, Recovery: gws.Recovery})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		socket, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		e.mu.Lock()
		e.conns[socket] = struct{}{}
		e.mu.Unlock()
		e.wg.Go(socket.ReadLoop)
	}))
	t.Cleanup(func() {
		ts.Close()
		e.mu.Lock()
		for c := range e.conns {
			c.NetConn().Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/echo"
}

type gwsEcho struct {
	gws.BuiltinEventHandler
	mu    sync.Mutex
	conns map[*gws.Conn]struct{}
	wg    sync.WaitGroup
}

func (e *gwsEcho) OnPing(socket *gws.Conn, payload []byte) { socket.WritePong(payload) }

func (e *gwsEcho) OnClose(socket *gws.Conn, err error) {
	e.mu.Lock()
	delete(e.conns, socket)
	e.mu.Unlock()
}

func (e *gwsEcho) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	socket.WriteMessage(message.Opcode, message.Bytes())
}

// procCPU returns the user and system CPU time process pid has used, from
// /proc/PID/stat (in clock ticks of 10 ms).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("cpu time of %d: %v", pid, err)
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

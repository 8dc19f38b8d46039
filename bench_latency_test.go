package main

import (
	"cmp"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"wsecho/internal/bench"
)

// TestLatency measures round-trip latency under an open-loop load: each of
// WSECHO_LATENCY_CONNS connections sends a message WSECHO_LATENCY_RATE times
// a second, against each echo server in a helper process of its own. The
// servers take turns, in alternating order, for WSECHO_LATENCY_REPEATS
// rounds, and the test logs each run's percentiles and the median p99 per
// server. It is a measurement, not a check, and runs only when asked for:
//
//	WSECHO_LATENCY_CONNS=1000 go test -run='^TestLatency$' -v -timeout=30m .
//
// Other settings: WSECHO_LATENCY_RATE (default 10), WSECHO_LATENCY_SIZE
// (default 32 bytes), WSECHO_LATENCY_DURATION (per run, default 10s),
// WSECHO_LATENCY_REPEATS (default 5), WSECHO_LATENCY_IMPLS (default
// "xnet,gorilla"), WSECHO_SERVER_CPUS (pin the servers with taskset -c).
// See BENCHMARKS.md.
func TestLatency(t *testing.T) {
	conns := envInt(t, "WSECHO_LATENCY_CONNS", 0)
	if conns <= 0 {
		t.Skip("a measurement, not a check: set WSECHO_LATENCY_CONNS=1000 to measure p99 latency at 10 messages/s per connection against our server and gorilla's (see BENCHMARKS.md)")
	}
	// Not parallel: a measurement runs alone.
	rate := float64(envInt(t, "WSECHO_LATENCY_RATE", 10))
	size := envInt(t, "WSECHO_LATENCY_SIZE", 32)
	repeats := envInt(t, "WSECHO_LATENCY_REPEATS", 5)
	duration := 10 * time.Second
	if v := os.Getenv("WSECHO_LATENCY_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("WSECHO_LATENCY_DURATION: %v", err)
		}
		duration = d
	}
	impls := strings.Split(cmp.Or(os.Getenv("WSECHO_LATENCY_IMPLS"), "xnet,gorilla"), ",")

	servers := make(map[string]*helperServer)
	for _, impl := range impls {
		servers[impl] = startHelper(t, impl)
	}
	p99s := make(map[string][]time.Duration)
	for r := range repeats {
		order := slices.Clone(impls)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		for _, impl := range order {
			cfg := bench.Config{URL: servers[impl].url, Conns: conns, Size: size, Duration: duration, Rate: rate}
			ctx, cancel := context.WithTimeout(context.Background(), duration+2*time.Minute)
			rep, err := bench.Run(ctx, cfg, nil)
			cancel()
			if err != nil {
				t.Fatalf("impl=%s: %v", impl, err)
			}
			if rep.ErrorsTotal > 0 {
				t.Errorf("impl=%s repeat=%d: %d errors: %v", impl, r, rep.ErrorsTotal, rep.Errors)
			}
			l := rep.Latency
			t.Logf("run impl=%s repeat=%d conns=%d rate=%g size=%d rt/s=%.0f p50=%v p90=%v p99=%v p99.9=%v max=%v",
				impl, r, conns, rate, size, rep.PerSecond, l.P50, l.P90, l.P99, l.P999, l.Max)
			p99s[impl] = append(p99s[impl], l.P99)
		}
	}
	for _, impl := range impls {
		t.Logf("result impl=%s runs=%d median_p99=%v p99s=%v", impl, len(p99s[impl]), median(p99s[impl]), p99s[impl])
	}
	if len(impls) == 2 {
		a, b := median(p99s[impls[0]]), median(p99s[impls[1]])
		t.Logf("result median_p99 %s/%s = %.2f", impls[0], impls[1], float64(a)/float64(b))
	}
}

// median returns the median of v, or 0 for none.
func median[T ~int64 | ~float64](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"wsecho/internal/bench"
)

// TestIdleMemory measures the memory an idle connection costs each echo
// server: it starts the server in a helper process, opens
// WSECHO_IDLE_CONNS connections to it, does one round trip on each so that
// the server is in its steady idle state, and reads the server's VmRSS from
// /proc before and after. It is a measurement, not a check, and runs only
// when asked for:
//
//	WSECHO_IDLE_CONNS=10000 go test -run='^TestIdleMemory$' -v -timeout=30m .
//
// Other settings: WSECHO_IDLE_IMPLS (default "xnet,gorilla"),
// WSECHO_IDLE_SOURCES (how many 127.0.0.x source addresses the connections
// are spread over; default 4), WSECHO_IDLE_SIZE (the message of the round
// trip, default 0 bytes), WSECHO_IDLE_COMPRESS=1 (offer permessage-deflate on
// every connection and round-trip JSON-like text compressed; use
// WSECHO_IDLE_IMPLS=xnet,gorilla-deflate), WSECHO_IDLE_PROFILE_DIR (a directory: write heap
// and goroutine profiles of each server with all connections open), WSECHO_SERVER_CPUS
// (pin the servers with taskset -c). See BENCHMARKS.md.
func TestIdleMemory(t *testing.T) {
	n := envInt(t, "WSECHO_IDLE_CONNS", 0)
	if n <= 0 {
		t.Skip("a measurement, not a check: set WSECHO_IDLE_CONNS=10000 to measure the resident memory idle connections cost our server and gorilla's (see BENCHMARKS.md)")
	}
	// Not parallel: a measurement runs alone.
	impls := strings.Split(cmp.Or(os.Getenv("WSECHO_IDLE_IMPLS"), "xnet,gorilla"), ",")
	sources := envInt(t, "WSECHO_IDLE_SOURCES", 4)
	size := envInt(t, "WSECHO_IDLE_SIZE", 0)
	profDir := os.Getenv("WSECHO_IDLE_PROFILE_DIR")
	if sources < 1 || sources > 250 {
		t.Fatalf("WSECHO_IDLE_SOURCES=%d: want 1 to 250", sources)
	}
	var env []string
	if profDir != "" {
		env = append(env, helperProfileRateEnv+"=4096")
	}
	for _, impl := range impls {
		t.Run("impl="+impl, func(t *testing.T) {
			s := startHelper(t, impl, env...)
			// Warm up: the first connection pages in code and fills pools.
			warm, err := dialIdle(context.Background(), nil, s.url, size)
			if err != nil {
				t.Fatal(err)
			}
			warm.Close()
			before := s.memStats(t, true)

			start := time.Now()
			conns, err := dialIdleMany(t, s.url, n, sources, size)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			if err != nil {
				t.Fatalf("after %d connections: %v", len(conns), err)
			}
			dialTime := time.Since(start)
			after := s.memStats(t, false)
			afterGC := s.memStats(t, true)
			if profDir != "" {
				for _, name := range []string{"heap", "goroutine"} {
					path, err := filepath.Abs(filepath.Join(profDir, "idle-"+impl+"."+name))
					if err != nil {
						t.Fatal(err)
					}
					s.command(t, "profile "+name+" "+path, "ok")
					t.Logf("%s profile: %s", name, path)
				}
			}
			per := func(a, b int64) float64 { return float64(b-a) / float64(n) }
			t.Logf("impl=%s conns=%d sources=%d size=%d dial=%v goroutines=%d->%d",
				impl, n, sources, size, dialTime.Round(time.Millisecond), before.goroutines, afterGC.goroutines)
			t.Logf("impl=%s rss_before=%d rss_after=%d rss_after_gc=%d", impl, before.rss, after.rss, afterGC.rss)
			t.Logf("result impl=%s conns=%d bytes_per_conn=%.0f bytes_per_conn_after_gc=%.0f heap_per_conn=%.0f stack_per_conn=%.0f",
				impl, n, per(before.rss, after.rss), per(before.rss, afterGC.rss),
				per(before.heapAlloc, afterGC.heapAlloc), per(before.stackInuse, afterGC.stackInuse))
		})
	}
}

// dialIdle opens one connection from laddr (nil: any) and does one round
// trip on it, with a deadline, then clears the deadline.
func dialIdle(ctx context.Context, laddr net.IP, url string, size int) (*bench.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dial := bench.DialFrom
	if os.Getenv("WSECHO_IDLE_COMPRESS") == "1" {
		dial = bench.DialCompressed
	}
	c, err := dial(ctx, laddr, url, size, false)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.RoundTrip(); err != nil {
		c.Close()
		return nil, fmt.Errorf("round trip: %w", err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// dialIdleMany opens n idle connections spread over source addresses
// 127.0.0.1 to 127.0.0.sources, a few at a time. On error it returns the
// connections it opened, for the caller to close.
func dialIdleMany(t *testing.T, url string, n, sources, size int) ([]*bench.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conns := make([]*bench.Conn, n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	const dialers = 8
	for range dialers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil || i >= n
				mu.Unlock()
				if stop {
					return
				}
				c, err := dialIdle(ctx, net.IPv4(127, 0, 0, byte(1+i%sources)), url, size)
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("connection %d: %w", i, err)
				}
				conns[i] = c
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	open := conns[:0]
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	return open, first
}

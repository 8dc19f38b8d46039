package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"wsecho/internal/bench"
	"wsecho/server"
)

// BenchmarkEchoCompressed measures compressed echo round trips of
// JSON-like text through our server (impl=xnet) and gorilla's with
// EnableCompression (impl=gorilla-deflate), both negotiating
// permessage-deflate with no context takeover. Each op is one round trip:
// the client sends the message compressed (compressed once, up front),
// the server inflates it, echoes it, compresses the echo; the client
// inflates the echo and compares it. rt/s counts round trips per second,
// cpu-ns/rt is the CPU time of this process (client and server) per round
// trip, wire-B/msg is the echo's payload on the wire, allocs/op includes
// the server's. See BENCHMARKS.md.
//
//	go test -run='^$' -bench=EchoCompressed -count=6 . > deflate.txt
//	benchstat -col /impl deflate.txt
func BenchmarkEchoCompressed(b *testing.B) {
	for _, size := range []int{256, 4 << 10, 64 << 10} {
		for _, impl := range []string{"xnet", "gorilla-deflate"} {
			b.Run(fmt.Sprintf("size=%d/impl=%s", size, impl), func(b *testing.B) {
				url := startServerOpts(b, impl, server.Options{Logger: slog.New(slog.DiscardHandler)})
				c, err := bench.DialCompressed(context.Background(), nil, url, size, false)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu0 := cpuTime()
				for b.Loop() {
					if err := c.RoundTrip(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/rt")
				_, in := c.WireBytes()
				b.ReportMetric(in, "wire-B/msg")
			})
		}
	}
}

// TestCompressedConnsMemory opens 1,000 connections with permessage-deflate
// to our server in a process of its own, has every one echo 4 KiB of
// JSON-like text at once, twice, and checks the server's memory with all of
// them open: compressors and inflaters come from pools, so the heap must
// stay far below what one compressor per connection would take (about
// 1.2 GB), and per idle connection close to the uncompressed figure.
func TestCompressedConnsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,000 connections")
	}
	// Not parallel: it measures a process of its own, and takes the
	// machine's loopback ports for a while.
	const n, size = 1000, 4 << 10
	s := startHelper(t, "xnet")
	before := s.memStats(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conns := make([]*bench.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16) // a few dials at a time, as a burst of clients would
	for i := range conns {
		wg.Go(func() {
			sem <- struct{}{}
			c, err := bench.DialCompressed(ctx, net.IPv4(127, 0, 0, byte(1+i%4)), s.url, size, false)
			<-sem
			if err != nil {
				errs <- fmt.Errorf("conn %d: %w", i, err)
				return
			}
			conns[i] = c
			c.SetDeadline(time.Now().Add(time.Minute))
			for range 2 {
				if err := c.RoundTrip(); err != nil {
					errs <- fmt.Errorf("conn %d: round trip: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	busy := s.memStats(t, false)
	idle := s.memStats(t, true)
	per := float64(idle.heapAlloc-before.heapAlloc) / n
	t.Logf("server heap: %d MB before, %d MB in use after the echoes, %d MB after GC; %.0f bytes per idle connection; RSS %d MB",
		before.heapInuse>>20, busy.heapInuse>>20, idle.heapInuse>>20, per, idle.rss>>20)
	if limit := int64(64 << 20); busy.heapInuse > limit {
		t.Errorf("server heap in use %d MB with 1,000 compressed connections, want under %d MB", busy.heapInuse>>20, limit>>20)
	}
	// Uncompressed, an idle connection's heap is about 6-14 KB
	// (BENCHMARKS.md); compression state must add little (the 1 KB target
	// is measured by TestIdleMemory with WSECHO_IDLE_COMPRESS=1).
	if per > 32<<10 {
		t.Errorf("%.0f bytes of heap per idle compressed connection, want under 32 KiB", per)
	}
}

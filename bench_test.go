package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"wsecho/internal/bench"
	"wsecho/server"
)

// BenchmarkEcho measures echo round trips through our server (impl=xnet),
// the gorilla reference (impl=gorilla) and a plain TCP echo of the same
// bytes (impl=tcp, the ceiling), side by side in one run. Each op is one
// round trip of one message; rt/s counts round trips per second over all
// connections, cpu-ns/rt is the CPU time this process (client and server)
// used per round trip, and allocs/op includes the server's allocations,
// since the server runs in this process. See BENCHMARKS.md.
//
//	go test -run='^$' -bench=Echo -count=10 . > new.txt
//	benchstat -col /impl new.txt
func BenchmarkEcho(b *testing.B) {
	for _, conns := range []int{1, 64} {
		for _, size := range []int{32, 4 << 10, 64 << 10, 1 << 20} {
			for _, impl := range []string{"xnet", "gorilla", "tcp"} {
				b.Run(fmt.Sprintf("conns=%d/size=%d/impl=%s", conns, size, impl), func(b *testing.B) {
					benchEcho(b, impl, conns, size)
				})
			}
		}
	}
}

// BenchmarkWireLayer measures what the wire layer costs: our server
// (impl=xnet) against the same echo on bare x/net (impl=naive), which
// checks nothing and echoes fragments one by one.
//
//	go test -run='^$' -bench=WireLayer -count=10 . > wire.txt
//	benchstat -col /impl wire.txt
func BenchmarkWireLayer(b *testing.B) {
	for _, conns := range []int{1, 64} {
		for _, size := range []int{4 << 10, 64 << 10} {
			for _, impl := range []string{"xnet", "naive"} {
				b.Run(fmt.Sprintf("conns=%d/size=%d/impl=%s", conns, size, impl), func(b *testing.B) {
					benchEcho(b, impl, conns, size)
				})
			}
		}
	}
}

func benchEcho(b *testing.B, impl string, nconns, size int) {
	var url string
	if impl == "tcp" {
		url = startTCPEcho(b)
	} else {
		url = startServerOpts(b, impl, server.Options{Logger: slog.New(slog.DiscardHandler)})
	}
	conns := make([]*bench.Conn, nconns)
	for i := range conns {
		c, err := bench.Dial(context.Background(), url, size, true)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu0 := cpuTime()
	if nconns == 1 {
		for b.Loop() {
			if err := conns[0].RoundTrip(); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		var next int
		var mu sync.Mutex
		b.SetParallelism((nconns + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			c := conns[next%nconns]
			next++
			mu.Unlock()
			for pb.Next() {
				if err := c.RoundTrip(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rt/s")
	// CPU time per round trip, client and server together, varies less
	// than rt/s when other processes compete for the cores.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/rt")
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startTCPEcho starts a plain TCP echo server on loopback and returns its
// tcp:// URL; the cleanup stops it and its connections.
func startTCPEcho(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() {
				buf := make([]byte, 64<<10)
				io.CopyBuffer(c, struct{ io.Reader }{c}, buf)
				c.Close()
			})
		}
	})
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "tcp://" + ln.Addr().String()
}

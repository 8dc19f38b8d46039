package client_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"wsecho/client"
	"wsecho/internal/wsframe"
	"wsecho/internal/wsmsg"
)

// BenchmarkClientRead measures what the client pays to receive one text
// message from a server that sends them back to back: through the wire
// layer (impl=wire, Conn.ReadMessage, as Run reads) or through x/net's
// frame reader fed by the wire layer (impl=xnet, as Run read before).
//
//	go test -run='^$' -bench=ClientRead -count=6 ./client > read.txt
//	benchstat -col /impl read.txt
func BenchmarkClientRead(b *testing.B) {
	for _, size := range []int{32, 4 << 10, 64 << 10} {
		for _, impl := range []string{"xnet", "wire"} {
			b.Run(fmt.Sprintf("size=%d/impl=%s", size, impl), func(b *testing.B) {
				benchClientRead(b, impl, size)
			})
		}
	}
}

func benchClientRead(b *testing.B, impl string, size int) {
	rs := startPusher(b, size)
	c, err := client.Dial(context.Background(), rs.url, client.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	read := func() ([]byte, error) {
		_, p, err := c.ReadMessage()
		return p, err
	}
	if impl == "xnet" {
		read = func() ([]byte, error) {
			var m wsmsg.Message
			err := wsmsg.Codec.Receive(c.Conn, &m)
			return m.Data, err
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		p, err := read()
		if err != nil {
			b.Fatal(err)
		}
		if len(p) != size {
			b.Fatalf("got %d bytes, want %d", len(p), size)
		}
	}
}

// BenchmarkClientReceive measures one received message all the way through
// Run in line mode: read, matched against the lines sent, formatted and
// written out (to a writer that discards it).
//
//	go test -run='^$' -bench=ClientReceive -count=6 ./client
func BenchmarkClientReceive(b *testing.B) {
	for _, size := range []int{32, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			benchClientReceive(b, size)
		})
	}
}

func benchClientReceive(b *testing.B, size int) {
	rs := startPusher(b, size)
	opts := client.Options{Lines: true, Logger: slog.New(slog.DiscardHandler)}
	c, err := client.Dial(context.Background(), rs.url, opts)
	if err != nil {
		b.Fatal(err)
	}
	in, inw, err := os.Pipe() // never written: Run only receives
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	defer inw.Close()
	out := &signalWriter{printed: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- client.Run(ctx, c, in, out) }()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		<-out.printed
	}
	close(out.done)
	cancel()
	<-ran
}

// signalWriter hands each write to the benchmark loop, one at a time,
// until done.
type signalWriter struct{ printed, done chan struct{} }

func (w *signalWriter) Write(p []byte) (int, error) {
	select {
	case w.printed <- struct{}{}:
	case <-w.done:
	}
	return len(p), nil
}

// startPusher starts a raw server that sends text messages of size bytes
// to each client, back to back, until the connection ends. It writes whole
// batches of frames, so that its side costs little and allocates nothing.
func startPusher(b *testing.B, size int) *rawServer {
	payload := bytes.Repeat([]byte{'a'}, size)
	var batch []byte
	for len(batch) < 256<<10 {
		batch = wsframe.AppendFrame(batch, wsframe.Header{Fin: true, Opcode: wsframe.OpText}, payload)
	}
	return startRaw(b, func(_ int, rc *rawConn) {
		rc.nc.SetDeadline(time.Time{})
		for rc.write(batch) == nil {
		}
	})
}

package testpeer

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// AcceptHandshake reads a WebSocket opening handshake request from nc and
// answers it with 101 (RFC 6455, Section 4.2.2), as a server written by
// hand does. It returns the request, and the reader to read frames from.
func AcceptHandshake(nc net.Conn) (*http.Request, *bufio.Reader, error) {
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, err = fmt.Fprintf(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(h[:]))
	return req, br, err
}

// FloodPings writes pings with 125-byte payloads to nc, never reading,
// until deadline or until the connection fails. stalled is closed once a
// write has not gone through for 200 ms: the peer has stopped reading (a
// client does when its answer to a ping is stuck behind pongs nobody
// reads).
func FloodPings(nc net.Conn, deadline time.Time, stalled chan<- struct{}) {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096) // fill up sooner
	}
	ping := append([]byte{0x89, 125}, bytes.Repeat([]byte("p"), 125)...) // FIN, ping, unmasked
	batch := bytes.Repeat(ping, 512)
	rest := batch // what is left of the batch: a write cut short by its deadline goes on where it stopped
	for once := false; time.Now().Before(deadline); {
		nc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := nc.Write(rest)
		if rest = rest[n:]; len(rest) == 0 {
			rest = batch
		}
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			if !once {
				once = true
				close(stalled)
			}
		case err != nil:
			return
		}
	}
}

// ServeOne listens on a loopback port and runs serve for the first
// connection, with a deadline of timeout set on it, then closes it. It
// returns the address; the test's cleanup closes the listener and waits
// for serve.
func ServeOne(t testing.TB, timeout time.Duration, serve func(nc net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { ln.Close() })
	wg.Go(func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(timeout))
		serve(nc)
	})
	return ln.Addr().String()
}

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
	for once := false; time.Now().Before(deadline); {
		nc.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := nc.Write(batch)
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

package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"golang.org/x/net/websocket"

	"wsecho/client"
	"wsecho/server"
)

// Example serves the echo endpoint and the health check with NewMux, sends
// one message and reads its echo, then shuts down: /healthz turns to 503.
func Example() {
	h := server.New(server.Options{
		PingInterval: 30 * time.Second,
		IdleTimeout:  60 * time.Second,
		Logger:       slog.New(slog.DiscardHandler),
	})
	ts := httptest.NewServer(server.NewMux(h, nil))
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/echo", client.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	websocket.Message.Send(conn.Conn, "hello")
	var reply string
	websocket.Message.Receive(conn.Conn, &reply)
	fmt.Println("echo:", reply)

	health := func() {
		resp, err := http.Get(ts.URL + "/healthz")
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("/healthz: %d %s", resp.StatusCode, body)
	}
	health()

	// Shutdown closes the connection with 1001 "going away" once it is
	// quiet, and waits for the client's answer, which the wire layer beneath
	// x/net sends when the client reads the Close.
	done := make(chan error, 1)
	go func() { done <- h.Shutdown(ctx) }()
	err = websocket.Message.Receive(conn.Conn, &reply)
	code, reason, _ := conn.CloseStatus()
	fmt.Println("closed:", code, reason, err)
	conn.Close()
	fmt.Println("shutdown:", <-done)
	health()
	// Output:
	// echo: hello
	// /healthz: 200 ok
	// closed: 1001 going away EOF
	// shutdown: <nil>
	// /healthz: 503 shutting down
}

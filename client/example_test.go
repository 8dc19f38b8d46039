package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"wsecho/client"
	"wsecho/server"
)

// Example runs the client in line mode against an echo server: each line of
// the input goes out as one message, and every echo is printed before Run
// returns, because Run closes normally at the end of the input and waits
// for the closing handshake.
func Example() {
	h := server.New(server.Options{Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(h)
	defer func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	}()

	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/echo"
	conn, err := client.Dial(ctx, url, client.Options{Lines: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = client.Run(ctx, conn, strings.NewReader("hello\nworld\n"), os.Stdout)
	fmt.Println("err:", err)
	// Output:
	// hello
	// world
	// err: <nil>
}

// ExampleOptions_binary sends binary messages and prints what comes back in
// base64.
func ExampleOptions_binary() {
	h := server.New(server.Options{Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(h)
	defer func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	}()

	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/echo"
	opts := client.Options{Lines: true, Binary: true, ShowBinary: "base64", Verbose: true, Logger: slog.New(slog.DiscardHandler)}
	conn, err := client.Dial(ctx, url, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := client.Run(ctx, conn, strings.NewReader("hi\n"), os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// [binary, 2 bytes] aGk=
}

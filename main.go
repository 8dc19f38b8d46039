// Wsecho runs a WebSocket echo server or client.
//
// Usage:
//
//	wsecho server [-addr localhost:8080] [flags]
//	wsecho client [-addr localhost:8080 | -url ws://host:port/echo] [flags]
//
// The server upgrades GET /echo and writes every message back whole, with
// its type. The client prints every message it receives and sends the
// current time every second; on Ctrl-C it closes the connection normally.
// Run "wsecho server -h" or "wsecho client -h" for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"wsecho/client"
	"wsecho/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

const usage = `usage: wsecho <command> [flags]

commands:
  server   run the echo server (GET /echo)
  client   connect to an echo server and send the time every second

Run "wsecho <command> -h" for the flags of each command.
`

// run dispatches on the subcommand. It writes the client's messages and the
// server's address to stdout, and everything else to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{"no command given"}
	}
	switch args[0] {
	case "server":
		return runServer(ctx, args[1:], stdout, stderr)
	case "client":
		return runClient(ctx, args[1:], stdin, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, usage)
	return &usageError{fmt.Sprintf("unknown command %q", args[0])}
}

// stdin is the client's input; a variable so that tests can replace it.
var stdin io.Reader = os.Stdin

// exitCode maps run's error to the exit status, printing it when there is
// one to print: 0 success or help, 1 failure, 2 usage, 3 abnormal closure.
func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	var ce *client.CloseError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "wsecho:", err)
		return 2
	case errors.As(err, &ce):
		fmt.Fprintln(stderr, "wsecho:", err)
		return 3
	}
	fmt.Fprintln(stderr, "wsecho:", err)
	return 1
}

// parseFlags parses args with fs, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func runServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:8080", "listen on `host:port` (port 0 picks a free one)")
	origins := fs.String("origin", "", "comma-separated `list` of origins allowed besides the same origin (* allows any)")
	maxMessage := fs.Int64("max-message", 32<<20, "largest message in `bytes`; a larger one is closed with 1009")
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long shutdown waits for closing handshakes")
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *maxMessage <= 0 {
		return &usageError{"-max-message must be positive"}
	}
	log := newLogger(stderr, level)

	opts := server.Options{Logger: log, MaxMessage: *maxMessage}
	if *origins != "" {
		opts.CheckOrigin = server.AllowOrigins(strings.Split(*origins, ","))
	}
	h := server.New(opts)
	mux := http.NewServeMux()
	mux.Handle("/echo", h)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err // "listen tcp ADDR: cause"
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stdout, "listening on ws://%s/echo\n", ln.Addr())
	log.Info("listening", "addr", ln.Addr().String())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	// http.Server.Shutdown neither closes nor waits for hijacked connections:
	// the echo handler does that.
	err = srv.Shutdown(shutdownCtx)
	if herr := h.Shutdown(shutdownCtx); err == nil {
		err = herr
	}
	<-errc
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func runClient(ctx context.Context, args []string, in io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:8080", "server `host:port`; the URL is ws://host:port/echo")
	rawURL := fs.String("url", "", "full ws:// or wss:// `URL` (overrides -addr)")
	count := fs.Int("count", 0, "send `n` messages, then close normally (0: until interrupted)")
	interval := fs.Duration("interval", time.Second, "time between messages")
	origin := fs.String("origin", "", "Origin header (default: the URL's own origin)")
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *count < 0 {
		return &usageError{"-count must not be negative"}
	}
	if *interval <= 0 {
		return &usageError{"-interval must be positive"}
	}
	target := *rawURL
	if target == "" {
		target = "ws://" + *addr + "/echo"
	}
	opts := client.Options{
		Origin:   *origin,
		Interval: *interval,
		Count:    *count,
		Logger:   newLogger(stderr, level),
	}
	fmt.Fprintf(stderr, "connecting to %s\n", target)
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := client.Dial(dialCtx, target, opts)
	if err != nil {
		return err
	}
	return client.Run(ctx, conn, in, stdout)
}

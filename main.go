// Wsecho runs a WebSocket echo server or client.
//
// Usage:
//
//	wsecho server [-addr localhost:8080] [flags]
//	wsecho client [-addr localhost:8080 | -url ws://host:port/echo] [flags]
//	wsecho bench -url ws://host:port/echo [-conns N] [-size BYTES] [-duration D] [flags]
//
// The server upgrades GET /echo and writes every message back whole, with
// its type. The client prints every message it receives and sends the
// current time every second; on Ctrl-C it closes the connection normally.
// Run "wsecho server -h" or "wsecho client -h" for the flags.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"wsecho/client"
	"wsecho/internal/bench"
	"wsecho/internal/wsframe"
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
  bench    load an echo server and report round trips/s and latency

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
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
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
	maxConns := fs.Int("max-conns", 10000, "most connections open at once; beyond it a handshake gets 503 (0: no limit)")
	handshakeTimeout := fs.Duration("handshake-timeout", 10*time.Second, "how long a client may take to send its upgrade request (and TLS handshake)")
	pingInterval := fs.Duration("ping-interval", 30*time.Second, "how often each connection gets a ping (0: never)")
	idleTimeout := fs.Duration("idle-timeout", 60*time.Second, "close a connection with 1001 when nothing has arrived on it for this long (0: never)")
	maxMemory := fs.Int64("max-memory", server.DefaultMaxMemory, "most `bytes` of message data held across all connections; a message that needs more waits, then is closed with 1013")
	messageTimeout := fs.Duration("message-timeout", 60*time.Second, "close a connection with 1008 when one message takes longer than this from its first frame to its last (0: no limit)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long shutdown waits for closing handshakes")
	compress := fs.Bool("compress", true, "accept permessage-deflate offers (false declines them)")
	compressContext := fs.Bool("compress-context", false, "keep the compression context across messages (better ratio, about 1.3 MB per compressed connection)")
	certFile := fs.String("tls-cert", "", "TLS certificate `file` (PEM); with -tls-key, serve wss://")
	keyFile := fs.String("tls-key", "", "TLS private key `file` (PEM)")
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *maxMessage <= 0:
		return &usageError{"-max-message must be positive"}
	case *maxConns < 0:
		return &usageError{"-max-conns must not be negative"}
	case *handshakeTimeout <= 0:
		return &usageError{"-handshake-timeout must be positive"}
	case *pingInterval < 0, *idleTimeout < 0:
		return &usageError{"-ping-interval and -idle-timeout must not be negative"}
	case *pingInterval > 0 && *idleTimeout > 0 && *pingInterval >= *idleTimeout:
		return &usageError{"-ping-interval must be shorter than -idle-timeout, or idle clients that answer pings are closed"}
	case *maxMemory < 0, *messageTimeout < 0:
		return &usageError{"-max-memory and -message-timeout must not be negative"}
	case *shutdownTimeout <= 0:
		return &usageError{"-shutdown-timeout must be positive"}
	case (*certFile == "") != (*keyFile == ""):
		return &usageError{"-tls-cert and -tls-key go together"}
	}
	logOpts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	switch *logFormat {
	case "text":
		log = slog.New(slog.NewTextHandler(stderr, logOpts))
	case "json":
		log = slog.New(slog.NewJSONHandler(stderr, logOpts))
	default:
		return &usageError{fmt.Sprintf("-log-format must be text or json, not %q", *logFormat)}
	}

	if *maxMemory == 0 {
		*maxMemory = server.DefaultMaxMemory
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// Buffers dropped as messages grow are garbage until the next
		// collection: a soft limit keeps the process near -max-memory.
		debug.SetMemoryLimit(*maxMemory + *maxMemory/2 + 128<<20)
	}
	opts := server.Options{
		Logger:           log,
		MaxMessage:       *maxMessage,
		MaxConns:         *maxConns,
		HandshakeTimeout: *handshakeTimeout,
		PingInterval:     *pingInterval,
		IdleTimeout:      *idleTimeout,
		MaxMemory:        *maxMemory,
		MessageTimeout:   *messageTimeout,

		DisableCompression:      !*compress,
		CompressContextTakeover: *compressContext,
	}
	if *origins != "" {
		opts.CheckOrigin = server.AllowOrigins(strings.Split(*origins, ","))
	}
	h := server.New(opts)
	srv := h.HTTPServer(server.NewMux(h, server.Page()))
	scheme := "ws"
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		// ServeTLS adds HTTP/2 for the page; the echo endpoint answers an
		// HTTP/2 request with 505, and WebSocket clients ask for HTTP/1.1.
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		scheme = "wss"
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err // "listen tcp ADDR: cause"
	}
	fmt.Fprintf(stdout, "listening on %s://%s/echo\n", scheme, ln.Addr())
	log.Info("listening", "addr", ln.Addr().String(), "tls", scheme == "wss")

	errc := make(chan error, 1)
	go func() {
		if scheme == "wss" {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	// From here on, a second SIGINT or SIGTERM cuts the wait short.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	log.Info("shutting down", "timeout", *shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// http.Server.Shutdown stops accepting at once, then waits for HTTP
		// requests (the page's self-test wait can take 30 s); it neither
		// closes nor waits for hijacked connections: h.Shutdown does that,
		// meanwhile, and answers a handshake that slips in with 503.
		httpDone := make(chan error, 1)
		go func() {
			err := srv.Shutdown(shutdownCtx)
			if err != nil {
				srv.Close() // HTTP requests still running
			}
			httpDone <- err
		}()
		err := h.Shutdown(shutdownCtx)
		if herr := <-httpDone; err == nil {
			err = herr
		}
		done <- err
	}()
	var forced bool
	select {
	case err = <-done:
	case sig := <-again:
		log.Warn("second signal: closing every connection now", "signal", sig.String())
		forced = true
		cancel()
		err = <-done // quick: every connection is closed at once
	}
	<-errc
	switch {
	case forced:
		return errors.New("shutdown cut short by a second signal")
	case errors.Is(err, context.DeadlineExceeded):
		// The connections left were closed; that is the timeout's purpose.
		log.Warn("shutdown timed out; closed the connections left", "timeout", *shutdownTimeout)
	case err != nil:
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

func runClient(ctx context.Context, args []string, in io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:8080", "server `host:port`; the URL is ws://host:port/echo")
	rawURL := fs.String("url", "", "full ws:// or wss:// `URL` (overrides -addr)")
	count := fs.Int("count", 0, "send `n` messages, then close normally (0: until interrupted; default mode only)")
	interval := fs.Duration("interval", time.Second, "time between messages (default mode only)")
	lines := fs.Bool("stdin", false, "send each line of standard input as a message; close at its end (interactive on a terminal)")
	binary := fs.Bool("binary", false, "send binary messages instead of text")
	showBinary := fs.String("show-binary", "hex", "print received binary messages as `hex`, base64 or raw")
	jsonOut := fs.Bool("json", false, "print one JSON object per line for every event")
	timestamps := fs.Bool("timestamps", false, "prefix every printed message with the time it arrived")
	verbose := fs.Bool("v", false, "print message types and sizes, pongs with round-trip times, pings and closes")
	closeCode := fs.Int("close-code", 1000, "close `code` sent when the client closes normally")
	closeReason := fs.String("close-reason", "", "close `reason` sent when the client closes normally")
	header := make(http.Header)
	fs.Func("header", "extra handshake header `'Name: value'` (repeatable)", func(s string) error {
		name, value, ok := strings.Cut(s, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return errors.New(`want "Name: value"`)
		}
		header.Add(name, strings.TrimSpace(value))
		return nil
	})
	origin := fs.String("origin", "", "Origin header (default: the URL's own origin)")
	var subprotocols []string
	fs.Func("subprotocol", "offer subprotocol `name` (repeatable, most preferred first)", func(s string) error {
		subprotocols = append(subprotocols, s)
		return nil
	})
	insecure := fs.Bool("insecure", false, "skip TLS certificate verification (wss)")
	caFile := fs.String("ca", "", "trust the CA certificates in PEM `file` (wss)")
	connectTimeout := fs.Duration("connect-timeout", 10*time.Second, "bound on the dial, proxy, TLS and opening handshake")
	ping := fs.Duration("ping", 0, "send a ping at this `interval`; no pong by the next one counts as a lost connection")
	compress := fs.Bool("compress", false, "offer permessage-deflate compression (as browsers do); print what the server accepted")
	reconnect := fs.Bool("reconnect", false, "reconnect with backoff when the connection drops or the server closes with 1001 or 1012")
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *count < 0:
		return &usageError{"-count must not be negative"}
	case *interval <= 0:
		return &usageError{"-interval must be positive"}
	case *lines && (set["count"] || set["interval"]):
		return &usageError{"-count and -interval apply to the default mode, not to -stdin"}
	case *showBinary != "hex" && *showBinary != "base64" && *showBinary != "raw":
		return &usageError{"-show-binary must be hex, base64 or raw"}
	case !wsframe.ValidCloseCode(*closeCode):
		return &usageError{fmt.Sprintf("-close-code %d is not a code a client may send (1000-1003, 1007-1014, 3000-4999)", *closeCode)}
	case len(*closeReason) > 123:
		return &usageError{"-close-reason is longer than 123 bytes"}
	case *connectTimeout <= 0:
		return &usageError{"-connect-timeout must be positive"}
	case *ping < 0:
		return &usageError{"-ping must not be negative"}
	}
	for name := range header {
		switch name {
		case "Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Sec-Websocket-Accept":
			return &usageError{fmt.Sprintf("-header %s: the handshake sets it (use -subprotocol for Sec-WebSocket-Protocol)", name)}
		}
	}
	target := *rawURL
	if target == "" {
		target = "ws://" + *addr + "/echo"
	}
	var tc *tls.Config
	if *insecure || *caFile != "" {
		tc = &tls.Config{InsecureSkipVerify: *insecure}
		if *caFile != "" {
			pem, err := os.ReadFile(*caFile)
			if err != nil {
				return fmt.Errorf("read -ca: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("read -ca %s: no PEM certificates", *caFile)
			}
		}
	}
	opts := client.Options{
		Origin:         *origin,
		Header:         header,
		Subprotocols:   subprotocols,
		TLSConfig:      tc,
		ConnectTimeout: *connectTimeout,
		Interval:       *interval,
		Count:          *count,
		Lines:          *lines,
		Binary:         *binary,
		ShowBinary:     *showBinary,
		JSON:           *jsonOut,
		Timestamps:     *timestamps,
		Verbose:        *verbose,
		CloseCode:      *closeCode,
		CloseReason:    *closeReason,
		Ping:           *ping,
		Reconnect:      *reconnect,
		Compress:       *compress,
		Status:         stderr,
		Logger:         newLogger(stderr, level),
	}
	fmt.Fprintf(stderr, "connecting to %s\n", target)
	conn, err := client.Dial(ctx, target, opts)
	if err != nil {
		return err
	}
	return client.Run(ctx, conn, in, stdout)
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.Config
	fs.StringVar(&cfg.URL, "url", "ws://localhost:8080/echo", "echo endpoint `URL` (ws://, or tcp:// for a plain TCP echo)")
	fs.IntVar(&cfg.Conns, "conns", 1, "`number` of connections")
	fs.IntVar(&cfg.Size, "size", 32, "message size in `bytes`")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to send")
	fs.Float64Var(&cfg.Rate, "rate", 0, "messages per second per connection (0: closed loop, each waits for its echo)")
	fs.BoolVar(&cfg.Binary, "binary", false, "send binary messages instead of text")
	fs.BoolVar(&cfg.Compress, "compress", false, "offer permessage-deflate and send JSON-like text compressed; report bytes on the wire")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case cfg.Conns <= 0:
		return &usageError{"-conns must be positive"}
	case cfg.Size < 0:
		return &usageError{"-size must not be negative"}
	case cfg.Duration <= 0:
		return &usageError{"-duration must be positive"}
	case cfg.Rate < 0:
		return &usageError{"-rate must not be negative"}
	}
	var progress func(bench.Progress)
	if isTerminal(stderr) {
		progress = func(p bench.Progress) {
			fmt.Fprintf(stderr, "\r%5.0fs  %10.0f round trips/s  %d errors ",
				p.Elapsed.Seconds(), float64(p.RoundTrips)/p.Elapsed.Seconds(), p.Errors)
		}
	}
	r, err := bench.Run(ctx, cfg, progress)
	if progress != nil {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	kind := "text"
	if r.Binary {
		kind = "binary"
	}
	loop := "closed loop"
	if r.Rate > 0 {
		loop = fmt.Sprintf("%g msg/s per connection", r.Rate)
	}
	l := r.Latency
	fmt.Fprintf(stdout, "%s: %d conns, %d-byte %s messages, %.1fs, %s\n", r.URL, r.Conns, r.Size, kind, r.Seconds, loop)
	fmt.Fprintf(stdout, "round trips  %d (%.1f/s)\n", r.RoundTrips, r.PerSecond)
	fmt.Fprintf(stdout, "throughput   %.2f MB/s each way\n", r.MBpsOut)
	if r.Compressed {
		fmt.Fprintf(stdout, "compressed   %.0f bytes on the wire per message out, %.0f back (of %d)\n", r.WireBytesOut, r.WireBytesIn, r.Size)
	}
	fmt.Fprintf(stdout, "latency      p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	fmt.Fprintf(stdout, "errors       %d", r.ErrorsTotal)
	for kind, n := range r.Errors {
		fmt.Fprintf(stdout, "  %s=%d", kind, n)
	}
	fmt.Fprintln(stdout)
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

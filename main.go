// Wsecho runs a WebSocket echo server or client.
//
// Usage:
//
//	wsecho server [-addr localhost:8080] [flags]
//	wsecho client [flags] [ws://host:port/path]
//	wsecho bench -url ws://host:port/echo [-conns N] [-size BYTES] [-duration D] [flags]
//	wsecho help [server|client|bench]
//	wsecho version
//
// The server upgrades GET /echo and writes every message back whole, with
// its type. The client prints every message it receives and sends the
// current time every second; on Ctrl-C it closes the connection normally.
// Run "wsecho help server", "wsecho help client" or "wsecho help bench"
// for the flags.
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
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

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

func (e *usageError) Error() string { return e.msg + "; run 'wsecho help'" }

// commandUsageError is a usageError of a subcommand, whose -h would help.
type commandUsageError struct {
	cmd string
	ue  *usageError
}

func (e *commandUsageError) Error() string { return e.ue.msg + "; run 'wsecho " + e.cmd + " -h'" }
func (e *commandUsageError) Unwrap() error { return e.ue }

// helpRequest is -h: run prints the command's help on stdout.
type helpRequest struct{ fs *flag.FlagSet }

func (*helpRequest) Error() string { return flag.ErrHelp.Error() }
func (*helpRequest) Unwrap() error { return flag.ErrHelp }

const usage = `wsecho: a WebSocket echo server, client and load generator

usage:
  wsecho server [flags]              run the echo server (ws://localhost:8080/echo)
  wsecho client [flags] [URL]        connect to a WebSocket server, send, print what comes back
  wsecho bench [flags]               load an echo server; report round trips/s and latency
  wsecho help [server|client|bench]  the flags, examples and exit statuses of a command
  wsecho version                     the version, VCS revision and Go version

examples:
  wsecho server
  wsecho client ws://localhost:8080/echo
  printf 'a\nb\n' | wsecho client -stdin ws://localhost:8080/echo
`

// run dispatches on the subcommand. It writes the client's messages, the
// server's address, help and the version to stdout, and everything else to
// stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "-h", "-help", "--help", "help":
		if cmd != "help" || len(rest) == 0 {
			fmt.Fprint(stdout, usage)
			return flag.ErrHelp
		}
		if _, ok := helps[rest[0]]; !ok || len(rest) > 1 {
			return &usageError{fmt.Sprintf("no help for %q: the commands are server, client and bench", strings.Join(rest, " "))}
		}
		cmd, rest = rest[0], []string{"-h"}
	case "version", "-version", "--version":
		return printVersion(stdout)
	}
	return runCommand(ctx, cmd, rest, stdin, stdout, stderr)
}

// runCommand runs one subcommand; it prints the help a -h asks for, and
// names the command in usage errors.
func runCommand(ctx context.Context, cmd string, args []string, in io.Reader, stdout, stderr io.Writer) error {
	var err error
	switch cmd {
	case "server":
		err = runServer(ctx, args, stdout, stderr)
	case "client":
		err = runClient(ctx, args, in, stdout, stderr)
	case "bench":
		err = runBench(ctx, args, stdout, stderr)
	default:
		return &usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
	var hr *helpRequest
	var ue *usageError
	switch {
	case errors.As(err, &hr):
		printHelp(stdout, hr.fs, helps[cmd])
	case errors.As(err, &ue):
		return &commandUsageError{cmd, ue}
	}
	return err
}

// printVersion prints the module version and VCS revision the binary was
// built from, and the Go version that built it.
func printVersion(w io.Writer) error {
	version, revision := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		var rev, at, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = ", modified"
				}
			}
		}
		if rev != "" {
			revision = fmt.Sprintf(" (revision %s, %s%s)", rev, at, modified)
		}
	}
	fmt.Fprintf(w, "wsecho %s%s\n%s %s/%s\n", version, revision, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// help is what "wsecho CMD -h" prints besides the flags: a synopsis, the
// flags grouped by purpose (flags in no group are listed last), examples
// and the exit statuses.
type help struct {
	synopsis string
	groups   []flagGroup
	examples string
	exit     string
}

type flagGroup struct {
	title string
	flags []string
}

var helps = map[string]help{
	"server": {
		synopsis: `wsecho server [flags]

Serves WebSocket echo at ws://ADDR/echo (wss:// with -tls-cert and -tls-key):
every message comes back whole, with its type, or as the URL's query asks
(-behaviours). Also a tick stream at /ticks (WebSocket) and /sse
(Server-Sent Events), rooms at /broadcast, GET /healthz, GET /debug/vars
(metrics) and a browser page at /. Prints "listening on URL" as its first
line; on Ctrl-C (or SIGTERM) it closes every connection with 1001 and waits
up to -shutdown-timeout; a second Ctrl-C cuts the wait short.`,
		groups: []flagGroup{
			{"listening", []string{"addr", "tls-cert", "tls-key"}},
			{"who may connect", []string{"origin", "max-conns", "max-conns-per-ip", "max-handshakes"}},
			{"limits and timeouts", []string{"max-message", "max-memory", "message-timeout", "handshake-timeout", "ping-interval", "idle-timeout", "shutdown-timeout"}},
			{"behaviours and streams", []string{"behaviours", "tick-interval", "tick-seed"}},
			{"logging", []string{"log-level", "log-format"}},
		},
		examples: `  wsecho server
  wsecho server -addr :9000 -origin https://app.example.com
  wsecho server -tls-cert cert.pem -tls-key key.pem -log-level warn`,
		exit: `  0  stopped by Ctrl-C or SIGTERM, every connection closed
  1  could not listen or serve, or shutdown was cut short
  2  bad command line`,
	},
	"client": {
		synopsis: `wsecho client [flags] [URL]

Connects to URL (ws:// or wss://; default ws://localhost:8080/echo, or
ws://ADDR/echo with -addr) and prints every message that arrives on stdout.
By default it sends the time every second; -stdin sends each line of input
(interactive, with line editing and history, on a terminal); -file sends a
file as one message. At the end of the input it waits for the replies (see
-wait), then closes normally. On Ctrl-C (or SIGTERM) it closes at once: it
exits within -close-wait, plus at most a second, whatever the server does.`,
		groups: []flagGroup{
			{"where", []string{"url", "addr", "origin", "header", "subprotocol", "connect-timeout", "reconnect"}},
			{"what to send", []string{"stdin", "file", "text", "message", "binary", "count", "interval", "ping"}},
			{"how to end", []string{"wait", "close-code", "close-reason", "close-wait", "max-message"}},
			{"output", []string{"json", "show-binary", "timestamps", "v", "log-level"}},
			{"TLS", []string{"ca", "insecure"}},
		},
		examples: `  wsecho client ws://localhost:8080/echo
  printf 'a\nb\n' | wsecho client -stdin ws://localhost:8080/echo
  wsecho client -file photo.jpg -wait 5s wss://echo.example.com/ws`,
		exit: `  0  closed normally (the server answered 1000, or closed with 1000)
  1  could not connect (refused, TLS, handshake) or interrupted while connecting
  2  bad command line
  3  the connection did not end normally: the server closed with another
     code, broke the protocol, dropped the connection, or did not answer
     the client's Close`,
	},
	"bench": {
		synopsis: `wsecho bench [flags]

Loads an echo server with -conns connections sending -size byte messages for
-duration, closed loop (each waits for its echo) or at -rate, and prints
round trips per second, throughput and latency percentiles. Warns when the
server writes a log line per message (wsecho server at -log-level info):
start the server with -log-level warn to measure the server, not its log.`,
		groups: []flagGroup{
			{"target", []string{"url"}},
			{"load", []string{"conns", "size", "duration", "rate", "binary"}},
			{"output", []string{"json"}},
		},
		examples: `  wsecho bench -conns 50 -duration 10s        # against wsecho server -log-level warn
  wsecho bench -url ws://localhost:8080/echo -conns 10 -size 4096 -rate 100 -json
  wsecho bench -url tcp://localhost:9000 -conns 8      # a plain TCP echo server, for comparison`,
		exit: `  0  the run completed (errors, if any, are in the report)
  1  could not connect at all
  2  bad command line`,
	},
}

// printHelp prints a command's help, with the flags of fs.
func printHelp(w io.Writer, fs *flag.FlagSet, h help) {
	fmt.Fprintf(w, "usage: %s\n", h.synopsis)
	listed := map[string]bool{}
	group := func(title string, names []string) {
		var b strings.Builder
		for _, name := range names {
			f := fs.Lookup(name)
			if f == nil || listed[name] {
				continue
			}
			listed[name] = true
			arg, text := flag.UnquoteUsage(f)
			line := "  -" + name
			if arg != "" {
				line += " " + arg
			}
			fmt.Fprintf(&b, "%s\n      %s", line, text)
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
				fmt.Fprintf(&b, " (default %s)", f.DefValue)
			}
			b.WriteByte('\n')
		}
		if b.Len() > 0 {
			fmt.Fprintf(w, "\n%s:\n%s", title, b.String())
		}
	}
	for _, g := range h.groups {
		group(g.title, g.flags)
	}
	var rest []string
	fs.VisitAll(func(f *flag.Flag) { rest = append(rest, f.Name) })
	group("other flags", rest)
	fmt.Fprintf(w, "\nexamples:\n%s\n\nexit status:\n%s\n", h.examples, h.exit)
}

// stdin is the client's input; a variable so that tests can replace it.
var stdin io.Reader = os.Stdin

// exitCode maps run's error to the exit status, printing it when there is
// one to print: 0 success or help, 1 failure, 2 usage, 3 abnormal closure.
func exitCode(err error, stderr io.Writer) int {
	var cue *commandUsageError
	var ue *usageError
	var ce *client.CloseError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &cue):
		fmt.Fprintf(stderr, "wsecho %s: %v\n", cue.cmd, err)
		return 2
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

// parseFlags parses args with fs, turning flag errors into usage errors
// of one line, and -h into a helpRequest.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseSome(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// parseSome is parseFlags for a command that takes arguments too.
func parseSome(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard) // run prints the help, and exitCode the error
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &helpRequest{fs}
		}
		return &usageError{strings.Replace(err.Error(), " for flag -", " for -", 1)}
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
	maxConns := fs.Int("max-conns", 10000, "most connections open at once, counted from accept; beyond it a handshake gets 503 (0: as many as the file descriptor limit allows)")
	maxHandshakes := fs.Int("max-handshakes", 1024, "most connections still in their handshake (or idle between HTTP requests); beyond it the oldest is closed")
	maxConnsPerIP := fs.Int("max-conns-per-ip", 1000, "most connections from one client address; beyond it a handshake gets 429 (0: no limit, for a server behind a proxy)")
	handshakeTimeout := fs.Duration("handshake-timeout", 10*time.Second, "how long a client may take to send its upgrade request (and TLS handshake)")
	pingInterval := fs.Duration("ping-interval", 30*time.Second, "how often each connection gets a ping (0: never)")
	idleTimeout := fs.Duration("idle-timeout", 60*time.Second, "close a connection with 1001 when nothing has arrived on it for this long (0: never)")
	maxMemory := fs.Int64("max-memory", server.DefaultMaxMemory, "most `bytes` of message data held across all connections; a message that needs more waits, then is closed with 1013")
	messageTimeout := fs.Duration("message-timeout", 60*time.Second, "close a connection with 1008 when one message takes longer than this from its first frame to its last (0: no limit)")
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long shutdown waits for closing handshakes")
	behaviours := fs.Bool("behaviours", true, "let clients choose behaviours on /echo with query parameters (delay=, fragment=, close=, push=, ...); false: a plain echo")
	tickInterval := fs.Duration("tick-interval", time.Second, "time between two ticks on /ticks and /sse")
	tickSeed := fs.Int64("tick-seed", 0, "seed of the tick stream; servers with the same seed and interval serve the same ticks")
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
	case *maxConns < 0, *maxConnsPerIP < 0:
		return &usageError{"-max-conns and -max-conns-per-ip must not be negative"}
	case *maxHandshakes <= 0:
		return &usageError{"-max-handshakes must be positive"}
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
	case *tickInterval < time.Millisecond:
		return &usageError{"-tick-interval must be at least 1ms"}
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
		MaxHandshakes:    *maxHandshakes,
		MaxConnsPerIP:    *maxConnsPerIP,
		HandshakeTimeout: *handshakeTimeout,
		PingInterval:     *pingInterval,
		IdleTimeout:      *idleTimeout,
		MaxMemory:        *maxMemory,
		MessageTimeout:   *messageTimeout,

		DisableBehaviours: !*behaviours,
		TickInterval:      *tickInterval,
		TickSeed:          *tickSeed,
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

	tcpLn, err := net.Listen("tcp", *addr)
	if err != nil {
		return err // "listen tcp ADDR: cause"
	}
	ln := h.Listener(tcpLn) // logs the file descriptor limit
	fmt.Fprintf(stdout, "listening on %s://%s/echo\n", scheme, ln.Addr())
	log.Info("listening", "addr", ln.Addr().String(), "tls", scheme == "wss")

	errc := make(chan error, 1)
	go func() {
		if scheme == "wss" {
			errc <- ln.ServeTLS(srv)
		} else {
			errc <- ln.Serve(srv)
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
	addr := fs.String("addr", "localhost:8080", "server `host:port`; the URL is ws://host:port/echo")
	rawURL := fs.String("url", "", "full ws:// or wss:// `URL` (overrides -addr; may also be given as the argument)")
	count := fs.Int("count", 0, "send `n` messages, then wait for the replies and close (0: until interrupted; default mode only)")
	interval := fs.Duration("interval", time.Second, "time between messages; the first goes out at once (default mode only)")
	message := fs.String("message", "", "send `text` instead of the time (default mode)")
	lines := fs.Bool("stdin", false, "send each line of standard input as a message; close at its end (interactive on a terminal)")
	file := fs.String("file", "", "send the whole `file` as one message (binary unless -text; - for standard input), then close")
	text := fs.Bool("text", false, "send -file as a text message (it must be UTF-8)")
	binary := fs.Bool("binary", false, "send binary messages instead of text")
	wait := fs.Duration("wait", time.Second, "at the end of input, wait for as many replies as messages sent, or until none arrives for this long (0: close at once; negative: until the server closes)")
	closeWait := fs.Duration("close-wait", time.Second, "how long to wait for the server to answer the client's Close")
	maxMessage := fs.Int64("max-message", 32<<20, "largest message accepted, in `bytes`; a larger one is closed with 1009")
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
	connectTimeout := fs.Duration("connect-timeout", 10*time.Second, "bound on each dial: TCP, proxy, TLS and opening handshake")
	ping := fs.Duration("ping", 0, "send a ping at this `interval`; no pong by the next one counts as a lost connection")
	reconnect := fs.Bool("reconnect", false, "retry the first connection, and reconnect with backoff when the connection drops or the server closes with 1001 or 1012")
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	// The URL may come first, as with wscat and websocat, or among the flags.
	var positional []string
	for rest := args; ; {
		if err := parseSome(fs, rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case len(positional) > 1:
		return &usageError{fmt.Sprintf("unexpected argument %q: give one URL", positional[1])}
	case len(positional) == 1 && set["url"]:
		return &usageError{"give the URL as the argument or with -url, not both"}
	case len(positional) == 1 && set["addr"]:
		return &usageError{"give either a URL or -addr, not both"}
	case strings.Contains(*addr, "://"):
		return &usageError{fmt.Sprintf("-addr takes host:port, not a URL; give the URL as the argument: wsecho client %s", *addr)}
	case *count < 0:
		return &usageError{"-count must not be negative"}
	case *interval <= 0:
		return &usageError{"-interval must be positive"}
	case *lines && (set["count"] || set["interval"] || set["message"]):
		return &usageError{"-count, -interval and -message apply to the default mode, not to -stdin"}
	case *file != "" && (*lines || set["count"] || set["interval"] || set["message"]):
		return &usageError{"-file sends one message: it goes with neither -stdin, -count, -interval nor -message"}
	case *text && *file == "":
		return &usageError{"-text applies to -file"}
	case *text && *binary:
		return &usageError{"-text and -binary contradict each other"}
	case *showBinary != "hex" && *showBinary != "base64" && *showBinary != "raw":
		return &usageError{"-show-binary must be hex, base64 or raw"}
	case !wsframe.ValidCloseCode(*closeCode):
		return &usageError{fmt.Sprintf("-close-code %d is not a code a client may send (1000-1003, 1007-1014, 3000-4999)", *closeCode)}
	case len(*closeReason) > 123:
		return &usageError{"-close-reason is longer than 123 bytes"}
	case *connectTimeout <= 0:
		return &usageError{"-connect-timeout must be positive"}
	case *closeWait <= 0:
		return &usageError{"-close-wait must be positive"}
	case *maxMessage <= 0:
		return &usageError{"-max-message must be positive"}
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
	if len(positional) == 1 {
		target = positional[0]
	}
	if target == "" {
		target = "ws://" + *addr + "/echo"
	}
	if err := checkURL(target); err != nil {
		return err
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
		MaxMessage:     *maxMessage,
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
		CloseWait:      *closeWait,
		Ping:           *ping,
		Reconnect:      *reconnect,
		Status:         stderr,
		Logger:         newLogger(stderr, level),
	}
	switch {
	case *wait == 0:
		opts.Wait = client.NoWait
	case *wait < 0:
		opts.Wait = -1
	default:
		opts.Wait = *wait
	}
	if set["message"] {
		opts.Message = []byte(*message)
	}
	if *file != "" {
		data, err := readFile(*file, in)
		if err != nil {
			return err
		}
		if *text && !utf8.Valid(data) {
			return fmt.Errorf("-file %s is not valid UTF-8: drop -text to send it as binary", *file)
		}
		if int64(len(data)) > *maxMessage {
			fmt.Fprintf(stderr, "warning: %s is %d bytes, more than -max-message; its echo will be refused\n", *file, len(data))
		}
		opts.Message, opts.Count, opts.Binary = data, 1, !*text
		in = nil
	}
	fmt.Fprintf(stderr, "connecting to %s\n", target)
	return client.Connect(ctx, target, opts, in, stdout)
}

// checkURL refuses, as a usage error, a URL the client cannot dial.
func checkURL(target string) error {
	u, err := url.Parse(target)
	switch {
	case err != nil:
		return &usageError{fmt.Sprintf("bad URL %q: %v", target, err)}
	case u.Scheme == "http" || u.Scheme == "https":
		return &usageError{fmt.Sprintf("bad URL %q: the scheme is ws:// (or wss:// for TLS), not %s://", target, u.Scheme)}
	case u.Scheme != "ws" && u.Scheme != "wss":
		return &usageError{fmt.Sprintf("bad URL %q: want ws://host[:port]/path or wss://...", target)}
	case u.Host == "":
		return &usageError{fmt.Sprintf("bad URL %q: no host", target)}
	}
	return nil
}

// readFile reads -file: a path, or "-" for in.
func readFile(name string, in io.Reader) ([]byte, error) {
	if name == "-" {
		data, err := io.ReadAll(in)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return data, nil
	}
	return os.ReadFile(name) // "open NAME: no such file or directory"
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
	warnServerLog(ctx, cfg.URL, stderr)
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
	l := r.Latency.Rounded()
	fmt.Fprintf(stdout, "%s: %d conns, %d-byte %s messages, %.1fs, %s\n", r.URL, r.Conns, r.Size, kind, r.Seconds, loop)
	fmt.Fprintf(stdout, "round trips  %d (%.1f/s)\n", r.RoundTrips, r.PerSecond)
	fmt.Fprintf(stdout, "throughput   %.2f MB/s each way\n", r.MBpsOut)
	fmt.Fprintf(stdout, "latency      p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	fmt.Fprintf(stdout, "errors       %d", r.ErrorsTotal)
	for kind, n := range r.Errors {
		fmt.Fprintf(stdout, "  %s=%d", kind, n)
	}
	fmt.Fprintln(stdout)
	return nil
}

// warnServerLog warns when the server is wsecho's and logs every message:
// the run then measures the log as much as the server.
func warnServerLog(ctx context.Context, target string, stderr io.Writer) {
	if !strings.HasPrefix(target, "ws://") && !strings.HasPrefix(target, "wss://") {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if info, err := client.Probe(ctx, target, client.Options{}); err == nil && info.LogsEveryMessage {
		fmt.Fprintln(stderr, "warning: the server writes a log line for every message (wsecho server at -log-level info), "+
			"so this measures its logging too; start it with -log-level warn")
	}
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

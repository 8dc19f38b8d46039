package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"wsecho/server"
)

// The measurements in bench_idle_test.go and bench_latency_test.go run each
// echo server in a process of its own, so that the server's resident memory
// can be read from /proc and the load generator does not share its heap,
// scheduler and file-descriptor limit with the server. The process is this
// test binary, re-executed to run TestHelperServer; TestThroughput uses it
// too.
const (
	// helperEnv names the implementation a helper process serves.
	helperEnv = "WSECHO_HELPER_SERVER"

	// helperProfileRateEnv, if set, is the runtime.MemProfileRate of a
	// helper process, for a finer heap profile.
	helperProfileRateEnv = "WSECHO_HELPER_MEMPROFILERATE"

	// serverCPUsEnv, if set, pins a helper process to these CPUs with
	// taskset -c, such as "1", so that the load generator can be pinned to
	// the others.
	serverCPUsEnv = "WSECHO_SERVER_CPUS"
)

// TestHelperServer is not a test: it is the body of a helper process that
// TestIdleMemory and TestLatency start. It serves impl on a loopback port,
// prints "url ws://...", and then answers commands read from stdin, one a
// line, until stdin closes:
//
//	stats       memstats heap_alloc=N heap_inuse=N stack_inuse=N sys=N goroutines=N
//	gc          runs debug.FreeOSMemory, then answers as stats does
//	profile NAME PATH   writes the pprof profile NAME (heap, goroutine, ...)
//	                    to PATH, then answers "ok"
func TestHelperServer(t *testing.T) {
	impl := os.Getenv(helperEnv)
	if impl == "" {
		t.Skip("helper process for TestIdleMemory and TestLatency: runs only when they re-execute the test binary with " + helperEnv + "=xnet|gorilla|gws|tcp")
	}
	if v := os.Getenv(helperProfileRateEnv); v != "" {
		rate, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s: %v", helperProfileRateEnv, err)
		}
		runtime.MemProfileRate = rate
	}
	var url string
	switch impl {
	case "main":
		url = startHelperMain(t)
	case "tcp":
		url = startTCPEcho(t)
	case "gws":
		url = startGwsEcho(t)
	default:
		url = startServerOpts(t, impl, server.Options{Logger: slog.New(slog.DiscardHandler)})
	}
	fmt.Printf("url %s\n", url)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "stats":
			printMemStats()
		case "gc":
			debug.FreeOSMemory()
			printMemStats()
		case "profile":
			name, path, _ := strings.Cut(arg, " ")
			debug := 0
			if name == "goroutine" {
				debug = 1 // text, one entry per distinct stack
			}
			err := errors.New("no profile " + name)
			if p := pprof.Lookup(name); p != nil {
				var f *os.File
				if f, err = os.Create(path); err == nil {
					err = p.WriteTo(f, debug)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
			}
			if err != nil {
				fmt.Printf("error %v\n", err)
				continue
			}
			fmt.Println("ok")
		default:
			fmt.Printf("error unknown command %q\n", cmd)
		}
	}
}

// helperArgsEnv holds the arguments, one a line, of the run() a helper
// process of impl "main" runs: the attack tests in main_test.go start
// `wsecho server` with its flags this way.
const helperArgsEnv = "WSECHO_HELPER_ARGS"

// startHelperMain runs run() with the arguments in helperArgsEnv until the
// test ends, and returns the URL of its /echo from the first line run
// prints.
func startHelperMain(t *testing.T) string {
	args := strings.Split(os.Getenv(helperArgsEnv), "\n")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, os.Stderr)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		cancel()
		t.Fatalf("run %q: %v", args, <-done)
	}
	addr, ok := strings.CutPrefix(sc.Text(), "listening on ")
	if !ok {
		cancel()
		t.Fatalf("run %q: first line %q", args, sc.Text())
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run %q: %v", args, err)
		}
	})
	return addr
}

func printMemStats() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("memstats heap_alloc=%d heap_inuse=%d stack_inuse=%d sys=%d goroutines=%d\n",
		ms.HeapAlloc, ms.HeapInuse, ms.StackInuse, ms.Sys, runtime.NumGoroutine())
}

// helperServer is a running helper process.
type helperServer struct {
	impl  string
	url   string
	pid   int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // stdout, a line at a time; closed at EOF
}

// startHelper starts a helper process that serves impl and returns once it
// listens. The cleanup closes its stdin, which ends it, and waits; the
// caller must have closed its connections to it by then.
func startHelper(t *testing.T, impl string, env ...string) *helperServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	args := []string{os.Args[0], "-test.run=^TestHelperServer$", "-test.count=1"}
	if cpus := os.Getenv(serverCPUsEnv); cpus != "" {
		if _, err := exec.LookPath("taskset"); err != nil {
			cancel()
			t.Fatalf("%s=%s needs taskset: %v", serverCPUsEnv, cpus, err)
		}
		args = append([]string{"taskset", "-c", cpus}, args...) // taskset execs: same pid
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(append(os.Environ(), helperEnv+"="+impl), env...)
	cmd.Stderr = t.Output()
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start helper server: %v", err)
	}
	s := &helperServer{impl: impl, pid: cmd.Process.Pid, cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() { // ends when the helper's stdout closes
		defer close(s.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("helper server %s: %v", impl, err)
			}
		case <-time.After(30 * time.Second):
			cancel()
			t.Errorf("helper server %s did not exit within 30s of its stdin closing: killed; %v", impl, <-done)
		}
		cancel()
	})
	line := s.expect(t, "url ")
	s.url = strings.TrimPrefix(line, "url ")
	return s
}

// expect returns the helper's next output line that starts with prefix,
// skipping others (such as the test binary's own PASS).
func (s *helperServer) expect(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				t.Fatalf("helper server %s exited before printing %q", s.impl, prefix)
			}
			if strings.HasPrefix(line, "error ") {
				t.Fatalf("helper server %s: %s", s.impl, line)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-timeout:
			t.Fatalf("helper server %s: no %q line within a minute", s.impl, prefix)
		}
	}
}

// command sends one command line and returns the answer that starts with
// prefix.
func (s *helperServer) command(t *testing.T, cmd, prefix string) string {
	t.Helper()
	if _, err := io.WriteString(s.stdin, cmd+"\n"); err != nil {
		t.Fatalf("helper server %s: %v", s.impl, err)
	}
	return s.expect(t, prefix)
}

// memStats is what a helper reports about its memory.
type memStats struct {
	rss                                   int64 // VmRSS from /proc/PID/status, in bytes
	heapAlloc, heapInuse, stackInuse, sys int64
	goroutines                            int64
}

// memStats reads the helper's resident memory from /proc and asks it for
// its runtime figures; with gc, the helper first runs debug.FreeOSMemory.
func (s *helperServer) memStats(t *testing.T, gc bool) memStats {
	t.Helper()
	cmd := "stats"
	if gc {
		cmd = "gc"
	}
	line := s.command(t, cmd, "memstats ")
	var m memStats
	for f := range strings.FieldsSeq(strings.TrimPrefix(line, "memstats ")) {
		k, v, _ := strings.Cut(f, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("helper server %s: bad memstats line %q", s.impl, line)
		}
		switch k {
		case "heap_alloc":
			m.heapAlloc = n
		case "heap_inuse":
			m.heapInuse = n
		case "stack_inuse":
			m.stackInuse = n
		case "sys":
			m.sys = n
		case "goroutines":
			m.goroutines = n
		}
	}
	m.rss = procStatus(t, s.pid, "VmRSS")
	return m
}

// procStatus returns a "kB" field of /proc/PID/status in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read memory of pid %d: %v", pid, err)
	}
	n, ok := statusKB(string(b), field)
	if !ok {
		t.Fatalf("/proc/%d/status has no %s in kB", pid, field)
	}
	return n
}

// statusKB returns a "kB" field of the text of a /proc/PID/status in bytes.
func statusKB(status, field string) (int64, bool) {
	for line := range strings.Lines(status) {
		v, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		return n << 10, err == nil
	}
	return 0, false
}

// envInt returns the integer in the environment variable name, or def when
// it is unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

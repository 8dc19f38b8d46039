package server

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Message buffers are the wire layer's (wsframe pools them up to
// wsframe.MaxPooled); the server decides how much message data may be held
// at once (Options.MaxMemory) and when memory goes back to the system.

// scavengeDelay is how long after a message too large to pool the server
// returns freed memory to the system, at most once per delay.
const scavengeDelay = 5 * time.Second

// scavenger returns memory to the system after large messages. The Go
// runtime does so on its own, but only after a garbage collection, and a
// server that has gone quiet after a burst allocates nothing that would
// start one: resident memory would stay at the burst's peak for minutes.
type scavenger struct {
	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

// large notes that a large buffer was let go: memory is returned to the
// system scavengeDelay later, unless a return is already due.
func (s *scavenger) large() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer == nil && !s.stopped {
		s.timer = time.AfterFunc(scavengeDelay, s.run)
	}
}

func (s *scavenger) run() {
	debug.FreeOSMemory()
	s.mu.Lock()
	s.timer = nil
	s.mu.Unlock()
}

// stop cancels a return that is due; no other is scheduled.
func (s *scavenger) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// defaultMaxMemory returns a quarter of physical memory, at most 1 GiB, or
// 1 GiB when physical memory cannot be read.
func defaultMaxMemory() int64 {
	const ceiling = 1 << 30
	if total := physicalMemory(); total > 0 {
		return min(total/4, ceiling)
	}
	return ceiling
}

// physicalMemory returns MemTotal from /proc/meminfo in bytes, or 0.
func physicalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

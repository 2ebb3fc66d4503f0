package testtool

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is a goroutine-safe bytes.Buffer for logs and console output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines counts the lines written that hold every one of parts.
func (s *Buffer) Lines(parts ...string) int {
	n := 0
	for _, l := range strings.Split(s.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			n++
		}
	}
	return n
}

package bmc_test

import (
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

type readResult struct {
	data string
	err  error
}

// readAsync starts one Read of up to size bytes and delivers its result.
func readAsync(c io.Reader, size int) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		buf := make([]byte, size)
		n, err := c.Read(buf)
		ch <- readResult{string(buf[:n]), err}
	}()
	return ch
}

func attach(t *testing.T, cb *bmc.ConsoleBuffer) io.ReadWriteCloser {
	t.Helper()
	c, err := cb.Attach()
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConsoleBacklogKeepsNewest(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		writes []string
		want   string
	}{
		{"under limit", 8, []string{"abc", "de"}, "abcde"},
		{"exactly limit", 8, []string{"0123", "4567"}, "01234567"},
		{"small writes overflow", 8, []string{"0123", "4567", "89", "ab"}, "456789ab"},
		{"one write larger than limit", 8, []string{"0123456789abcdef"}, "89abcdef"},
		{"byte at a time", 4, strings.Split("abcdefghij", ""), "ghij"},
		{"big then small", 5, []string{"abcdefghij", "XY"}, "hijXY"},
		{"limit of one", 1, []string{"abc", "d"}, "d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cb := bmc.NewConsoleBuffer(tc.limit, nil)
			total := 0
			for _, w := range tc.writes {
				n, err := cb.Write([]byte(w))
				if err != nil || n != len(w) {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
				total += n
			}
			c := attach(t, cb)
			buf := make([]byte, total+16)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if got := string(buf[:n]); got != tc.want {
				t.Fatalf("late client read %q, want the newest %d bytes %q", got, tc.limit, tc.want)
			}
			// Nothing else is left: the next Read waits for new output.
			r := readAsync(c, 64)
			if _, err := cb.Write([]byte("!")); err != nil {
				t.Fatal(err)
			}
			select {
			case res := <-r:
				if res.err != nil || res.data != "!" {
					t.Fatalf("next Read = %q, %v; want only the new output %q", res.data, res.err, "!")
				}
			case <-time.After(waitLimit):
				t.Fatal("Read did not return after new output")
			}
		})
	}
}

func TestConsoleBacklogDefaultLimit(t *testing.T) {
	for _, limit := range []int{0, -1} {
		cb := bmc.NewConsoleBuffer(limit, nil)
		big := strings.Repeat("x", bmc.DefaultConsoleBacklog) + "tail"
		if _, err := cb.Write([]byte(big)); err != nil {
			t.Fatal(err)
		}
		c := attach(t, cb)
		buf := make([]byte, len(big))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n != bmc.DefaultConsoleBacklog || !strings.HasSuffix(string(buf[:n]), "tail") {
			t.Errorf("limit %d: read %d bytes ending %q, want the newest %d", limit, n, buf[max(0, n-4):n], bmc.DefaultConsoleBacklog)
		}
		c.Close()
	}
}

func TestConsoleReadInPieces(t *testing.T) {
	cb := bmc.NewConsoleBuffer(64, nil)
	if _, err := cb.Write([]byte("hello world")); err != nil {
		t.Fatal(err)
	}
	c := attach(t, cb)
	var got []string
	buf := make([]byte, 4)
	for _, want := range []string{"hell", "o wo", "rld"} {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(buf[:n]))
		if got[len(got)-1] != want {
			t.Fatalf("reads %q, want the next to be %q", got, want)
		}
	}
}

func TestConsoleReadBlocksUntilData(t *testing.T) {
	cb := bmc.NewConsoleBuffer(64, nil)
	c := attach(t, cb)
	r := readAsync(c, 64)
	select {
	case res := <-r:
		t.Fatalf("Read returned %q, %v with nothing written", res.data, res.err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := cb.Write([]byte("boot")); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-r:
		if res.err != nil || res.data != "boot" {
			t.Fatalf("Read = %q, %v; want %q", res.data, res.err, "boot")
		}
	case <-time.After(waitLimit):
		t.Fatal("Read still blocked after Write")
	}
}

func TestConsoleCloseUnblocksRead(t *testing.T) {
	cb := bmc.NewConsoleBuffer(64, nil)
	c, err := cb.Attach()
	if err != nil {
		t.Fatal(err)
	}
	r := readAsync(c, 64)
	select {
	case res := <-r:
		t.Fatalf("Read returned %q, %v before Close", res.data, res.err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case res := <-r:
		if res.err != io.EOF || res.data != "" {
			t.Fatalf("blocked Read after Close = %q, %v; want io.EOF", res.data, res.err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Close did not unblock Read")
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestConsoleClosedConnection(t *testing.T) {
	var mu sync.Mutex
	var typed []string
	cb := bmc.NewConsoleBuffer(64, func(p []byte) {
		mu.Lock()
		defer mu.Unlock()
		typed = append(typed, string(p))
	})
	c, err := cb.Attach()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Write([]byte("abc")); err != nil || n != 3 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if _, err := cb.Attach(); !errors.Is(err, bmc.ErrConsoleBusy) {
		t.Fatalf("Attach while attached = %v, want ErrConsoleBusy", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Write([]byte("def")); err == nil {
		t.Errorf("Write after Close = %d, nil; want an error", n)
	}
	mu.Lock()
	if strings.Join(typed, "|") != "abc" {
		t.Errorf("machine received %q, want only what was typed before Close", typed)
	}
	mu.Unlock()

	// Output written while detached is kept for the next client, and the
	// closed connection does not steal it.
	if _, err := cb.Write([]byte("later")); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 16)); err != io.EOF || n != 0 {
		t.Errorf("Read on a closed connection = %d, %v; want io.EOF", n, err)
	}
	c2 := attach(t, cb)
	buf := make([]byte, 16)
	n, err := c2.Read(buf)
	if err != nil || string(buf[:n]) != "later" {
		t.Fatalf("Read after re-Attach = %q, %v; want %q", buf[:n], err, "later")
	}
	if _, err := c2.Write([]byte("ghi")); err != nil {
		t.Fatalf("Write on the new connection: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(typed, "|") != "abc|ghi" {
		t.Errorf("machine received %q, want [abc ghi]", typed)
	}
}

func TestConsoleInputIsCopied(t *testing.T) {
	var got []byte
	cb := bmc.NewConsoleBuffer(64, func(p []byte) { got = p })
	c := attach(t, cb)
	buf := []byte("xyz")
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'Q'
	if string(got) != "xyz" {
		t.Errorf("input saw %q after the caller reused its buffer, want %q", got, "xyz")
	}
}

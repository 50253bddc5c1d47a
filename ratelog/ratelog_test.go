package ratelog

import (
	"strings"
	"testing"
	"time"
)

func TestAllowOncePerKeyPerInterval(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(10*time.Second, 100)
	l.now = func() time.Time { return now }
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("first line of a held back")
	}
	for i := 0; i < 5; i++ {
		if ok, _ := l.Allow("a"); ok {
			t.Fatal("second line of a inside the interval let through")
		}
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("first line of b held back by a")
	}
	now = now.Add(10 * time.Second)
	ok, n := l.Allow("a")
	if !ok || n != 5 {
		t.Fatalf("after the interval: ok=%v suppressed=%d, want true 5", ok, n)
	}
}

func TestBoundedKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(time.Second, 3)
	l.now = func() time.Time { return now }
	for _, k := range []string{"a", "b", "c"} {
		l.Allow(k)
	}
	if ok, _ := l.Allow("d"); ok {
		t.Fatal("a fourth key was let in while three are live")
	}
	if l.Overflow() != 1 || len(l.keys) != 3 {
		t.Fatalf("overflow %d keys %d, want 1 and 3", l.Overflow(), len(l.keys))
	}
	now = now.Add(time.Second)
	if ok, _ := l.Allow("d"); !ok {
		t.Fatal("expired keys were not forgotten to make room")
	}
	if len(l.keys) != 1 {
		t.Fatalf("keys %d after the sweep, want 1", len(l.keys))
	}
}

func TestTruncate(t *testing.T) {
	if got := Truncate("short", 10); got != "short" {
		t.Fatalf("short string changed: %q", got)
	}
	got := Truncate(strings.Repeat("x", 100), 10)
	if got != strings.Repeat("x", 10)+"…(+90 bytes)" {
		t.Fatalf("got %q", got)
	}
	// A cut inside a multi-byte rune moves back to its start.
	got = Truncate("ab€cd", 3) // € is 3 bytes at offset 2
	if !strings.HasPrefix(got, "ab…") {
		t.Fatalf("cut inside a rune: %q", got)
	}
}

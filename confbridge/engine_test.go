package confbridge

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type countOut struct{ n atomic.Int64 }

func (c *countOut) Send([]byte) error { c.n.Add(1); return nil }

// waitFor polls cond; the deadline only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// shardGoroutines counts the goroutines the engine started (its shards).
func shardGoroutines() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "created by github.com/mediagw/mediagw/confbridge.newEngine")
}

func TestEngineSchedulesThousandsOfBridgesOnFewGoroutines(t *testing.T) {
	e := NewEngine(Config{Shards: 3})
	defer e.Close()
	// Shards of engines closed by earlier tests may still be exiting.
	waitFor(t, "three shard goroutines", func() bool { return shardGoroutines() == 3 })
	before := runtime.NumGoroutine()
	const n = 2000
	outs := make([]*countOut, n)
	bridges := make([]*Bridge, n)
	for i := range outs {
		outs[i] = &countOut{}
		bridges[i] = e.NewBridge(Options{})
		if _, err := bridges[i].Add("a", PCMU, outs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got := shardGoroutines(); got != 3 {
		t.Fatalf("%d bridges: %d shard goroutines, want 3", n, got)
	}
	if got := runtime.NumGoroutine(); got > before {
		t.Fatalf("%d bridges started %d goroutines", n, got-before)
	}
	waitFor(t, "every bridge to tick", func() bool {
		for _, o := range outs {
			if o.n.Load() < 3 {
				return false
			}
		}
		return true
	})
	if e.Ticks() < 3*n {
		t.Fatalf("Ticks %d", e.Ticks())
	}
	for _, b := range bridges {
		b.Close()
	}
	// Closed bridges are no longer ticked.
	sent := make([]int64, n)
	for i, o := range outs {
		sent[i] = o.n.Load()
	}
	time.Sleep(3 * e.Config().Ptime)
	for i, o := range outs {
		if o.n.Load() != sent[i] {
			t.Fatalf("closed bridge %d still sends", i)
		}
	}
}

// slowOut blocks its first Send for three periods, which makes the shard's
// next ticks late by construction.
type slowOut struct {
	once  sync.Once
	delay time.Duration
	n     atomic.Int64
}

func (s *slowOut) Send([]byte) error {
	s.once.Do(func() { time.Sleep(s.delay) })
	s.n.Add(1)
	return nil
}

func TestLateTicksCounted(t *testing.T) {
	e := NewEngine(Config{Shards: 1})
	defer e.Close()
	b := e.NewBridge(Options{})
	defer b.Close()
	out := &slowOut{delay: 3 * e.Config().Ptime}
	if _, err := b.Add("a", PCMU, out); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a late tick", func() bool { return e.LateTicks() > 0 })
	if e.LateTicks() > e.Ticks() {
		t.Fatalf("late %d > ticks %d", e.LateTicks(), e.Ticks())
	}
	if e.TickLateness(1) < e.Config().Ptime {
		t.Fatalf("max lateness %v after a %v stall", e.TickLateness(1), out.delay)
	}
}

func TestEngineCloseIdempotentBridgesStillSafe(t *testing.T) {
	e := NewEngine(Config{})
	b := e.NewBridge(Options{})
	m, err := b.Add("a", PCMA, &countOut{})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	e.Close()
	m.HandleRTP(newSender(PCMA, 1, 440).next())
	if b.Remove("a") != 0 {
		t.Fatal("remove after engine close")
	}
	b.Close()
	b.Close()
}

func TestConfigValidate(t *testing.T) {
	tests := map[string]struct {
		cfg Config
		ok  bool
	}{
		"zero":         {Config{}, true},
		"20ms":         {Config{Ptime: 20 * time.Millisecond}, true},
		"30ms":         {Config{Ptime: 30 * time.Millisecond}, true},
		"too short":    {Config{Ptime: 5 * time.Millisecond}, false},
		"too long":     {Config{Ptime: 80 * time.Millisecond}, false},
		"fractional":   {Config{Ptime: 20*time.Millisecond + 500*time.Microsecond}, false},
		"min over max": {Config{JitterMin: 80 * time.Millisecond, JitterMax: 60 * time.Millisecond}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Fatalf("Validate() = %v", err)
			}
		})
	}
	if got := NewEngine(Config{Ptime: time.Second}); got.Config().Ptime != 20*time.Millisecond {
		t.Fatalf("invalid ptime kept: %v", got.Config().Ptime)
	} else {
		got.Close()
	}
}

// tickSources are both sources, the portable one and the platform's, each
// first due one period from now.
func tickSources(period time.Duration) map[string]tickSource {
	return map[string]tickSource{
		"timer":    newTimerSource(time.Now().Add(period), period),
		"platform": newTickSource(period, period),
	}
}

func firstTick(t *testing.T, src tickSource) {
	t.Helper()
	if _, _, ok := src.wait(); !ok {
		t.Fatal("first wait failed")
	}
}

// Both tick sources report periods missed while nobody waited, and stop
// when closed.
func TestTickSourcesCountMissedPeriods(t *testing.T) {
	const period = 10 * time.Millisecond
	for name, src := range tickSources(period) {
		t.Run(name, func(t *testing.T) {
			firstTick(t, src)
			time.Sleep(5 * period) // at least four expirations pass unread
			_, missed, ok := src.wait()
			if !ok || missed < 3 {
				t.Fatalf("missed %d ok %v after a stall of 5 periods", missed, ok)
			}
			src.close()
			src.close()
			if _, _, ok := src.wait(); ok {
				t.Fatal("wait after close")
			}
		})
	}
}

// shardTicks counts the ticks the engine's shards ran, with or without bridges.
func shardTicks(e *Engine) (n uint64) {
	for _, s := range e.shards {
		for i := range s.hist {
			n += s.hist[i].Load()
		}
	}
	return n
}

// A shard with no bridge does not tick (an idle gateway stays asleep); the
// first member of a bridge starts its shard and the last one's leaving
// stops it again.
func TestIdleShardsSleep(t *testing.T) {
	const period = 10 * time.Millisecond
	e := NewEngine(Config{Ptime: period, Shards: 2})
	defer e.Close()
	time.Sleep(8 * period)
	if n := shardTicks(e); n != 0 {
		t.Fatalf("no bridge: the shards ticked %d times in 8 periods", n)
	}
	br := e.NewBridge(Options{})
	out := &countOut{}
	if _, err := br.Add("a", PCMU, out); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bridge's ticks", func() bool { return e.Ticks() >= 3 })
	if br.Remove("a") != 0 {
		t.Fatal("member left behind")
	}
	// The tick under way, and one that may see the list empty, then none.
	prev := shardTicks(e)
	waitFor(t, "the shards to stop ticking", func() bool {
		time.Sleep(8 * period)
		n := shardTicks(e)
		same := n == prev
		prev = n
		return same
	})
	// And a new member starts it again.
	before := e.Ticks()
	if _, err := br.Add("b", PCMU, out); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ticks after the shard slept", func() bool { return e.Ticks() >= before+3 })
}

// Both tick sources stop while paused and, resumed, tick again on their own
// schedule with no period counted as missed.
func TestTickSourcesPauseAndResume(t *testing.T) {
	const period = 10 * time.Millisecond
	for name, src := range tickSources(period) {
		t.Run(name, func(t *testing.T) {
			defer src.close()
			firstTick(t, src)
			src.pause()
			time.Sleep(5 * period) // four or five expirations, had it run
			if expired(t, src) {
				t.Fatal("the source ticked while paused")
			}
			src.resume()
			// Without the schedule moved on, the 5 periods would count as
			// missed; one may be, on a machine that delays this goroutine.
			if _, missed, ok := src.wait(); !ok || missed > 1 {
				t.Fatalf("after a pause of 5 periods: missed %d ok %v, want none missed", missed, ok)
			}
		})
	}
}

// expired reports whether a paused source has an expiration waiting.
func expired(t *testing.T, src tickSource) bool {
	t.Helper()
	switch s := src.(type) {
	case *timerSource:
		select {
		case <-s.t.C:
			return true
		default:
			return false
		}
	}
	if exp, known := platformExpired(t, src); known {
		return exp
	}
	t.Fatalf("unknown source %T", src)
	return false
}

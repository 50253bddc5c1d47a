package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// fakeCommitter records committed state; it fails while failing is set and
// blocks while gate is held.
type fakeCommitter struct {
	mu      sync.Mutex
	state   map[key]string
	failing error
	commits int
	gate    sync.Mutex
}

func (f *fakeCommitter) commit(ops []op) error {
	f.gate.Lock()
	f.gate.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commits++
	if f.failing != nil {
		return f.failing
	}
	for _, o := range ops {
		if o.del {
			delete(f.state, key{o.kind, o.id})
		} else {
			f.state[key{o.kind, o.id}] = string(o.value)
		}
	}
	return nil
}

func (f *fakeCommitter) fail(err error) {
	f.mu.Lock()
	f.failing = err
	f.mu.Unlock()
}

func newTestWriter(t *testing.T, max int) (*writer, *fakeCommitter) {
	w, f, _ := newLoggedWriter(t, max)
	return w, f
}

func newLoggedWriter(t *testing.T, max int) (*writer, *fakeCommitter, *logtest.Hook) {
	f := &fakeCommitter{state: map[key]string{}}
	logger, hook := logtest.NewNullLogger()
	opt := Options{MaxPending: max, CloseTimeout: 200 * time.Millisecond, Log: logrus.NewEntry(logger)}
	opt.defaults()
	w := newWriter(f, opt, false)
	t.Cleanup(func() { w.close() })
	return w, f, hook
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A failing backend: Put never blocks, failures are counted, and when the
// backend comes back everything queued meanwhile is written, latest values.
func TestWriterRetriesUntilWritten(t *testing.T) {
	w, f, hook := newLoggedWriter(t, 0)
	f.fail(errors.New("disk on fire"))
	for i := 0; i < 100; i++ {
		w.put("conn", fmt.Sprint(i%10), fmt.Appendf(nil, "v%d", i), false)
	}
	waitFor(t, "failed commits", func() bool { return w.snapshot().WriteErrors >= 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if err := w.flush(ctx); err == nil {
		t.Fatal("flush succeeded while the backend fails")
	}
	cancel()
	w.put("conn", "3", nil, true) // a delete queued during the outage
	f.fail(nil)
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.state) != 9 || f.state[key{"conn", "9"}] != "v99" || f.state[key{"conn", "0"}] != "v90" {
		t.Fatalf("after recovery: %v", f.state)
	}
	if _, ok := f.state[key{"conn", "3"}]; ok {
		t.Fatal("the delete queued during the outage was lost")
	}
	// Logged once when it started failing and once when it resumed, not
	// once per failed commit. The writer logs "resumed" after the commit
	// that let the flush return.
	waitFor(t, "the resumed log line", func() bool { return len(hook.AllEntries()) >= 2 })
	var msgs []string
	for _, e := range hook.AllEntries() {
		msgs = append(msgs, e.Level.String()+": "+e.Message)
	}
	if len(msgs) != 2 || !strings.Contains(msgs[0], "error: state write failed") || !strings.Contains(msgs[1], "info: state writes resumed") {
		t.Fatalf("log lines %q", msgs)
	}
}

// The queue is bounded in distinct keys; beyond it updates are dropped and
// counted, while updates of keys already queued still coalesce.
func TestWriterBounded(t *testing.T) {
	w, f := newTestWriter(t, 10)
	f.gate.Lock() // the first batch blocks in commit
	w.put("conn", "first", []byte("x"), false)
	waitFor(t, "the first batch in flight", func() bool { return w.snapshot().Pending == 0 })
	for i := 0; i < 15; i++ {
		w.put("conn", fmt.Sprint(i), []byte("a"), false)
	}
	w.put("conn", "0", []byte("b"), false) // queued key: replaced, not dropped
	s := w.snapshot()
	if s.Pending != 10 || s.Committing != 1 || s.Dropped != 5 || s.WriteErrors != 5 || s.Coalesced != 1 {
		t.Fatalf("stats %+v: want 10 pending, 1 committing, 5 dropped, 1 coalesced", s)
	}
	f.gate.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.flush(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.state) != 11 || f.state[key{"conn", "0"}] != "b" {
		t.Fatalf("written %v", f.state)
	}
	if s := w.snapshot(); s.Pending != 0 || s.Committing != 0 {
		t.Fatalf("stats %+v after the flush: want nothing pending or committing", s)
	}
}

// Put does not wait for a commit in progress.
func TestWriterPutNeverBlocks(t *testing.T) {
	w, f := newTestWriter(t, 0)
	f.gate.Lock()
	w.put("conn", "a", []byte("x"), false)
	waitFor(t, "a batch in flight", func() bool { return w.snapshot().Pending == 0 })
	done := make(chan struct{})
	go func() {
		for i := 0; i < 10000; i++ {
			w.put("conn", fmt.Sprint(i), []byte("x"), false)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Put blocked behind a commit in progress")
	}
	f.gate.Unlock()
}

// Another owner: the writer stops writing for good and says so.
func TestWriterLost(t *testing.T) {
	w, f := newTestWriter(t, 0)
	f.fail(fmt.Errorf("%w: test", ErrOwned))
	w.put("conn", "a", []byte("x"), false)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.flush(ctx); !errors.Is(err, ErrOwned) {
		t.Fatalf("flush after a lost claim: %v", err)
	}
	w.put("conn", "b", []byte("x"), false)
	if s := w.snapshot(); s.Dropped != 2 || s.Pending != 0 {
		t.Fatalf("stats %+v: want both updates dropped", s)
	}
	f.fail(nil)
	if err := w.close(); !errors.Is(err, ErrOwned) {
		t.Fatalf("close: %v", err)
	}
	if len(f.state) != 0 {
		t.Fatalf("written after the claim was lost: %v", f.state)
	}
}

// Close gives up after CloseTimeout when the backend stays down, and says
// how much was lost.
func TestWriterCloseTimeout(t *testing.T) {
	f := &fakeCommitter{state: map[key]string{}, failing: errors.New("down")}
	opt := Options{CloseTimeout: 300 * time.Millisecond}
	opt.defaults()
	w := newWriter(f, opt, false)
	w.put("conn", "a", []byte("x"), false)
	w.put("conn", "b", []byte("x"), false)
	err := w.close()
	if err == nil || errors.Is(err, ErrClosed) {
		t.Fatalf("close with the backend down: %v", err)
	}
	t.Log(err)
}

// While the backend is down, Next fails fast instead of every caller
// waiting on it in turn.
func TestCountersFailFast(t *testing.T) {
	var calls int
	var mu sync.Mutex
	down := errors.New("down")
	cs := newCounters(func(name string, floor, n uint64) (uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return 0, down
	}, 16)
	defer cs.close()
	for i := 0; i < 100; i++ {
		if _, err := cs.next("conn"); !errors.Is(err, down) {
			t.Fatalf("Next with the backend down: %v", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls > 5 {
		t.Fatalf("%d reservations tried for 100 calls within a second", calls)
	}
}

// A key put and deleted before its first commit costs no write; a key the
// backend may hold (committed, in a batch being committed, or once written
// by a failed commit) always gets its Delete written.
func TestWriterElidesPutThenDelete(t *testing.T) {
	w, f := newTestWriter(t, 0)
	flush := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.gate.Lock() // hold the first commit, to queue around it
	w.put("conn", "short", []byte("x"), false)
	waitFor(t, "the batch taken", func() bool { return w.snapshot().Pending == 0 })
	// "short" is in the batch being committed: its Delete must be written.
	w.put("conn", "short", nil, true)
	w.put("conn", "never", []byte("y"), false)
	w.put("conn", "never", []byte("z"), false)
	w.put("conn", "never", nil, true)
	if p := w.snapshot().Pending; p != 1 {
		t.Fatalf("%d keys pending, want 1 (the Delete of short; never cancelled out)", p)
	}
	f.gate.Unlock()
	flush()
	f.mu.Lock()
	_, short := f.state[key{"conn", "short"}]
	_, never := f.state[key{"conn", "never"}]
	f.mu.Unlock()
	if short || never {
		t.Fatalf("after the flush: %v", f.state)
	}
	// A failed commit may have written part of its batch: its puts are no longer fresh.
	f.fail(errors.New("partial"))
	w.put("conn", "p", []byte("1"), false)
	waitFor(t, "a failed commit", func() bool { return w.snapshot().WriteErrors >= 1 })
	f.mu.Lock()
	f.state[key{"conn", "p"}] = "1" // what the failed commit left behind
	f.failing = nil
	f.mu.Unlock()
	w.put("conn", "p", nil, true)
	flush()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.state[key{"conn", "p"}]; ok {
		t.Fatal("the Delete of a key a failed commit may have written was dropped")
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"
)

// backend opens one state (a file, or a Redis prefix) as often as a test asks.
type backend struct {
	name string
	open func(opt Options) (Store, error)
}

func fileBackend(t *testing.T) backend {
	path := filepath.Join(t.TempDir(), "mediagw.state")
	return backend{"file", func(opt Options) (Store, error) { return OpenFile(path, opt) }}
}

func redisBackend(t *testing.T, srv *redisServer) backend {
	cfg := RedisConfig{Addr: srv.addr(), Prefix: srv.prefix()}
	return backend{"redis", func(opt Options) (Store, error) { return OpenRedis(cfg, opt) }}
}

// suite runs every shared test against both implementations.
var suite = []struct {
	name string
	fn   func(t *testing.T, b backend)
}{
	{"PutDeleteLoad", testPutDeleteLoad},
	{"CountersMonotonicAcrossReopen", testCounters},
	{"ConcurrentBatching", testConcurrentBatching},
	{"OwnershipRefused", testOwnership},
	{"ReadOnly", testReadOnly},
	{"CloseWritesQueued", testCloseWritesQueued},
}

func TestStore(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		for _, tc := range suite {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, fileBackend(t)) })
		}
	})
	t.Run("redis", func(t *testing.T) {
		srv := startRedis(t)
		for _, tc := range suite {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, redisBackend(t, srv)) })
		}
	})
}

func mustOpen(t *testing.T, b backend, opt Options) Store {
	t.Helper()
	st, err := b.open(opt)
	if err != nil {
		t.Fatalf("open %s: %v", b.name, err)
	}
	return st
}

func flush(t *testing.T, st Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// dump reads back everything the store holds.
func dump(t *testing.T, st Store) map[string]map[string]string {
	t.Helper()
	kinds, err := st.Kinds()
	if err != nil {
		t.Fatalf("kinds: %v", err)
	}
	out := map[string]map[string]string{}
	for _, k := range kinds {
		out[k] = map[string]string{}
		if err := st.ForEach(k, func(id string, v []byte) error {
			if _, dup := out[k][id]; dup {
				return fmt.Errorf("%s/%s visited twice", k, id)
			}
			out[k][id] = string(v)
			return nil
		}); err != nil {
			t.Fatalf("foreach %s: %v", k, err)
		}
	}
	return out
}

func testPutDeleteLoad(t *testing.T, b backend) {
	st := mustOpen(t, b, Options{})
	st.Put("conn", "1", []byte("one"))
	st.Put("conn", "2", []byte("two"))
	st.Put("conn", "3", []byte("three"))
	st.Put("conf", "a", []byte("alpha"))
	st.Put("conf", "b", []byte{}) // an empty value is a value
	st.Put("conn", "2", []byte("two again"))
	st.Delete("conn", "3")
	st.Delete("conn", "never-was")
	st.Put("dialog", "x", []byte("gone"))
	st.Delete("dialog", "x")
	flush(t, st)
	want := map[string]map[string]string{
		"conn": {"1": "one", "2": "two again"},
		"conf": {"a": "alpha", "b": ""},
	}
	if got := dump(t, st); !reflect.DeepEqual(got, want) {
		t.Fatalf("before reopen:\n got %v\nwant %v", got, want)
	}
	// A deletion in a later batch than the put.
	st.Delete("conn", "1")
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	delete(want["conn"], "1")
	st = mustOpen(t, b, Options{})
	defer st.Close()
	if got := dump(t, st); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen:\n got %v\nwant %v", got, want)
	}
	// An error from fn stops the walk and is returned.
	stop := errors.New("stop")
	n := 0
	if err := st.ForEach("conn", func(string, []byte) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("ForEach with a failing fn: err %v after %d calls", err, n)
	}
	// Bad kinds are refused and counted, not written.
	st.Put("", "1", []byte("x"))
	st.Put("a:b", "1", []byte("x"))
	if s := st.Stats(); s.Dropped != 2 || s.WriteErrors != 2 {
		t.Fatalf("bad kinds: stats %+v, want 2 dropped", s)
	}
}

func testCounters(t *testing.T, b backend) {
	opt := Options{CounterBlock: 16} // many blocks, background reservations
	st := mustOpen(t, b, opt)
	var last uint64
	for i := 0; i < 500; i++ {
		v, err := st.Next("conn")
		if err != nil {
			t.Fatal(err)
		}
		if v <= last {
			t.Fatalf("Next #%d = %d after %d", i, v, last)
		}
		last = v
	}
	// Concurrent callers: all distinct, each caller's sequence increasing.
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev uint64
			for i := 0; i < 300; i++ {
				v, err := st.Next("conf")
				if err != nil || v <= prev {
					t.Errorf("Next conf = %d, %v after %d", v, err, prev)
					return
				}
				prev = v
				mu.Lock()
				if seen[v] {
					t.Errorf("conf id %d handed out twice", v)
				}
				seen[v] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened: the persisted mark is at least what was handed out, and
	// Next goes on above it (the rest of the last block is skipped).
	st = mustOpen(t, b, opt)
	defer st.Close()
	marks, err := st.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if marks["conn"] < last {
		t.Fatalf("persisted conn mark %d < %d handed out", marks["conn"], last)
	}
	var maxConf uint64
	for v := range seen {
		maxConf = max(maxConf, v)
	}
	if marks["conf"] < maxConf {
		t.Fatalf("persisted conf mark %d < %d handed out", marks["conf"], maxConf)
	}
	v, err := st.Next("conn")
	if err != nil {
		t.Fatal(err)
	}
	if v <= last {
		t.Fatalf("after reopen Next conn = %d, not above %d", v, last)
	}
	if v, _ := st.Next("fresh"); v != 1 {
		t.Fatalf("a new counter starts at %d, want 1", v)
	}
}

func testConcurrentBatching(t *testing.T, b backend) {
	st := mustOpen(t, b, Options{})
	defer st.Close()
	const writers, perWriter, keys = 8, 1500, 100
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				id := fmt.Sprintf("g%d-%d", g, i%keys)
				if i%7 == 3 {
					st.Delete("conn", id)
				} else {
					st.Put("conn", id, fmt.Appendf(nil, "%d", i))
				}
			}
		}()
	}
	wg.Wait()
	flush(t, st)
	want := map[string]string{}
	for g := 0; g < writers; g++ {
		for i := 0; i < perWriter; i++ {
			id := fmt.Sprintf("g%d-%d", g, i%keys)
			if i%7 == 3 {
				delete(want, id)
			} else {
				want[id] = fmt.Sprint(i)
			}
		}
	}
	got := dump(t, st)["conn"]
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after concurrent writes: %d keys, want %d (first diff: %s)", len(got), len(want), firstDiff(got, want))
	}
	s := st.Stats()
	total := uint64(writers * perWriter)
	if s.Writes+s.Coalesced != total || s.WriteErrors != 0 || s.Pending != 0 {
		t.Fatalf("stats %+v: writes+coalesced should be %d", s, total)
	}
	if s.Batches >= s.Writes {
		t.Fatalf("stats %+v: no group commit (a batch per write)", s)
	}
	t.Logf("%s: %d updates -> %d written in %d batches (%d coalesced)", b.name, total, s.Writes, s.Batches, s.Coalesced)
}

func firstDiff(got, want map[string]string) string {
	var ks []string
	for k := range want {
		ks = append(ks, k)
	}
	for k := range got {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		g, gok := got[k]
		w, wok := want[k]
		if g != w || gok != wok {
			return fmt.Sprintf("%s: got %q (%v), want %q (%v)", k, g, gok, w, wok)
		}
	}
	return "none"
}

func testOwnership(t *testing.T, b backend) {
	a := mustOpen(t, b, Options{})
	a.Put("conn", "1", []byte("a's"))
	flush(t, a)
	second, err := b.open(Options{})
	if !errors.Is(err, ErrOwned) {
		if second != nil {
			second.Close()
		}
		t.Fatalf("second open while the first holds it: %v, want ErrOwned", err)
	}
	t.Logf("refused: %v", err)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := mustOpen(t, b, Options{})
	defer b2.Close()
	if got := dump(t, b2)["conn"]["1"]; got != "a's" {
		t.Fatalf("after the first closed, the second sees %q", got)
	}
}

func testReadOnly(t *testing.T, b backend) {
	if _, err := b.open(Options{ReadOnly: true}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read-only open of nothing: %v, want ErrNotFound", err)
	}
	st := mustOpen(t, b, Options{})
	st.Put("conn", "7", []byte("seven"))
	if _, err := st.Next("conn"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ro := mustOpen(t, b, Options{ReadOnly: true})
	defer ro.Close()
	if got := dump(t, ro); !reflect.DeepEqual(got, map[string]map[string]string{"conn": {"7": "seven"}}) {
		t.Fatalf("read-only sees %v", got)
	}
	if m, err := ro.Counters(); err != nil || m["conn"] == 0 {
		t.Fatalf("read-only counters %v, %v", m, err)
	}
	if _, err := ro.Next("conn"); err == nil {
		t.Fatal("Next on a read-only store succeeded")
	}
	ro.Put("conn", "8", []byte("x")) // ignored
	if s := ro.Stats(); s != (Stats{}) {
		t.Fatalf("read-only stats %+v", s)
	}
}

func testCloseWritesQueued(t *testing.T, b backend) {
	st := mustOpen(t, b, Options{})
	for i := 0; i < 2000; i++ {
		st.Put("conn", fmt.Sprint(i), []byte("v"))
	}
	if err := st.Close(); err != nil { // no Flush: Close writes the queue
		t.Fatal(err)
	}
	if err := st.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	st.Put("conn", "late", []byte("x")) // after Close: dropped, no panic
	st = mustOpen(t, b, Options{ReadOnly: true})
	defer st.Close()
	if n := len(dump(t, st)["conn"]); n != 2000 {
		t.Fatalf("after Close without Flush: %d objects, want 2000", n)
	}
}

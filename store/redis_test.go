package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	start := time.Now()
	st, err := OpenRedis(RedisConfig{Addr: addr, Prefix: "x:"}, Options{})
	if !errors.Is(err, ErrUnavailable) || st != nil {
		t.Fatalf("open with Redis down: %v, %v; want ErrUnavailable", st, err)
	}
	t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

// Redis killed and started again (without persistence: it comes back empty)
// while the gateway keeps writing: Put never blocks, the failures are
// counted, and once Redis is back everything this gateway holds is there
// again, with its latest values, and the counters did not go back.
func TestRedisRestartWhileWriting(t *testing.T) {
	srv := startRedis(t)
	cfg := RedisConfig{Addr: srv.addr(), Prefix: srv.prefix()}
	st, err := OpenRedis(cfg, Options{OwnerTTL: 3 * time.Second, CounterBlock: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Long-lived calls: written once, before the restart, never again.
	for i := 0; i < 50; i++ {
		st.Put("conf", strconv.Itoa(i), fmt.Appendf(nil, "static %d", i))
	}
	flush(t, st)
	const keys = 300
	var round atomic.Int64
	var lastID atomic.Uint64
	var nextErrs atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the gateway: calls come and go throughout
		defer wg.Done()
		for r := int64(1); ; r++ {
			select {
			case <-stop:
				return
			default:
			}
			for i := 0; i < keys; i++ {
				if i%10 == int(r%10) {
					st.Delete("conn", strconv.Itoa(i))
				} else {
					st.Put("conn", strconv.Itoa(i), fmt.Appendf(nil, "r%d", r))
				}
			}
			if id, err := st.Next("conn"); err == nil {
				if prev := lastID.Swap(id); id <= prev {
					t.Errorf("Next went from %d to %d", prev, id)
				}
			} else {
				nextErrs.Add(1)
			}
			round.Store(r)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	waitFor(t, "writes before the restart", func() bool { return st.Stats().Writes > 1000 })
	srv.stop()
	t.Log("redis killed")
	waitFor(t, "write failures while Redis is down", func() bool { return st.Stats().WriteErrors >= 2 })
	time.Sleep(300 * time.Millisecond)
	srv.start()
	t.Log("redis started again (empty)")
	before := st.Stats().Writes
	waitFor(t, "writes after the restart", func() bool { return st.Stats().Writes > before+1000 })
	close(stop)
	wg.Wait()
	flush(t, st)
	last := round.Load()
	s := st.Stats()
	t.Logf("stats %+v, %d rounds, %d Next errors during the outage", s, last, nextErrs.Load())

	ro, err := OpenRedis(cfg, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got := dump(t, ro)["conn"]
	want := map[string]string{}
	for i := 0; i < keys; i++ {
		if i%10 != int(last%10) {
			want[strconv.Itoa(i)] = fmt.Sprintf("r%d", last)
		}
	}
	if len(got) != len(want) || firstDiff(got, want) != "none" {
		t.Fatalf("after the restart Redis holds %d objects, want %d (first diff: %s)", len(got), len(want), firstDiff(got, want))
	}
	if got := dump(t, ro)["conf"]; len(got) != 50 || got["49"] != "static 49" {
		t.Fatalf("objects written once before the restart: %d back, want 50 (%v)", len(got), got)
	}
	marks, err := ro.Counters()
	if err != nil || marks["conn"] < lastID.Load() {
		t.Fatalf("counter mark %v (%v) below the last id handed out %d", marks, err, lastID.Load())
	}
}

// Two gateways on one prefix: the second is refused while the first renews
// its claim (well past the TTL), and can start the moment the first closes.
func TestRedisOwnerRenewedAndReleased(t *testing.T) {
	srv := startRedis(t)
	cfg := RedisConfig{Addr: srv.addr(), Prefix: srv.prefix()}
	a, err := OpenRedis(cfg, Options{OwnerTTL: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second) // > 2 TTLs: only the heartbeat keeps it
	if b, err := OpenRedis(cfg, Options{}); !errors.Is(err, ErrOwned) {
		if b != nil {
			b.Close()
		}
		t.Fatalf("second gateway while the first runs: %v, want ErrOwned", err)
	}
	// Another prefix on the same server is another state.
	other, err := OpenRedis(RedisConfig{Addr: srv.addr(), Prefix: srv.prefix()}, Options{})
	if err != nil {
		t.Fatalf("another prefix: %v", err)
	}
	other.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := OpenRedis(cfg, Options{})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	b.Close()
}

// A claim left by a crashed gateway of this host is taken over at once; a
// live one of another host is not.
func TestRedisStaleOwner(t *testing.T) {
	srv := startRedis(t)
	c := srv.client()
	defer c.Close()
	ctx := context.Background()
	host, _ := os.Hostname()

	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	cfg := RedisConfig{Addr: srv.addr(), Prefix: srv.prefix()}
	c.Set(ctx, cfg.Prefix+"owner", fmt.Sprintf("%s/%d/deadbeef", host, dead.Process.Pid), time.Minute)
	st, err := OpenRedis(cfg, Options{})
	if err != nil {
		t.Fatalf("claim of a dead process of this host: %v, want taken over", err)
	}
	st.Close()

	cfg = RedisConfig{Addr: srv.addr(), Prefix: srv.prefix()}
	c.Set(ctx, cfg.Prefix+"owner", "some-other-host/4242/cafe", time.Minute)
	if st, err := OpenRedis(cfg, Options{}); !errors.Is(err, ErrOwned) {
		if st != nil {
			st.Close()
		}
		t.Fatalf("claim of another host: %v, want ErrOwned", err)
	}
	cfg = RedisConfig{Addr: srv.addr(), Prefix: srv.prefix()}
	c.Set(ctx, cfg.Prefix+"owner", fmt.Sprintf("%s/%d/cafe", host, os.Getppid()), time.Minute)
	if st, err := OpenRedis(cfg, Options{}); !errors.Is(err, ErrOwned) {
		if st != nil {
			st.Close()
		}
		t.Fatalf("claim of a live process of this host: %v, want ErrOwned", err)
	}
}

// Another gateway took the prefix (the claim expired while this one was cut
// off): this one stops writing instead of merging into the other's state.
func TestRedisOwnershipLost(t *testing.T) {
	srv := startRedis(t)
	cfg := RedisConfig{Addr: srv.addr(), Prefix: srv.prefix()}
	st, err := OpenRedis(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Put("conn", "1", []byte("mine"))
	flush(t, st)
	c := srv.client()
	defer c.Close()
	ctx := context.Background()
	c.Set(ctx, cfg.Prefix+"owner", "other-host/1/usurper", time.Minute)
	c.Set(ctx, cfg.Prefix+"obj:conn:1", "theirs", 0)
	st.Put("conn", "1", []byte("mine again"))
	st.Put("conn", "2", []byte("mine too"))
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := st.Flush(fctx); !errors.Is(err, ErrOwned) {
		t.Fatalf("flush after the prefix was taken: %v, want ErrOwned", err)
	}
	if _, err := st.Next("conn"); !errors.Is(err, ErrOwned) {
		t.Fatalf("Next after the prefix was taken: %v, want ErrOwned", err)
	}
	if v := c.Get(ctx, cfg.Prefix+"obj:conn:1").Val(); v != "theirs" {
		t.Fatalf("the other gateway's value was overwritten: %q", v)
	}
	if n := c.Exists(ctx, cfg.Prefix+"obj:conn:2").Val(); n != 0 {
		t.Fatal("a write landed after the prefix was taken")
	}
	if s := st.Stats(); s.WriteErrors == 0 || s.Dropped == 0 {
		t.Fatalf("stats %+v: the lost writes are not counted", s)
	}
}

func TestRedisSchema(t *testing.T) {
	srv := startRedis(t)
	c := srv.client()
	defer c.Close()
	ctx := context.Background()
	cfg := RedisConfig{Addr: srv.addr(), Prefix: srv.prefix()}
	c.Set(ctx, cfg.Prefix+"schema", SchemaVersion+1, 0)
	if st, err := OpenRedis(cfg, Options{}); !errors.Is(err, ErrSchema) {
		if st != nil {
			st.Close()
		}
		t.Fatalf("newer schema: %v, want ErrSchema", err)
	}
	if v := c.Get(ctx, cfg.Prefix+"owner").Val(); v != "" {
		t.Fatalf("a refused open left its claim: %q", v)
	}
	cfg = RedisConfig{Addr: srv.addr(), Prefix: srv.prefix()}
	c.SAdd(ctx, cfg.Prefix+"kinds", "conn") // data without a schema stamp
	if st, err := OpenRedis(cfg, Options{}); !errors.Is(err, ErrSchema) {
		if st != nil {
			st.Close()
		}
		t.Fatalf("unstamped data: %v, want ErrSchema", err)
	}
}

// waitState polls a read-only view of cfg until it holds want.
func waitState(t *testing.T, cfg RedisConfig, what string, want map[string]map[string]string) {
	t.Helper()
	var got map[string]map[string]string
	deadline := time.Now().Add(30 * time.Second)
	for {
		ro, err := OpenRedis(cfg, Options{ReadOnly: true})
		if err == nil {
			got = dump(t, ro)
			ro.Close()
			if reflect.DeepEqual(got, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: redis holds %v (%v), want %v", what, got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Objects restored at start and never written again by this process still
// come back after Redis restarts empty.
func TestRedisRestoredObjectsSurviveEmptyRestart(t *testing.T) {
	srv := startRedis(t)
	cfg := RedisConfig{Addr: srv.addr(), Prefix: srv.prefix()}
	first, err := OpenRedis(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{"conf": {}}
	for i := 0; i < 20; i++ {
		first.Put("conf", strconv.Itoa(i), []byte("restored"))
		want["conf"][strconv.Itoa(i)] = "restored"
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := OpenRedis(cfg, Options{OwnerTTL: 1500 * time.Millisecond}) // the restarted gateway
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv.stop()
	srv.start()
	waitState(t, cfg, "after an empty restart", want)
}

// Redis comes back from a snapshot older than what the gateway wrote since
// (the owner key in it is still this gateway's): the restart is noticed by
// the server's run_id, later writes are written again and later deletions
// deleted again.
func TestRedisRestartFromOldSnapshot(t *testing.T) {
	srv := startRedis(t)
	cfg := RedisConfig{Addr: srv.addr(), Prefix: srv.prefix()}
	st, err := OpenRedis(cfg, Options{OwnerTTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Put("conn", "a1", []byte("old"))
	st.Put("conn", "a2", []byte("old"))
	var last uint64
	for i := 0; i < 3000; i++ {
		if last, err = st.Next("conn"); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, st)
	c := srv.client()
	if err := c.Save(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	st.Delete("conn", "a1")
	st.Put("conn", "a2", []byte("new"))
	st.Put("conn", "b", []byte("new"))
	for i := 0; i < 3000; i++ {
		if last, err = st.Next("conn"); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, st)
	srv.stop()
	srv.start() // loads the snapshot
	waitState(t, cfg, "after a restart from an old snapshot", map[string]map[string]string{"conn": {"a2": "new", "b": "new"}})
	ro, err := OpenRedis(cfg, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if m, err := ro.Counters(); err != nil || m["conn"] < last {
		t.Fatalf("counter mark %v (%v) below the last id handed out %d", m, err, last)
	}
}

// state.redis.password and state.redis.db are used.
func TestRedisAuthAndDB(t *testing.T) {
	srv := startRedis(t, "--requirepass", "s3cret")
	cfg := RedisConfig{Addr: srv.addr(), Prefix: srv.prefix(), DB: 3}
	if st, err := OpenRedis(cfg, Options{}); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "NOAUTH") {
		if st != nil {
			st.Close()
		}
		t.Fatalf("no password: %v, want ErrUnavailable naming NOAUTH", err)
	}
	cfg.Password = "wrong"
	if st, err := OpenRedis(cfg, Options{}); !errors.Is(err, ErrUnavailable) {
		if st != nil {
			st.Close()
		}
		t.Fatalf("wrong password: %v, want ErrUnavailable", err)
	} else {
		t.Log(err)
	}
	cfg.Password = "s3cret"
	st, err := OpenRedis(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Put("conn", "1", []byte("x"))
	flush(t, st)
	st.Close()
	c := srv.client() // db 0
	defer c.Close()
	ctx := context.Background()
	if n := c.Exists(ctx, cfg.Prefix+"obj:conn:1").Val(); n != 0 {
		t.Fatal("written to db 0, not db 3")
	}
	c3 := redis.NewClient(&redis.Options{Addr: srv.addr(), Password: "s3cret", DB: 3, DisableIdentity: true})
	defer c3.Close()
	if n := c3.Exists(ctx, cfg.Prefix+"obj:conn:1").Val(); n != 1 {
		t.Fatal("not in db 3")
	}
}

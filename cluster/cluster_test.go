package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/redistest"
)

var (
	prefixSeq int
	prefixes  = map[*redistest.Server]int{}
)

func prefixFor(r *redistest.Server) int {
	if p, ok := prefixes[r]; ok {
		return p
	}
	prefixSeq++
	prefixes[r] = prefixSeq
	return prefixSeq
}

// testConfig is node's configuration on r, a test's own prefix (each
// test's nodes share the prefix of its first call).
func testConfig(r *redistest.Server, node string) Config {
	cfg := DefaultConfig()
	cfg.Redis.Prefix = fmt.Sprintf("t%d:", prefixFor(r))
	cfg.Node = node
	cfg.Advertise = "http://127.0.0.1:1/" + node
	cfg.Redis.Addr = r.Addr()
	cfg.TTL = 300 * time.Millisecond
	cfg.Grace = 200 * time.Millisecond
	return cfg
}

// events collects what a node's hooks report.
type events struct {
	mu    sync.Mutex
	evs   []RemoteEvent
	downs []string
}

func (e *events) hooks() Hooks {
	return Hooks{
		Event: func(ev RemoteEvent) { e.mu.Lock(); e.evs = append(e.evs, ev); e.mu.Unlock() },
		NodeDown: func(n string) {
			e.mu.Lock()
			e.downs = append(e.downs, n)
			e.mu.Unlock()
		},
	}
}

func (e *events) has(node, typ, key, val string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.evs {
		if ev.Node == node && ev.Type == typ && ev.Data[key] == val {
			return true
		}
	}
	return false
}

func join(t *testing.T, cfg Config, ev *events) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := Hooks{}
	if ev != nil {
		h = ev.hooks()
	}
	c, err := Join(ctx, cfg, Self{SIP: "udp://127.0.0.1:5060", Capacity: 100}, h, nil)
	if err != nil {
		t.Fatalf("join %s: %v", cfg.Node, err)
	}
	t.Cleanup(func() { c.Leave(false) })
	return c
}

// crash stops a node's loops without cleaning anything up (a SIGKILL).
func (c *Cluster) crash() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
	c.rdb.Close()
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func names(ns []Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	sort.Strings(out)
	return out
}

func TestRegistryIndexesAndOwners(t *testing.T) {
	r := redistest.Start(t)
	base := testConfig(r, "a")
	cfgB, cfgC := base, base
	cfgB.Node, cfgB.Advertise = "b", "http://127.0.0.1:1/b"
	cfgC.Node, cfgC.Advertise = "c", "http://127.0.0.1:1/c"
	a, b, c := join(t, base, nil), join(t, cfgB, nil), join(t, cfgC, nil)
	idx := map[uint64]string{}
	for _, n := range []*Cluster{a, b, c} {
		if n.Index() == 0 || n.Index() >= Stride {
			t.Fatalf("%s: index %d", n.Self().Name, n.Index())
		}
		if other, dup := idx[n.Index()]; dup {
			t.Fatalf("%s and %s share index %d", n.Self().Name, other, n.Index())
		}
		idx[n.Index()] = n.Self().Name
	}
	waitFor(t, "a to see three nodes", 2*time.Second, func() bool { return len(a.Nodes()) == 3 })
	if got := fmt.Sprint(names(a.Nodes())); got != "[a b c]" {
		t.Fatalf("nodes %s", got)
	}
	id := fmt.Sprint(17*Stride + b.Index())
	if o, ok := a.IDOwner(id); !ok || o != "b" {
		t.Fatalf("IDOwner(%s) = %q %v, want b", id, o, ok)
	}
	if _, ok := a.IDOwner("not-a-number"); ok {
		t.Fatal("IDOwner of a non-decimal ID")
	}

	// A second gateway under a's name (another URL) is refused; a's own
	// restart (same URL, new process) is not.
	dup := base
	dup.Advertise = "http://127.0.0.9:1/a"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := Join(ctx, dup, Self{}, Hooks{}, nil); !errors.Is(err, ErrTaken) {
		t.Fatalf("a second node named a: %v, want ErrTaken", err)
	}
	a2, err := Join(ctx, base, Self{}, Hooks{}, nil)
	if err != nil {
		t.Fatalf("a restarted: %v", err)
	}
	if a2.Index() != a.Index() {
		t.Fatalf("a restarted with index %d, had %d", a2.Index(), a.Index())
	}
	a2.Leave(true)
}

func TestConferenceClaims(t *testing.T) {
	r := redistest.Start(t)
	cfgA, cfgB := testConfig(r, "a"), testConfig(r, "b")
	a, b := join(t, cfgA, nil), join(t, cfgB, nil)
	ctx := context.Background()
	if o, err := a.ClaimConference(ctx, "room"); err != nil || o != "a" {
		t.Fatalf("a claims room: %q %v", o, err)
	}
	if o, err := b.ClaimConference(ctx, "room"); err != nil || o != "a" {
		t.Fatalf("b claims a's room: %q %v, want a", o, err)
	}
	if o, _ := b.ConferenceOwner(ctx, "room"); o != "a" {
		t.Fatalf("owner of room %q", o)
	}
	// A release followed by a claim on the same node keeps it.
	a.ReleaseConference("room")
	if o, _ := a.ClaimConference(ctx, "room"); o != "a" {
		t.Fatalf("a claims room again: %q", o)
	}
	a.flush(ctx)
	if o, _ := b.ConferenceOwner(ctx, "room"); o != "a" {
		t.Fatalf("after release+claim the owner is %q, want a", o)
	}
	a.ReleaseConference("room")
	waitFor(t, "a's release of room", 2*time.Second, func() bool {
		o, _ := b.ConferenceOwner(ctx, "room")
		return o == ""
	})
	if o, _ := b.ClaimConference(ctx, "room"); o != "b" {
		t.Fatalf("b claims the free room: %q", o)
	}
	// An unclaimed decimal name belongs to the node whose index it carries.
	if o, _ := a.ConferenceOwner(ctx, fmt.Sprint(3*Stride+b.Index())); o != "b" {
		t.Fatalf("owner of b's numbered conference: %q", o)
	}
}

func TestEventsReachTheOthers(t *testing.T) {
	r := redistest.Start(t)
	cfgA, cfgB := testConfig(r, "a"), testConfig(r, "b")
	evA, evB := &events{}, &events{}
	a, _ := join(t, cfgA, evA), join(t, cfgB, evB)
	a.Publish("ConnectionReleased", []byte(`{"ConnectionId":"1001"}`))
	waitFor(t, "b to get a's event", 2*time.Second, func() bool { return evB.has("a", "ConnectionReleased", "ConnectionId", "1001") })
	time.Sleep(100 * time.Millisecond)
	if evA.has("a", "ConnectionReleased", "ConnectionId", "1001") {
		t.Fatal("a got its own event back")
	}
}

func TestDeadNodeCleanedOnce(t *testing.T) {
	r := redistest.Start(t)
	cfg := testConfig(r, "a")
	var nodes []*Cluster
	var evs []*events
	for _, n := range []string{"a", "b", "c"} {
		c := cfg
		c.Node, c.Advertise = n, "http://127.0.0.1:1/"+n
		ev := &events{}
		evs = append(evs, ev)
		nodes = append(nodes, join(t, c, ev))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	connID := fmt.Sprint(5*Stride + c.Index())
	c.ConnectionCreated(connID)
	if o, err := c.ClaimConference(ctx, "conf-7"); err != nil || o != "c" {
		t.Fatalf("c claims conf-7: %q %v", o, err)
	}
	c.flush(ctx)
	rdb := r.Client()
	defer rdb.Close()
	if n, _ := rdb.SCard(ctx, cfg.Redis.Prefix+"conns:c").Result(); n != 1 {
		t.Fatalf("c's connections in the registry: %d", n)
	}
	c.crash()
	start := time.Now()
	waitFor(t, "c cleaned", 5*time.Second, func() bool {
		o, _ := a.ConferenceOwner(ctx, "conf-7")
		n, _ := rdb.Exists(ctx, cfg.Redis.Prefix+"conns:c").Result()
		return o == "" && n == 0
	})
	t.Logf("c cleaned %s after its crash (ttl %s, grace %s)", time.Since(start).Round(time.Millisecond), cfg.TTL, cfg.Grace)
	for i, ev := range evs[:2] {
		waitFor(t, fmt.Sprintf("node %d to see c's releases", i), 2*time.Second, func() bool {
			return ev.has("c", "ConnectionReleased", "ConnectionId", connID) && ev.has("c", "ConferenceReleased", "ConferenceId", "conf-7")
		})
	}
	if got := a.Stats().Reaped + b.Stats().Reaped; got != 1 {
		t.Fatalf("c was cleaned %d times, want once", got)
	}
	if got := fmt.Sprint(names(a.Nodes())); got != "[a b]" {
		t.Fatalf("a sees %s", got)
	}
	// The claim is free for the survivors.
	if o, _ := b.ClaimConference(ctx, "conf-7"); o != "b" {
		t.Fatalf("b claims the dead node's conference: %q", o)
	}
}

func TestRedisRestartRebuildsRecords(t *testing.T) {
	r := redistest.Start(t)
	cfgA, cfgB := testConfig(r, "a"), testConfig(r, "b")
	a, b := join(t, cfgA, nil), join(t, cfgB, nil)
	ctx := context.Background()
	ia, ib := a.Index(), b.Index()
	for i := 1; i <= 50; i++ {
		a.ConnectionCreated(fmt.Sprint(uint64(i)*Stride + ia))
	}
	if o, _ := a.ClaimConference(ctx, "room-a"); o != "a" {
		t.Fatal("claim room-a")
	}
	if o, _ := b.ClaimConference(ctx, "room-b"); o != "b" {
		t.Fatal("claim room-b")
	}
	a.flush(ctx)
	r.Kill()
	time.Sleep(2 * cfgA.TTL)
	a.ConnectionReleased(fmt.Sprint(1*Stride + ia)) // while Redis is away
	// A conference made while Redis is away is made here, and claimed
	// when it is back.
	if o, err := a.ClaimConference(ctx, "room-x"); err != nil || o != "a" {
		t.Fatalf("claim while the registry is away: %q %v, want a", o, err)
	}
	r.Restart()
	rdb := r.Client()
	defer rdb.Close()
	p := cfgA.Redis.Prefix
	waitFor(t, "records rebuilt", 5*time.Second, func() bool {
		n, _ := rdb.SCard(ctx, p+"conns:a").Result()
		oa, _ := rdb.Get(ctx, p+"conf:room-a").Result()
		ob, _ := rdb.Get(ctx, p+"conf:room-b").Result()
		ox, _ := rdb.Get(ctx, p+"conf:room-x").Result()
		return n == 49 && oa == "a" && ob == "b" && ox == "a"
	})
	if a.Stats().Unclaimed != 1 {
		t.Fatalf("unclaimed conferences: %d, want 1", a.Stats().Unclaimed)
	}
	if a.Index() != ia || b.Index() != ib {
		t.Fatalf("indexes changed across the Redis restart: a %d->%d, b %d->%d", ia, a.Index(), ib, b.Index())
	}
	waitFor(t, "both nodes alive again", 3*time.Second, func() bool { return len(a.Nodes()) == 2 && len(b.Nodes()) == 2 })
	// Nothing double-owned: each claim has one holder, and the other
	// node's claim fails.
	if o, _ := b.ClaimConference(ctx, "room-a"); o != "a" {
		t.Fatalf("room-a is claimed by %q after the restart", o)
	}
}

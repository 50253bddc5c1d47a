package mgcp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// The response cache holds at most max_entries transactions: the oldest go
// first, the newest are still answered byte for byte (issue 10, finding 4).
func TestResponseCacheEntryBound(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTxCache(func() time.Time { return now }, 100, 0)
	src := netip.MustParseAddrPort("127.0.0.1:2727")
	want := map[uint32]string{}
	for tid := uint32(1); tid <= 1000; tid++ {
		want[tid] = string(c.finish(c.begin(txKey{src, tid}), &Response{Code: 200, TransID: tid, Comment: "OK"}, nil))
	}
	if n := c.len(); n != 100 {
		t.Fatalf("%d entries kept, bound 100", n)
	}
	if c.lookup(txKey{src, 900}) != nil {
		t.Fatal("tid 900 kept: the oldest must go first")
	}
	for tid := uint32(901); tid <= 1000; tid++ {
		e := c.lookup(txKey{src, tid})
		if e == nil || string(c.replay(e)) != want[tid] {
			t.Fatalf("tid %d inside the kept window not answered with its response", tid)
		}
	}
	bytes, evicted := c.usage()
	if evicted != 900 {
		t.Fatalf("evicted %d, want 900", evicted)
	}
	sum := 0
	for tid := uint32(901); tid <= 1000; tid++ {
		sum += entryOverhead + len(want[tid])
	}
	if bytes != sum {
		t.Fatalf("accounted %d bytes for 100 entries, want %d", bytes, sum)
	}
	now = now.Add(responseTTL)
	if c.len() != 0 {
		t.Fatal("entries outlive the TTL")
	}
	if b, _ := c.usage(); b != 0 {
		t.Fatalf("%d bytes accounted for an empty cache", b)
	}
}

// The byte bound counts the responses: big SDP answers evict sooner.
func TestResponseCacheByteBound(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTxCache(func() time.Time { return now }, 0, 64<<10)
	src := netip.MustParseAddrPort("127.0.0.1:2727")
	body := make([]byte, 2000)
	for i := range body {
		body[i] = 'a'
	}
	for tid := uint32(1); tid <= 500; tid++ {
		r := &Response{Code: 200, TransID: tid, Comment: "OK", SDP: string(body)}
		c.finish(c.begin(txKey{src, tid}), r, nil)
		if b, _ := c.usage(); b > 64<<10 {
			t.Fatalf("after tid %d: %d bytes, bound %d", tid, b, 64<<10)
		}
	}
	n := c.len()
	if n < 25 || n > 33 {
		t.Fatalf("%d entries of ~2.2 KB kept under 64 KiB", n)
	}
	if e := c.lookup(txKey{src, 500}); e == nil || c.replay(e) == nil {
		t.Fatal("the newest response is gone")
	}
	// Acknowledged responses give their bytes back.
	before, _ := c.usage()
	held := 0
	for tid := uint32(490); tid <= 500; tid++ {
		held += len(c.replay(c.lookup(txKey{src, tid})))
	}
	c.acknowledge(src, []tidRange{{490, 500}})
	if after, _ := c.usage(); before-after != held {
		t.Fatalf("acknowledging 11 responses of %d bytes freed %d", held, before-after)
	}
}

// Through the server: CRCX+DLCX cycles past the bound keep the cache at it,
// and a retransmission of a recent command is still answered from it, not
// executed again.
func TestResponseCacheBoundedUnderCycles(t *testing.T) {
	r := newRig(t, rigOption{cfg: func(c *Config) { c.ResponseCache = CacheConfig{MaxEntries: 200, MaxBytes: 1 << 20} }})
	for i := 0; i < 500; i++ {
		tid := 1000 + 2*i
		resp := r.command(fmt.Sprintf("CRCX %d rtpbridge/$@mgw MGCP 1.0\r\nC: c%d\r\nM: recvonly\r\n", tid, i))
		if resp.Code != 200 {
			t.Fatalf("CRCX %d: %d %s", i, resp.Code, resp.Comment)
		}
		ep, _ := resp.Params.Get("Z")
		r.command(fmt.Sprintf("DLCX %d %s MGCP 1.0\r\nC: c%d\r\n", tid+1, ep, i))
	}
	if n := r.srv.cache.len(); n > 200 {
		t.Fatalf("%d transactions cached, bound 200", n)
	}
	// The last CRCX repeated: answered from the cache, nothing created.
	tid := 1000 + 2*499
	again := r.command(fmt.Sprintf("CRCX %d rtpbridge/$@mgw MGCP 1.0\r\nC: c499\r\nM: recvonly\r\n", tid))
	if again.Code != 200 || len(r.table.Connections()) != 0 {
		t.Fatalf("retransmission inside the window: %d, %d connections", again.Code, len(r.table.Connections()))
	}
	if _, ev := r.srv.cache.usage(); ev == 0 {
		t.Fatal("nothing evicted")
	}
}

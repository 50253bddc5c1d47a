package mgcp

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// responseTTL is how long a response is kept for retransmitted commands
// (RFC 3435 §3.5: at least T-HIST, 30 s).
const responseTTL = 30 * time.Second

// finalRetransmits are the waits before re-sending a final response that
// followed a provisional one, until the call agent's `000` arrives.
var finalRetransmits = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}

type txKey struct {
	src netip.AddrPort
	tid uint32
}

// txEntry is one command transaction as the gateway remembers it.
type txEntry struct {
	key         txKey
	resp        []byte // final response; nil while executing or once acknowledged
	done        bool   // the final response exists (or did, before K: dropped it)
	acked       bool   // the call agent confirmed the response (K:); repeats are dropped
	provisional bool   // a 100 was sent
	awaitAck    bool   // final sent with an empty K:, waiting for 000
	retx        *time.Timer
	expires     time.Time
}

// entryOverhead is what one remembered transaction costs besides its
// response bytes (txEntry, its map slot and order slot), for the byte bound.
const entryOverhead = 160

// txCache remembers responses per (source, transaction ID), for at most
// responseTTL and within a bound of entries and bytes: past either, the
// oldest transactions are forgotten first (a repeat of one of those is
// executed again), so a call agent cycling connections fast cannot grow it
// without limit (issue 10, finding 4).
type txCache struct {
	now        func() time.Time
	maxEntries int // 0: no bound
	maxBytes   int // 0: no bound

	mu      sync.Mutex // guards entries, order, head, bytes, evicted and every txEntry's fields
	entries map[txKey]*txEntry
	order   []*txEntry // by creation, which is expiry order (fixed TTL)
	head    int
	bytes   int    // entryOverhead per entry plus the responses held
	evicted uint64 // entries forgotten before their TTL because of the bound
}

func newTxCache(now func() time.Time, maxEntries, maxBytes int) *txCache {
	return &txCache{now: now, maxEntries: maxEntries, maxBytes: maxBytes, entries: map[txKey]*txEntry{}}
}

// lookup returns the entry of a repeated command, or nil for a new one.
func (c *txCache) lookup(k txKey) *txEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	return c.entries[k]
}

// replay is what to answer a repeated command with: the final response, a
// provisional while still executing, or nothing once acknowledged.
func (c *txCache) replay(e *txEntry) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case e.acked:
		return nil
	case e.done:
		return e.resp
	}
	return (&Response{Code: codeProvisional, TransID: e.key.tid, Comment: codeText[codeProvisional]}).Marshal()
}

// begin records a command as executing.
func (c *txCache) begin(k txKey) *txEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	e := &txEntry{key: k, expires: c.now().Add(responseTTL)}
	if old := c.entries[k]; old != nil {
		c.bytes -= len(old.resp) // the old entry stays in order, counted as overhead until it expires
		old.resp = nil
	}
	c.entries[k] = e
	c.order = append(c.order, e)
	c.bytes += entryOverhead
	c.evictLocked()
	return e
}

// markProvisional flags that a 100 goes out; false when the final response
// is already there.
func (c *txCache) markProvisional(e *txEntry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.done {
		return false
	}
	e.provisional = true
	return true
}

// finish stores the final response and returns its wire form. After a
// provisional response it carries an empty K: and retransmit is called
// until the 000 acknowledgement arrives.
func (c *txCache) finish(e *txEntry, r *Response, retransmit func([]byte)) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.provisional {
		r.Params = append(r.Params, Param{Name: "K"})
		e.awaitAck = true
	}
	e.resp = r.Marshal()
	e.done = true
	c.bytes += len(e.resp)
	c.evictLocked()
	if e.awaitAck && retransmit != nil {
		c.scheduleLocked(e, 0, retransmit)
	}
	return e.resp
}

func (c *txCache) scheduleLocked(e *txEntry, n int, retransmit func([]byte)) {
	if n >= len(finalRetransmits) {
		e.awaitAck = false
		return
	}
	e.retx = time.AfterFunc(finalRetransmits[n], func() {
		c.mu.Lock()
		if !e.awaitAck || e.resp == nil {
			c.mu.Unlock()
			return
		}
		resp := e.resp
		c.scheduleLocked(e, n+1, retransmit)
		c.mu.Unlock()
		retransmit(resp)
	})
}

// ackFinal handles `000 tid` from src: the final response arrived.
func (c *txCache) ackFinal(k txKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[k]
	if e == nil || !e.awaitAck {
		return false
	}
	e.awaitAck = false
	if e.retx != nil {
		e.retx.Stop()
	}
	return true
}

// acknowledge applies a K: list from src: those responses were received,
// so they are forgotten (their entries stay, to drop late repeats).
func (c *txCache) acknowledge(src netip.AddrPort, ranges []tidRange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	forget := func(e *txEntry) {
		if e.done {
			c.bytes -= len(e.resp)
			e.acked, e.resp, e.awaitAck = true, nil, false
			if e.retx != nil {
				e.retx.Stop()
			}
		}
	}
	for _, r := range ranges {
		if r.hi-r.lo < 1024 {
			for tid := r.lo; ; tid++ {
				if e := c.entries[txKey{src, tid}]; e != nil {
					forget(e)
				}
				if tid == r.hi {
					break
				}
			}
			continue
		}
		for k, e := range c.entries {
			if k.src == src && k.tid >= r.lo && k.tid <= r.hi {
				forget(e)
			}
		}
	}
}

// stop cancels every pending retransmission (the socket is going away).
func (c *txCache) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		e.awaitAck = false
		if e.retx != nil {
			e.retx.Stop()
		}
	}
}

// sweep forgets expired responses every interval until done closes: expiry
// otherwise runs only when commands arrive, and a burst followed by silence
// would keep its responses (and their memory) for good.
func (c *txCache) sweep(done <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			c.mu.Lock()
			c.expireLocked()
			if c.head == len(c.order) && cap(c.order) > 1024 {
				// Empty after a burst: give the slice and the map's buckets
				// back (a Go map never shrinks).
				c.order, c.head = nil, 0
				c.entries = map[txKey]*txEntry{}
			}
			c.mu.Unlock()
		}
	}
}

// usage reports the bytes accounted and the entries evicted by the bound.
func (c *txCache) usage() (bytes int, evicted uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, c.evicted
}

// len reports the remembered transactions (for tests).
func (c *txCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	return len(c.entries)
}

// expireLocked drops entries older than the TTL. Caller holds mu.
func (c *txCache) expireLocked() {
	now := c.now()
	for c.head < len(c.order) && !now.Before(c.order[c.head].expires) {
		c.dropOldestLocked()
	}
	c.compactLocked()
}

// evictLocked drops the oldest entries while the cache is over its bound.
// Caller holds mu.
func (c *txCache) evictLocked() {
	for c.head < len(c.order) &&
		((c.maxEntries > 0 && len(c.order)-c.head > c.maxEntries) || (c.maxBytes > 0 && c.bytes > c.maxBytes)) {
		c.dropOldestLocked()
		c.evicted++
	}
	c.compactLocked()
}

// dropOldestLocked forgets the oldest entry. Caller holds mu.
func (c *txCache) dropOldestLocked() {
	e := c.order[c.head]
	c.order[c.head] = nil
	c.head++
	c.bytes -= entryOverhead + len(e.resp)
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
	if e.retx != nil {
		e.retx.Stop()
	}
	e.awaitAck = false
}

// compactLocked gives back the order slice's consumed head. Caller holds mu.
func (c *txCache) compactLocked() {
	if c.head > 1024 && c.head*2 > len(c.order) {
		c.order = append(c.order[:0:0], c.order[c.head:]...)
		c.head = 0
	}
}

// tidRange is lo..hi inclusive.
type tidRange struct{ lo, hi uint32 }

// parseAcks reads a K: value: `6234-6255, 6257`.
func parseAcks(v string) ([]tidRange, error) {
	var out []tidRange
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isRange := strings.Cut(item, "-")
		a, ok1 := ParseTransID(strings.TrimSpace(lo))
		b, ok2 := a, true
		if isRange {
			b, ok2 = ParseTransID(strings.TrimSpace(hi))
		}
		if !ok1 || !ok2 || a == 0 || b < a {
			return nil, fmt.Errorf("bad response acknowledgement %q", clip(item))
		}
		out = append(out, tidRange{a, b})
	}
	return out, nil
}

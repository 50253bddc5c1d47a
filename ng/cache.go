package ng

import (
	"net/netip"
	"sync"
	"time"
)

// replyTTL is how long a reply is kept for a repeated command; the proxy
// modules retry after about a second, a few times.
const replyTTL = 30 * time.Second

// maxReplies bounds the cache; beyond it the oldest replies go first.
const maxReplies = 1 << 16

type replyKey struct {
	src    netip.AddrPort
	cookie string
}

type replyEntry struct {
	key     replyKey
	reply   []byte
	expires time.Time
}

// replyCache remembers the reply sent for each (source, cookie), so a
// retransmitted command gets the same bytes and is executed once.
type replyCache struct {
	now func() time.Time

	mu      sync.Mutex // guards entries, order, head
	entries map[replyKey]*replyEntry
	order   []*replyEntry // by insertion, which is expiry order
	head    int
}

func newReplyCache(now func() time.Time) *replyCache {
	return &replyCache{now: now, entries: map[replyKey]*replyEntry{}}
}

// get returns the remembered reply of a repeated command, or nil.
func (c *replyCache) get(src netip.AddrPort, cookie []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	if e := c.entries[replyKey{src, string(cookie)}]; e != nil { // no allocation for the lookup
		return e.reply
	}
	return nil
}

// put remembers reply (which the cache now owns).
func (c *replyCache) put(src netip.AddrPort, cookie []byte, reply []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	for len(c.order)-c.head >= maxReplies {
		c.dropOldestLocked()
	}
	e := &replyEntry{key: replyKey{src, string(cookie)}, reply: reply, expires: c.now().Add(replyTTL)}
	c.entries[e.key] = e
	c.order = append(c.order, e)
}

func (c *replyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireLocked()
	return len(c.entries)
}

func (c *replyCache) expireLocked() {
	now := c.now()
	for c.head < len(c.order) && !now.Before(c.order[c.head].expires) {
		c.dropOldestLocked()
	}
	if c.head > 1024 && c.head*2 > len(c.order) {
		c.order = append(c.order[:0:0], c.order[c.head:]...)
		c.head = 0
	}
}

func (c *replyCache) dropOldestLocked() {
	e := c.order[c.head]
	c.order[c.head] = nil
	c.head++
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
}

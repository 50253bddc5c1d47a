package sip

import (
	"container/list"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// Call limits at the edge (issue 10): how fast a source may send new
// requests, how many calls the front holds, and how many answered INVITEs
// may wait for their ACK. All are decided before anything is allocated.

// RateConfig is sip.rate: new (out-of-dialog) requests per second per
// source address, as a token bucket.
type RateConfig struct {
	PerSource float64 `yaml:"per_source"` // tokens per second; 0 = off
	Burst     int     `yaml:"burst"`      // bucket size
}

// UnconfirmedConfig is sip.unconfirmed: INVITEs being answered or answered
// with a 2xx whose ACK has not arrived. A forged-source flood of INVITEs is
// answered with 200s that are never ACKed, and each holds a port pair for
// 64*T1 (32 s) unless bounded.
type UnconfirmedConfig struct {
	// PerSource bounds one untrusted source's unconfirmed calls (503 past
	// it). Trusted sources (a proxy carries many callers) are bounded only
	// by Total. 0 = no per-source bound.
	PerSource int `yaml:"per_source"`
	// Total bounds them all: past it, the source holding the most pays (its
	// own new INVITE gets 503, another source's new INVITE drops its oldest
	// unconfirmed call), so one flooding address never keeps others out.
	// 0 = half of the RTP port pairs free at start.
	Total int `yaml:"total"`
}

// DefaultRate is sip.rate's default (DESIGN §9).
var DefaultRate = RateConfig{PerSource: 50, Burst: 100}

// DefaultUnconfirmed is sip.unconfirmed's default.
var DefaultUnconfirmed = UnconfirmedConfig{PerSource: 10}

// rateSilenceFactor: a source whose debt reaches this many bursts is not
// answered at all (a 503 per request would make us a reflector).
const rateSilenceFactor = 2

// rateSources bounds the per-source buckets remembered; when full, buckets
// that refilled completely are forgotten, and if none did, new sources
// share one overflow bucket (bounded memory under a spoofed-source flood).
const rateSources = 65536

// unconfirmedGrace: with one unconfirmed call per source (a flood from
// many forged addresses), a caller's own call younger than this is not
// dropped for its next one.
const unconfirmedGrace = time.Second

func (r RateConfig) validate() error {
	if r.PerSource < 0 || r.Burst < 0 {
		return fmt.Errorf("sip.rate: per_source and burst must be >= 0")
	}
	if r.PerSource > 0 && r.Burst < 1 {
		return fmt.Errorf("sip.rate.burst: must be >= 1 when per_source is set")
	}
	return nil
}

func (u UnconfirmedConfig) validate() error {
	if u.PerSource < 0 || u.Total < 0 {
		return fmt.Errorf("sip.unconfirmed: per_source and total must be >= 0")
	}
	return nil
}

// rateVerdict is what the rate limiter says of one request.
type rateVerdict int

const (
	ratePass    rateVerdict = iota
	rateRefuse              // 503 with Retry-After
	rateSilence             // dropped unanswered
)

// rateLimiter is sip.rate's per-source token buckets.
type rateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu        sync.Mutex // guards the fields below
	buckets   map[netip.Addr]*tokenBucket
	overflow  tokenBucket // shared by new sources while the map is full
	lastSweep time.Time   // a full map is swept at most once a second
}

type tokenBucket struct {
	tokens float64 // may go negative: the debt of refused requests
	last   time.Time
}

func newRateLimiter(c RateConfig) *rateLimiter {
	if c.PerSource <= 0 {
		return nil
	}
	return &rateLimiter{rate: c.PerSource, burst: float64(c.Burst), now: time.Now, buckets: make(map[netip.Addr]*tokenBucket)}
}

// take spends a token of ip's bucket. Refused requests still count, down
// to rateSilenceFactor bursts of debt, so a source that keeps sending
// above the rate is silenced until it slows down.
func (r *rateLimiter) take(ip netip.Addr) rateVerdict {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[ip]
	if b == nil {
		if len(r.buckets) >= rateSources && now.Sub(r.lastSweep) >= time.Second {
			r.lastSweep = now
			r.sweepLocked(now)
		}
		if len(r.buckets) >= rateSources {
			b = &r.overflow
		} else {
			b = &tokenBucket{tokens: r.burst, last: now}
			r.buckets[ip] = b
		}
	}
	b.tokens += now.Sub(b.last).Seconds() * r.rate
	if b.tokens > r.burst {
		b.tokens = r.burst
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return ratePass
	}
	if b.tokens-1 < -rateSilenceFactor*r.burst {
		return rateSilence
	}
	b.tokens--
	return rateRefuse
}

// sweepLocked forgets buckets that are full again. Caller holds mu.
func (r *rateLimiter) sweepLocked(now time.Time) {
	for ip, b := range r.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*r.rate >= r.burst {
			delete(r.buckets, ip)
		}
	}
}

// retryAfter is the Retry-After (seconds) a refused source should wait
// for a token.
func (r *rateLimiter) retryAfter() int {
	s := int(1/r.rate) + 1
	if s < 1 {
		s = 1
	}
	return s
}

// unconfirmedSet tracks inbound INVITEs from their admission until their
// ACK (or their end), oldest first, and per source.
type unconfirmedSet struct {
	perSource int
	total     int
	now       func() time.Time

	mu       sync.Mutex // guards order and bySource
	order    *list.List // of *unconfirmedCall, oldest first
	bySource map[netip.Addr]*list.List
}

type unconfirmedCall struct {
	l       *leg
	ip      netip.Addr
	since   time.Time
	trusted bool
	inSrc   *list.Element // in bySource[ip]
}

func newUnconfirmedSet(c UnconfirmedConfig, total int) *unconfirmedSet {
	return &unconfirmedSet{perSource: c.PerSource, total: total, now: time.Now, order: list.New(), bySource: make(map[netip.Addr]*list.List)}
}

func (u *unconfirmedSet) countLocked(ip netip.Addr) int {
	if l := u.bySource[ip]; l != nil {
		return l.Len()
	}
	return 0
}

// admit decides whether a new INVITE from ip may go on and reserves its
// place at once (concurrent INVITEs are handled in parallel: a check now and
// an add after the answer let a burst through). e nil: refuse it with 503;
// else attach the leg to e when it exists and give e to done when the call
// is confirmed or ends. victim: an unconfirmed leg the caller must end to
// make room (outside the lock).
//
// When the set is full, the source holding the most unconfirmed calls pays:
// if that is the caller itself, it is refused; otherwise that source's
// oldest call is dropped. A flood from one (forged) address thus holds at
// most the total and never keeps other callers out; a flood from many
// forged addresses (one call each) loses its oldest, and a real call, whose
// ACK comes within a round trip, is never the oldest for long.
func (u *unconfirmedSet) admit(ip netip.Addr, trusted bool) (e *list.Element, victim *leg) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !trusted && u.perSource > 0 && u.countLocked(ip) >= u.perSource {
		return nil, nil
	}
	if u.total > 0 && u.order.Len() >= u.total {
		var ok bool
		if ok, victim = u.makeRoomLocked(ip); !ok {
			return nil, nil
		}
	}
	return u.addLocked(ip, trusted), victim
}

// makeRoomLocked frees one place for a call from ip, or says it may not
// have one. Caller holds mu.
func (u *unconfirmedSet) makeRoomLocked(ip netip.Addr) (ok bool, victim *leg) {
	var worst netip.Addr
	most := 0
	for src, l := range u.bySource {
		if l.Len() > most {
			worst, most = src, l.Len()
		}
	}
	if worst == ip && most > 1 {
		return false, nil
	}
	candidates := u.order // one call per source: the oldest of all
	if most > 1 {
		candidates = u.bySource[worst]
	}
	for el := candidates.Front(); el != nil; el = el.Next() {
		e := el
		if most > 1 {
			e = el.Value.(*list.Element)
		}
		c := e.Value.(*unconfirmedCall)
		if c.l == nil {
			continue // still being set up: nothing to end yet
		}
		if c.ip == ip && u.now().Sub(c.since) < unconfirmedGrace {
			return false, nil
		}
		u.removeLocked(e)
		return true, c.l
	}
	return false, nil
}

// attach names the leg of a reserved place.
func (u *unconfirmedSet) attach(e *list.Element, l *leg) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if c, ok := e.Value.(*unconfirmedCall); ok && c != nil {
		c.l = l
	}
}

// add starts tracking l (tests); the returned element goes to done.
func (u *unconfirmedSet) add(l *leg, ip netip.Addr, trusted bool) *list.Element {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.addLocked(ip, trusted)
	e.Value.(*unconfirmedCall).l = l
	return e
}

func (u *unconfirmedSet) addLocked(ip netip.Addr, trusted bool) *list.Element {
	c := &unconfirmedCall{ip: ip, since: u.now(), trusted: trusted}
	e := u.order.PushBack(c)
	src := u.bySource[ip]
	if src == nil {
		src = list.New()
		u.bySource[ip] = src
	}
	c.inSrc = src.PushBack(e)
	return e
}

// done stops tracking a leg (confirmed or ended); safe to call twice.
func (u *unconfirmedSet) done(e *list.Element) {
	if e == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.removeLocked(e)
}

func (u *unconfirmedSet) removeLocked(e *list.Element) {
	c, ok := e.Value.(*unconfirmedCall)
	if !ok || c == nil {
		return
	}
	e.Value = nil // removed: a second done is a no-op
	u.order.Remove(e)
	if src := u.bySource[c.ip]; src != nil {
		src.Remove(c.inSrc)
		if src.Len() == 0 {
			delete(u.bySource, c.ip)
		}
	}
}

// len is how many calls wait for their ACK.
func (u *unconfirmedSet) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.order.Len()
}

// errMaxCalls: sip.max_calls inbound calls are up.
var errMaxCalls = errors.New("sip.max_calls reached")

// retryAfter is a Retry-After header of secs seconds.
func retryAfter(secs int) gosip.Header {
	return gosip.NewHeader("Retry-After", strconv.Itoa(secs))
}

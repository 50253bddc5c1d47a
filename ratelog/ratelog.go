// Package ratelog keeps log lines that a remote party can trigger cheap and
// bounded: a Limiter lets one line per key (a source address, usually) per
// interval through and counts the rest, and Truncate cuts text a remote
// party controls to a fixed length. It imports nothing of ours.
package ratelog

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Limiter lets one line per key per interval through. It remembers at most
// maxKeys keys; when full it forgets the expired ones, and if none expired
// it holds back lines of new keys (counted as suppressed under the key
// "overflow") rather than grow.
type Limiter struct {
	interval time.Duration
	maxKeys  int
	now      func() time.Time

	mu       sync.Mutex // guards keys and overflow
	keys     map[string]*slot
	overflow int
}

type slot struct {
	last       time.Time // when a line was last let through
	suppressed int       // lines held back since then
}

// New makes a limiter: one line per key per interval, at most maxKeys keys.
func New(interval time.Duration, maxKeys int) *Limiter {
	if maxKeys <= 0 {
		maxKeys = 1
	}
	return &Limiter{interval: interval, maxKeys: maxKeys, now: time.Now, keys: make(map[string]*slot)}
}

// Allow reports whether a line for key may be logged now and, when it may,
// how many lines for key were held back since the last one let through.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.keys[key]
	if s == nil {
		if len(l.keys) >= l.maxKeys {
			l.sweepLocked(now)
		}
		if len(l.keys) >= l.maxKeys {
			l.overflow++
			return false, 0
		}
		s = &slot{last: now}
		l.keys[key] = s
		return true, 0
	}
	if now.Sub(s.last) < l.interval {
		s.suppressed++
		return false, 0
	}
	s.last = now
	suppressed, s.suppressed = s.suppressed, 0
	return true, suppressed
}

// Overflow reports the lines held back because the key table was full.
func (l *Limiter) Overflow() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.overflow
}

// sweepLocked forgets keys whose interval has passed. Caller holds mu.
func (l *Limiter) sweepLocked(now time.Time) {
	for k, s := range l.keys {
		if now.Sub(s.last) >= l.interval {
			delete(l.keys, k)
		}
	}
}

// Truncate returns s cut to at most n bytes (on a rune boundary) with a
// note of how much was cut, or s itself when it is short enough.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(+" + strconv.Itoa(len(s)-cut) + " bytes)"
}

package store

import (
	"sync"
	"time"
)

// failFast is how long Next answers with the last reservation error
// instead of trying the backend again.
const failFast = time.Second

// reserveFunc persists a counter's high-water mark as max(stored, floor)+n
// and returns it: the caller owns the IDs (hi-n, hi].
type reserveFunc func(name string, floor, n uint64) (hi uint64, err error)

// counters hands out IDs from blocks reserved in the backend, and reserves
// the next block in the background when half of the current one is used,
// so Next waits on I/O only when the backend is slower than the ID rate.
// IDs skipped by a restart (the rest of a block) are never reused.
type counters struct {
	reserve reserveFunc
	block   uint64

	mu       sync.Mutex // guards m, closed, failedAt, failErr and every *counter
	m        map[string]*counter
	closed   bool
	failedAt time.Time // the last failed synchronous reservation
	failErr  error
	wg       sync.WaitGroup // background reservations
}

type counter struct {
	next, limit      uint64 // next+1 .. limit are ours to hand out
	spareLo, spareHi uint64 // a reserved block not in use yet; spareHi == 0: none
	fetching         bool
}

func newCounters(reserve reserveFunc, block uint64) *counters {
	return &counters{reserve: reserve, block: block, m: map[string]*counter{}}
}

func (cs *counters) next(name string) (uint64, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return 0, ErrClosed
	}
	c := cs.m[name]
	if c == nil {
		c = &counter{}
		cs.m[name] = c
	}
	if c.next >= c.limit {
		if c.spareHi != 0 {
			c.next, c.limit, c.spareHi = c.spareLo, c.spareHi, 0
		} else {
			// While the backend is down, one caller a second waits for
			// it; the others get the last error at once.
			if cs.failErr != nil && time.Since(cs.failedAt) < failFast {
				return 0, cs.failErr
			}
			hi, err := cs.reserve(name, c.limit, cs.block)
			if err != nil {
				cs.failedAt, cs.failErr = time.Now(), err
				return 0, err
			}
			cs.failErr = nil
			c.next, c.limit = hi-cs.block, hi
		}
	}
	c.next++
	if !c.fetching && c.spareHi == 0 && c.limit-c.next <= cs.block/2 {
		c.fetching = true
		cs.wg.Add(1)
		go cs.fetch(name, c, c.limit)
	}
	return c.next, nil
}

func (cs *counters) fetch(name string, c *counter, floor uint64) {
	defer cs.wg.Done()
	hi, err := cs.reserve(name, floor, cs.block)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c.fetching = false
	// A failed fetch is retried by the next exhaustion, which reports the
	// error to its caller. A block below the one in use (a synchronous
	// reservation overtook this one) is dropped: IDs only go up.
	if err == nil && hi-cs.block >= c.limit {
		c.spareLo, c.spareHi = hi-cs.block, hi
	}
}

// close waits for the background reservations.
func (cs *counters) close() {
	cs.mu.Lock()
	cs.closed = true
	cs.mu.Unlock()
	cs.wg.Wait()
}

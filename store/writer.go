package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// key names one object.
type key struct{ kind, id string }

// op is one queued update: value for a Put, del for a Delete.
type op struct {
	kind, id string
	value    []byte
	del      bool
	fresh    bool // a Put of a key the backend cannot hold: a Delete before the commit cancels both
}

// committer writes one batch atomically (or returns an error and writes
// nothing that a retry of the same batch would not overwrite).
type committer interface {
	commit(ops []op) error
}

// writer is the queue between the callers of Put/Delete and the backend: a
// map of the latest update per key (so a batch holds each key once), and one
// goroutine that takes the whole map as one batch, commits it, and on a
// failure puts back what no later update replaced and retries with backoff.
type writer struct {
	c            committer
	log          *logrus.Entry
	max          int
	closeTimeout time.Duration
	groupDelay   time.Duration // let a batch gather before committing it

	mu      sync.Mutex     // guards the fields below; never held across I/O
	pending map[key]op     // latest queued update per key
	spare   map[key]op     // the previous batch's map, emptied, for reuse
	mirror  map[key][]byte // if non-nil: every live key's value (Redis resync)
	// exists holds every key the backend may hold: found at open, or in a
	// batch taken for commit, until a committed Delete. A key outside it
	// that is put and deleted before the next batch (a call set up and torn
	// down within GroupDelay: a CRCX+DLCX load) costs no write at all.
	exists   map[key]struct{}
	seq      uint64        // updates accepted
	durable  uint64        // every update <= durable is committed
	advanced chan struct{} // closed and replaced when durable advances or lost is set
	closed   bool          // Close was called: updates are dropped
	lost     error         // ownership lost: updates are dropped for good
	stats    Stats         // Pending and Committing are computed on read
	inflight int           // keys in the batch being committed

	wake     chan struct{} // cap 1: something was queued
	stop     chan struct{}
	done     chan struct{}
	finalErr error // set by run before done is closed

	ops []op // the batch as a slice, reused (writer goroutine only)
}

func newWriter(c committer, opt Options, mirror bool) *writer {
	w := &writer{
		c:            c,
		log:          opt.Log,
		max:          opt.MaxPending,
		closeTimeout: opt.CloseTimeout,
		groupDelay:   opt.GroupDelay,
		pending:      map[key]op{},
		spare:        map[key]op{},
		exists:       map[key]struct{}{},
		advanced:     make(chan struct{}),
		wake:         make(chan struct{}, 1),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	if mirror {
		w.mirror = map[key][]byte{}
	}
	go w.run()
	return w
}

func (w *writer) put(kind, id string, value []byte, del bool) {
	k := key{kind, id}
	w.mu.Lock()
	if w.closed || w.lost != nil || !validKind(kind) {
		w.stats.Dropped++
		w.stats.WriteErrors++
		w.mu.Unlock()
		return
	}
	prev, queued := w.pending[k]
	fresh := false
	switch {
	case queued && del && prev.fresh: // never written: nothing to write
		delete(w.pending, k)
		w.stats.Coalesced += 2
		if w.mirror != nil {
			delete(w.mirror, k)
		}
		w.seq++
		w.mu.Unlock()
		return
	case queued:
		w.stats.Coalesced++
		fresh = prev.fresh && !del
	case len(w.pending) >= w.max:
		w.stats.Dropped++
		w.stats.WriteErrors++
		w.mu.Unlock()
		return
	default:
		_, may := w.exists[k]
		fresh = !may && !del
	}
	w.pending[k] = op{kind: kind, id: id, value: value, del: del, fresh: fresh}
	if w.mirror != nil {
		if del {
			delete(w.mirror, k)
		} else {
			w.mirror[k] = value
		}
	}
	w.seq++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// resync queues every live key again (the backend lost what it had).
func (w *writer) resync() int {
	w.mu.Lock()
	n := 0
	for k, v := range w.mirror {
		if _, ok := w.pending[k]; !ok {
			w.pending[k] = op{kind: k.kind, id: k.id, value: v}
			n++
		}
	}
	w.seq++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return n
}

// sweep queues the deletion of the ids of kind that the backend holds and
// this gateway does not (deleted while the backend was away).
func (w *writer) sweep(kind string, ids []string) int {
	w.mu.Lock()
	n := 0
	for _, id := range ids {
		k := key{kind, id}
		if _, live := w.mirror[k]; live {
			continue
		}
		if _, queued := w.pending[k]; queued {
			continue
		}
		w.pending[k] = op{kind: kind, id: id, del: true}
		n++
	}
	w.seq++
	w.mu.Unlock()
	return n
}

// seed records what the backend holds at open as live.
func (w *writer) seed(kind, id string, value []byte) {
	w.mu.Lock()
	w.mirror[key{kind, id}] = value
	w.exists[key{kind, id}] = struct{}{}
	w.mu.Unlock()
}

// known records a key the backend holds at open (the file store, which
// keeps no mirror).
func (w *writer) known(kind, id string) {
	w.mu.Lock()
	w.exists[key{kind, id}] = struct{}{}
	w.mu.Unlock()
}

func (w *writer) snapshot() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.Pending = len(w.pending)
	s.Committing = w.inflight
	return s
}

func (w *writer) flush(ctx context.Context) error {
	w.mu.Lock()
	target := w.seq
	for {
		if w.lost != nil {
			w.mu.Unlock()
			return w.lost
		}
		if w.durable >= target {
			w.mu.Unlock()
			return nil
		}
		ch := w.advanced
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("state flush: %w", ctx.Err())
		case <-w.done:
			w.mu.Lock()
			if w.durable < target {
				w.mu.Unlock()
				return ErrClosed
			}
			w.mu.Unlock()
			return nil
		}
		w.mu.Lock()
	}
}

// broadcastLocked wakes the flushers.
func (w *writer) broadcastLocked() {
	close(w.advanced)
	w.advanced = make(chan struct{})
}

// once commits what is queued as one batch.
func (w *writer) once() error {
	w.mu.Lock()
	if w.lost != nil {
		w.mu.Unlock()
		return w.lost
	}
	batch := w.pending
	target := w.seq
	if len(batch) == 0 {
		if w.durable < target {
			w.durable = target
			w.broadcastLocked()
		}
		w.mu.Unlock()
		return nil
	}
	w.pending, w.spare = w.spare, nil
	w.inflight = len(batch)
	for k, o := range batch {
		if !o.del {
			w.exists[k] = struct{}{} // from now on the backend may hold it
		}
	}
	w.mu.Unlock()

	ops := w.ops[:0]
	for _, o := range batch {
		ops = append(ops, o)
	}
	err := w.c.commit(ops)
	clear(ops) // drop the references to the values
	w.ops = ops[:0]

	w.mu.Lock()
	defer w.mu.Unlock()
	w.inflight = 0
	if err != nil {
		w.stats.WriteErrors++
		if errors.Is(err, ErrOwned) {
			w.lost = err
			w.stats.Dropped += uint64(len(batch) + len(w.pending))
			clear(w.pending)
			clear(batch)
			w.spare = batch
			w.broadcastLocked()
			return err
		}
		for k, o := range batch {
			if _, newer := w.pending[k]; !newer {
				o.fresh = false // the failed commit may have written part of it
				w.pending[k] = o
			}
		}
		clear(batch)
		w.spare = batch
		return err
	}
	w.stats.Writes += uint64(len(batch))
	w.stats.Batches++
	for k, o := range batch {
		if o.del {
			delete(w.exists, k)
		}
	}
	clear(batch)
	w.spare = batch
	w.durable = target
	w.broadcastLocked()
	return nil
}

func (w *writer) run() {
	defer close(w.done)
	const minBackoff, maxBackoff = 50 * time.Millisecond, 2 * time.Second
	var (
		backoff      time.Duration
		failures     int
		failingSince time.Time
		lastLog      time.Time
	)
	// wait sleeps d, or reports Close (whose final write then ran).
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-w.stop:
			w.finalErr = w.final()
			return false
		}
	}
	for {
		if backoff > 0 {
			if !wait(backoff) {
				return
			}
		} else {
			select {
			case <-w.wake:
			case <-w.stop:
				w.finalErr = w.final()
				return
			}
			if w.groupDelay > 0 && !wait(w.groupDelay) { // let the batch gather: one commit for many updates
				return
			}
		}
		err := w.once()
		switch {
		case err == nil:
			if failures > 0 {
				w.log.WithField("failed_commits", failures).WithField("after", time.Since(failingSince).Round(time.Millisecond)).
					Info("state writes resumed; what was queued meanwhile is written")
			}
			failures, backoff = 0, 0
		case errors.Is(err, ErrOwned):
			w.log.WithError(err).Error("state ownership lost: this gateway no longer writes its state")
			// Nothing more can be written; wait for Close.
			<-w.stop
			w.finalErr = err
			return
		default:
			now := time.Now()
			if failures == 0 {
				failingSince, lastLog = now, now
				w.log.WithError(err).Error("state write failed; retrying (calls are not affected)")
			} else if now.Sub(lastLog) >= 10*time.Second {
				lastLog = now
				w.log.WithError(err).WithField("failed_commits", failures+1).WithField("pending", w.snapshot().Pending).
					Warn("state writes still failing")
			}
			failures++
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
		}
	}
}

// final commits what is left, retrying until closeTimeout.
func (w *writer) final() error {
	deadline := time.Now().Add(w.closeTimeout)
	for {
		err := w.once()
		w.mu.Lock()
		left := len(w.pending)
		w.mu.Unlock()
		if err == nil && left == 0 {
			return nil
		}
		if errors.Is(err, ErrOwned) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("state: %d updates not written at close: %w", left, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// close stops accepting updates, writes what is queued and stops the goroutine.
func (w *writer) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return ErrClosed
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	return w.finalErr
}

// setLost stops all writing for good: another gateway holds the state.
func (w *writer) setLost(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lost == nil {
		w.lost = err
		w.stats.Dropped += uint64(len(w.pending))
		clear(w.pending)
		w.broadcastLocked()
	}
	select {
	case w.wake <- struct{}{}: // the writer finds it and logs it
	default:
	}
}

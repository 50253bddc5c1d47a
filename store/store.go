// Package store keeps the gateway's table state outside the process, so a
// gateway killed at any moment can restore its calls (DESIGN §10).
//
// A Store is a set of kinds ("conn", "conf", "dialog", ...), each a map from
// an ID to an opaque value the caller encodes, plus named ID counters that
// never repeat across restarts. Put and Delete only queue: a writer goroutine
// commits what is queued in one batch (one bbolt transaction, or one Redis
// pipeline), repeated writes of one key in a batch are coalesced, and a
// failure is counted, reported through Options.Log and retried; the caller
// never waits on I/O and never sees a write error.
//
// Open claims the state: a second gateway on the same file or Redis prefix is
// refused with ErrOwned. The package imports nothing of mediagw's.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// Store is the persisted state of one gateway.
type Store interface {
	// Put queues value as the state of (kind, id). The store keeps value:
	// the caller must not modify it afterwards. Never blocks on I/O; when
	// the queue is full the update is dropped and counted in Stats.
	Put(kind, id string, value []byte)
	// Delete queues the removal of (kind, id).
	Delete(kind, id string)
	// Next returns the next value of the named counter: > every value it
	// returned before, in this process or an earlier one on the same state.
	// It reserves blocks ahead in the background, so it rarely waits on I/O.
	Next(name string) (uint64, error)
	// Kinds lists the kinds that hold at least one committed object.
	Kinds() ([]string, error)
	// ForEach calls fn with every committed object of kind (queued updates
	// not yet written are not seen: call it before the first Put, to restore).
	// fn may call Put, Delete and Next. Records that fail their checksum are
	// skipped and reported in the returned error (errors.Is ErrCorrupt) after
	// every good record was visited; an error from fn stops the walk.
	ForEach(kind string, fn func(id string, value []byte) error) error
	// Counters returns the persisted high-water mark of every counter: the
	// next process's Next returns more than it.
	Counters() (map[string]uint64, error)
	// Flush waits until everything queued before the call is committed.
	Flush(ctx context.Context) error
	// Stats returns the writer's counters.
	Stats() Stats
	// Close writes what is queued (giving up after Options.CloseTimeout),
	// releases the ownership claim and closes the backend.
	Close() error
}

// Stats are the writer's counters, for metrics.
type Stats struct {
	Pending     int    // distinct keys queued and not yet committed
	Committing  int    // keys in the batch being committed now
	Writes      uint64 // updates committed
	Batches     uint64 // commits (bbolt transactions, Redis pipelines)
	Coalesced   uint64 // updates replaced by a later one before they were written
	WriteErrors uint64 // failed commits plus dropped updates: mediagw_state_write_errors_total
	Dropped     uint64 // updates refused: queue full, ownership lost or bad kind
}

// Options tune Open; the zero value is the production setting.
type Options struct {
	// Log receives write failures (rate-limited), recoveries and a lost
	// ownership. nil discards them.
	Log *logrus.Entry
	// ReadOnly opens the state for inspection (gateway -check-state): no
	// ownership claim, no writer, nothing created, moved or written.
	ReadOnly bool
	// MaxPending bounds the queue in distinct keys (default 1<<20).
	MaxPending int
	// LockTimeout is how long Open waits for the file lock (default 500ms).
	LockTimeout time.Duration
	// OwnerTTL is the Redis ownership key's lifetime; it is renewed every
	// third of it (default 10s).
	OwnerTTL time.Duration
	// CloseTimeout bounds the final write in Close (default 5s).
	CloseTimeout time.Duration
	// GroupDelay is how long the writer lets updates gather after the
	// first one before it commits them in one batch (default 10ms): a
	// crash loses at most that much more, and a busy gateway pays one
	// commit (one fsync) per delay instead of one per update. A negative
	// value commits at once.
	GroupDelay time.Duration
	// CounterBlock is how many IDs a counter reserves per write (default 1024).
	CounterBlock uint64
}

func (o *Options) defaults() {
	if o.MaxPending <= 0 {
		o.MaxPending = 1 << 20
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 500 * time.Millisecond
	}
	if o.OwnerTTL <= 0 {
		o.OwnerTTL = 10 * time.Second
	}
	if o.GroupDelay == 0 {
		o.GroupDelay = 10 * time.Millisecond
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 5 * time.Second
	}
	if o.CounterBlock == 0 {
		o.CounterBlock = 1024
	}
	if o.Log == nil {
		l := logrus.New()
		l.Out = discard{}
		o.Log = logrus.NewEntry(l)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Errors, checked with errors.Is.
var (
	// ErrOwned: another gateway holds this state (file lock or Redis owner key).
	ErrOwned = errors.New("state is in use by another gateway")
	// ErrSchema: the state was written by another version of the schema, or
	// is not mediagw state at all; it is left untouched.
	ErrSchema = errors.New("state schema not supported")
	// ErrCorrupt: a file or record that cannot be read back.
	ErrCorrupt = errors.New("state is corrupt")
	// ErrUnavailable: the backend cannot be reached (Redis down).
	ErrUnavailable = errors.New("state store unavailable")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("state store closed")
	// ErrNotFound: a read-only open found no state.
	ErrNotFound = errors.New("no state")
)

// SchemaVersion is the layout this build reads and writes.
const SchemaVersion = 1

// SetAsideError is returned by Open together with a usable, empty store
// when the state file was corrupt: the file was renamed to Aside and a fresh
// one created. It is the only error Open returns with a non-nil Store; the
// caller logs it and goes on.
type SetAsideError struct {
	Path, Aside string
	Cause       error
}

func (e *SetAsideError) Error() string {
	return fmt.Sprintf("state file %s is corrupt (%v): kept aside as %s, starting with an empty state", e.Path, e.Cause, e.Aside)
}

func (e *SetAsideError) Unwrap() []error { return []error{ErrCorrupt, e.Cause} }

// Open opens the configured store. With store: none it returns a store that
// keeps nothing (Next counts from 1 in memory). See SetAsideError for the one
// case where both results are non-nil.
func Open(cfg Config, opt Options) (Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opt.defaults()
	switch cfg.Store {
	case KindFile:
		return OpenFile(cfg.Path, opt)
	case KindRedis:
		return OpenRedis(cfg.Redis, opt)
	default:
		return NewNop(), nil
	}
}

// validKind: kinds are short names used in keys and bucket names.
func validKind(kind string) bool {
	if kind == "" || len(kind) > 64 {
		return false
	}
	for i := 0; i < len(kind); i++ {
		c := kind[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The file layout (bbolt buckets):
//
//	meta      "schema" -> uint32 big endian (SchemaVersion)
//	counters  name -> uint64 big endian high-water mark
//	objects   kind (nested bucket) -> id -> record (record.go)
var (
	bucketMeta     = []byte("meta")
	bucketCounters = []byte("counters")
	bucketObjects  = []byte("objects")
	keySchema      = []byte("schema")
)

// File is the embedded store: one bbolt file, locked by the process that
// opened it for writing.
type File struct {
	db       *bolt.DB
	path     string
	readOnly bool
	w        *writer
	ctr      *counters
	buf      []byte // record arena of the batch being committed (writer goroutine only)
}

// OpenFile opens or creates the state file at path. A file another process
// holds is refused with ErrOwned; a file of another schema with ErrSchema; a
// file that cannot be read is renamed aside and replaced by a fresh one (see
// SetAsideError) unless opt.ReadOnly.
func OpenFile(path string, opt Options) (Store, error) {
	opt.defaults()
	if opt.ReadOnly {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: state file %s does not exist", ErrNotFound, path)
		}
	}
	f, err := openFile(path, opt)
	if err == nil {
		return f, nil
	}
	if opt.ReadOnly || !errors.Is(err, ErrCorrupt) {
		return nil, err
	}
	aside := asideName(path)
	if rerr := os.Rename(path, aside); rerr != nil {
		return nil, fmt.Errorf("%w; moving it aside failed: %v", err, rerr)
	}
	f, err2 := openFile(path, opt)
	if err2 != nil {
		return nil, fmt.Errorf("state file %s was corrupt (%v), kept as %s; a fresh one failed: %w", path, err, aside, err2)
	}
	return f, &SetAsideError{Path: path, Aside: aside, Cause: errors.Unwrap(err)}
}

func asideName(path string) string {
	base := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405Z")
	name := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}

// corruptError marks an error as "the file is unreadable": errors.Is
// ErrCorrupt, and Unwrap gives the cause.
type corruptError struct{ cause error }

func (e *corruptError) Error() string        { return fmt.Sprintf("%v: %v", ErrCorrupt, e.cause) }
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }
func (e *corruptError) Unwrap() error        { return e.cause }

func openFile(path string, opt Options) (*File, error) {
	// bbolt panics on some damaged pages (a garbage freelist) and faults
	// on pages past the end of a truncated file; guard turns both into
	// ErrCorrupt, and the file it opened is closed here, which drops its
	// lock. (The mapping of such a file stays until exit: once per start.)
	var osf *os.File
	var db *bolt.DB
	err := guard(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{
			Timeout:  opt.LockTimeout,
			ReadOnly: opt.ReadOnly,
			OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
				f, err := os.OpenFile(name, flag, perm)
				osf = f
				return f, err
			},
		})
		return err
	})
	var ce *corruptError
	if errors.As(err, &ce) && osf != nil {
		osf.Close()
	}
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("%w: state file %s is locked by another process", ErrOwned, path)
		case errors.As(err, &ce):
			return nil, fmt.Errorf("state file %s: %w", path, err)
		case errors.As(err, &pe), errors.Is(err, fs.ErrPermission), errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("state file %s: %w", path, err)
		}
		// Everything else bbolt refuses is the content: invalid or
		// mismatched meta pages, a file too small, a bad page size.
		return nil, fmt.Errorf("state file %s: %w", path, &corruptError{err})
	}
	f := &File{db: db, path: path, readOnly: opt.ReadOnly}
	if err := f.verify(); err != nil {
		db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if !opt.ReadOnly {
		if err := f.init(); err != nil {
			db.Close()
			return nil, fmt.Errorf("state file %s: %w", path, err)
		}
		f.w = newWriter(f, opt, false)
		if err := f.seedKnown(); err != nil {
			f.w.close()
			db.Close()
			return nil, fmt.Errorf("state file %s: %w", path, err)
		}
	}
	f.ctr = newCounters(f.reserve, opt.CounterBlock)
	return f, nil
}

// guard runs fn and turns a panic or a memory fault (a page past the end of
// a truncated file) into an ErrCorrupt error.
func guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = &corruptError{fmt.Errorf("reading it failed: %v", r)}
		}
	}()
	return fn()
}

// verify reads every page the file claims, so that a damaged file is found
// at open (and set aside) rather than during a restore; it checks the schema.
func (f *File) verify() error {
	return guard(func() error {
		return f.db.View(func(tx *bolt.Tx) error {
			st, err := os.Stat(f.path)
			if err != nil {
				return err
			}
			if st.Size() < tx.Size() {
				return &corruptError{fmt.Errorf("file is %d bytes, its pages need %d (truncated)", st.Size(), tx.Size())}
			}
			meta := tx.Bucket(bucketMeta)
			if meta == nil {
				empty := true
				_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
				if !empty {
					return fmt.Errorf("%w: no schema version: not a mediagw state file (left untouched)", ErrSchema)
				}
				return nil // new file: init writes the schema
			}
			v := meta.Get(keySchema)
			if len(v) != 4 {
				return &corruptError{fmt.Errorf("schema version of %d bytes", len(v))}
			}
			if s := binary.BigEndian.Uint32(v); s != SchemaVersion {
				return fmt.Errorf("%w: the file has schema %d, this build reads %d (left untouched; run the version that wrote it, or remove the file to start empty)", ErrSchema, s, SchemaVersion)
			}
			var walk func(b *bolt.Bucket) error
			walk = func(b *bolt.Bucket) error {
				return b.ForEach(func(k, v []byte) error {
					if v == nil {
						if nb := b.Bucket(k); nb != nil {
							return walk(nb)
						}
					}
					return nil
				})
			}
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b) })
		})
	})
}

func (f *File) init() error {
	return f.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if meta.Get(keySchema) == nil {
			if err := meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, SchemaVersion)); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucketIfNotExists(bucketCounters); err != nil {
			return err
		}
		_, err = tx.CreateBucketIfNotExists(bucketObjects)
		return err
	})
}

// commit writes a batch in one transaction: one fsync for all of it.
func (f *File) commit(ops []op) error {
	// In key order: bbolt appends to its pages instead of splitting them.
	slices.SortFunc(ops, func(a, b op) int {
		if c := strings.Compare(a.kind, b.kind); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	buf := f.buf[:0]
	need := 0
	for i := range ops {
		need += recordHeader + len(ops[i].value)
	}
	if cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	err := f.db.Update(func(tx *bolt.Tx) error {
		objs := tx.Bucket(bucketObjects)
		var b *bolt.Bucket
		var bkind string
		for i := range ops {
			o := &ops[i]
			if b == nil || o.kind != bkind {
				var err error
				if b, err = objs.CreateBucketIfNotExists([]byte(o.kind)); err != nil {
					return err
				}
				bkind = o.kind
			}
			if o.del {
				if err := b.Delete([]byte(o.id)); err != nil {
					return err
				}
				continue
			}
			start := len(buf)
			buf = appendRecord(buf, o.value) // within cap: no reallocation under bbolt's feet
			if err := b.Put([]byte(o.id), buf[start:]); err != nil {
				return err
			}
		}
		return nil
	})
	f.buf = buf[:0]
	return err
}

func (f *File) reserve(name string, floor, n uint64) (uint64, error) {
	if f.readOnly {
		return 0, fmt.Errorf("state file %s: opened read-only", f.path)
	}
	var hi uint64
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		cur := uint64(0)
		if v := b.Get([]byte(name)); len(v) == 8 {
			cur = binary.BigEndian.Uint64(v)
		}
		hi = max(cur, floor) + n
		return b.Put([]byte(name), binary.BigEndian.AppendUint64(nil, hi))
	})
	return hi, err
}

func (f *File) Put(kind, id string, value []byte) {
	if f.w == nil {
		return
	}
	f.w.put(kind, id, value, false)
}

func (f *File) Delete(kind, id string) {
	if f.w == nil {
		return
	}
	f.w.put(kind, id, nil, true)
}

func (f *File) Next(name string) (uint64, error) { return f.ctr.next(name) }

// seedKnown tells the writer every key the file holds (so that a Delete of
// one is never mistaken for that of a key never written).
func (f *File) seedKnown() error {
	return guard(func() error {
		return f.db.View(func(tx *bolt.Tx) error {
			objs := tx.Bucket(bucketObjects)
			if objs == nil {
				return nil
			}
			return objs.ForEach(func(k, v []byte) error {
				b := objs.Bucket(k)
				if v != nil || b == nil {
					return nil
				}
				kind := string(k)
				return b.ForEach(func(id, _ []byte) error {
					f.w.known(kind, string(id))
					return nil
				})
			})
		})
	})
}

func (f *File) Kinds() ([]string, error) {
	var kinds []string
	err := guard(func() error {
		return f.db.View(func(tx *bolt.Tx) error {
			objs := tx.Bucket(bucketObjects)
			if objs == nil {
				return nil
			}
			return objs.ForEach(func(k, v []byte) error {
				if b := objs.Bucket(k); v == nil && b != nil {
					if c, _ := b.Cursor().First(); c != nil {
						kinds = append(kinds, string(k))
					}
				}
				return nil
			})
		})
	})
	sort.Strings(kinds)
	return kinds, err
}

func (f *File) ForEach(kind string, fn func(id string, value []byte) error) error {
	type rec struct {
		id    string
		value []byte
	}
	var recs []rec
	var bad []string
	// Copy out first: fn runs outside the read transaction, so it may call
	// Next (a write transaction) without deadlocking on bbolt's mmap lock.
	err := guard(func() error {
		return f.db.View(func(tx *bolt.Tx) error {
			objs := tx.Bucket(bucketObjects)
			if objs == nil {
				return nil
			}
			b := objs.Bucket([]byte(kind))
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				val, err := decodeRecord(v)
				if err != nil {
					bad = append(bad, fmt.Sprintf("%s/%s: %v", kind, k, err))
					return nil
				}
				recs = append(recs, rec{string(k), bytes.Clone(val)})
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := fn(r.id, r.value); err != nil {
			return err
		}
	}
	return badRecords(bad)
}

func badRecords(bad []string) error {
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d unreadable records skipped: %v", ErrCorrupt, len(bad), bad)
}

func (f *File) Counters() (map[string]uint64, error) {
	out := map[string]uint64{}
	err := guard(func() error {
		return f.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketCounters)
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if len(v) != 8 {
					return &corruptError{fmt.Errorf("counter %q of %d bytes", k, len(v))}
				}
				out[string(k)] = binary.BigEndian.Uint64(v)
				return nil
			})
		})
	})
	return out, err
}

func (f *File) Flush(ctx context.Context) error {
	if f.w == nil {
		return nil
	}
	return f.w.flush(ctx)
}

func (f *File) Stats() Stats {
	if f.w == nil {
		return Stats{}
	}
	return f.w.snapshot()
}

// Close writes what is queued, then closes the file (releasing its lock).
func (f *File) Close() error {
	var err error
	if f.w != nil {
		err = f.w.close()
		if errors.Is(err, ErrClosed) {
			return err
		}
	}
	f.ctr.close()
	return errors.Join(err, f.db.Close())
}

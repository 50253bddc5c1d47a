package store

import (
	"context"
	"sync"
)

// Nop is the store of `state.store: none`: it keeps nothing, and its
// counters start at 1 in every process.
type Nop struct {
	mu  sync.Mutex // guards hi
	hi  map[string]uint64
	ctr *counters
}

// NewNop returns a store that keeps nothing.
func NewNop() *Nop {
	n := &Nop{hi: map[string]uint64{}}
	n.ctr = newCounters(func(name string, floor, k uint64) (uint64, error) {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.hi[name] = max(n.hi[name], floor) + k
		return n.hi[name], nil
	}, 1024)
	return n
}

func (*Nop) Put(kind, id string, value []byte)                                 {}
func (*Nop) Delete(kind, id string)                                            {}
func (n *Nop) Next(name string) (uint64, error)                                { return n.ctr.next(name) }
func (*Nop) Kinds() ([]string, error)                                          { return nil, nil }
func (*Nop) ForEach(kind string, fn func(id string, value []byte) error) error { return nil }
func (*Nop) Counters() (map[string]uint64, error)                              { return map[string]uint64{}, nil }
func (*Nop) Flush(context.Context) error                                       { return nil }
func (*Nop) Stats() Stats                                                      { return Stats{} }
func (n *Nop) Close() error                                                    { n.ctr.close(); return nil }

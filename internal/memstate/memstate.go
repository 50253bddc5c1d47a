// Package memstate is a state store in memory, for the tests of the
// packages that persist their state (session and the fronts): Put, Delete
// and ForEach as a store's, every update committed at once.
package memstate

import (
	"maps"
	"sync"
)

// State holds objects by kind and id.
type State struct {
	mu   sync.Mutex
	objs map[string]map[string][]byte
}

// New returns an empty state.
func New() *State { return &State{objs: map[string]map[string][]byte{}} }

// Put stores v as (kind, id).
func (m *State) Put(kind, id string, v []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs[kind] == nil {
		m.objs[kind] = map[string][]byte{}
	}
	m.objs[kind][id] = v
}

// Delete removes (kind, id).
func (m *State) Delete(kind, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs[kind], id)
}

// ForEach calls fn with every object of kind (on a copy: fn may Put and Delete).
func (m *State) ForEach(kind string, fn func(id string, v []byte) error) error {
	m.mu.Lock()
	objs := maps.Clone(m.objs[kind])
	m.mu.Unlock()
	for id, v := range objs {
		if err := fn(id, v); err != nil {
			return err
		}
	}
	return nil
}

// Get returns (kind, id) and whether it is there.
func (m *State) Get(kind, id string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.objs[kind][id]
	return v, ok
}

// Count is how many objects of kind there are.
func (m *State) Count(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.objs[kind])
}

// Snapshot is a copy: the state as a crash would leave it.
func (m *State) Snapshot() *State {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := New()
	for k, objs := range m.objs {
		c.objs[k] = maps.Clone(objs)
	}
	return c
}

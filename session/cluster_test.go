package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/confbridge"
)

// fakeRegistry is a cluster's registry in memory: claims and each node's
// connections.
type fakeRegistry struct {
	mu     sync.Mutex
	claims map[string]string
	conns  map[string]map[string]bool
}

type fakeNode struct {
	name string
	reg  *fakeRegistry
}

func (n *fakeNode) Name() string { return n.name }
func (n *fakeNode) ClaimConference(_ context.Context, name string) (string, error) {
	n.reg.mu.Lock()
	defer n.reg.mu.Unlock()
	if h, ok := n.reg.claims[name]; ok {
		return h, nil
	}
	n.reg.claims[name] = n.name
	return n.name, nil
}
func (n *fakeNode) ReleaseConference(name string) {
	n.reg.mu.Lock()
	defer n.reg.mu.Unlock()
	if n.reg.claims[name] == n.name {
		delete(n.reg.claims, name)
	}
}
func (n *fakeNode) ConnectionCreated(id string) {
	n.reg.mu.Lock()
	defer n.reg.mu.Unlock()
	if n.reg.conns[n.name] == nil {
		n.reg.conns[n.name] = map[string]bool{}
	}
	n.reg.conns[n.name][id] = true
}
func (n *fakeNode) ConnectionReleased(id string) {
	n.reg.mu.Lock()
	defer n.reg.mu.Unlock()
	delete(n.reg.conns[n.name], id)
}

func clusterTable(t *testing.T, reg *fakeRegistry, name string, index uint64, lo int) *Table {
	t.Helper()
	pool := newPool(t, lo, lo+19)
	engine := confbridge.NewEngine(confbridge.Config{Ptime: 20 * time.Millisecond})
	tab := New(Config{Conference: DefaultConferenceConfig(), Cluster: &fakeNode{name, reg}, IDStride: 1000, IDIndex: index}, pool, engine, nil)
	t.Cleanup(func() { tab.Shutdown(); engine.Close() })
	return tab
}

func TestClusterIDsAndClaims(t *testing.T) {
	reg := &fakeRegistry{claims: map[string]string{}, conns: map[string]map[string]bool{}}
	a := clusterTable(t, reg, "a", 1, 42100)
	b := clusterTable(t, reg, "b", 2, 42140)
	newConn := func(tab *Table) Connection {
		c, err := tab.CreateConnection(ConnectionParams{Remote: remote, Codec: "PCMU", Owner: FrontHTTP})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// IDs are n*1000+index: decimal, and never the same on two nodes.
	ca, cb := newConn(a), newConn(b)
	if ca.ID != "1001" || cb.ID != "1002" {
		t.Fatalf("first IDs %s and %s, want 1001 and 1002", ca.ID, cb.ID)
	}
	if c := newConn(a); c.ID != "2001" {
		t.Fatalf("a's second ID %s, want 2001", c.ID)
	}
	if !reg.conns["a"]["1001"] || !reg.conns["a"]["2001"] || !reg.conns["b"]["1002"] {
		t.Fatalf("registry's connections %v", reg.conns)
	}
	// An unnamed conference's ID carries the node's index too; no claim.
	cf, err := a.CreateConference("", KindConference, "2001", MemberAttrs{})
	if err != nil || cf.ID != "1001" {
		t.Fatalf("a's first unnamed conference %q %v, want 1001", cf.ID, err)
	}
	if len(reg.claims) != 0 {
		t.Fatalf("claims %v for an unnamed conference", reg.claims)
	}
	// A named conference is claimed by its first node; the other is told
	// where it is, with ResultCode 8, and nothing is made there.
	if _, err := a.JoinOrCreate("room", KindConference, ca.ID, MemberAttrs{}); err != nil {
		t.Fatal(err)
	}
	if reg.claims["room"] != "a" {
		t.Fatalf("claims %v", reg.claims)
	}
	_, err = b.JoinOrCreate("room", KindConference, cb.ID, MemberAttrs{})
	var ee *ElsewhereError
	if !errors.As(err, &ee) || ee.Node != "a" || ResultCode(err) != CodeNoResources {
		t.Fatalf("b joins a's room: %v (code %d), want ElsewhereError naming a, code 8", err, ResultCode(err))
	}
	if len(b.Conferences()) != 0 {
		t.Fatal("b made a conference it does not hold")
	}
	if _, err := b.CreateConference("room", KindConference, cb.ID, MemberAttrs{}); !errors.As(err, &ee) {
		t.Fatalf("b creates a's room: %v", err)
	}
	// The release of the conference (its last member left) gives the claim up.
	if _, err := a.DeleteConnection(ca.ID, "", Release{By: FrontHTTP}); err != nil {
		t.Fatal(err)
	}
	if _, held := reg.claims["room"]; held {
		t.Fatalf("claim kept after the conference was released: %v", reg.claims)
	}
	if reg.conns["a"][ca.ID] {
		t.Fatal("released connection still in the registry")
	}
	if _, err := b.JoinOrCreate("room", KindConference, cb.ID, MemberAttrs{}); err != nil || reg.claims["room"] != "b" {
		t.Fatalf("b takes the free room: %v %v", err, reg.claims)
	}
	// A create that fails gives the claim it took back.
	if _, err := a.CreateConference("other", KindConference, "999001", MemberAttrs{}); err == nil {
		t.Fatal("a conference of an unknown connection")
	}
	if _, held := reg.claims["other"]; held {
		t.Fatalf("a failed create kept its claim: %v", reg.claims)
	}
}

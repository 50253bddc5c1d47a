package session

import (
	"context"
	"errors"
	"net/netip"
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
	tables map[string]*Table // by node: Cascade calls the holder's table as its HTTP API would
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

func (n *fakeNode) ConferenceOwner(_ context.Context, name string) (string, error) {
	n.reg.mu.Lock()
	defer n.reg.mu.Unlock()
	return n.reg.claims[name], nil
}

func (n *fakeNode) Cascade(_ context.Context, owner, name string, local netip.AddrPort) (netip.AddrPort, string, error) {
	n.reg.mu.Lock()
	holder := n.reg.tables[owner]
	n.reg.mu.Unlock()
	c, err := holder.CreateConnection(ConnectionParams{Remote: local, Codec: "PCMU", Owner: FrontHTTP, CallID: CascadeCallID(n.name)})
	if err != nil {
		return netip.AddrPort{}, "", err
	}
	if _, err := holder.JoinConference(name, c.ID, MemberAttrs{}); err != nil {
		_, _ = holder.DeleteConnection(c.ID, "", Release{By: FrontHTTP})
		return netip.AddrPort{}, "", err
	}
	return c.Local, c.ID, nil
}

func (n *fakeNode) Uncascade(owner, remoteID string) {
	n.reg.mu.Lock()
	holder := n.reg.tables[owner]
	n.reg.mu.Unlock()
	_, _ = holder.DeleteConnection(remoteID, "", Release{By: FrontHTTP})
}

func clusterTable(t *testing.T, reg *fakeRegistry, name string, index uint64, lo int) *Table {
	t.Helper()
	pool := newPool(t, lo, lo+19)
	engine := confbridge.NewEngine(confbridge.Config{Ptime: 20 * time.Millisecond})
	tab := New(Config{Conference: DefaultConferenceConfig(), Cluster: &fakeNode{name, reg}, IDStride: 1000, IDIndex: index}, pool, engine, nil)
	t.Cleanup(func() { tab.Shutdown(); engine.Close() })
	reg.mu.Lock()
	if reg.tables == nil {
		reg.tables = map[string]*Table{}
	}
	reg.tables[name] = tab
	reg.mu.Unlock()
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
	// (Joining it from b makes a cascade: TestCascade.)
	_, err = b.CreateConference("room", KindConference, cb.ID, MemberAttrs{})
	var ee *ElsewhereError
	if !errors.As(err, &ee) || ee.Node != "a" || ResultCode(err) != CodeNoResources {
		t.Fatalf("b creates a's room: %v (code %d), want ElsewhereError naming a, code 8", err, ResultCode(err))
	}
	if _, err := b.JoinOrCreate("room", KindBridge, cb.ID, MemberAttrs{}); !errors.As(err, &ee) {
		t.Fatalf("b makes a bridge of a's conference's name: %v", err)
	}
	if len(b.Conferences()) != 0 {
		t.Fatal("b made a conference it does not hold")
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

func members(t *testing.T, tab *Table, conf string) []string {
	t.Helper()
	cf, err := tab.Conference(conf)
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range cf.Members {
		out = append(out, m.ConnectionID)
	}
	return out
}

// A member arriving at a node that does not hold its conference joins a
// cascade there, linked to the holder's conference by a member on each
// side; the cascade goes when its last member leaves (the holder's side of
// the link too), when the holder releases the conference (every member of
// the cascade with it), and when either node dies.
func TestCascade(t *testing.T) {
	reg := &fakeRegistry{claims: map[string]string{}, conns: map[string]map[string]bool{}}
	a := clusterTable(t, reg, "a", 1, 42200)
	b := clusterTable(t, reg, "b", 2, 42240)
	a.Subscribe(func(ev Event) { // a's events reach b, as over the cluster's pub/sub
		if ev.Type == ConnectionReleased {
			go b.PeerConnectionReleased("a", ev.Connection.ID)
		}
	})
	newConn := func(tab *Table) string {
		c, err := tab.CreateConnection(ConnectionParams{Remote: remote, Codec: "PCMU", Owner: FrontSIP})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	ma := newConn(a)
	if _, err := a.JoinOrCreate("room", KindConference, ma, MemberAttrs{}); err != nil {
		t.Fatal(err)
	}
	cascadeOnce := func() (mb, link, far string) {
		t.Helper()
		mb = newConn(b)
		cf, err := b.JoinOrCreate("room", KindConference, mb, MemberAttrs{})
		if err != nil {
			t.Fatalf("b joins a's room: %v", err)
		}
		if cf.CascadeOf != "a" || len(cf.Members) != 2 || cf.Members[0].ConnectionID != cf.CascadeLink || cf.Members[1].ConnectionID != mb {
			t.Fatalf("b's cascade: %+v", cf)
		}
		got := members(t, a, "room")
		if len(got) != 2 || got[0] != ma {
			t.Fatalf("a's room: %v", got)
		}
		far = got[1]
		fc, _ := a.Connection(far)
		lc, _ := b.Connection(cf.CascadeLink)
		if fc.CallID != "cascade:b" || fc.Remote != lc.Local || lc.Remote != fc.Local {
			t.Fatalf("the link is not wired end to end: a's %+v, b's %+v", fc, lc)
		}
		return mb, cf.CascadeLink, far
	}
	gone := func(tab *Table, ids ...string) bool {
		for _, id := range ids {
			if _, err := tab.Connection(id); err == nil {
				return false
			}
		}
		return true
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		for i := 0; !ok(); i++ {
			if i == 200 {
				t.Fatalf("timed out: %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// 1. A second member on b joins b's cascade; the last to leave collapses it.
	mb, link, far := cascadeOnce()
	mb2 := newConn(b)
	if cf, err := b.JoinConference("room", mb2, MemberAttrs{}); err != nil || len(cf.Members) != 3 {
		t.Fatalf("a second member on b: %+v %v", cf, err)
	}
	if got := members(t, a, "room"); len(got) != 2 {
		t.Fatalf("a second member on b made a second link: %v", got)
	}
	for _, id := range []string{mb, mb2} {
		if _, err := b.DeleteConnection(id, "", Release{By: FrontSIP}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Conference("room"); err == nil || !gone(b, link) || !gone(a, far) {
		t.Fatalf("cascade not collapsed: b's room %v, link gone %v, far end gone %v", members(t, b, "room"), gone(b, link), gone(a, far))
	}
	if got := members(t, a, "room"); len(got) != 1 || got[0] != ma {
		t.Fatalf("a's room after the collapse: %v", got)
	}

	// 2. The holder releases its conference: the cascade and its members go too.
	mb, link, _ = cascadeOnce()
	if _, err := a.DeleteConnection("", "room", Release{By: FrontHTTP}); err != nil {
		t.Fatal(err)
	}
	wait("b's cascade released after a's room", func() bool { return gone(b, mb, link) })
	if _, err := b.Conference("room"); err == nil {
		t.Fatal("b's cascade outlived a's room")
	}
	if _, held := reg.claims["room"]; held {
		t.Fatal("room still claimed")
	}

	// 3. Nodes die: each side releases its half.
	ma = newConn(a)
	if _, err := a.JoinOrCreate("room", KindConference, ma, MemberAttrs{}); err != nil {
		t.Fatal(err)
	}
	mb, link, far = cascadeOnce()
	a.PeerDown("b")
	if !gone(a, far) || gone(a, ma) {
		t.Fatal("a did not release b's link (only)")
	}
	b.PeerDown("a")
	wait("b's cascade released when a died", func() bool { return gone(b, mb, link) })
}

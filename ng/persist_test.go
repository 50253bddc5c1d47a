package ng

import (
	"context"
	"net"
	"testing"

	"github.com/mediagw/mediagw/internal/memstate"
	"github.com/mediagw/mediagw/session"
)

// A call kept in the state is taken over by a front restored from it: the
// proxy's delete after the restart finds the call and releases both legs,
// an ng connection no call claims is released at the restore, and the
// record goes with the call.
func TestCallRestore(t *testing.T) {
	st := memstate.New()
	r := newRig(t, instant())
	r.srv.mu.Lock()
	r.srv.state = st
	r.srv.mu.Unlock()
	a, b := newPeer(t), newPeer(t)
	setup(t, r, "kept-1", a, b)
	if !has(st, StateCall, "kept-1") {
		t.Fatal("the call was not written")
	}
	stray, err := r.table.CreateConnection(session.ConnectionParams{Codec: "PCMU", Owner: session.FrontNG})
	if err != nil {
		t.Fatal(err)
	}

	s2, err := New(instant(), r.table, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s2.Restore(st)
	if err != nil || rep.Calls != 1 || rep.Released != 1 || rep.Lost != 0 {
		t.Fatalf("restore: %+v %v, want 1 call, 1 released", rep, err)
	}
	if _, err := r.table.Connection(stray.ID); err == nil {
		t.Fatal("the ng connection no call claims is still there")
	}
	pc := listenUDP(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s2.Serve(ctx, pc) }()
	defer func() { cancel(); <-done }()
	q := doNG(t, r.client, pc.LocalAddr().(*net.UDPAddr), "q1", Dict{"command": "query", "call-id": "kept-1"})
	if q["result"] != "ok" {
		t.Fatalf("query after the restore: %v", q)
	}
	del := doNG(t, r.client, pc.LocalAddr().(*net.UDPAddr), "d1", Dict{"command": "delete", "call-id": "kept-1", "from-tag": "fa"})
	if del["result"] != "ok" || del["warning"] != nil {
		t.Fatalf("delete after the restore: %v", del)
	}
	if n := len(r.table.Connections()); n != 0 {
		t.Fatalf("%d connections left after the delete", n)
	}
	if has(st, StateCall, "kept-1") {
		t.Fatal("the deleted call stayed in the state")
	}
}

func has(st *memstate.State, kind, id string) bool {
	_, ok := st.Get(kind, id)
	return ok
}

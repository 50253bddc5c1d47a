package session

import (
	"errors"
	"testing"
)

func TestDrainRefusesNewKeepsOld(t *testing.T) {
	tb := newFixture(t, Resources{}, testPortMin+930, testPortMin+939)
	old, err := tb.CreateConnection(ConnectionParams{Owner: FrontHTTP})
	if err != nil {
		t.Fatal(err)
	}
	if !tb.Drain(true) || !tb.Draining() {
		t.Fatal("Drain(true) did not report draining")
	}
	if _, err := tb.CreateConnection(ConnectionParams{Owner: FrontHTTP}); !errors.Is(err, ErrDraining) || ResultCode(err) != 5 {
		t.Fatalf("create while draining: %v (code %d), want ErrDraining 5", err, ResultCode(err))
	}
	if _, err := tb.Connection(old.ID); err != nil {
		t.Fatalf("the connection in progress went away: %v", err)
	}
	if _, err := tb.ModifyConnection(old.ID, ConnectionParams{Mode: ModeRecvOnly}); err != nil {
		t.Fatalf("modify while draining: %v", err)
	}
	if tb.Drain(false) || tb.Draining() {
		t.Fatal("Drain(false) did not resume")
	}
	c, err := tb.CreateConnection(ConnectionParams{Owner: FrontHTTP})
	if err != nil {
		t.Fatalf("create after resuming: %v", err)
	}
	for _, id := range []string{old.ID, c.ID} {
		if _, err := tb.DeleteConnection(id, "", Release{By: FrontHTTP}); err != nil {
			t.Fatal(err)
		}
	}
	tb.Shutdown()
	if !tb.Drain(false) {
		t.Fatal("Drain(false) undid Shutdown")
	}
}

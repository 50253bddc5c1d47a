package session

import (
	"testing"
	"time"
)

// nextOp waits for the next OperationComplete (other events are skipped).
func (f *fixture) nextOp(t *testing.T) OperationResult {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-f.events:
			if ev.Type == OperationComplete {
				return *ev.Op
			}
		case <-deadline:
			t.Fatal("no OperationComplete")
		}
	}
}

// buffered waits until connection id has n digits buffered.
func (f *fixture) buffered(t *testing.T, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		got := len(f.ops.buf[id])
		f.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d digits buffered, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func keys(t *testing.T, f *fixture, id, s string) {
	t.Helper()
	for i := 0; i < len(s); i++ {
		code, _ := DigitCode(s[i])
		if err := f.ReceiveDigit(id, code); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGatherDigits(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+600, testPortMin+639)
	c := f.conn(t, "PCMU")

	// Digits before the gather are buffered and consumed first; what the
	// gather does not take stays.
	keys(t, f, c.ID, "12#9")
	f.buffered(t, c.ID, 4)
	op, err := f.GatherDigits(c.ID, GatherParams{TermDigit: 11, State: "menu"})
	wantCode(t, err, 0)
	r := f.nextOp(t)
	if r.OperationID != op || r.Digits != "12#" || r.TerminationCondition != TermDigit || r.State != "menu" || r.Action != "GatherDigits" {
		t.Fatalf("buffered gather: %+v", r)
	}
	f.buffered(t, c.ID, 1)

	// maxdigits, with digits arriving during the gather.
	_, err = f.GatherDigits(c.ID, GatherParams{TermDigit: -1, MaxDigits: 3})
	wantCode(t, err, 0)
	keys(t, f, c.ID, "45")
	if r := f.nextOp(t); r.Digits != "945" || r.TerminationCondition != TermMaxDigits {
		t.Fatalf("maxdigits: %+v", r)
	}

	// A second gather while one runs is 14; interdigdelay ends the first.
	_, err = f.GatherDigits(c.ID, GatherParams{TermDigit: -1, InterDigit: 100 * time.Millisecond, MaxTime: 5 * time.Second})
	wantCode(t, err, 0)
	_, err = f.GatherDigits(c.ID, GatherParams{TermDigit: -1, MaxDigits: 1})
	wantCode(t, err, 14)
	keys(t, f, c.ID, "7")
	if r := f.nextOp(t); r.Digits != "7" || r.TerminationCondition != TermInterDigit {
		t.Fatalf("interdigdelay: %+v", r)
	}

	// maxtime with nothing typed.
	_, err = f.GatherDigits(c.ID, GatherParams{TermDigit: -1, MaxTime: 50 * time.Millisecond})
	wantCode(t, err, 0)
	if r := f.nextOp(t); r.Digits != "" || r.TerminationCondition != TermMaxTime || r.Elapsed < 50*time.Millisecond {
		t.Fatalf("maxtime: %+v", r)
	}

	// userstop; a wrong OperationId is 27; no condition is 26; unknown connection 23.
	op, err = f.GatherDigits(c.ID, GatherParams{TermDigit: -1, MaxDigits: 5})
	wantCode(t, err, 0)
	_, err = f.StopMediaOperation(c.ID, "999")
	wantCode(t, err, 27)
	done, err := f.StopMediaOperation(c.ID, op)
	wantCode(t, err, 0)
	if len(done) != 1 || done[0].TerminationCondition != TermUserStop {
		t.Fatalf("userstop: %+v", done)
	}
	if r := f.nextOp(t); r.OperationID != op || r.TerminationCondition != TermUserStop {
		t.Fatalf("userstop event: %+v", r)
	}
	_, err = f.GatherDigits(c.ID, GatherParams{TermDigit: -1})
	wantCode(t, err, 26)
	_, err = f.GatherDigits("424242", GatherParams{MaxDigits: 1, TermDigit: -1})
	wantCode(t, err, 23)
}

// A release ends the connection's gather with autostop, announced before
// its ConnectionReleased.
func TestGatherAutostop(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+600, testPortMin+639)
	c := f.conn(t, "PCMU")
	op, err := f.GatherDigits(c.ID, GatherParams{TermDigit: -1, MaxDigits: 4})
	wantCode(t, err, 0)
	_, err = f.DeleteConnection(c.ID, "", Release{By: FrontHTTP})
	wantCode(t, err, 0)
	var order []EventType
	for len(order) < 2 {
		select {
		case ev := <-f.events:
			order = append(order, ev.Type)
			if ev.Type == OperationComplete && (ev.Op.OperationID != op || ev.Op.TerminationCondition != TermAutoStop) {
				t.Fatalf("autostop: %+v", ev.Op)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("events missing")
		}
	}
	if order[0] != OperationComplete || order[1] != ConnectionReleased {
		t.Fatalf("event order %v", order)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ops.ops) != 0 || len(f.ops.gathers) != 0 || len(f.ops.buf) != 0 {
		t.Fatal("operation state left behind")
	}
}

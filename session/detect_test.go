package session

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/audio"
)

// DetectSilence ends after its time of silence, DetectNonSilence after its
// time of sound (a lone connection: through a lent mixer); one of them
// runs at a time; a stop is userstop.
func TestDetectSilence(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+1140, testPortMin+1149)
	ph := newPhone(t, 0xd)
	c, err := f.CreateConnection(ConnectionParams{Remote: ph.addr(), Codec: "PCMU", Owner: FrontHTTP})
	if err != nil {
		t.Fatal(err)
	}
	var loud atomic.Bool
	tone := audio.NewTone(700, 0, -20, audio.Off)
	ph.src = func(pcm []int16) {
		if loud.Load() {
			tone.Read(pcm)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { pace(stop, map[*phone]netip.AddrPort{ph: c.Local}); close(done) }()
	defer func() { close(stop); <-done }()

	start := time.Now()
	op, err := f.DetectSilence(c.ID, 300*time.Millisecond, "q")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.DetectNonSilence(c.ID, time.Second, ""); ResultCode(err) != 14 {
		t.Fatalf("a second detector: %v", err)
	}
	r := f.nextOp(t)
	if r.OperationID != op || r.TerminationCondition != TermSilence || r.State != "q" || time.Since(start) < 280*time.Millisecond {
		t.Fatalf("%+v after %v", r, time.Since(start))
	}

	op, _ = f.DetectNonSilence(c.ID, 200*time.Millisecond, "")
	time.Sleep(300 * time.Millisecond) // silence: it must not end
	select {
	case ev := <-f.events:
		if ev.Type == OperationComplete {
			t.Fatalf("DetectNonSilence ended on silence: %+v", ev.Op)
		}
	default:
	}
	loud.Store(true)
	if r := f.nextOp(t); r.OperationID != op || r.TerminationCondition != TermNonSilence {
		t.Fatalf("%+v", r)
	}

	op, _ = f.DetectSilence(c.ID, time.Minute, "")
	if done, err := f.StopMediaOperation(c.ID, op); err != nil || len(done) != 1 || done[0].TerminationCondition != TermUserStop {
		t.Fatalf("%v %+v", err, done)
	}
	if _, err := f.DetectSilence(c.ID, 0, ""); ResultCode(err) != 27 {
		t.Fatalf("no time: %v", err)
	}
}

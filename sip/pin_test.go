package sip

import (
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// A conference route with a PIN: the caller is answered but is no member
// (it hears nothing of the conference) until it keys the PIN; three wrong
// entries end the call with a BYE, and the conference never saw it.
func TestConferencePin(t *testing.T) {
	g := startGateway(t, []Route{{Match: `^pin-(?P<id>[0-9]+)$`, Action: ActionConference, Pin: "4711"},
		{Match: `^conf-(?P<id>[0-9a-z]+)$`, Action: ActionConference}})
	key := func(c *call, keys string) {
		t.Helper()
		for _, k := range keys {
			if res := c.do(gosip.INFO, []byte("Signal="+string(k)+"\r\nDuration=100\r\n"), "application/dtmf-relay"); res.StatusCode != 200 {
				t.Fatalf("INFO %c: %d", k, res.StatusCode)
			}
		}
	}
	carol := newPhone(t, "carol", 1000)
	cc := carol.mustDial(g.uri("conf-7"), carol.offer(dirSendRecv)) // already in conference 7, no PIN on this route
	defer cc.hangup()

	alice := newPhone(t, "alice", 500)
	ac := alice.mustDial(g.uri("pin-7"), alice.offer(dirSendRecv))
	defer ac.hangup()
	if cf, _ := g.table.Conference("7"); len(cf.Members) != 1 {
		t.Fatalf("alice joined before keying the PIN: %+v", cf.Members)
	}
	// At the gate: the prompt (a 440 Hz tone), nothing of carol.
	alice.rtp.listen(440, 1000)
	time.Sleep(400 * time.Millisecond)
	if heard, frames := alice.rtp.counts(); heard[0] < 5 || heard[1] > 0 {
		t.Fatalf("alice at the gate heard 440 Hz in %d and carol in %d of %d frames", heard[0], heard[1], frames)
	}
	key(ac, "4711")
	eventually(t, "alice in conference 7", func() bool {
		cf, _ := g.table.Conference("7")
		return len(cf.Members) == 2
	})
	hearsOnly(t, "alice in the conference", alice.rtp, []float64{1000}, []float64{500})

	bob := newPhone(t, "bob", 1600)
	bc := bob.mustDial(g.uri("pin-7"), bob.offer(dirSendRecv))
	for range pinTries - 1 {
		key(bc, "1234")
		time.Sleep(100 * time.Millisecond)
	}
	key(bc, "47#")
	bob.expectBye(t)
	if cf, _ := g.table.Conference("7"); len(cf.Members) != 2 {
		t.Fatalf("members after bob's wrong PINs: %+v", cf.Members)
	}
	for _, c := range g.table.Connections() {
		if c.ConferenceID == "" {
			t.Fatalf("bob's connection outlived his call: %+v", c)
		}
	}
	g.s.mu.Lock()
	gates := len(g.s.pins)
	g.s.mu.Unlock()
	if gates != 0 {
		t.Fatalf("%d PIN gates left", gates)
	}
}

package sip

import (
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

// The DTMF menu: *6 toggles the keying member's own mute (a stray key
// before it does not matter), ## hangs it up; another member is untouched;
// a bad menu entry is refused by Validate.
func TestConferenceMenu(t *testing.T) {
	g := startGatewayConfig(t, Config{Trusted: DefaultTrusted, Menu: map[string]string{"*6": menuMute, "##": menuLeave}}, nil)
	alice, carol := newPhone(t, "alice", 500), newPhone(t, "carol", 1000)
	ac := alice.mustDial(g.uri("conf-menu"), alice.offer(dirSendRecv))
	cc := carol.mustDial(g.uri("conf-menu"), carol.offer(dirSendRecv))
	defer cc.hangup()
	key := func(c *call, keys string) {
		t.Helper()
		for _, k := range keys {
			if res := c.do(gosip.INFO, []byte("Signal="+string(k)+"\r\nDuration=100\r\n"), "application/dtmf-relay"); res.StatusCode != 200 {
				t.Fatalf("INFO %c: %d", k, res.StatusCode)
			}
		}
	}
	muted := func(p *phone) bool {
		cf, _ := g.table.Conference("menu")
		for _, m := range cf.Members {
			if c, _ := g.table.Connection(m.ConnectionID); c.Remote == p.rtp.local() {
				return m.Muted
			}
		}
		t.Fatalf("%s is no member", p.name)
		return false
	}
	hearsOnly(t, "carol before the mute", carol.rtp, []float64{500}, []float64{1000})
	key(ac, "1*6")
	eventually(t, "alice muted", func() bool { return muted(alice) })
	if muted(carol) {
		t.Fatal("carol muted by alice's keys")
	}
	time.Sleep(100 * time.Millisecond) // what was on the way
	carol.rtp.listen(500)
	time.Sleep(400 * time.Millisecond)
	if heard, frames := carol.rtp.counts(); heard[0] > 2 {
		t.Fatalf("carol heard muted alice in %d of %d frames", heard[0], frames)
	}
	key(ac, "*6")
	eventually(t, "alice unmuted", func() bool { return !muted(alice) })
	key(ac, "##")
	alice.expectBye(t)

	for keys, action := range map[string]string{"*6": "deafen", "": menuMute, "*x": menuMute, "123456789": menuMute} {
		if err := (Config{Menu: map[string]string{keys: action}}).Validate(); err == nil {
			t.Errorf("menu %q: %q accepted", keys, action)
		}
	}
}

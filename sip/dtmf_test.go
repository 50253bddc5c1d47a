package sip

import (
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/mediagw/mediagw/session"
)

func TestInfoDigit(t *testing.T) {
	for _, tc := range []struct {
		ct, body  string
		code      byte
		dtmf, bad bool
	}{
		{"application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", 5, true, false},
		{"Application/DTMF-Relay; charset=x", "Duration=100\nsignal = #\n", 11, true, false},
		{"application/dtmf-relay", "Signal=11\r\n", 11, true, false},
		{"application/dtmf", "*", 10, true, false},
		{"application/dtmf", "d", 15, true, false},
		{"application/dtmf-relay", "Signal=X\r\n", 0, true, true},
		{"application/dtmf-relay", "Duration=100\r\n", 0, true, true},
		{"application/dtmf", "12345", 0, true, true},
		{"application/sdp", "v=0", 0, false, false},
		{"", "", 0, false, false},
	} {
		code, dtmf, bad := infoDigit(tc.ct, []byte(tc.body))
		if code != tc.code || dtmf != tc.dtmf || bad != tc.bad {
			t.Errorf("%q %q: code %d dtmf %v bad %v", tc.ct, tc.body, code, dtmf, bad)
		}
	}
}

// A SIP INFO digit from a conference leg is a DigitReceived event of its
// connection, start and end, like an RFC 4733 digit; a bad one is 400.
func TestInfoDigitEvent(t *testing.T) {
	g := startGateway(t, nil)
	events := make(chan session.Event, 16)
	g.table.Subscribe(func(ev session.Event) {
		if ev.Type == session.DigitReceived {
			select {
			case events <- ev:
			default:
			}
		}
	})
	alice := newPhone(t, "alice", 440)
	c := alice.mustDial(g.uri("conf-dtmf"), alice.offer(dirSendRecv))
	defer c.hangup()
	if res := c.do(gosip.INFO, []byte("Signal=#\r\nDuration=160\r\n"), "application/dtmf-relay"); res.StatusCode != 200 {
		t.Fatalf("INFO: %d", res.StatusCode)
	}
	conns := g.table.Connections()
	if len(conns) != 1 {
		t.Fatalf("%d connections", len(conns))
	}
	for _, end := range []bool{false, true} {
		select {
		case ev := <-events:
			if ev.Digit != 11 || ev.DigitEnd != end || ev.Connection.ID != conns[0].ID || ev.ConferenceID != "dtmf" {
				t.Fatalf("event %+v", ev)
			}
		case <-time.After(waitFor):
			t.Fatal("no DigitReceived for the INFO")
		}
	}
	if res := c.do(gosip.INFO, []byte("Signal=Z\r\n"), "application/dtmf-relay"); res.StatusCode != 400 {
		t.Fatalf("bad INFO digit: %d", res.StatusCode)
	}
}

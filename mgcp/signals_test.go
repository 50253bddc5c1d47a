package mgcp

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"
)

// eventsHeard reads RFC 4733 packets (PT 101) arriving at c for d and
// returns the keys in order (one per event timestamp).
func eventsHeard(t *testing.T, c *net.UDPConn, d time.Duration) string {
	t.Helper()
	buf := make([]byte, 2048)
	var keys []byte
	var lastTs uint32
	seen := false
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		_ = c.SetReadDeadline(deadline)
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			break
		}
		if n < 16 || buf[1]&0x7f != 101 {
			continue
		}
		ts := binary.BigEndian.Uint32(buf[4:])
		if !seen || ts != lastTs {
			keys = append(keys, "0123456789*#ABCD"[buf[12]&0x0f])
			lastTs, seen = ts, true
		}
	}
	return string(keys)
}

// RQNT S: D/x sends the digits as RFC 4733 events to the endpoint's
// connections, or to the one @ConnectionId names; a signal on a connection
// on an rtpbridge is sent through a mixer lent for it.
func TestRQNTDigitSignals(t *testing.T) {
	r := newRig(t)
	cc := newConfCall(t, r, 3)
	if resp := r.command(fmt.Sprintf("RQNT 300 %s MGCP 1.0\r\nX: s1\r\nS: D/1, D/#\r\n", cc.ep)); resp.Code != 200 {
		t.Fatalf("RQNT: %d %s", resp.Code, resp.Comment)
	}
	for i, p := range cc.phones {
		if got := eventsHeard(t, p.c, 1500*time.Millisecond); got != "1#" {
			t.Errorf("phone %d heard %q", i, got)
		}
	}
	resp := r.command(fmt.Sprintf("RQNT 301 %s MGCP 1.0\r\nX: s2\r\nS: D/7@%s\r\n", cc.ep, cc.ids[1]))
	if resp.Code != 200 {
		t.Fatalf("RQNT @: %d %s", resp.Code, resp.Comment)
	}
	if got := eventsHeard(t, cc.phones[1].c, time.Second); got != "7" {
		t.Errorf("phone 1 heard %q", got)
	}
	if got := eventsHeard(t, cc.phones[0].c, 300*time.Millisecond); got != "" {
		t.Errorf("phone 0 heard %q sent to phone 1", got)
	}

	// A two-party rtpbridge relays; a mixer is lent to it while it sends.
	pc := listenUDP(t, "127.0.0.1")
	resp = r.command(fmt.Sprintf("CRCX 302 rtpbridge/$@mgw MGCP 1.0\r\nC: c9\r\nM: sendrecv\r\n"+confSDP, pc.LocalAddr().(*net.UDPAddr).Port))
	if resp.Code != 200 {
		t.Fatalf("CRCX rtpbridge: %d", resp.Code)
	}
	ep := resp.Params.Value("Z")
	if resp := r.command(fmt.Sprintf("RQNT 303 %s MGCP 1.0\r\nX: s3\r\nS: D/5\r\n", ep)); resp.Code != 200 {
		t.Fatalf("RQNT S: D/5 on %s: %d %s", ep, resp.Code, resp.Comment)
	}
	if got := eventsHeard(t, pc, time.Second); got != "5" {
		t.Errorf("rtpbridge phone heard %q", got)
	}
}

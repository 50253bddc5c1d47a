package sip

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
)

func parseRequest(t testing.TB, text string) *gosip.Request {
	t.Helper()
	msg, err := gosip.NewParser().ParseSIP([]byte(strings.ReplaceAll(text, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	req, ok := msg.(*gosip.Request)
	if !ok {
		t.Fatalf("not a request: %s", text)
	}
	req.SetSource("127.0.0.1:5099")
	return req
}

// A request and the response built from it have one key; another branch,
// method, Call-ID, tag or CSeq is another transaction; ACK has none.
func TestAnsweredKey(t *testing.T) {
	a := newAnswered()
	base := request("BYE", "x", "127.0.0.1:5060", map[string]string{"Via": "SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1",
		"From": "<sip:a@127.0.0.1>;tag=f1", "Call-ID": "c1", "CSeq": "2 BYE"}, "")
	req := parseRequest(t, base)
	k, ok := a.key(req)
	if !ok {
		t.Fatal("no key for a BYE")
	}
	if rk, ok := a.key(gosip.NewResponseFromRequest(req, 200, "OK", nil)); !ok || rk != k {
		t.Error("the response's key differs from its request's")
	}
	for name, change := range map[string][2]string{
		"branch":  {"branch=z9hG4bK-1", "branch=z9hG4bK-2"},
		"sent-by": {"127.0.0.1:5099;", "127.0.0.1:5098;"},
		"Call-ID": {"Call-ID: c1", "Call-ID: c2"},
		"tag":     {"tag=f1", "tag=f2"},
		"CSeq":    {"CSeq: 2 BYE", "CSeq: 3 BYE"},
		"method":  {"CSeq: 2 BYE", "CSeq: 2 INFO"},
	} {
		other := parseRequest(t, strings.Replace(base, change[0], change[1], 1))
		if k2, _ := a.key(other); k2 == k {
			t.Errorf("another %s, same key", name)
		}
	}
	ack := parseRequest(t, strings.Replace(base, "CSeq: 2 BYE", "CSeq: 2 ACK", 1))
	if _, ok := a.key(ack); ok {
		t.Error("ACK got a key")
	}
}

// Answers live at least 64·T1 and are gone one ring later, bucket by
// bucket, with their chunks reused.
func TestAnsweredExpiry(t *testing.T) {
	a := newAnswered()
	dest := netip.MustParseAddrPort("127.0.0.1:5099")
	t0 := time.Now().UnixNano()
	life := int64(64 * gosip.T1)
	key := func(i int) txKey { return txKey{uint64(i), 1} }
	for i := range 3000 { // several chunks in each of several buckets
		now := t0 + int64(i)*life/1000
		a.putAt(now, key(i), []byte(fmt.Sprintf("SIP/2.0 200 OK %d %s", i, strings.Repeat("x", 100))), dest)
	}
	end := t0 + 2999*life/1000
	for i := range 3000 {
		put := t0 + int64(i)*life/1000
		wire, to, ok := a.getAt(end, key(i))
		switch {
		case end-put <= life && !ok:
			t.Fatalf("answer %d gone after %v", i, time.Duration(end-put))
		case end-put > life+2*int64(a.span) && ok:
			t.Fatalf("answer %d kept after %v", i, time.Duration(end-put))
		case ok && (to != dest || !bytes.HasPrefix(wire, []byte(fmt.Sprintf("SIP/2.0 200 OK %d ", i)))):
			t.Fatalf("answer %d: %q to %v", i, wire, to)
		}
	}
	if _, _, ok := a.getAt(end+2*life, key(2999)); ok || a.len() != 0 {
		t.Errorf("%d answers left after two lifetimes", a.len())
	}
	end += 2 * life
	// After the burst, one small answer per span: the burst's chunks go
	// back to the system (cold) and are used again, intact, by the next burst.
	for i := range 2 * ringBuckets {
		a.putAt(end+int64(i)*int64(a.span), key(10000+i), []byte("small"), dest)
	}
	a.mu.Lock()
	cold := len(a.cold)
	a.mu.Unlock()
	if cold == 0 {
		t.Error("no chunk released after the burst")
	}
	later := end + 2*ringBuckets*int64(a.span)
	for i := range 3000 {
		a.putAt(later, key(20000+i), []byte(fmt.Sprintf("burst %d %s", i, strings.Repeat("y", 100))), dest)
	}
	for i := range 3000 {
		if wire, _, ok := a.getAt(later, key(20000+i)); !ok || !bytes.HasPrefix(wire, []byte(fmt.Sprintf("burst %d ", i))) {
			t.Fatalf("second burst, answer %d: %q %v", i, wire, ok)
		}
	}
	// An idle ring empties at once; a later put starts afresh.
	a.putAt(end+10*life, key(1), []byte("again"), dest)
	if wire, _, ok := a.getAt(end+10*life+1, key(1)); !ok || string(wire) != "again" {
		t.Errorf("after idle: %q %v", wire, ok)
	}
}

// rawUA speaks SIP from one UDP socket, message by message.
type rawUA struct {
	t     testing.TB
	c     net.Conn
	local string
}

func newRawUA(t testing.TB, addr string) *rawUA {
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawUA{t: t, c: c, local: c.LocalAddr().String()}
}

func (u *rawUA) send(msg string) {
	u.t.Helper()
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, "LOCAL", u.local), "\n", "\r\n")
	if _, err := u.c.Write([]byte(msg)); err != nil {
		u.t.Fatal(err)
	}
}

// read returns the next response that is not a 100 Trying.
func (u *rawUA) read() string {
	u.t.Helper()
	buf := make([]byte, 8192)
	for {
		_ = u.c.SetReadDeadline(time.Now().Add(waitFor))
		n, err := u.c.Read(buf)
		if err != nil {
			u.t.Fatalf("no response: %v", err)
		}
		if res := string(buf[:n]); statusOf(res) != 100 {
			return res
		}
	}
}

func toTag(t testing.TB, res string) string {
	t.Helper()
	_, after, _ := strings.Cut(res, "\r\nTo: ")
	line, _, _ := strings.Cut(after, "\r\n")
	_, tag, ok := strings.Cut(line, ";tag=")
	if !ok {
		t.Fatalf("no To-tag in\n%s", res)
	}
	return tag
}

// dialogRequest is an in-dialog request of the call that INVITE inv set up.
func dialogRequest(method, inv, tag string, cseq int, branch string) string {
	msg := strings.Replace(inv, "INVITE sip:", method+" sip:", 1)
	msg = strings.Replace(msg, "\nContent-Type: application/sdp", "", 1)
	msg = msg[:strings.Index(msg, "\nContent-Length:")] + "\nContent-Length: 0\n\n"
	msg = strings.Replace(msg, "CSeq: 1 INVITE", fmt.Sprintf("CSeq: %d %s", cseq, method), 1)
	_, after, _ := strings.Cut(msg, "\nTo: ")
	to, _, _ := strings.Cut(after, "\n")
	msg = strings.Replace(msg, "\nTo: "+to, "\nTo: "+to+";tag="+tag, 1)
	_, after, _ = strings.Cut(msg, ";branch=")
	old, _, _ := strings.Cut(after, "\n")
	return strings.Replace(msg, ";branch="+old, ";branch="+branch, 1)
}

// A retransmitted INVITE, after its 2xx went out (so after sipgo's
// transaction ended), gets the same 2xx again and sets up no second call;
// a retransmitted BYE gets the same 200 again, not a 481.
func TestRetransmissionsAnsweredAgain(t *testing.T) {
	g := startGateway(t, nil)
	u := newRawUA(t, g.udp)
	inv := request("INVITE", "echo", g.udp, nil, goodSDP)
	u.send(inv)
	ok := u.read()
	if statusOf(ok) != 200 {
		t.Fatalf("INVITE: %s", ok)
	}
	u.send(inv)
	if again := u.read(); again != ok {
		t.Errorf("retransmitted INVITE answered\n%s\nnot\n%s", again, ok)
	}
	if n := g.s.Calls(); n != 1 {
		t.Errorf("%d calls after a retransmitted INVITE, want 1", n)
	}
	tag := toTag(t, ok)
	u.send(dialogRequest("ACK", inv, tag, 1, "z9hG4bK-ack1"))
	bye := dialogRequest("BYE", inv, tag, 2, "z9hG4bK-bye1")
	u.send(bye)
	done := u.read()
	if statusOf(done) != 200 || !strings.Contains(done, "CSeq: 2 BYE") {
		t.Fatalf("BYE: %s", done)
	}
	g.idle(t)
	u.send(bye)
	if again := u.read(); again != done {
		t.Errorf("retransmitted BYE answered\n%s\nnot\n%s", again, done)
	}
	if n := g.metric("mediagw_sip_requests_total", "method", "BYE"); n != 1 {
		t.Errorf("BYE counted %v times, want 1 (retransmissions are not requests)", n)
	}
	if n := g.s.answered.len(); n != 2 {
		t.Errorf("%d answers remembered, want 2 (the INVITE's 2xx and the BYE's 200)", n)
	}
}

// An ACK that reuses the INVITE's branch (not RFC 3261, but seen) still
// confirms the call, though sipgo's INVITE transaction has ended.
func TestAckWithInviteBranch(t *testing.T) {
	g := startGateway(t, nil)
	u := newRawUA(t, g.udp)
	inv := request("INVITE", "echo", g.udp, nil, goodSDP)
	u.send(inv)
	ok := u.read()
	tag := toTag(t, ok)
	_, after, _ := strings.Cut(inv, ";branch=")
	branch, _, _ := strings.Cut(after, "\n")
	u.send(dialogRequest("ACK", inv, tag, 1, branch))
	eventually(t, "call confirmed", func() bool {
		l := g.s.leg(tag)
		if l == nil {
			return false
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.state == stateConfirmed
	})
	u.send(dialogRequest("BYE", inv, tag, 2, "z9hG4bK-bye2"))
	if res := u.read(); statusOf(res) != 200 {
		t.Fatalf("BYE: %s", res)
	}
	g.idle(t)
}

// udpListener reports a datagram's source as net.UDPAddr would, for IPv4
// and IPv6, and keeps one address per source.
func TestUDPListenerSource(t *testing.T) {
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		pc, err := net.ListenPacket("udp", network)
		if err != nil {
			t.Skipf("%s: %v", network, err) // no IPv6 on this host
		}
		l := &udpListener{UDPConn: pc.(*net.UDPConn), peers: make(map[netip.AddrPort]*peerAddr)}
		c, err := net.Dial("udp", pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		var first net.Addr
		for range 2 {
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			_ = l.SetReadDeadline(time.Now().Add(waitFor))
			buf := make([]byte, 16)
			n, src, err := l.ReadFrom(buf)
			if err != nil || n != 1 {
				t.Fatalf("%s: read %d %v", network, n, err)
			}
			if src.String() != c.LocalAddr().String() || src.Network() != "udp" {
				t.Errorf("%s: source %s %s, want %s", network, src.Network(), src, c.LocalAddr())
			}
			if first == nil {
				first = src
			} else if src != first {
				t.Errorf("%s: a second address for one source", network)
			}
		}
		c.Close()
		pc.Close()
	}
}

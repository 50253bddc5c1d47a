package mgcp

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/session"
)

// A conference call for notification tests: three MGCP connections on one
// cnf endpoint, each with a phone (a UDP socket) that sends RFC 4733
// telephone-events (PT 101) into the real mixer, whose DigitReceived
// events the front must turn into NTFY.
type confCall struct {
	r      *rig
	ep     string // "cnf/1@mgw"
	ids    []string
	phones []*phone
}

type phone struct {
	t    *testing.T
	c    *net.UDPConn
	dst  *net.UDPAddr
	seq  uint16
	ts   uint32
	ssrc uint32
}

const confSDP = "\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"

func newConfCall(t *testing.T, r *rig, members int) *confCall {
	t.Helper()
	cc := &confCall{r: r, ep: "cnf/$@mgw"}
	for i := 0; i < members; i++ {
		pc := listenUDP(t, "127.0.0.1")
		resp := r.command(fmt.Sprintf("CRCX %d %s MGCP 1.0\r\nC: call1\r\nM: confrnce\r\n"+confSDP,
			700+i, cc.ep, pc.LocalAddr().(*net.UDPAddr).Port))
		if resp.Code != 200 {
			t.Fatalf("CRCX member %d: %d", i, resp.Code)
		}
		if z := resp.Params.Value("Z"); z != "" {
			cc.ep = z
		}
		id := resp.Params.Value("I")
		conn, err := r.table.Connection(id)
		if err != nil {
			t.Fatal(err)
		}
		cc.ids = append(cc.ids, id)
		cc.phones = append(cc.phones, &phone{t: t, c: pc, dst: net.UDPAddrFromAddrPort(conn.Local), ts: 1000 * uint32(i+1), ssrc: 0x1000 + uint32(i)})
	}
	return cc
}

// digit sends one RFC 4733 event: three packets of the tone under way,
// then its end three times (as RFC 4733 §2.5.1.4 asks), all with one
// timestamp; the next digit gets a new one.
func (p *phone) digit(d byte) {
	p.t.Helper()
	code, ok := symOf(d)
	if !ok || code > 15 {
		p.t.Fatalf("no DTMF event for %q", d)
	}
	p.ts += 8000
	pkt := make([]byte, 16)
	for i := 0; i < 6; i++ {
		pkt[0], pkt[1] = 0x80, 101
		if i == 0 {
			pkt[1] |= 0x80 // marker: a new event
		}
		p.seq++
		binary.BigEndian.PutUint16(pkt[2:], p.seq)
		binary.BigEndian.PutUint32(pkt[4:], p.ts)
		binary.BigEndian.PutUint32(pkt[8:], p.ssrc)
		pkt[12] = byte(code)
		pkt[13] = 10
		if i >= 3 {
			pkt[13] |= 0x80
		}
		binary.BigEndian.PutUint16(pkt[14:], uint16(160*min(i+1, 4)))
		if _, err := p.c.WriteToUDP(pkt, p.dst); err != nil {
			p.t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *phone) dial(digits string) {
	for i := 0; i < len(digits); i++ {
		p.digit(digits[i])
		time.Sleep(30 * time.Millisecond)
	}
}

// ntfy reads the next NTFY at the call agent (other datagrams are
// failures) and answers it with code (0: no answer).
func (r *rig) ntfy(code int) *Command {
	r.t.Helper()
	dg := r.read()
	c, err := ParseCommand([]byte(dg))
	if err != nil || c.Verb != "NTFY" {
		r.t.Fatalf("expected a NTFY, got %q (%v)", dg, err)
	}
	if code != 0 {
		r.send(r.ca, fmt.Sprintf("%03d %d OK\r\n", code, c.TransID))
	}
	return c
}

// quiet asserts that nothing new reaches the call agent for d: copies of
// gateway commands already read (retransmissions sent before the answer
// reached the gateway, on a loaded machine) are let through.
func (r *rig) quiet(d time.Duration) {
	r.t.Helper()
	r.silence(d, true)
}

// silence fails on any datagram within d (skipSeen: but known commands).
func (r *rig) silence(d time.Duration, skipSeen bool) {
	r.t.Helper()
	buf := make([]byte, 65536)
	end := time.Now().Add(d)
	for {
		_ = r.ca.SetReadDeadline(end)
		n, _, err := r.ca.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if skipSeen && r.seen[string(buf[:n])] {
			continue
		}
		r.t.Fatalf("unexpected datagram: %q", buf[:n])
	}
}

func wantNtfy(t *testing.T, c *Command, ep, x, o string) {
	t.Helper()
	if c.Endpoint != ep || c.Params.Value("X") != x || c.Params.Value("O") != o {
		t.Fatalf("NTFY %s X: %q O: %q; want %s X: %q O: %q", c.Endpoint, c.Params.Value("X"), c.Params.Value("O"), ep, x, o)
	}
}

func metricValue(t *testing.T, r *rig, result string) float64 {
	return counter(t, r.srv.met.notify.WithLabelValues(result))
}

// waitMetric polls mediagw_mgcp_notify_total{result} until it reaches
// want (the server takes the call agent's answer on its own goroutine).
func waitMetric(t *testing.T, r *rig, result string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, r, result) != want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := metricValue(t, r, result); got != want {
		t.Fatalf("mediagw_mgcp_notify_total{result=%q} = %v, want %v", result, got, want)
	}
}

// R: D/[0-9#*](N): one NTFY per digit, to the N: entity, with X: and O:;
// in loop mode they keep coming, in step mode (the default) the next digit
// waits in quarantine for the next request.
func TestNotifyEachDigit(t *testing.T) {
	r := newRig(t)
	cc := newConfCall(t, r, 3)
	caPort := r.ca.LocalAddr().(*net.UDPAddr).Port
	if resp := r.command(fmt.Sprintf("RQNT 10 %s MGCP 1.0\r\nN: ca@[127.0.0.1]:%d\r\nX: 77a\r\nR: D/[0-9#*](N)\r\nQ: loop\r\n", cc.ep, caPort)); resp.Code != 200 {
		t.Fatalf("RQNT: %d", resp.Code)
	}
	cc.phones[1].dial("19#*")
	for _, d := range []string{"1", "9", "#", "*"} {
		c := r.ntfy(200)
		wantNtfy(t, c, cc.ep, "77a", "D/"+d)
		if n := c.Params.Value("N"); n != fmt.Sprintf("ca@[127.0.0.1]:%d", caPort) {
			t.Fatalf("NTFY N: %q", n)
		}
	}
	r.quiet(300 * time.Millisecond) // once per digit, though start and end were both announced

	// Step mode: one notification, then quarantine until the next RQNT.
	if resp := r.command(fmt.Sprintf("RQNT 11 %s MGCP 1.0\r\nX: s1\r\nR: D/[0-9#*](N)\r\n", cc.ep)); resp.Code != 200 {
		t.Fatalf("RQNT: %d", resp.Code)
	}
	cc.phones[0].dial("5")
	wantNtfy(t, r.ntfy(200), cc.ep, "s1", "D/5")
	cc.phones[2].dial("6")
	r.quiet(400 * time.Millisecond)
	if got := r.command(fmt.Sprintf("AUEP 12 %s MGCP 1.0\r\nF: X, R\r\n", cc.ep)); got.Params.Value("X") != "s1" || got.Params.Value("R") != "" {
		t.Fatalf("AUEP after a step notification: %v", got.Params)
	}
	// The quarantined digit is processed by the new request: its NTFY
	// follows the response to the RQNT.
	got := r.exchange(r.ca, fmt.Sprintf("RQNT 13 %s MGCP 1.0\r\nX: s2\r\nR: D/[0-9#*](N)\r\n", cc.ep))
	if len(got) != 2 || !strings.HasPrefix(got[0], "200 13 ") {
		t.Fatalf("RQNT with a quarantined digit: %q", got)
	}
	c, err := ParseCommand([]byte(got[1]))
	if err != nil {
		t.Fatal(err)
	}
	wantNtfy(t, c, cc.ep, "s2", "D/6")
	r.send(r.ca, fmt.Sprintf("200 %d OK\r\n", c.TransID))
	// Q: discard drops what was quarantined.
	cc.phones[2].dial("7")
	time.Sleep(300 * time.Millisecond)
	if resp := r.command(fmt.Sprintf("RQNT 14 %s MGCP 1.0\r\nX: s3\r\nR: D/[0-9#*](N)\r\nQ: discard\r\n", cc.ep)); resp.Code != 200 {
		t.Fatalf("RQNT: %d", resp.Code)
	}
	cc.phones[2].dial("8")
	wantNtfy(t, r.ntfy(200), cc.ep, "s3", "D/8")
	waitMetric(t, r, "ok", 7)
}

// T: (DetectEvents) says what is kept in quarantine between a step
// notification and the next request: here # but not the digits.
func TestNotifyDetectEvents(t *testing.T) {
	r := newRig(t)
	cc := newConfCall(t, r, 3)
	r.command(fmt.Sprintf("RQNT 15 %s MGCP 1.0\r\nX: d1\r\nR: D/[0-9#](N)\r\nT: D/#\r\n", cc.ep))
	cc.phones[0].dial("1")
	wantNtfy(t, r.ntfy(200), cc.ep, "d1", "D/1")
	cc.phones[0].dial("2#3")
	time.Sleep(300 * time.Millisecond)
	if aud := r.command(fmt.Sprintf("AUEP 16 %s MGCP 1.0\r\nF: T\r\n", cc.ep)); aud.Params.Value("T") != "D/#" {
		t.Fatalf("AUEP T: %q", aud.Params.Value("T"))
	}
	got := r.exchange(r.ca, fmt.Sprintf("RQNT 17 %s MGCP 1.0\r\nX: d2\r\nR: D/[0-9#](N)\r\nQ: loop\r\n", cc.ep))
	if len(got) != 2 {
		t.Fatalf("after RQNT 17: %q", got)
	}
	c, _ := ParseCommand([]byte(got[1]))
	wantNtfy(t, c, cc.ep, "d2", "D/#")
	r.send(r.ca, fmt.Sprintf("200 %d OK\r\n", c.TransID))
	r.quiet(300 * time.Millisecond)
}

// A digit map collects the dialled string into one NTFY; the long timer
// ends a partial string with D/T; AUEP reports the request.
func TestNotifyDigitMap(t *testing.T) {
	r := newRig(t, rigOption{srv: func(s *Server) {
		// Generous: a digit delayed longer than the long timer on a loaded
		// machine would end the string early.
		s.digitTimers = digitTimers{start: time.Minute, short: 400 * time.Millisecond, long: 2 * time.Second}
	}})
	cc := newConfCall(t, r, 3)
	rqnt := func(tid int, x string) {
		t.Helper()
		if resp := r.command(fmt.Sprintf("RQNT %d %s MGCP 1.0\r\nX: %s\r\nR: D/[0-9#*T](D)\r\nD: (xxxx|*xx)\r\n", tid, cc.ep, x)); resp.Code != 200 {
			t.Fatalf("RQNT: %d", resp.Code)
		}
	}
	rqnt(20, "dm1")
	aud := r.command(fmt.Sprintf("AUEP 21 %s MGCP 1.0\r\nF: R, S, X, N, D\r\n", cc.ep))
	for _, want := range []Param{{"R", "D/[0-9#*T](D)"}, {"S", ""}, {"X", "dm1"}, {"N", "ca@" + bracket(addrPort(r.ca.LocalAddr()))}, {"D", "(xxxx|*xx)"}} {
		if got, ok := aud.Params.Get(want.Name); !ok || got != want.Value {
			t.Fatalf("AUEP %s: %q, want %q (%v)", want.Name, got, want.Value, aud.Params)
		}
	}
	cc.phones[0].dial("1234")
	wantNtfy(t, r.ntfy(200), cc.ep, "dm1", "D/1,D/2,D/3,D/4")
	rqnt(22, "dm2")
	cc.phones[1].dial("*12")
	wantNtfy(t, r.ntfy(200), cc.ep, "dm2", "D/*,D/1,D/2")
	rqnt(23, "dm3")
	cc.phones[2].dial("12")
	wantNtfy(t, r.ntfy(200), cc.ep, "dm3", "D/1,D/2,D/T") // the long timer
	rqnt(24, "dm4")
	cc.phones[2].dial("#")
	wantNtfy(t, r.ntfy(200), cc.ep, "dm4", "D/#") // no pattern can match: at once
}

// The start timer reports D/T when nothing is dialled; the short timer
// ends a string that matches while a longer one still could.
func TestNotifyDigitMapTimers(t *testing.T) {
	r := newRig(t, rigOption{srv: func(s *Server) {
		s.digitTimers = digitTimers{start: 1500 * time.Millisecond, short: 400 * time.Millisecond, long: 10 * time.Second}
	}})
	cc := newConfCall(t, r, 3)
	start := time.Now()
	if resp := r.command(fmt.Sprintf("RQNT 30 %s MGCP 1.0\r\nX: t1\r\nR: D/[0-9T](D)\r\nD: (12|123x)\r\n", cc.ep)); resp.Code != 200 {
		t.Fatalf("RQNT: %d", resp.Code)
	}
	wantNtfy(t, r.ntfy(200), cc.ep, "t1", "D/T")
	if d := time.Since(start); d < 1400*time.Millisecond {
		t.Fatalf("start timer fired after %v", d)
	}
	if resp := r.command(fmt.Sprintf("RQNT 31 %s MGCP 1.0\r\nX: t2\r\nR: D/[0-9T](D)\r\n", cc.ep)); resp.Code != 200 {
		t.Fatalf("RQNT: %d", resp.Code) // the digit map stays from before
	}
	cc.phones[0].dial("12")
	wantNtfy(t, r.ntfy(200), cc.ep, "t2", "D/1,D/2") // 12 matched; 123x could follow: short timer
}

// NTFY is retransmitted with RFC 3435 backoff until the call agent
// answers; its 200 stops it.
func TestNotifyRetransmitted(t *testing.T) {
	r := newRig(t)
	cc := newConfCall(t, r, 3)
	r.command(fmt.Sprintf("RQNT 40 %s MGCP 1.0\r\nX: re\r\nR: D/[0-9](N)\r\nQ: loop\r\n", cc.ep))
	cc.phones[0].dial("3")
	buf := make([]byte, 65536)
	var first string
	var at []time.Time
	for len(at) < 4 {
		_ = r.ca.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := r.ca.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("after %d copies: %v", len(at), err)
		}
		if first == "" {
			first = string(buf[:n])
		} else if string(buf[:n]) != first {
			t.Fatalf("retransmission differs:\n%q\n%q", first, buf[:n])
		}
		at = append(at, time.Now())
	}
	// 200, 400, 800 ms: the first gap is not measured (the copy may be read late).
	if g2, g3 := at[2].Sub(at[1]), at[3].Sub(at[2]); g2 < 300*time.Millisecond || g3 < 600*time.Millisecond {
		t.Fatalf("retransmission gaps %v, %v: want ~400 ms then ~800 ms (doubling from 200 ms)", g2, g3)
	}
	c, _ := ParseCommand([]byte(first))
	wantNtfy(t, c, cc.ep, "re", "D/3")
	r.send(r.ca, fmt.Sprintf("200 %d OK\r\n", c.TransID))
	waitMetric(t, r, "ok", 1)
	r.seen[first] = true
	r.quiet(200 * time.Millisecond)         // a copy already on its way may still arrive
	r.silence(2500*time.Millisecond, false) // the next copy was due 1.6 s after the fourth
	// An error answer ends it too, counted as an error.
	cc.phones[0].dial("4")
	c = r.ntfy(0)
	r.send(r.ca, fmt.Sprintf("500 %d Endpoint unknown\r\n", c.TransID))
	waitMetric(t, r, "error", 1)
	r.quiet(200 * time.Millisecond)
	r.silence(1500*time.Millisecond, false)
}

// A call agent that never answers: the NTFY is given up (timeout), and
// the next notification of the endpoint goes out after it.
func TestNotifyTimeout(t *testing.T) {
	r := newRig(t, rigOption{srv: func(s *Server) {
		s.ntfyBackoff = ntfyBackoff{initial: 20 * time.Millisecond, max: 40 * time.Millisecond, tmax: 5 * time.Second, retries: 3}
	}})
	cc := newConfCall(t, r, 3)
	r.command(fmt.Sprintf("RQNT 50 %s MGCP 1.0\r\nX: to\r\nR: D/[0-9](N)\r\nQ: loop\r\n", cc.ep))
	cc.phones[0].dial("12")
	wantNtfy(t, r.ntfy(0), cc.ep, "to", "D/1") // r.read skips its retransmissions
	c := r.ntfy(200)                           // the second waited for the first to time out
	wantNtfy(t, c, cc.ep, "to", "D/2")
	waitMetric(t, r, "ok", 1)
	waitMetric(t, r, "timeout", 1)
}

// A new RQNT replaces the request: its X: and its events.
func TestNotifyReplacedByNewRequest(t *testing.T) {
	r := newRig(t)
	cc := newConfCall(t, r, 3)
	r.command(fmt.Sprintf("RQNT 60 %s MGCP 1.0\r\nX: old\r\nR: D/1(N)\r\nQ: loop\r\n", cc.ep))
	r.command(fmt.Sprintf("RQNT 61 %s MGCP 1.0\r\nX: new\r\nR: D/2(N)\r\nQ: loop\r\n", cc.ep))
	cc.phones[0].dial("12")
	wantNtfy(t, r.ntfy(200), cc.ep, "new", "D/2")
	// An empty R: stops detection.
	r.command(fmt.Sprintf("RQNT 62 %s MGCP 1.0\r\nX: none\r\nR:\r\n", cc.ep))
	cc.phones[0].dial("2")
	r.quiet(400 * time.Millisecond)
}

// @ConnectionId limits an event to one connection and names it in O:;
// CRCX carries a request whose @$ is the connection it creates.
func TestNotifyConnectionQualifier(t *testing.T) {
	r := newRig(t)
	cc := newConfCall(t, r, 3)
	r.command(fmt.Sprintf("RQNT 70 %s MGCP 1.0\r\nX: q\r\nR: D/[0-9]@%s(N)\r\nQ: loop\r\n", cc.ep, cc.ids[1]))
	cc.phones[0].dial("1")
	cc.phones[1].dial("2")
	wantNtfy(t, r.ntfy(200), cc.ep, "q", "D/2@"+cc.ids[1])

	pc := listenUDP(t, "127.0.0.1")
	resp := r.command(fmt.Sprintf("CRCX 71 %s MGCP 1.0\r\nC: call1\r\nM: confrnce\r\nX: c4\r\nR: D/[0-9]@$(N)\r\nQ: loop\r\n"+confSDP, cc.ep, pc.LocalAddr().(*net.UDPAddr).Port))
	if resp.Code != 200 {
		t.Fatalf("CRCX with a request: %d", resp.Code)
	}
	id := resp.Params.Value("I")
	conn, _ := r.table.Connection(id)
	p4 := &phone{t: t, c: pc, dst: net.UDPAddrFromAddrPort(conn.Local), ssrc: 0x4444}
	cc.phones[1].dial("3")
	p4.dial("4")
	wantNtfy(t, r.ntfy(200), cc.ep, "c4", "D/4@"+id)

	// MDCX carries one too.
	if resp := r.command(fmt.Sprintf("MDCX 72 %s MGCP 1.0\r\nC: call1\r\nI: %s\r\nX: m1\r\nR: D/[0-9](N)\r\n", cc.ep, cc.ids[2])); resp.Code != 200 {
		t.Fatalf("MDCX with a request: %d", resp.Code)
	}
	cc.phones[2].dial("9")
	wantNtfy(t, r.ntfy(200), cc.ep, "m1", "D/9")
}

// E(...): # arms the digits; until then they are not requested.
func TestNotifyEmbeddedRequest(t *testing.T) {
	r := newRig(t)
	cc := newConfCall(t, r, 3)
	r.command(fmt.Sprintf("RQNT 80 %s MGCP 1.0\r\nX: e1\r\nR: D/#(A,E(R(D/[0-9](N),D/*(I))))\r\n", cc.ep))
	cc.phones[0].dial("1")
	cc.phones[0].dial("#")
	deadline := time.Now().Add(5 * time.Second)
	for tid := 810; ; tid++ { // a new transaction ID each time: responses are cached
		aud := r.command(fmt.Sprintf("AUEP %d %s MGCP 1.0\r\nF: R, O, Q\r\n", tid, cc.ep))
		if aud.Params.Value("R") == "D/[0-9](N), D/*(I)" {
			if o, q := aud.Params.Value("O"), aud.Params.Value("Q"); o != "D/#" || q != "process,step" {
				t.Fatalf("AUEP O: %q Q: %q, want D/# (accumulated) and process,step", o, q)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("embedded request not installed: R: %q", aud.Params.Value("R"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cc.phones[0].dial("*5")
	wantNtfy(t, r.ntfy(200), cc.ep, "e1", "D/#,D/5")
}

// Requests die with their endpoint: DLCX, or the last connection released
// by another front; signals, unsupported packages and events are refused
// and nothing is created.
func TestNotifyEndpointLifecycleAndRefusals(t *testing.T) {
	r := newRig(t)
	cc := newConfCall(t, r, 3)
	r.command(fmt.Sprintf("RQNT 90 %s MGCP 1.0\r\nX: gone\r\nR: D/[0-9](N)\r\nD: xx\r\n", cc.ep))
	for _, id := range cc.ids {
		if _, err := r.table.DeleteConnection(id, "", session.Release{By: session.FrontSIP, Reason: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	r.drain() // the gateway's DLCXs
	if got := r.command(fmt.Sprintf("AUEP 91 %s MGCP 1.0\r\nF: X\r\n", cc.ep)); got.Code != 500 {
		t.Fatalf("AUEP of an ended conference: %d", got.Code)
	}
	local := strings.TrimSuffix(cc.ep, "@mgw")
	if resp := r.command(fmt.Sprintf("CRCX 92 %s MGCP 1.0\r\nC: c2\r\nM: confrnce\r\n", cc.ep)); resp.Code != 200 {
		t.Fatalf("CRCX: %d", resp.Code)
	}
	got := r.command(fmt.Sprintf("AUEP 93 %s MGCP 1.0\r\nF: X, R, D\r\n", cc.ep))
	if got.Params.Value("X") != "" || got.Params.Value("R") != "" || got.Params.Value("D") != "" {
		t.Fatalf("%s came back with the old request: %v", local, got.Params)
	}
	before := len(r.table.Connections())
	tid := 940
	for _, c := range []struct {
		params string
		code   int
	}{
		{"X: s\r\nS: D/DO\r\n", 513},
		{"X: s\r\nR: D/1(N)\r\nS: A/ann(welcome.wav)\r\n", 514},
		{"X: s\r\nS: A/ann\r\n", 538},
		{"X: s\r\nR: D/1(N,E(S(A/ann(x.wav))))\r\n", 513},
		{"X: s\r\nS: Q/beep\r\n", 518},
		{"X: s\r\nS: D/beep\r\n", 522},
		{"X: s\r\nR: FOO/x(N)\r\n", 518},
		{"X: s\r\nR: D/q(N)\r\n", 522},
		{"X: s\r\nR: G/ft(N)\r\n", 512},
		{"X: s\r\nR: D/1(N,E(S(G/rt)))\r\n", 513},
		{"X: s\r\nR: D/1(S)\r\n", 523},
		{"X: s\r\nR: D/1(N)(foo=1)\r\n", 538},
	} {
		tid++
		resp := r.command(fmt.Sprintf("CRCX %d %s MGCP 1.0\r\nC: c3\r\nM: confrnce\r\n%s", tid, cc.ep, c.params))
		if resp.Code != c.code {
			t.Errorf("CRCX with %q: %d, want %d", c.params, resp.Code, c.code)
		}
	}
	if n := len(r.table.Connections()); n != before {
		t.Fatalf("refused CRCXs left %d connections", n-before)
	}
}

// RFC 3435 §4.3: 200 ms, doubling, at most 4 s between copies.
func TestNtfyBackoff(t *testing.T) {
	var got []time.Duration
	for n := 0; n <= defaultNtfyBackoff.retries; n++ {
		got = append(got, defaultNtfyBackoff.wait(n))
	}
	want := []time.Duration{200, 400, 800, 1600, 3200, 4000, 4000, 4000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
}

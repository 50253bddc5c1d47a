package sip

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

const goodSDP = `v=0
o=t 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 33990 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
`

// request is the text of a request from a test client (LOCAL is replaced
// by its address); headers replace or (with value "") remove defaults.
func request(method, user, host string, hdrs map[string]string, body string) string {
	branch := fmt.Sprintf("z9hG4bK-%d", rand.Uint64())
	def := []struct{ k, v string }{
		{"Via", "SIP/2.0/UDP LOCAL;branch=" + branch},
		{"From", "<sip:tester@LOCAL>;tag=t" + fmt.Sprint(rand.Uint32())},
		{"To", "<sip:" + user + "@" + host + ">"},
		{"Call-ID", fmt.Sprintf("c%d@test", rand.Uint64())},
		{"CSeq", "1 " + method},
		{"Contact", "<sip:tester@LOCAL>"},
		{"Max-Forwards", "70"},
	}
	if body != "" {
		def = append(def, struct{ k, v string }{"Content-Type", "application/sdp"})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:%s@%s SIP/2.0\n", method, user, host)
	seen := map[string]bool{}
	for _, h := range def {
		v := h.v
		if o, ok := hdrs[h.k]; ok {
			v = o
		}
		seen[h.k] = true
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\n", h.k, v)
		}
	}
	for k, v := range hdrs {
		if !seen[k] && v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	body = strings.ReplaceAll(body, "\n", "\r\n")
	fmt.Fprintf(&b, "Content-Length: %d\n\n", len(body))
	return b.String() + strings.ReplaceAll(body, "\r\n", "\n")
}

// Bad requests get 400 (or the precise 4xx) and allocate nothing.
func TestBadRequestsAllocateNothing(t *testing.T) {
	g := startGateway(t, nil)
	cases := []struct {
		name string
		user string
		hdrs map[string]string
		body string
		want int
	}{
		{"no Contact", "conf-1", map[string]string{"Contact": ""}, goodSDP, 400},
		{"From without tag", "conf-1", map[string]string{"From": "<sip:x@LOCAL>"}, goodSDP, 400},
		{"no Call-ID", "conf-1", map[string]string{"Call-ID": ""}, goodSDP, 400},
		{"garbage SDP", "conf-1", nil, "hello\n", 400},
		{"SDP payload type not a number", "conf-1", nil, strings.Replace(goodSDP, "RTP/AVP 0 101", "RTP/AVP zero", 1), 400},
		{"SDP bad rtpmap", "conf-1", nil, strings.Replace(goodSDP, "PCMU/8000", "PCMU", 1), 400},
		{"SDP port out of range", "conf-1", nil, strings.Replace(goodSDP, "33990", "70000", 1), 400},
		{"SDP without c=", "conf-1", nil, strings.Replace(goodSDP, "c=IN IP4 127.0.0.1\n", "", 1), 400},
		{"body not SDP", "conf-1", map[string]string{"Content-Type": "text/plain"}, goodSDP, 415},
		{"no audio", "conf-1", nil, strings.Replace(goodSDP, "m=audio", "m=video", 1), 488},
		{"SRTP only", "conf-1", nil, strings.Replace(goodSDP, "RTP/AVP", "RTP/SAVP", 1), 488},
		{"no common codec", "conf-1", nil, strings.Replace(strings.Replace(goodSDP, "RTP/AVP 0 101", "RTP/AVP 18", 1), "a=rtpmap:0 PCMU/8000\n", "", 1), 488},
		{"hostname in c=", "conf-1", nil, strings.Replace(goodSDP, "c=IN IP4 127.0.0.1", "c=IN IP4 phone.example.net", 1), 488},
		{"no route", "nobody", nil, goodSDP, 404},
		{"bad conference id", "conf-" + strings.Repeat("x", 65), nil, goodSDP, 404},
		{"tel URI", "conf-1", nil, goodSDP, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := request("INVITE", c.user, g.udp, c.hdrs, c.body)
			if c.name == "tel URI" {
				msg = strings.Replace(msg, "INVITE sip:conf-1@"+g.udp, "INVITE tel:+15551234", 1)
			}
			res := raw(t, g.udp, msg, true)
			if got := statusOf(res); got != c.want {
				t.Fatalf("status %d, want %d\n%s", got, c.want, res)
			}
			if n := len(g.table.Connections()); n != 0 {
				t.Errorf("%d connections allocated", n)
			}
			if g.pool.FreePairs() != g.pool.Pairs() || g.s.Calls() != 0 {
				t.Error("ports or call legs held after a refused INVITE")
			}
		})
	}
}

func TestRejectRoute(t *testing.T) {
	g := startGateway(t, append([]Route{{Match: `^blocked$`, Action: ActionReject, Code: 486},
		{Match: `^denied$`, Action: ActionReject}}, DefaultRoutes()...))
	for user, want := range map[string]int{"blocked": 486, "denied": 403} {
		res := raw(t, g.udp, request("INVITE", user, g.udp, nil, goodSDP), true)
		if got := statusOf(res); got != want {
			t.Errorf("%s: %d, want %d", user, got, want)
		}
	}
	g.idle(t)
}

func TestOptionsAndHeaders(t *testing.T) {
	g := startGateway(t, nil)
	res := raw(t, g.udp, request("OPTIONS", "anyone", g.udp, nil, ""), true)
	if statusOf(res) != 200 {
		t.Fatalf("OPTIONS: %s", res)
	}
	for _, h := range []string{"Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, REFER, NOTIFY, INFO, UPDATE", "Server: mediagw", "Supported:", "Accept: application/sdp"} {
		if !strings.Contains(res, h) {
			t.Errorf("OPTIONS response lacks %q:\n%s", h, res)
		}
	}
	// The 100 Trying comes at once, and responses carry Server.
	trying := raw(t, g.udp, request("INVITE", "nobody", g.udp, nil, goodSDP), false)
	if statusOf(trying) != 100 {
		t.Errorf("first response %d, want 100", statusOf(trying))
	}
	if n := g.metric("mediagw_sip_requests_total", "method", "OPTIONS"); n != 1 {
		t.Errorf("OPTIONS counted %v times", n)
	}
	if n := g.metric("mediagw_sip_responses_total", "code", "100"); n != 1 {
		t.Errorf("100 counted %v times", n)
	}
}

// With sip.trying: when_needed, an INVITE answered at once gets its final
// response with no 100 Trying before it (RFC 3261 17.2.1).
func TestTryingWhenNeeded(t *testing.T) {
	g := startGatewayConfig(t, Config{Trusted: DefaultTrusted, Trying: TryingWhenNeeded}, nil)
	final := raw(t, g.udp, request("INVITE", "nobody", g.udp, nil, goodSDP), false)
	if statusOf(final) != 404 {
		t.Errorf("first response to an INVITE of nobody:\n%s\nwant 404", final)
	}
	if n := g.metric("mediagw_sip_responses_total", "code", "100"); n != 0 {
		t.Errorf("100 counted %v times, want none", n)
	}
}

// A bridged INVITE gets its 100 Trying at once, before the gateway calls
// the callee (here one that never answers), not from sipgo's 200 ms timer:
// when the callee's INVITE arrives, the 100 is already waiting at the
// caller (both go over loopback, which delivers in order of sending).
// Both settings of sip.trying.
func TestBridgeTryingAtOnce(t *testing.T) {
	for _, trying := range []string{TryingAlways, TryingWhenNeeded} {
		t.Run(trying, func(t *testing.T) { bridgeTryingAtOnce(t, trying) })
	}
}

func bridgeTryingAtOnce(t *testing.T, trying string) {
	callee, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer callee.Close()
	g := startGatewayConfig(t, Config{Trusted: DefaultTrusted, Trying: trying},
		[]Route{{Match: `^bob$`, Action: ActionBridge, Target: "sip:bob@" + callee.LocalAddr().String()}})
	c, err := net.Dial("udp", g.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := strings.ReplaceAll(request("INVITE", "bob", g.udp, nil, goodSDP), "LOCAL", c.LocalAddr().String())
	if _, err := c.Write([]byte(strings.ReplaceAll(msg, "\n", "\r\n"))); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8192)
	_ = callee.SetReadDeadline(time.Now().Add(waitFor))
	if n, _, err := callee.ReadFrom(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "INVITE ") {
		t.Fatalf("the callee got %q, %v; want the bridged INVITE", buf[:n], err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)) // already queued, or it was not sent first
	n, err := c.Read(buf)
	if err != nil || statusOf(string(buf[:n])) != 100 {
		t.Fatalf("at the caller when the callee was called: %q, %v; want 100 Trying", buf[:n], err)
	}
}

// Requests in a dialog we do not know get 481; unknown methods 405.
func TestOutOfDialog(t *testing.T) {
	g := startGateway(t, nil)
	for _, m := range []string{"BYE", "INFO", "UPDATE", "REFER", "NOTIFY", "CANCEL"} {
		hdrs := map[string]string{"To": "<sip:x@" + g.udp + ">;tag=nosuchtag"}
		if m == "REFER" {
			hdrs["Refer-To"] = "<sip:conf-1@" + g.udp + ">"
		}
		if m == "CANCEL" {
			hdrs = nil
		}
		res := raw(t, g.udp, request(m, "x", g.udp, hdrs, ""), true)
		if got := statusOf(res); got != 481 {
			t.Errorf("%s outside a dialog: %d, want 481", m, got)
		}
	}
	// re-INVITE of an unknown dialog
	res := raw(t, g.udp, request("INVITE", "conf-1", g.udp, map[string]string{"To": "<sip:conf-1@" + g.udp + ">;tag=gone"}, goodSDP), true)
	if got := statusOf(res); got != 481 {
		t.Errorf("re-INVITE of unknown dialog: %d, want 481", got)
	}
	if got := statusOf(raw(t, g.udp, request("SUBSCRIBE", "x", g.udp, nil, ""), true)); got != 405 {
		t.Errorf("SUBSCRIBE: %d, want 405", got)
	}
	g.idle(t)
}

// A re-INVITE and a REFER with bad content are refused and leave the call
// as it was.
func TestBadInDialogRequests(t *testing.T) {
	g := startGateway(t, nil)
	p := newPhone(t, "p", 400)
	c := p.mustDial(g.uri("conf-bad"), p.offer(dirSendRecv))
	if res := c.do("INVITE", []byte("v=0\r\nnonsense\r\n"), "application/sdp"); res.StatusCode != 400 {
		t.Errorf("re-INVITE with bad SDP: %d, want 400", res.StatusCode)
	}
	if res := c.do("INVITE", p.offer(dirSendRecv, format{PT: 18, Name: "G729", Rate: 8000}), "application/sdp"); res.StatusCode != 488 {
		t.Errorf("re-INVITE without a usable codec: %d, want 488", res.StatusCode)
	}
	if res := c.do("REFER", nil, ""); res.StatusCode != 400 {
		t.Errorf("REFER without Refer-To: %d, want 400", res.StatusCode)
	}
	if res := c.do("REFER", nil, "", gosipHeader("Refer-To", "<tel:+123>")); res.StatusCode != 400 {
		t.Errorf("REFER to tel: %d, want 400", res.StatusCode)
	}
	if res := c.do("UPDATE", p.offer(dirSendOnly), "application/sdp"); res.StatusCode != 200 {
		t.Errorf("UPDATE hold: %d", res.StatusCode)
	} else if ans, err := parseSDP(res.Body()); err != nil || ans.Dir != dirRecvOnly {
		t.Errorf("UPDATE answer %v %v, want recvonly", ans, err)
	}
	if res := c.do("INFO", []byte("Signal=5\r\nDuration=160\r\n"), "application/dtmf-relay"); res.StatusCode != 200 {
		t.Errorf("INFO: %d", res.StatusCode)
	}
	if cf, err := g.table.Conference("bad"); err != nil || len(cf.Members) != 1 {
		t.Errorf("the call did not stay: %+v %v", cf, err)
	}
	c.hangup()
	g.idle(t)
}

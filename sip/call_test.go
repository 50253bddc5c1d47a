package sip

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/mediagw/mediagw/session"
)

// Three SIP legs in one conference: each hears the other two, not itself
// (N−1 mixing); hanging up releases everything.
func TestConferenceThreeLegsMix(t *testing.T) {
	g := startGateway(t, nil)
	tones := []float64{400, 1000, 1600}
	var phones []*phone
	var calls []*call
	for i, f := range tones {
		p := newPhone(t, fmt.Sprintf("p%d", i), f)
		phones = append(phones, p)
		calls = append(calls, p.mustDial(g.uri("conf-mix"), p.offer(dirSendRecv)))
	}
	cf, err := g.table.Conference("mix")
	if err != nil || len(cf.Members) != 3 || !cf.Mixing {
		t.Fatalf("conference mix = %+v, %v; want 3 mixing members", cf, err)
	}
	for i, p := range phones {
		var others []float64
		for j, f := range tones {
			if j != i {
				others = append(others, f)
			}
		}
		hearsOnly(t, p.name, p.rtp, others, []float64{tones[i]})
	}
	for _, c := range calls {
		c.hangup()
	}
	g.idle(t)
	if n := g.metric("mediagw_sip_requests_total", "method", "BYE"); n != 3 {
		t.Errorf("BYE counted %v times, want 3", n)
	}
}

// A bridge call: the caller and the target hear each other through the
// RTP proxy; the caller's BYE hangs up the target.
func TestBridgeCall(t *testing.T) {
	caller := newPhone(t, "alice", 400)
	callee := newPhone(t, "bob", 1000)
	g := startGateway(t, []Route{{Match: `^(?P<user>bob)$`, Action: ActionBridge, Target: "sip:${user}@" + callee.addr}})
	c := caller.mustDial(g.uri("bob"), caller.offer(dirSendRecv))
	hearsOnly(t, "bob", callee.rtp, []float64{400}, []float64{1000})
	hearsOnly(t, "alice", caller.rtp, []float64{1000}, []float64{400})
	if confs := g.table.Conferences(); len(confs) != 1 || confs[0].Kind != session.KindBridge {
		t.Errorf("conferences = %+v, want one bridge", confs)
	}
	// SIP INFO (DTMF relay) passes through to the other party.
	if res := c.do(gosip.INFO, []byte("Signal=5\r\nDuration=160\r\n"), "application/dtmf-relay"); res.StatusCode != 200 {
		t.Errorf("INFO through the bridge: %d", res.StatusCode)
	}
	select {
	case b := <-callee.infos:
		if !strings.Contains(b, "Signal=5") {
			t.Errorf("callee got INFO %q", b)
		}
	case <-time.After(waitFor):
		t.Error("INFO did not reach the callee")
	}
	c.hangup()
	callee.expectBye(t)
	g.idle(t)
}

// The target's BYE hangs up the caller too.
func TestBridgeTargetHangsUp(t *testing.T) {
	caller := newPhone(t, "alice", 400)
	callee := newPhone(t, "bob", 1000)
	g := startGateway(t, []Route{{Match: `^bob$`, Action: ActionBridge, Target: "sip:bob@" + callee.addr}})
	caller.mustDial(g.uri("bob"), caller.offer(dirSendRecv))
	callee.hangupAnswered(t)
	caller.expectBye(t)
	g.idle(t)
}

// A failing target's status reaches the caller; nothing stays allocated.
func TestBridgeTargetBusy(t *testing.T) {
	caller := newPhone(t, "alice", 400)
	callee := newPhone(t, "bob", 1000)
	callee.setAnswer(486)
	g := startGateway(t, []Route{{Match: `^bob$`, Action: ActionBridge, Target: "sip:bob@" + callee.addr}})
	c, res := caller.dial(g.uri("bob"), caller.offer(dirSendRecv))
	if c != nil || res.StatusCode != 486 {
		t.Fatalf("got call %v / %v, want 486", c, res)
	}
	g.idle(t)
}

// CANCEL of a ringing bridge call cancels the target's INVITE too.
func TestBridgeCancelWhileRinging(t *testing.T) {
	caller := newPhone(t, "alice", 400)
	callee := newPhone(t, "bob", 1000)
	callee.setAnswer(180)
	g := startGateway(t, []Route{{Match: `^bob$`, Action: ActionBridge, Target: "sip:bob@" + callee.addr}})
	ctx, cancel := testCtx()
	d, err := caller.dc.Invite(ctx, g.uri("bob"), caller.offer(dirSendRecv), gosip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	wctx, wcancel := testCtx()
	defer wcancel()
	go func() {
		answered <- d.WaitAnswer(ctx, answerOpts(func(r *gosip.Response) {
			if r.StatusCode == 180 {
				cancel() // the caller gives up while it rings
			}
		}))
	}()
	select {
	case <-callee.cancels:
	case <-wctx.Done():
		t.Fatal("target's INVITE was not cancelled")
	}
	<-answered
	g.idle(t)
}

// Transfer: in a bridge alice–bob, alice refers the gateway to carol; bob
// then hears carol, alice gets NOTIFY 100 and 200 and a BYE.
func TestTransferToExternalTarget(t *testing.T) {
	alice := newPhone(t, "alice", 400)
	bob := newPhone(t, "bob", 1000)
	carol := newPhone(t, "carol", 1600)
	g := startGateway(t, []Route{{Match: `^bob$`, Action: ActionBridge, Target: "sip:bob@" + bob.addr}})
	c := alice.mustDial(g.uri("bob"), alice.offer(dirSendRecv))
	hearsOnly(t, "bob", bob.rtp, []float64{400}, nil)

	res := c.do(gosip.REFER, nil, "", gosip.NewHeader("Refer-To", "<"+uriString(carol.uri())+">"))
	if res.StatusCode != 202 {
		t.Fatalf("REFER: %d, want 202", res.StatusCode)
	}
	if n := alice.expectNotify(t); !strings.HasPrefix(n, "SIP/2.0 100") {
		t.Errorf("first NOTIFY %q, want 100 Trying", n)
	}
	if n := alice.expectNotify(t); !strings.HasPrefix(n, "SIP/2.0 200") {
		t.Errorf("final NOTIFY %q, want 200 OK", n)
	}
	alice.expectBye(t)
	hearsOnly(t, "bob", bob.rtp, []float64{1600}, []float64{400})
	hearsOnly(t, "carol", carol.rtp, []float64{1000}, nil)
	if n := len(g.table.Connections()); n != 2 {
		t.Errorf("%d connections after transfer, want 2 (bob, carol)", n)
	}
	// bob hangs up: carol is hung up too.
	bob.hangupAnswered(t)
	carol.expectBye(t)
	g.idle(t)
}

// A failed transfer target: NOTIFY carries its status, the referrer stays.
func TestTransferTargetFails(t *testing.T) {
	alice := newPhone(t, "alice", 400)
	carol := newPhone(t, "carol", 1600)
	carol.setAnswer(486)
	g := startGateway(t, nil)
	c := alice.mustDial(g.uri("conf-t"), alice.offer(dirSendRecv))
	if res := c.do(gosip.REFER, nil, "", gosip.NewHeader("Refer-To", uriString(carol.uri()))); res.StatusCode != 202 {
		t.Fatalf("REFER: %d", res.StatusCode)
	}
	alice.expectNotify(t)
	if n := alice.expectNotify(t); !strings.HasPrefix(n, "SIP/2.0 486") {
		t.Errorf("final NOTIFY %q, want 486", n)
	}
	if cf, err := g.table.Conference("t"); err != nil || len(cf.Members) != 1 {
		t.Errorf("referrer left its conference: %+v %v", cf, err)
	}
	c.hangup()
	g.idle(t)
}

// REFER from a conference leg to another of our conferences, as phones do
// it (RFC 4579 §5.5: the gateway is the focus): the conferences are linked
// (alice in a and bob in b hear each other), alice stays until she hangs
// up, as a transferor does, and her leaving collapses a and the link. A
// REFER to a conference that does not exist is NOTIFY 404, and nothing
// changes.
func TestTransferToOwnConference(t *testing.T) {
	alice := newPhone(t, "alice", 400)
	bob := newPhone(t, "bob", 1000)
	carol := newPhone(t, "carol", 1600)
	g := startGateway(t, nil)
	ca := alice.mustDial(g.uri("conf-a"), alice.offer(dirSendRecv))
	cb := bob.mustDial(g.uri("conf-b"), bob.offer(dirSendRecv))
	cc := carol.mustDial(g.uri("conf-b"), carol.offer(dirSendRecv))
	to := g.uri("conf-b")
	if res := ca.do(gosip.REFER, nil, "", gosip.NewHeader("Refer-To", "<"+uriString(to)+">")); res.StatusCode != 202 {
		t.Fatalf("REFER: %d", res.StatusCode)
	}
	alice.expectNotify(t)
	if n := alice.expectNotify(t); !strings.HasPrefix(n, "SIP/2.0 200") {
		t.Fatalf("final NOTIFY %q, want 200", n)
	}
	cf, err := g.table.Conference("a")
	if err != nil || len(cf.Members) != 1 || len(cf.Links) != 1 || cf.Links[0] != "b" {
		t.Fatalf("conference a = %+v, %v; want alice, linked to b", cf, err)
	}
	hearsOnly(t, "bob", bob.rtp, []float64{400, 1600}, []float64{1000})
	hearsOnly(t, "alice", alice.rtp, []float64{1000, 1600}, []float64{400})

	nowhere := g.uri("conf-nowhere")
	if res := ca.do(gosip.REFER, nil, "", gosip.NewHeader("Refer-To", "<"+uriString(nowhere)+">")); res.StatusCode != 202 {
		t.Fatalf("REFER: %d", res.StatusCode)
	}
	alice.expectNotify(t)
	if n := alice.expectNotify(t); !strings.HasPrefix(n, "SIP/2.0 404") {
		t.Fatalf("final NOTIFY %q for a conference that does not exist, want 404", n)
	}

	ca.hangup() // the transferor hangs up: a and its link go, b stays whole
	eventually(t, "conference a released", func() bool { _, err := g.table.Conference("a"); return err != nil })
	if cf, err := g.table.Conference("b"); err != nil || len(cf.Members) != 2 || len(cf.Links) != 0 {
		t.Fatalf("conference b = %+v, %v; want bob and carol, no link", cf, err)
	}
	hearsOnly(t, "bob", bob.rtp, []float64{1600}, []float64{400, 1000})
	cb.hangup()
	cc.hangup()
	g.idle(t)
}

// REFER from a conference leg to an outside party: the party is invited
// into the conference and the referrer stays in it.
func TestReferFromConferenceInvitesTarget(t *testing.T) {
	alice := newPhone(t, "alice", 400)
	carol := newPhone(t, "carol", 1600)
	g := startGateway(t, nil)
	ca := alice.mustDial(g.uri("conf-inv"), alice.offer(dirSendRecv))
	if res := ca.do(gosip.REFER, nil, "", gosip.NewHeader("Refer-To", "<"+uriString(carol.uri())+">")); res.StatusCode != 202 {
		t.Fatalf("REFER: %d", res.StatusCode)
	}
	alice.expectNotify(t)
	if n := alice.expectNotify(t); !strings.HasPrefix(n, "SIP/2.0 200") {
		t.Fatalf("final NOTIFY %q, want 200", n)
	}
	if cf, err := g.table.Conference("inv"); err != nil || len(cf.Members) != 2 {
		t.Fatalf("conference inv = %+v, %v; want alice and carol", cf, err)
	}
	hearsOnly(t, "alice", alice.rtp, []float64{1600}, []float64{400})
	hearsOnly(t, "carol", carol.rtp, []float64{400}, []float64{1600})
	ca.hangup()
	carol.hangupAnswered(t)
	g.idle(t)
}

// A conference released over the table (as the HTTP API or an MGCP DLCX
// does) hangs up its SIP legs with BYE.
func TestConferenceReleasedByOtherFront(t *testing.T) {
	g := startGateway(t, nil)
	a := newPhone(t, "a", 400)
	b := newPhone(t, "b", 1000)
	a.mustDial(g.uri("conf-x"), a.offer(dirSendRecv))
	b.mustDial(g.uri("conf-x"), b.offer(dirSendRecv))
	d, err := g.table.DeleteConnection("", "x", session.Release{By: session.FrontHTTP, Reason: "DeleteConnection"})
	if err != nil || len(d.Connections) != 2 {
		t.Fatalf("DeleteConnection: %+v %v", d, err)
	}
	for _, p := range []*phone{a, b} {
		bye := p.expectBye(t)
		if r := bye.GetHeader("Reason"); r == nil || !strings.Contains(r.Value(), "http") {
			t.Errorf("%s: BYE Reason %v, want the releasing front", p.name, r)
		}
	}
	g.idle(t)
}

// A SIP leg and a connection of another front (MGCP/HTTP) in one
// conference hear each other.
func TestSIPAndNonSIPInConference(t *testing.T) {
	g := startGateway(t, nil)
	p := newPhone(t, "sipper", 400)
	other := newRTPPeer(t, 1600)
	c := p.mustDial(g.uri("conf-mixed"), p.offer(dirSendRecv))
	conn, err := g.table.CreateConnection(session.ConnectionParams{Remote: other.local(), Codec: "PCMU",
		Owner: session.FrontMGCP, CallID: "mgcp-call"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.table.JoinConference("mixed", conn.ID, session.MemberAttrs{}); err != nil {
		t.Fatal(err)
	}
	other.setRemote(conn.Local)
	hearsOnly(t, "mgcp peer", other, []float64{400}, []float64{1600})
	hearsOnly(t, "sip phone", p.rtp, []float64{1600}, []float64{400})
	c.hangup()
	if _, err := g.table.DeleteConnection(conn.ID, "", session.Release{By: session.FrontMGCP}); err != nil {
		t.Fatal(err)
	}
	g.idle(t)
}

// Echo loops media back.
func TestEcho(t *testing.T) {
	g := startGateway(t, nil)
	p := newPhone(t, "e", 1000)
	c := p.mustDial(g.uri("echo"), p.offer(dirSendRecv))
	hearsOnly(t, "echo caller", p.rtp, []float64{1000}, nil)
	c.hangup()
	g.idle(t)
}

// Hold and resume: sendonly gets recvonly and the gateway stops sending;
// sendrecv resumes.
func TestHoldResume(t *testing.T) {
	g := startGateway(t, nil)
	a := newPhone(t, "a", 400)
	b := newPhone(t, "b", 1000)
	ca := a.mustDial(g.uri("conf-h"), a.offer(dirSendRecv))
	cb := b.mustDial(g.uri("conf-h"), b.offer(dirSendRecv))
	hearsOnly(t, "a", a.rtp, []float64{1000}, nil)

	res := ca.reinvite(a.offer(dirSendOnly), nil)
	if res.StatusCode != 200 {
		t.Fatalf("hold re-INVITE: %d", res.StatusCode)
	}
	ans, err := parseSDP(res.Body())
	if err != nil || ans.Dir != dirRecvOnly {
		t.Fatalf("hold answer direction %v (%v), want recvonly", ans, err)
	}
	conn := connOf(t, g, ca)
	if conn.Mode != session.ModeRecvOnly {
		t.Errorf("held connection mode %s, want recvonly", conn.Mode)
	}
	res = ca.reinvite(a.offer(dirSendRecv), nil)
	if ans, _ := parseSDP(res.Body()); res.StatusCode != 200 || ans == nil || ans.Dir != dirSendRecv {
		t.Fatalf("resume: %d %v", res.StatusCode, ans)
	}
	hearsOnly(t, "a", a.rtp, []float64{1000}, nil)

	// A re-INVITE without SDP: we offer, the ACK answers.
	res = ca.reinvite(nil, func(r *gosip.Response) []byte { return a.offer(dirInactive) })
	if res.StatusCode != 200 || len(res.Body()) == 0 {
		t.Fatalf("re-INVITE without SDP: %d, body %q", res.StatusCode, res.Body())
	}
	eventually(t, "mode inactive after the ACK's answer", func() bool {
		return connOf(t, g, ca).Mode == session.ModeInactive
	})
	ca.hangup()
	cb.hangup()
	g.idle(t)
}

func connOf(t testing.TB, g *gateway, c *call) session.Connection {
	t.Helper()
	port := c.answer.Port
	for _, conn := range g.table.Connections() {
		if int(conn.Local.Port()) == port {
			return conn
		}
	}
	t.Fatalf("no connection on port %d", port)
	return session.Connection{}
}

// INVITE without SDP: the 200 offers, the ACK answers.
func TestLateOffer(t *testing.T) {
	g := startGateway(t, nil)
	p := newPhone(t, "late", 400)
	c, res := p.dial(g.uri("echo"), nil)
	if c == nil {
		t.Fatalf("late offer INVITE: %v", res)
	}
	if c.answer == nil || len(c.answer.Formats) < 2 {
		t.Fatalf("200 to an INVITE without SDP must offer: %v", c.answer)
	}
	ack := gosip.NewRequest(gosip.ACK, c.d.InviteResponse.Contact().Address)
	ack.AppendHeader(gosip.NewHeader("Content-Type", "application/sdp"))
	ack.SetBody(p.offer(dirSendRecv))
	if err := c.d.WriteAck(t.Context(), ack); err != nil {
		t.Fatal(err)
	}
	hearsOnly(t, "late", p.rtp, []float64{400}, nil)
	c.hangup()
	g.idle(t)
}

// Media timeout: a leg that sends nothing is hung up with a Reason.
func TestMediaTimeoutSendsBye(t *testing.T) {
	g := startGateway(t, nil, withMediaTimeout(300e6))
	p := newPhone(t, "quiet", 0)
	p.mustDial(g.uri("conf-quiet"), p.offer(dirSendRecv))
	bye := p.expectBye(t)
	if r := bye.GetHeader("Reason"); r == nil || !strings.Contains(r.Value(), "media timeout") {
		t.Errorf("BYE Reason %v, want media timeout", r)
	}
	g.idle(t)
}

// Shutdown of the table hangs up every call.
func TestShutdownSendsBye(t *testing.T) {
	g := startGateway(t, nil)
	p := newPhone(t, "s", 400)
	p.mustDial(g.uri("conf-s"), p.offer(dirSendRecv))
	g.table.Shutdown()
	p.expectBye(t)
	if c, res := p.dial(g.uri("conf-s"), p.offer(dirSendRecv)); c != nil || res.StatusCode != 503 {
		t.Errorf("call while draining: %v %v, want 503", c, res)
	}
}

// Codec choice follows conference.codecs; nothing usable is 488 and
// allocates nothing.
func TestCodecChoice(t *testing.T) {
	g := startGateway(t, nil)
	p := newPhone(t, "c", 400)
	c := p.mustDial(g.uri("conf-c"), p.offer(dirSendRecv, format{PT: 18, Name: "G729", Rate: 8000},
		staticFormats[8], staticFormats[0], defaultTE))
	if c.answer.Formats[0].Name != "PCMA" || len(c.answer.Formats) != 2 || c.answer.Formats[1].Name != "telephone-event" {
		t.Errorf("answer formats %+v, want PCMA + telephone-event", c.answer.Formats)
	}
	c.hangup()
	g.idle(t) // the release of the first call finishes before counting
	free := g.pool.FreePairs()
	_, res := p.dial(g.uri("conf-c"), p.offer(dirSendRecv, format{PT: 18, Name: "G729", Rate: 8000}))
	if res == nil || res.StatusCode != 488 {
		t.Fatalf("G729-only offer: %v, want 488", res)
	}
	if g.pool.FreePairs() != free {
		t.Error("a 488 allocated ports")
	}
	g.idle(t)
}

// Over TCP too.
func TestTCPConference(t *testing.T) {
	g := startGateway(t, nil)
	p := newPhone(t, "tcp", 400)
	u := g.uri("echo")
	host, port, _ := gosip.ParseAddr(g.tcp)
	u.Host, u.Port = host, port
	u.UriParams = gosip.NewParams()
	u.UriParams.Add("transport", "tcp")
	c := p.mustDial(u, p.offer(dirSendRecv))
	hearsOnly(t, "tcp", p.rtp, []float64{400}, nil)
	c.hangup()
	g.idle(t)
}

// A re-INVITE with a new media address and another codec moves the
// connection (ModifyConnection) and the call keeps hearing the conference.
func TestReinviteNewAddressAndCodec(t *testing.T) {
	g := startGateway(t, nil)
	a := newPhone(t, "a", 400)
	b := newPhone(t, "b", 1000)
	ca := a.mustDial(g.uri("conf-move"), a.offer(dirSendRecv))
	cb := b.mustDial(g.uri("conf-move"), b.offer(dirSendRecv))
	// The phone moves its media to a new socket (the old one goes quiet).
	a.rtp.mute.Store(true)
	moved := newRTPPeer(t, 400)
	offer := buildSDP(localMedia{SessID: 1, Version: 99, Addr: moved.local(), Formats: []format{staticFormats[8]},
		Dir: dirSendRecv, Ptime: 20e6}, nil)
	res := ca.reinvite(offer, nil)
	if res.StatusCode != 200 {
		t.Fatalf("re-INVITE: %d", res.StatusCode)
	}
	ans, err := parseSDP(res.Body())
	if err != nil || len(ans.Formats) != 1 || ans.Formats[0].Name != "PCMA" || ans.Port != ca.answer.Port {
		t.Fatalf("answer %+v %v: want PCMA on the same port", ans, err)
	}
	conn := connOf(t, g, ca)
	if conn.Codec != "PCMA" || conn.Remote != moved.local() {
		t.Fatalf("connection after re-INVITE: codec %s remote %s, want PCMA %s", conn.Codec, conn.Remote, moved.local())
	}
	moved.setRemote(netip.AddrPortFrom(conn.Local.Addr(), uint16(ans.Port)))
	eventually(t, "PCMA at the new address", func() bool {
		moved.mu.Lock()
		defer moved.mu.Unlock()
		return moved.pts[8] > 10
	})
	ca.hangup()
	cb.hangup()
	g.idle(t)
}

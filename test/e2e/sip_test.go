package e2e

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
)

// sipPhone is a SIP user agent (sipgo) for the end-to-end tests: it calls
// the gateway and records the BYEs the gateway sends it.
type sipPhone struct {
	t    testing.TB
	ua   *sipgo.UserAgent
	dc   *sipgo.DialogClientCache
	addr string
	byes chan *gosip.Request
}

func newSIPPhone(t testing.TB, name string) *sipPhone {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &sipPhone{t: t, addr: pc.LocalAddr().String(), byes: make(chan *gosip.Request, 4)}
	host, port, _ := gosip.ParseAddr(p.addr)
	if p.ua, err = sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname(host)); err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(p.ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(port))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(p.ua)
	if err != nil {
		t.Fatal(err)
	}
	p.dc = sipgo.NewDialogClientCache(cli, gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: name, Host: host, Port: port}})
	srv.OnBye(func(req *gosip.Request, tx gosip.ServerTransaction) {
		if err := p.dc.ReadBye(req, tx); err != nil {
			_ = tx.Respond(gosip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		p.byes <- req
	})
	go func() { _ = srv.ServeUDP(pc) }()
	t.Cleanup(func() {
		_ = pc.Close()
		_ = p.ua.Close()
	})
	return p
}

// call INVITEs user at the gateway with an SDP offer for peer, ACKs the
// 200 and returns the dialog and the SDP answer.
func (p *sipPhone) call(gw, user string, peer *TonePeer) (*sipgo.DialogClientSession, string) {
	p.t.Helper()
	host, port, _ := gosip.ParseAddr(gw)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	offer := strings.TrimPrefix(peerSDP(peer), "\r\n")
	d, err := p.dc.Invite(ctx, gosip.Uri{Scheme: "sip", User: user, Host: host, Port: port}, []byte(offer),
		gosip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		p.t.Fatalf("INVITE %s: %v", user, err)
	}
	if err := d.Ack(ctx); err != nil {
		p.t.Fatal(err)
	}
	return d, string(d.InviteResponse.Body())
}

func (p *sipPhone) expectBye(name string) *gosip.Request {
	p.t.Helper()
	select {
	case r := <-p.byes:
		return r
	case <-time.After(15 * time.Second):
		p.t.Fatalf("%s got no BYE", name)
	}
	return nil
}

// TestSIPAndMGCPInConference: a SIP call to conf-42 and an MGCP connection
// on cnf/42 are members of the same conference through the binary and hear
// each other (and not themselves); an MGCP DLCX of the endpoint then hangs
// up the SIP leg with a BYE, and /metrics returns to where it started.
func TestSIPAndMGCPInConference(t *testing.T) {
	ca := newCallAgent(t)
	g := StartGateway(t, GatewayOptions{NotifiedEntity: ca.addr()})
	ca.attach(g)
	start := g.Metrics(t)

	freqs := []float64{400, 900}
	mgcpPeer := NewTonePeer(t, freqs[0], 0)
	code, params, sdp := ca.do("CRCX {tid} cnf/42@mgw MGCP 1.0\r\nC: mixcall\r\nM: confrnce\r\nL: p:20, a:PCMU\r\n%s", peerSDP(mgcpPeer))
	if code != 200 {
		t.Fatalf("CRCX on cnf/42: %d %v", code, params)
	}
	mgcpPeer.Run(mediaAddr(t, sdp), true, freqs...)

	phone := newSIPPhone(t, "alice")
	sipPeer := NewTonePeer(t, freqs[1], 0)
	_, answer := phone.call(g.SIP, "conf-42", sipPeer)
	sipPeer.Run(mediaAddr(t, answer), true, freqs...)

	waitPackets(t, 25, mgcpPeer, sipPeer)
	mgcpPeer.Reset()
	sipPeer.Reset()
	waitPackets(t, 50, mgcpPeer, sipPeer)
	AssertHearing(t, "MGCP party", mgcpPeer, freqs, map[float64]bool{freqs[1]: true})
	AssertHearing(t, "SIP party", sipPeer, freqs, map[float64]bool{freqs[0]: true})

	if code, params, _ := ca.do("DLCX {tid} cnf/42@mgw MGCP 1.0\r\n"); code != 200 {
		t.Fatalf("DLCX of cnf/42: %d %v", code, params)
	}
	bye := phone.expectBye("SIP party")
	if r := bye.GetHeader("Reason"); r == nil || !strings.Contains(r.Value(), "mgcp") {
		t.Errorf("BYE Reason %v, want the releasing front (mgcp)", r)
	}
	mgcpPeer.Close()
	sipPeer.Close()
	g.WaitGaugesBack(t, start)
	m := g.Metrics(t)
	for _, s := range []string{`mediagw_sip_requests_total{method="INVITE"}`, `mediagw_sip_responses_total{code="200"}`} {
		if m[s] < 1 {
			t.Errorf("%s = %v", s, m[s])
		}
	}
}

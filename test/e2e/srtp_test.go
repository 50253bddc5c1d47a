package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
	"github.com/pion/srtp/v3"
)

// callSDP is sipPhone.call with an SDP offer of the caller's own.
func (p *sipPhone) callSDP(gw, user, offer string) (*sipgo.DialogClientSession, string) {
	p.t.Helper()
	host, port, _ := gosip.ParseAddr(gw)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
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

var answerCrypto = regexp.MustCompile(`(?m)^a=crypto:1 (AES_CM_128_HMAC_SHA1_(?:80|32)) inline:([A-Za-z0-9+/=]+)`)

// srtpPeer makes p an SRTP endpoint (pion/srtp): it offers suite with a key
// of its own and, once the answer is known, encrypts what it sends with
// that key and decrypts what it hears with the gateway's. Packets that fail
// authentication are dropped (and counted in rejected).
type srtpPeer struct {
	suite    string
	key      []byte
	mu       sync.Mutex
	enc, dec *srtp.Context
	rejected int
	sealed   [][]byte // the last packets sent, for forging and replaying
}

func newSRTPPeer(t testing.TB, p *TonePeer, suite string) *srtpPeer {
	t.Helper()
	sp := &srtpPeer{suite: suite, key: make([]byte, 30)}
	_, _ = rand.Read(sp.key)
	p.Seal = func(pkt []byte) []byte {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		out, err := sp.enc.EncryptRTP(nil, pkt, nil)
		if err != nil {
			t.Errorf("encrypt: %v", err)
			return pkt
		}
		if sp.sealed = append(sp.sealed, out); len(sp.sealed) > 8 {
			sp.sealed = sp.sealed[1:]
		}
		return out
	}
	p.Open = func(pkt []byte) ([]byte, bool) {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		out, err := sp.dec.DecryptRTP(nil, pkt, nil)
		if err != nil {
			sp.rejected++
			return nil, false
		}
		return out, true
	}
	return sp
}

func (sp *srtpPeer) profile() srtp.ProtectionProfile {
	if strings.HasSuffix(sp.suite, "_32") {
		return srtp.ProtectionProfileAes128CmHmacSha1_32
	}
	return srtp.ProtectionProfileAes128CmHmacSha1_80
}

// offer is an RTP/SAVP offer for p with sp's key.
func (sp *srtpPeer) offer(p *TonePeer) string {
	return strings.TrimPrefix(strings.Replace(peerSDP(p), "RTP/AVP", "RTP/SAVP", 1), "\r\n") +
		"a=crypto:1 " + sp.suite + " inline:" + base64.StdEncoding.EncodeToString(sp.key) + "\r\n"
}

// keyed sets up the contexts from the gateway's answer.
func (sp *srtpPeer) keyed(t testing.TB, answer string) {
	t.Helper()
	m := answerCrypto.FindStringSubmatch(answer)
	if m == nil || !strings.Contains(answer, "RTP/SAVP") || m[1] != sp.suite {
		t.Fatalf("answer without our suite %s in RTP/SAVP:\n%s", sp.suite, answer)
	}
	theirs, err := base64.StdEncoding.DecodeString(m[2])
	if err != nil || len(theirs) != 30 {
		t.Fatalf("answer key %q: %v", m[2], err)
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.enc, err = srtp.CreateContext(sp.key[:16], sp.key[16:], sp.profile()); err != nil {
		t.Fatal(err)
	}
	if sp.dec, err = srtp.CreateContext(theirs[:16], theirs[16:], sp.profile()); err != nil {
		t.Fatal(err)
	}
}

// TestSRTPConferenceWithPlainMembers: two SRTP phones (one per suite) and
// two plain RTP members (SIP and HTTP) in one conference through the
// binary, tone-tagged: everyone hears everyone else, and the SRTP phones
// hear nothing they cannot authenticate. Then two leave, and the SRTP and
// plain SIP phones left are relayed to each other (hairpin) and still hear
// each other. A forged and a replayed SRTP packet are dropped and counted.
func TestSRTPConferenceWithPlainMembers(t *testing.T) {
	g := StartGateway(t, GatewayOptions{})
	start := g.Metrics(t)
	freqs := []float64{400, 900, 1500, 2100}

	sec80, sec32 := NewTonePeer(t, freqs[0], 0), NewTonePeer(t, freqs[1], 0)
	sp80, sp32 := newSRTPPeer(t, sec80, "AES_CM_128_HMAC_SHA1_80"), newSRTPPeer(t, sec32, "AES_CM_128_HMAC_SHA1_32")
	plainSIP, plainHTTP := NewTonePeer(t, freqs[2], 0), NewTonePeer(t, freqs[3], 8)

	phone80, phone32, phonePlain := newSIPPhone(t, "sec80"), newSIPPhone(t, "sec32"), newSIPPhone(t, "plain")
	_, ans80 := phone80.callSDP(g.SIP, "conf-srtp", sp80.offer(sec80))
	sp80.keyed(t, ans80)
	d32, ans32 := phone32.callSDP(g.SIP, "conf-srtp", sp32.offer(sec32))
	sp32.keyed(t, ans32)
	dPlain, ansPlain := phonePlain.call(g.SIP, "conf-srtp", plainSIP)
	if strings.Contains(ansPlain, "SAVP") || strings.Contains(ansPlain, "a=crypto") {
		t.Fatalf("plain offer answered with SRTP:\n%s", ansPlain)
	}
	res := g.MustAction(t, "JoinConference", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": plainHTTP.Port(),
		"MediaTxCodec": "PCMA", "ConferenceId": "srtp"})
	httpConn := res["ConnectionId"]

	sec80.Run(mediaAddr(t, ans80), true, freqs...)
	sec32.Run(mediaAddr(t, ans32), true, freqs...)
	plainSIP.Run(mediaAddr(t, ansPlain), true, freqs...)
	plainHTTP.Run(rxAddr(t, res), true, freqs...)
	all := []*TonePeer{sec80, sec32, plainSIP, plainHTTP}
	const amp = toneAmplitude
	resp, err := http.Get(g.HTTP + "/v1/connections")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Connections []struct{ SRTP string } }
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	shown := map[string]int{}
	for _, c := range list.Connections {
		shown[c.SRTP]++
	}
	if err != nil || shown["AES_CM_128_HMAC_SHA1_80"] != 1 || shown["AES_CM_128_HMAC_SHA1_32"] != 1 || shown[""] != 2 {
		t.Errorf("/v1/connections SRTP suites %v (%v), want one of each suite and two plain", shown, err)
	}
	waitPackets(t, 25, all...)
	time.Sleep(300 * time.Millisecond) // jitter buffers settle
	for _, p := range all {
		p.Reset()
	}
	waitPackets(t, 75, all...)
	for i, p := range all {
		want := map[float64]bool{}
		for j, f := range freqs {
			want[f] = i != j
		}
		AssertHearingAt(t, []string{"srtp80", "srtp32", "plain SIP", "plain HTTP"}[i], p, freqs, want, amp)
	}
	for _, sp := range []*srtpPeer{sp80, sp32} {
		sp.mu.Lock()
		if sp.rejected != 0 {
			t.Errorf("%s peer rejected %d packets from the gateway", sp.suite, sp.rejected)
		}
		sp.mu.Unlock()
	}

	// Forged (a flipped payload bit, a fresh sequence number) and replayed
	// packets to the SRTP leg: dropped and counted.
	before := g.Metrics(t)
	sp80.mu.Lock()
	last := append([]byte(nil), sp80.sealed[len(sp80.sealed)-1]...)
	sp80.mu.Unlock()
	forged := append([]byte(nil), last...)
	forged[2], forged[3] = forged[2]^0x80, forged[3]^0x55
	forged[20] ^= 0x01
	to := mediaAddr(t, ans80)
	for range 3 {
		_, _ = sec80.conn.WriteToUDPAddrPort(forged, to)
		_, _ = sec80.conn.WriteToUDPAddrPort(last, to)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := g.Metrics(t)
		auth := m[`mediagw_rtp_dropped_total{reason="srtp_auth"}`] - before[`mediagw_rtp_dropped_total{reason="srtp_auth"}`]
		replay := m[`mediagw_rtp_dropped_total{reason="srtp_replay"}`] - before[`mediagw_rtp_dropped_total{reason="srtp_replay"}`]
		if auth >= 3 && replay >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dropped srtp_auth +%v, srtp_replay +%v; want +3 each", auth, replay)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Down to the SRTP_80 phone and the plain SIP phone: a hairpin relay
	// that decrypts one side and not the other.
	g.MustAction(t, "DeleteConnection", map[string]any{"ConnectionId": httpConn})
	plainHTTP.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d32.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	sec32.Close()
	time.Sleep(300 * time.Millisecond)
	sec80.Reset()
	plainSIP.Reset()
	waitPackets(t, 50, sec80, plainSIP)
	AssertHearingAt(t, "srtp80 (relayed)", sec80, freqs, map[float64]bool{freqs[2]: true}, amp)
	AssertHearingAt(t, "plain SIP (relayed)", plainSIP, freqs, map[float64]bool{freqs[0]: true}, amp)

	_ = dPlain.Bye(ctx)
	g.MustAction(t, "DeleteConnection", map[string]any{"ConferenceId": "srtp"})
	g.WaitGaugesBack(t, start)
}

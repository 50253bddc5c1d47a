package ng

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/session"
)

func TestRewrite(t *testing.T) {
	ours := netip.MustParseAddr("203.0.113.5")
	in := "v=0\r\no=alice 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=ice-lite\r\n" +
		"m=audio 4000 RTP/AVP 0 8 101\r\nc=IN IP4 192.0.2.9\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=fmtp:0 x\r\na=rtcp:4001\r\na=ice-ufrag:abc\r\na=ice-pwd:def\r\n" +
		"a=candidate:1 1 UDP 2130706431 192.0.2.1 4000 typ host\r\na=sendonly\r\n" +
		"m=video 0 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n" +
		"m=audio 6000 RTP/SAVP 8\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\na=rtcp-mux\r\n"
	doc, err := parseSDP([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.media) != 3 || doc.direction(&doc.media[0]) != session.ModeSendOnly ||
		doc.address(&doc.media[0]) != netip.MustParseAddr("192.0.2.9") || doc.address(&doc.media[2]) != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("parsed %+v", doc.media)
	}
	if c := codecFor(&doc.media[0], []string{"pcmu"}); c != "PCMA" {
		t.Fatalf("codec after strip %q", c)
	}
	out := string(doc.rewrite(rewriteOpts{addr: ours, ports: []int{30000, 0, 30002}, replaceOrigin: true, strip: []string{"PCMU"}}))
	want := "v=0\r\no=alice 1 2 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n" +
		"m=audio 30000 RTP/AVP 8 101\r\nc=IN IP4 203.0.113.5\r\na=rtpmap:8 PCMA/8000\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendonly\r\na=rtcp:30001\r\n" +
		"m=video 0 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n" +
		"m=audio 30002 RTP/SAVP 8\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\na=rtcp-mux\r\na=rtcp:30002\r\n"
	if out != want {
		t.Fatalf("rewrite:\n%s\nwant:\n%s", out, want)
	}
	// Without replace-origin the o= line stays; stripping every codec
	// keeps the section usable; no-rtcp-attribute adds none; a feedback
	// profile switch is honoured, SAVP → AVP is not.
	out = string(doc.rewrite(rewriteOpts{addr: ours, ports: []int{30000, 0, 30002}, strip: []string{"all"}, noRTCPAttr: true, transport: "RTP/AVPF"}))
	for _, s := range []string{"o=alice 1 2 IN IP4 192.0.2.1", "m=audio 30000 RTP/AVPF 0 8 101", "a=rtpmap:0 PCMU"} {
		if !strings.Contains(out, s) {
			t.Errorf("missing %q in\n%s", s, out)
		}
	}
	if strings.Contains(out, "a=rtcp:") {
		t.Errorf("a=rtcp despite no-rtcp-attribute:\n%s", out)
	}
	if _, ok := transportFor("RTP/AVP", "RTP/SAVP"); ok {
		t.Error("SAVP → AVP accepted (needs decryption)")
	}
	if p, ok := transportFor("rtp/avpf", "RTP/AVP"); !ok || p != "RTP/AVPF" {
		t.Errorf("AVP → AVPF: %q %v", p, ok)
	}
}

func TestConnModeAndHoldAddress(t *testing.T) {
	unspec := netip.MustParseAddr("0.0.0.0")
	peer := netip.MustParseAddr("192.0.2.1")
	for _, c := range []struct {
		dir  session.Mode
		addr netip.Addr
		want session.Mode
	}{
		{session.ModeSendRecv, peer, session.ModeSendRecv},
		{session.ModeSendOnly, peer, session.ModeRecvOnly},
		{session.ModeRecvOnly, peer, session.ModeSendOnly},
		{session.ModeInactive, peer, session.ModeInactive},
		{session.ModeSendRecv, unspec, session.ModeRecvOnly}, // RFC 2543 hold
		{session.ModeRecvOnly, unspec, session.ModeInactive},
	} {
		if got := connMode(c.dir, c.addr); got != c.want {
			t.Errorf("connMode(%s, %s) = %s, want %s", c.dir, c.addr, got, c.want)
		}
	}
}

func TestBadSDP(t *testing.T) {
	for _, in := range []string{"", "hello", "v=0\r\nm=audio x RTP/AVP 0\r\n", "v=0\r\nc=IN IP4 nowhere\r\n",
		"v=0\r\nm=audio 70000 RTP/AVP 0\r\n", "v=0\r\nbogus\r\n", "v=0\r\nm=audio 4000\r\n"} {
		if _, err := parseSDP([]byte(in)); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

// Kamailio passes its flags as rtpengine documents them: SIP-source-address
// takes the media address from received-from, codec-strip-X strips.
func TestKamailioStyleFlags(t *testing.T) {
	r := newRig(t, instant())
	a := newPeer(t)
	sdp := strings.Replace(sdpFor(a.addr()), "c=IN IP4 127.0.0.1", "c=IN IP4 10.9.9.9", 1)
	got := r.do(Dict{"command": "offer", "call-id": "k", "from-tag": "f", "sdp": sdp,
		"flags": []string{"SIP-source-address", "codec-strip-PCMU", "loop-protect"}, "ICE": "remove",
		"received-from": []string{"IP4", "127.0.0.1"}, "replace": []string{"origin"}, "direction": []string{"internal", "external"}})
	if got["result"] != "ok" {
		t.Fatalf("offer: %v", got)
	}
	sdpOut := got["sdp"].(string)
	if strings.Contains(sdpOut, "PCMU") || !strings.Contains(sdpOut, "RTP/AVP 8 101") || strings.Contains(sdpOut, "10.9.9.9") {
		t.Fatalf("rewritten offer:\n%s", sdpOut)
	}
	var facingA session.Connection
	for _, c := range r.table.Connections() {
		if c.Tag == "f" {
			facingA = c
		}
	}
	if facingA.Remote != a.addr() || facingA.Codec != "PCMA" {
		t.Fatalf("connection facing A: remote %s codec %s, want %s PCMA (SIP source, PCMU stripped)", facingA.Remote, facingA.Codec, a.addr())
	}
}

// A media timeout (the table's sweeper, FrontSystem) ends the call: both
// legs go, and statistics count it as a timeout.
func TestMediaTimeoutDropsCall(t *testing.T) {
	r := newRig(t, instant(), func(c *session.Config) { c.MediaTimeout = 300 * time.Millisecond })
	a, b := newPeer(t), newPeer(t)
	free0 := r.pool.FreePairs()
	setup(t, r, "quiet", a, b)
	waitFor(t, "the media timeout to release both legs", func() bool {
		return len(r.table.Connections()) == 0 && r.pool.FreePairs() == free0
	})
	waitFor(t, "the call to be gone", func() bool {
		st := r.do(Dict{"command": "statistics"})["statistics"].(map[string]any)["totalstatistics"].(map[string]any)
		return st["timeoutsessions"] == int64(1)
	})
	if got := r.do(Dict{"command": "list"}); len(got["calls"].([]any)) != 0 {
		t.Fatalf("list after timeout: %v", got)
	}
}

package sip

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/session"
)

func withSRTP(mode string) gwOption {
	return func(c *session.Config) { c.SRTP = mode }
}

var (
	key80 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x11}, session.SRTPKeyLen))
	key32 = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x22}, session.SRTPKeyLen))
)

// savpSDP is goodSDP over RTP/SAVP with the given a=crypto values.
func savpSDP(cryptos ...string) string {
	s := strings.Replace(goodSDP, "RTP/AVP", "RTP/SAVP", 1)
	for _, c := range cryptos {
		s += "a=crypto:" + c + "\n"
	}
	return s
}

var answerCrypto = regexp.MustCompile(`(?m)^a=crypto:(\d+) (\S+) inline:(\S+)\r?$`)

// TestSDESNegotiation: SAVP offers with either suite are answered with SAVP,
// the offerer's tag and suite and a fresh key of ours, and key the
// connection; plain offers stay plain; rtp.srtp off / required and offers
// without a usable key get 488 and allocate nothing.
func TestSDESNegotiation(t *testing.T) {
	cases := []struct {
		name, mode, body string
		want             int
		tag, suite       string // of the answer; "" = plain RTP/AVP
	}{
		{"80", "optional", savpSDP("1 AES_CM_128_HMAC_SHA1_80 inline:" + key80), 200, "1", session.SuiteAES128SHA1_80},
		{"32", "optional", savpSDP("7 AES_CM_128_HMAC_SHA1_32 inline:" + key32 + "|2^20"), 200, "7", session.SuiteAES128SHA1_32},
		{"first usable", "required", savpSDP("1 AES_256_CM_HMAC_SHA1_80 inline:"+key80, "2 AES_CM_128_HMAC_SHA1_32 inline:"+key32), 200, "2", session.SuiteAES128SHA1_32},
		{"plain", "optional", goodSDP, 200, "", ""},
		{"plain, srtp off", "off", goodSDP, 200, "", ""},
		{"plain, srtp required", "required", goodSDP, 488, "", ""},
		{"srtp off", "off", savpSDP("1 AES_CM_128_HMAC_SHA1_80 inline:" + key80), 488, "", ""},
		{"short key", "optional", savpSDP("1 AES_CM_128_HMAC_SHA1_80 inline:" + key80[:20]), 488, "", ""},
		{"key not base64", "optional", savpSDP("1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.Repeat("!", 40)), 488, "", ""},
		{"MKI", "optional", savpSDP("1 AES_CM_128_HMAC_SHA1_80 inline:" + key80 + "|2^20|1:4"), 488, "", ""},
		{"unknown suite only", "optional", savpSDP("1 F8_128_HMAC_SHA1_80 inline:" + key80), 488, "", ""},
		{"session parameter", "optional", savpSDP("1 AES_CM_128_HMAC_SHA1_80 inline:" + key80 + " UNENCRYPTED_SRTP"), 488, "", ""},
		{"no crypto", "optional", savpSDP(), 488, "", ""},
		{"tag not a number", "optional", savpSDP("x AES_CM_128_HMAC_SHA1_80 inline:" + key80), 400, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := startGateway(t, nil, withSRTP(c.mode))
			res := raw(t, g.udp, request("INVITE", "conf-sdes", g.udp, nil, c.body), true)
			if got := statusOf(res); got != c.want {
				t.Fatalf("status %d, want %d\n%s", got, c.want, res)
			}
			conns := g.table.Connections()
			if c.want != 200 {
				if len(conns) != 0 || g.pool.FreePairs() != g.pool.Pairs() {
					t.Fatalf("a refused INVITE holds %d connections", len(conns))
				}
				return
			}
			if len(conns) != 1 || conns[0].SRTPSuite != c.suite {
				t.Fatalf("connections %+v, want one with suite %q", conns, c.suite)
			}
			m := answerCrypto.FindAllStringSubmatch(res, -1)
			if c.suite == "" {
				if len(m) != 0 || !strings.Contains(res, " RTP/AVP ") {
					t.Fatalf("plain answer expected:\n%s", res)
				}
				return
			}
			if !strings.Contains(res, " RTP/SAVP ") || len(m) != 1 || m[0][1] != c.tag || m[0][2] != c.suite {
				t.Fatalf("answer crypto %v, want tag %s %s:\n%s", m, c.tag, c.suite, res)
			}
			key, err := base64.StdEncoding.DecodeString(m[0][3])
			if err != nil || len(key) != session.SRTPKeyLen || m[0][3] == key80 || m[0][3] == key32 {
				t.Fatalf("answer key %q: %v (must be our own, %d octets)", m[0][3], err, session.SRTPKeyLen)
			}
		})
	}
}

// TestSDESAnswerToOurOffer: the answer to an offer of ours must pick one of
// our a=crypto lines (tag and suite); the connection is keyed with our key
// for sending and theirs for receiving.
func TestSDESAnswerToOurOffer(t *testing.T) {
	offered := offerSRTP(session.SRTPRequired)
	if len(offered) != 2 || offered[0].Suite != session.SuiteAES128SHA1_80 || offered[1].Suite != session.SuiteAES128SHA1_32 ||
		bytes.Equal(offered[0].Key, offered[1].Key) {
		t.Fatalf("offer %+v", offered)
	}
	if o := offerSRTP(session.SRTPOptional); o != nil {
		t.Fatalf("optional offers SRTP: %+v", o)
	}
	theirs := bytes.Repeat([]byte{9}, session.SRTPKeyLen)
	ans := &description{Secure: true, Cryptos: []crypto{{Tag: 2, Suite: session.SuiteAES128SHA1_32, Key: theirs}}}
	keys, kept, err := takeSRTPAnswer(offered, ans)
	if err != nil || keys.Suite != session.SuiteAES128SHA1_32 || !bytes.Equal(keys.LocalKey, offered[1].Key) ||
		!bytes.Equal(keys.RemoteKey, theirs) || len(kept) != 1 || kept[0].Tag != 2 {
		t.Fatalf("takeSRTPAnswer: %+v %+v %v", keys, kept, err)
	}
	for name, a := range map[string]*description{
		"plain answer":   {},
		"tag not ours":   {Secure: true, Cryptos: []crypto{{Tag: 3, Suite: session.SuiteAES128SHA1_80, Key: theirs}}},
		"suite mismatch": {Secure: true, Cryptos: []crypto{{Tag: 1, Suite: session.SuiteAES128SHA1_32, Key: theirs}}},
		"no key":         {Secure: true},
	} {
		if _, _, err := takeSRTPAnswer(offered, a); !errors.Is(err, errSDPNotAcceptable) {
			t.Errorf("%s: %v, want errSDPNotAcceptable", name, err)
		}
	}
	if _, _, err := takeSRTPAnswer(nil, ans); !errors.Is(err, errSDPNotAcceptable) {
		t.Errorf("SRTP answer to a plain offer: %v", err)
	}
	if keys, _, err := takeSRTPAnswer(nil, &description{}); err != nil || keys.Suite != "" {
		t.Errorf("plain answer to a plain offer: %+v %v", keys, err)
	}
}

// TestSDPWithCryptoRoundTrip: what buildSDP writes with a=crypto lines
// parses back to the same keys.
func TestSDPWithCryptoRoundTrip(t *testing.T) {
	offered := offerSRTP(session.SRTPRequired)
	body := buildSDP(localMedia{SessID: 1, Version: 1, Addr: netip.MustParseAddrPort("127.0.0.1:33000"),
		Formats: []format{{PT: 0, Name: "PCMU", Rate: 8000}}, Crypto: offered}, nil)
	d, err := parseSDP(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if !d.Secure || len(d.Cryptos) != 2 {
		t.Fatalf("parsed %+v from\n%s", d, body)
	}
	for i, c := range d.Cryptos {
		if c.Tag != offered[i].Tag || c.Suite != offered[i].Suite || !bytes.Equal(c.Key, offered[i].Key) {
			t.Errorf("crypto %d: %+v, want %+v", i, c, offered[i])
		}
	}
}

// FuzzParseCrypto: whatever parses as usable writes back (appendCrypto) to
// a line that parses to the same tag, suite and key.
func FuzzParseCrypto(f *testing.F) {
	f.Add("1 AES_CM_128_HMAC_SHA1_80 inline:" + key80)
	f.Add("2 AES_CM_128_HMAC_SHA1_32 inline:" + key32 + "|2^20|1:4")
	f.Add("3 AES_CM_128_HMAC_SHA1_32 inline:" + key32 + "|2^31")
	f.Add("x y")
	f.Fuzz(func(t *testing.T, v string) {
		c, usable, err := parseCrypto(v)
		if err != nil {
			if !errors.Is(err, errSDPMalformed) || usable {
				t.Fatalf("%q: %v (usable %v)", v, err, usable)
			}
			return
		}
		if !usable {
			return
		}
		line := string(appendCrypto(nil, c))
		val := strings.TrimSuffix(strings.TrimPrefix(line, "a=crypto:"), "\r\n")
		c2, ok, err := parseCrypto(val)
		if err != nil || !ok || c2.Tag != c.Tag || c2.Suite != c.Suite || !bytes.Equal(c2.Key, c.Key) {
			t.Fatalf("%q -> %q -> %+v %v %v", v, val, c2, ok, err)
		}
	})
}

// srtpOffer is p's offer over RTP/SAVP with one a=crypto line.
func (p *phone) srtpOffer(suite string) []byte {
	return buildSDP(localMedia{SessID: 1, Version: uint64(time.Now().UnixNano() & 0xffffff), Addr: p.rtp.local(),
		Formats: []format{staticFormats[0], defaultTE}, Dir: dirSendRecv, Ptime: 20 * time.Millisecond,
		Crypto: []crypto{{Tag: 1, Suite: suite, Key: newKey()}}}, nil)
}

func suites(tab *session.Table) map[string]bool {
	out := map[string]bool{}
	for _, c := range tab.Connections() {
		out[c.SRTPSuite] = true
	}
	return out
}

// TestSRTPBridgeOneSidePlain: under optional an SRTP caller is bridged to
// a target offered plain RTP (the two legs keyed independently); re-INVITEs
// switch the caller's leg to plain and back to SRTP with another suite.
// Under required a target that answers plain fails the call (488) and holds
// nothing.
func TestSRTPBridgeOneSidePlain(t *testing.T) {
	callee := newPhone(t, "bob", 900)
	g := startGateway(t, []Route{{Match: `^bob$`, Action: ActionBridge, Target: "sip:bob@" + callee.addr}})
	caller := newPhone(t, "alice", 400)
	c := caller.mustDial(g.uri("bob"), caller.srtpOffer(session.SuiteAES128SHA1_80))
	if !c.answer.Secure || len(c.answer.Cryptos) != 1 || c.answer.Cryptos[0].Tag != 1 {
		t.Fatalf("caller's answer %+v", c.answer)
	}
	inv := <-callee.invites
	if body := string(inv.Body()); !strings.Contains(body, " RTP/AVP ") || strings.Contains(body, "a=crypto") {
		t.Fatalf("the target was offered\n%s", body)
	}
	if s := suites(g.table); len(s) != 2 || !s[session.SuiteAES128SHA1_80] || !s[""] {
		t.Fatalf("leg suites %v, want one SRTP and one plain", s)
	}
	if res := c.reinvite(caller.offer(dirSendRecv), nil); res.StatusCode != 200 || strings.Contains(string(res.Body()), "SAVP") {
		t.Fatalf("plain re-INVITE: %d\n%s", res.StatusCode, res.Body())
	}
	if s := suites(g.table); len(s) != 1 || !s[""] {
		t.Fatalf("after the plain re-INVITE: suites %v", s)
	}
	offer32 := caller.srtpOffer(session.SuiteAES128SHA1_32)
	res := c.reinvite(offer32, nil)
	if res.StatusCode != 200 || !strings.Contains(string(res.Body()), "AES_CM_128_HMAC_SHA1_32") {
		t.Fatalf("SRTP re-INVITE: %d\n%s", res.StatusCode, res.Body())
	}
	if s := suites(g.table); !s[session.SuiteAES128SHA1_32] {
		t.Fatalf("after the SRTP re-INVITE: suites %v", s)
	}
	// The same crypto again (a hold, a refresh): our key stays too.
	res2 := c.reinvite(offer32, nil)
	k1, k2 := answerCrypto.FindStringSubmatch(string(res.Body())), answerCrypto.FindStringSubmatch(string(res2.Body()))
	if res2.StatusCode != 200 || k1 == nil || k2 == nil || k1[3] != k2[3] {
		t.Fatalf("re-INVITE with unchanged crypto changed our key: %v then %v", k1, k2)
	}
	c.hangup()
	callee.expectBye(t)
	g.idle(t)
}

func TestSRTPRequiredBridgeToPlainTarget(t *testing.T) {
	callee := newPhone(t, "bob", 900)
	g := startGateway(t, []Route{{Match: `^bob$`, Action: ActionBridge, Target: "sip:bob@" + callee.addr}}, withSRTP(session.SRTPRequired))
	caller := newPhone(t, "alice", 400)
	c, res := caller.dial(g.uri("bob"), caller.srtpOffer(session.SuiteAES128SHA1_80))
	if c != nil || res.StatusCode != 488 {
		t.Fatalf("bridge to a plain target under required: %v %v", c, res)
	}
	inv := <-callee.invites
	if body := string(inv.Body()); !strings.Contains(body, " RTP/SAVP ") ||
		!strings.Contains(body, "AES_CM_128_HMAC_SHA1_80") || !strings.Contains(body, "AES_CM_128_HMAC_SHA1_32") {
		t.Fatalf("the target was offered\n%s", body)
	}
	callee.expectBye(t)
	g.idle(t)
}

package sip

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/mediagw/mediagw/confbridge"
	"github.com/mediagw/mediagw/rtpproxy"
	"github.com/mediagw/mediagw/session"
)

var sdpSeeds = []string{
	goodSDP,
	"v=0\r\no=- 0 0 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0 18 101\r\nc=IN IP4 10.0.0.1\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:30\r\na=sendonly\r\n",
	"v=0\r\no=- 0 0 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 4002 RTP/AVP 0\r\na=inactive\r\n",
	"v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
	"v=0\r\no=- 0 0 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\nm=audio 6000 RTP/SAVP 0\r\nm=audio 6002 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n",
	"v=0\r\n",
	"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:ERERERERERERERERERERERERERERERERERERERER\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIi|2^20\r\n",
	"v=1\r\no=- 0 0 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n",
}

// Whatever parses answers into SDP that parses again with the same shape,
// the mirrored direction and the chosen formats; our own offers round-trip.
func FuzzSDP(f *testing.F) {
	for _, s := range sdpSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := parseSDP(body)
		if err != nil {
			if !errors.Is(err, errSDPMalformed) && !errors.Is(err, errSDPNotAcceptable) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		if d.AudioIndex < 0 || d.AudioIndex >= len(d.Lines) || d.Port < 1 || d.Port > 65535 || len(d.Formats) == 0 || !d.Addr.IsValid() {
			t.Fatalf("accepted an unusable description: %+v", d)
		}
		formats := d.Formats[:1]
		if formats[0].Name == "" {
			formats = []format{staticFormats[0]}
		}
		if formats[0].Rate == 0 {
			formats[0].Rate = 8000
		}
		local := localMedia{SessID: 7, Version: 9, Addr: netip.MustParseAddrPort("127.0.0.1:33000"),
			Formats: formats, Dir: d.effectiveDir().reverse(), Ptime: 20 * time.Millisecond}
		_, cryptos, serr := answerSRTP("optional", d, nil)
		if serr != nil && (!d.Secure || len(d.Cryptos) > 0 || !errors.Is(serr, errSDPNotAcceptable)) {
			t.Fatalf("answerSRTP refused %+v: %v", d, serr)
		}
		local.Crypto = cryptos
		ans, err := parseSDP(buildSDP(local, d))
		if err != nil {
			t.Fatalf("our answer does not parse: %v\n%s", err, buildSDP(local, d))
		}
		if len(ans.Lines) != len(d.Lines) || ans.AudioIndex != d.AudioIndex || ans.Dir != local.Dir ||
			ans.Port != 33000 || len(ans.Formats) != 1 || ans.Formats[0].PT != formats[0].PT {
			t.Fatalf("answer %+v does not answer offer %+v", ans, d)
		}
		if ans.Secure != (len(cryptos) > 0) || len(ans.Cryptos) != len(cryptos) ||
			(len(cryptos) > 0 && (ans.Cryptos[0].Tag != d.Cryptos[0].Tag || ans.Cryptos[0].Suite != d.Cryptos[0].Suite)) {
			t.Fatalf("SRTP answer %+v does not answer offer %+v", ans.Cryptos, d.Cryptos)
		}
	})
}

func TestOwnOfferRoundTrip(t *testing.T) {
	offered := append(configuredFormats([]string{"PCMU", "PCMA", "G729", "opus"}), defaultTE)
	body := buildSDP(localMedia{SessID: 1, Version: 2, Addr: netip.MustParseAddrPort("[::1]:33002"), Formats: offered, Dir: dirSendOnly, Ptime: 20 * time.Millisecond}, nil)
	d, err := parseSDP(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Formats) != len(offered) || d.Dir != dirSendOnly || d.Port != 33002 || d.Ptime != 20*time.Millisecond {
		t.Fatalf("round trip %+v", d)
	}
	for i := range offered {
		if d.Formats[i].PT != offered[i].PT || !d.Formats[i].is(offered[i].Name) || d.Formats[i].Fmtp != offered[i].Fmtp {
			t.Errorf("format %d: %+v, want %+v", i, d.Formats[i], offered[i])
		}
	}
	if c, ok := pickCodec(d.Formats, []string{"pcma"}); !ok || c.PT != 8 {
		t.Errorf("pickCodec PCMA: %+v %v", c, ok)
	}
}

// fakeTx is a server transaction that records responses and ACKs a 2xx at once.
type fakeTx struct {
	mu    sync.Mutex // guards res
	res   []*gosip.Response
	acks  chan *gosip.Request
	done  chan struct{}
	final bool
}

func newFakeTx() *fakeTx {
	return &fakeTx{acks: make(chan *gosip.Request, 1), done: make(chan struct{})}
}

func (tx *fakeTx) Respond(res *gosip.Response) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.res = append(tx.res, res)
	if res.IsSuccess() && !tx.final {
		ack := gosip.NewRequest(gosip.ACK, gosip.Uri{Scheme: "sip", Host: "127.0.0.1"})
		ack.AppendHeader(&gosip.CSeqHeader{SeqNo: res.CSeq().SeqNo, MethodName: gosip.ACK})
		tx.acks <- ack
	}
	if !res.IsProvisional() {
		tx.final = true
	}
	return nil
}
func (tx *fakeTx) Acks() <-chan *gosip.Request          { return tx.acks }
func (tx *fakeTx) OnCancel(gosip.FnTxCancel) bool       { return true }
func (tx *fakeTx) Terminate()                           {}
func (tx *fakeTx) OnTerminate(gosip.FnTxTerminate) bool { return true }
func (tx *fakeTx) Done() <-chan struct{}                { return tx.done }
func (tx *fakeTx) Err() error                           { return nil }

func (tx *fakeTx) finals() []int {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	var out []int
	for _, r := range tx.res {
		if !r.IsProvisional() {
			out = append(out, r.StatusCode)
		}
	}
	return out
}

var requestSeeds = []string{
	request("INVITE", "conf-1", "127.0.0.1:5060", nil, goodSDP),
	request("INVITE", "echo", "127.0.0.1:5060", nil, ""),
	request("INVITE", "b1", "127.0.0.1:5060", nil, goodSDP),
	request("INVITE", "conf-1", "127.0.0.1:5060", map[string]string{"Contact": "*"}, goodSDP),
	request("INVITE", "conf-1", "127.0.0.1:5060", map[string]string{"To": "<sip:conf-1@h>;tag=x"}, goodSDP),
	request("INVITE", "conf-1", "127.0.0.1:5060", map[string]string{"Content-Type": "multipart/mixed;boundary=x"}, goodSDP),
	request("BYE", "conf-1", "127.0.0.1:5060", map[string]string{"To": "<sip:conf-1@h>;tag=x"}, ""),
	request("REFER", "conf-1", "127.0.0.1:5060", map[string]string{"To": "<sip:conf-1@h>;tag=x", "Refer-To": "<sip:conf-2@h?Replaces=a%3Bb>"}, ""),
	request("OPTIONS", "x", "127.0.0.1:5060", nil, ""),
}

// Requests of any shape: every INVITE gets exactly one final response;
// one refused with 4xx holds nothing; once every call has ended, nothing
// stays allocated. (Header handling and SDP handling through the real
// handlers and session table.)
func FuzzRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(strings.ReplaceAll(strings.ReplaceAll(s, "LOCAL", "127.0.0.1:5070"), "\n", "\r\n")))
	}
	pool, err := rtpproxy.NewPool(testRTPConfig(poolMin, poolMax))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { pool.Close() }) // unbinds the pairs it keeps bound for reuse; stops its pollers
	eng := confbridge.NewEngine(confbridge.Config{Ptime: 20 * time.Millisecond})
	defer eng.Close()
	table := session.New(session.Config{Conference: session.DefaultConferenceConfig()}, pool, eng, testLogger(f))
	routes := append(DefaultRoutes(), Route{Match: `^(?P<user>b[0-9]+)$`, Action: ActionBridge, Target: "sip:${user}@127.0.0.1:9"})
	s, err := New(Config{Listen: []string{"udp://127.0.0.1:0"}, Trusted: DefaultTrusted}, routes, nil, table, testLogger(f), nil)
	if err != nil {
		f.Fatal(err)
	}
	handlers := map[gosip.RequestMethod]func(*gosip.Request, gosip.ServerTransaction){
		gosip.INVITE: s.onInvite, gosip.ACK: s.onAck, gosip.BYE: s.onBye, gosip.CANCEL: s.onCancel,
		gosip.OPTIONS: s.onOptions, gosip.REFER: s.onRefer, gosip.NOTIFY: s.onNotify, gosip.INFO: s.onInfo,
		gosip.UPDATE: s.onUpdate,
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := gosip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*gosip.Request)
		if !ok || req.Via() == nil || req.CSeq() == nil { // sipgo's transaction layer answers those itself
			return
		}
		h := handlers[req.Method]
		if h == nil {
			return
		}
		tx := newFakeTx()
		h(req, tx)
		finals := tx.finals()
		if req.Method == gosip.INVITE && len(finals) != 1 {
			t.Fatalf("INVITE answered with %v final responses", finals)
		}
		if req.Method != gosip.ACK && len(finals) > 1 {
			t.Fatalf("%s answered %v", req.Method, finals)
		}
		if len(finals) == 1 && finals[0] >= 400 && req.Method == gosip.INVITE {
			if n := len(table.Connections()); n != 0 || s.Calls() != 0 {
				t.Fatalf("INVITE refused with %d holds %d connections, %d calls", finals[0], n, s.Calls())
			}
		}
		// Hang up whatever was set up, the way a BYE does.
		s.mu.Lock()
		var legs []*leg
		for _, l := range s.legs {
			legs = append(legs, l)
		}
		s.mu.Unlock()
		for _, l := range legs {
			l.end(endCause{})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.bg.wait(ctx)
		if n := len(table.Connections()); n != 0 || pool.FreePairs() != pool.Pairs() || len(table.Conferences()) != 0 {
			t.Fatalf("after hangup: %d connections, %d conferences, %d of %d port pairs free",
				n, len(table.Conferences()), pool.FreePairs(), pool.Pairs())
		}
	})
}

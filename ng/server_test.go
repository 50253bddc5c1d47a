package ng

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/session"
)

// peer is an RTP endpoint on loopback.
type peer struct {
	conn *net.UDPConn
	seq  uint16
}

func newPeer(t testing.TB) *peer { return &peer{conn: listenUDP(t)} }

func (p *peer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *peer) send(t testing.TB, to netip.AddrPort, ssrc uint32) {
	t.Helper()
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 8
	p.seq++
	binary.BigEndian.PutUint16(pkt[2:], p.seq)
	binary.BigEndian.PutUint32(pkt[4:], uint32(p.seq)*160)
	binary.BigEndian.PutUint32(pkt[8:], ssrc)
	if _, err := p.conn.WriteToUDPAddrPort(pkt, to); err != nil {
		t.Fatal(err)
	}
}

// recv reads one packet or fails after a generous wait.
func (p *peer) recv(t testing.TB) []byte {
	t.Helper()
	buf := make([]byte, 2048)
	_ = p.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no RTP at %s: %v", p.addr(), err)
	}
	return buf[:n]
}

// quiet reports whether nothing arrives within d.
func (p *peer) quiet(d time.Duration) bool {
	buf := make([]byte, 2048)
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	_, _, err := p.conn.ReadFromUDP(buf)
	return err != nil
}

func instant() Config { c := DefaultConfig(); c.DeleteDelay = 0; return c }

// setup runs offer (A's SDP) and answer (B's SDP) and returns where A and
// B must send: the port in the answer A read, and in the offer B read.
func setup(t *testing.T, r *rig, callID string, a, b *peer) (aTo, bTo netip.AddrPort) {
	t.Helper()
	off := r.do(Dict{"command": "offer", "call-id": callID, "from-tag": "fa", "sdp": sdpFor(a.addr()),
		"replace": []string{"origin", "session-connection"}, "flags": []string{"trust-address"}})
	if off["result"] != "ok" {
		t.Fatalf("offer: %v", off)
	}
	ans := r.do(Dict{"command": "answer", "call-id": callID, "from-tag": "fa", "to-tag": "tb", "sdp": sdpFor(b.addr())})
	if ans["result"] != "ok" {
		t.Fatalf("answer: %v", ans)
	}
	return mediaPort(t, ans["sdp"].(string)), mediaPort(t, off["sdp"].(string))
}

func TestPing(t *testing.T) {
	r := newRig(t, instant())
	if got := r.do(Dict{"command": "ping"}); got["result"] != "pong" {
		t.Fatalf("ping: %v", got)
	}
	if n := counter(t, r.reg, "mediagw_ng_requests_total", map[string]string{"command": "ping", "result": "pong"}); n != 1 {
		t.Fatalf("ping counter %v, want 1", n)
	}
}

func TestOfferAnswerRelayDelete(t *testing.T) {
	r := newRig(t, instant())
	a, b := newPeer(t), newPeer(t)
	free0 := r.pool.FreePairs()
	aTo, bTo := setup(t, r, "call-1", a, b)
	for _, ap := range []netip.AddrPort{aTo, bTo} {
		if ap.Port() < rtpMin || ap.Port() > rtpMax || ap.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("SDP names %s, not one of our ports", ap)
		}
	}
	if aTo == bTo {
		t.Fatalf("both sides were given the same port %s", aTo)
	}
	if got := r.pool.FreePairs(); got != free0-2 {
		t.Fatalf("free pairs %d, want %d", got, free0-2)
	}
	if cf := r.table.Conferences(); len(cf) != 1 || cf[0].Kind != session.KindBridge || len(cf[0].Members) != 2 {
		t.Fatalf("table conferences %+v, want one bridge of two", cf)
	}
	for i := 0; i < 5; i++ {
		a.send(t, aTo, 1)
		if p := b.recv(t); p[11] != 1 {
			t.Fatalf("B got ssrc %d", p[11])
		}
		b.send(t, bTo, 2)
		if p := a.recv(t); p[11] != 2 {
			t.Fatalf("A got ssrc %d", p[11])
		}
	}
	q := r.do(Dict{"command": "query", "call-id": "call-1"})
	tags := q["tags"].(map[string]any)
	for tag, want := range map[string]uint16{"fa": aTo.Port(), "tb": bTo.Port()} {
		mono := tags[tag].(map[string]any)
		st := mono["medias"].([]any)[0].(map[string]any)["streams"].([]any)[0].(map[string]any)
		if st["local port"] != int64(want) {
			t.Errorf("tag %s local port %v, want %d", tag, st["local port"], want)
		}
		if pk := st["stats"].(map[string]any)["packets"]; pk != int64(5) {
			t.Errorf("tag %s received %v packets, want 5", tag, pk)
		}
	}
	if tot := q["totals"].(map[string]any)["RTP"].(map[string]any); tot["packets"] != int64(10) || tot["bytes"] != int64(1600) {
		t.Errorf("totals %v, want 10 packets, 1600 bytes", tot)
	}
	del := r.do(Dict{"command": "delete", "call-id": "call-1", "from-tag": "fa"})
	if del["result"] != "ok" || del["tags"] == nil {
		t.Fatalf("delete: %v", del)
	}
	if got := r.pool.FreePairs(); got != free0 {
		t.Fatalf("free pairs after delete %d, want %d", got, free0)
	}
	if n := len(r.table.Connections()); n != 0 {
		t.Fatalf("%d connections left", n)
	}
	if got := r.do(Dict{"command": "query", "call-id": "call-1"}); got["result"] != "error" {
		t.Fatalf("query after delete: %v", got)
	}
	if n := counter(t, r.reg, "mediagw_ng_calls_active", nil); n != 0 {
		t.Fatalf("calls active %v", n)
	}
}

func TestRetransmissionExecutedOnce(t *testing.T) {
	r := newRig(t, instant())
	a := newPeer(t)
	body, _ := Marshal(nil, Dict{"command": "offer", "call-id": "rtx", "from-tag": "x", "sdp": sdpFor(a.addr())})
	dg := append([]byte("cookie42 "), body...)
	first := raw(t, r.client, r.addr, dg)
	second := raw(t, r.client, r.addr, dg)
	if !bytes.Equal(first, second) {
		t.Fatalf("retransmission got a different reply:\n%q\n%q", first, second)
	}
	if n := len(r.table.Connections()); n != 2 {
		t.Fatalf("%d connections, want 2 (offer executed once)", n)
	}
	if n := counter(t, r.reg, "mediagw_ng_retransmissions_total", nil); n != 1 {
		t.Fatalf("retransmissions %v, want 1", n)
	}
	// Another source with the same cookie is another command.
	other := listenUDP(t)
	third := raw(t, other, r.addr, dg)
	if !bytes.Contains(third, []byte("result2:ok")) || len(r.table.Connections()) != 2 {
		t.Fatalf("same cookie from another source: %q, %d connections (a re-offer modifies, creates nothing)", third, len(r.table.Connections()))
	}
}

func TestReofferHoldModifies(t *testing.T) {
	r := newRig(t, instant())
	a, b := newPeer(t), newPeer(t)
	aTo, bTo := setup(t, r, "hold", a, b)
	conns := r.table.Connections()
	// A puts B on hold: re-offer with a=sendonly and the to-tag.
	off := r.do(Dict{"command": "offer", "call-id": "hold", "from-tag": "fa", "to-tag": "tb",
		"sdp": sdpFor(a.addr(), "a=sendonly")})
	if off["result"] != "ok" || mediaPort(t, off["sdp"].(string)) != bTo || !strings.Contains(off["sdp"].(string), "a=sendonly") {
		t.Fatalf("hold re-offer: %v (want the same port %s again and a=sendonly passed on)", off, bTo)
	}
	ans := r.do(Dict{"command": "answer", "call-id": "hold", "from-tag": "fa", "to-tag": "tb",
		"sdp": sdpFor(b.addr(), "a=recvonly")})
	if ans["result"] != "ok" || mediaPort(t, ans["sdp"].(string)) != aTo {
		t.Fatalf("hold answer: %v", ans)
	}
	after := r.table.Connections()
	if len(after) != len(conns) || after[0].ID != conns[0].ID || after[1].ID != conns[1].ID {
		t.Fatalf("re-offer replaced connections: %v → %v", conns, after)
	}
	for _, c := range after {
		want := session.ModeSendOnly // facing B, who only receives
		if c.Remote == a.addr() {
			want = session.ModeRecvOnly // facing A, who only sends
		}
		if c.Mode != want {
			t.Errorf("connection %s facing %s: mode %s, want %s", c.ID, c.Remote, c.Mode, want)
		}
	}
	// A still reaches B; B's media no longer reaches A.
	a.send(t, aTo, 1)
	b.recv(t)
	b.send(t, bTo, 2)
	if !a.quiet(300 * time.Millisecond) {
		t.Fatal("B's RTP reached A while A holds")
	}
	// B moves to a new address in a re-offer of its own (callee re-INVITE).
	b2 := newPeer(t)
	off = r.do(Dict{"command": "offer", "call-id": "hold", "from-tag": "tb", "to-tag": "fa", "sdp": sdpFor(b2.addr())})
	if off["result"] != "ok" || mediaPort(t, off["sdp"].(string)) != aTo {
		t.Fatalf("callee re-offer: %v (want A's port %s)", off, aTo)
	}
	ans = r.do(Dict{"command": "answer", "call-id": "hold", "from-tag": "tb", "to-tag": "fa", "sdp": sdpFor(a.addr())})
	if ans["result"] != "ok" || mediaPort(t, ans["sdp"].(string)) != bTo {
		t.Fatalf("callee re-offer answer: %v", ans)
	}
	a.send(t, aTo, 3)
	if p := b2.recv(t); p[11] != 3 {
		t.Fatalf("B's new address got ssrc %d", p[11])
	}
	// A changes codec (PCMU only): the same connections carry PCMU now.
	pcmu := strings.Replace(sdpFor(a.addr()), "RTP/AVP 8 0 101", "RTP/AVP 0 101", 1)
	if off := r.do(Dict{"command": "offer", "call-id": "hold", "from-tag": "fa", "to-tag": "tb", "sdp": pcmu}); off["result"] != "ok" ||
		!strings.Contains(off["sdp"].(string), "RTP/AVP 0 101") {
		t.Fatalf("codec re-offer: %v", off)
	}
	if ans := r.do(Dict{"command": "answer", "call-id": "hold", "from-tag": "fa", "to-tag": "tb",
		"sdp": strings.Replace(sdpFor(b2.addr()), "RTP/AVP 8 0 101", "RTP/AVP 0 101", 1)}); ans["result"] != "ok" {
		t.Fatalf("codec answer: %v", ans)
	}
	final := r.table.Connections()
	if len(final) != 2 || final[0].ID != conns[0].ID || final[1].ID != conns[1].ID {
		t.Fatalf("codec change replaced connections: %v → %v", conns, final)
	}
	for _, c := range final {
		if c.Codec != "PCMU" {
			t.Errorf("connection %s codec %s after the codec change, want PCMU", c.ID, c.Codec)
		}
	}
}

func TestReleaseByAnotherFrontDropsCall(t *testing.T) {
	r := newRig(t, instant())
	a, b := newPeer(t), newPeer(t)
	free0 := r.pool.FreePairs()
	setup(t, r, "ext", a, b)
	id := r.table.Connections()[0].ID
	if _, err := r.table.DeleteConnection(id, "", session.Release{By: session.FrontHTTP}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other leg released and the call dropped", func() bool {
		return len(r.table.Connections()) == 0 && r.pool.FreePairs() == free0
	})
	waitFor(t, "query to fail", func() bool {
		return r.do(Dict{"command": "query", "call-id": "ext"})["result"] == "error"
	})
	st := r.do(Dict{"command": "statistics"})["statistics"].(map[string]any)["totalstatistics"].(map[string]any)
	if st["forcedterminatedsessions"] != int64(1) {
		t.Fatalf("statistics %v, want 1 forced termination", st)
	}
}

func TestDeleteScopesAndWarnings(t *testing.T) {
	r := newRig(t, instant())
	if got := r.do(Dict{"command": "delete", "call-id": "nope", "from-tag": "x"}); got["result"] != "ok" || got["warning"] != warnNotFound {
		t.Fatalf("delete unknown: %v", got)
	}
	if got := r.do(Dict{"command": "delete", "call-id": "nope", "flags": []string{"fatal"}}); got["result"] != "error" {
		t.Fatalf("fatal delete unknown: %v", got)
	}
	// Two forks of one offer (via-branch), one answered; deleting the
	// other branch leaves the call.
	a, b := newPeer(t), newPeer(t)
	for _, br := range []string{"z9hG4bK1", "z9hG4bK2"} {
		got := r.do(Dict{"command": "offer", "call-id": "fork", "from-tag": "fa", "via-branch": br, "sdp": sdpFor(a.addr())})
		if got["result"] != "ok" {
			t.Fatalf("offer %s: %v", br, got)
		}
	}
	if n := len(r.table.Connections()); n != 4 {
		t.Fatalf("%d connections for two forks, want 4", n)
	}
	if got := r.do(Dict{"command": "answer", "call-id": "fork", "from-tag": "fa", "to-tag": "tb", "via-branch": "z9hG4bK1", "sdp": sdpFor(b.addr())}); got["result"] != "ok" {
		t.Fatalf("answer: %v", got)
	}
	if got := r.do(Dict{"command": "delete", "call-id": "fork", "from-tag": "fa", "via-branch": "z9hG4bK2"}); got["result"] != "ok" {
		t.Fatalf("delete branch: %v", got)
	}
	if n := len(r.table.Connections()); n != 2 {
		t.Fatalf("%d connections after deleting a branch, want 2", n)
	}
	if got := r.do(Dict{"command": "list"}); len(got["calls"].([]any)) != 1 {
		t.Fatalf("list: %v", got)
	}
	// One tag (the callee's) ends its dialog, which here is the whole call.
	if got := r.do(Dict{"command": "delete", "call-id": "fork", "from-tag": "tb"}); got["result"] != "ok" || got["warning"] != nil {
		t.Fatalf("delete by to-tag: %v", got)
	}
	if n := len(r.table.Connections()); n != 0 {
		t.Fatalf("%d connections left", n)
	}
}

// A proxy deletes a refused call (486) with the refusal's to-tag, which
// no answer ever named.
func TestDeleteUnansweredWithToTag(t *testing.T) {
	r := newRig(t, instant())
	a := newPeer(t)
	if got := r.do(Dict{"command": "offer", "call-id": "busy", "from-tag": "fa", "sdp": sdpFor(a.addr())}); got["result"] != "ok" {
		t.Fatalf("offer: %v", got)
	}
	if got := r.do(Dict{"command": "delete", "call-id": "busy", "from-tag": "fa", "to-tag": "refused"}); got["result"] != "ok" || got["warning"] != nil {
		t.Fatalf("delete: %v", got)
	}
	if n := len(r.table.Connections()); n != 0 {
		t.Fatalf("%d connections left", n)
	}
}

func TestDeleteDelay(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DeleteDelay = time.Hour // never, unless the command's own delay says otherwise
	r := newRig(t, cfg)
	a, b := newPeer(t), newPeer(t)
	setup(t, r, "dd", a, b)
	if got := r.do(Dict{"command": "delete", "call-id": "dd", "delete delay": 1}); got["result"] != "ok" {
		t.Fatalf("delete: %v", got)
	}
	if n := len(r.table.Connections()); n != 2 {
		t.Fatalf("%d connections right after a delayed delete, want 2", n)
	}
	waitFor(t, "the delayed delete", func() bool { return len(r.table.Connections()) == 0 })
	// The config's delay: pending at the end of the test, run at Serve's end.
	setup(t, r, "dd2", a, b)
	if got := r.do(Dict{"command": "delete", "call-id": "dd2"}); got["result"] != "ok" {
		t.Fatalf("delete: %v", got)
	}
	if got := r.do(Dict{"command": "list"}); len(got["calls"].([]any)) != 1 {
		t.Fatalf("a call pending deletion is still listed: %v", got)
	}
}

func TestErrors(t *testing.T) {
	r := newRig(t, instant())
	a := newPeer(t)
	cases := []struct {
		name   string
		cmd    Dict
		reason string
	}{
		{"unknown command", Dict{"command": "frobnicate"}, reasonUnknownCommand},
		{"no command", Dict{"call-id": "x"}, "Invalid request"},
		{"offer without sdp", Dict{"command": "offer", "call-id": "x", "from-tag": "f"}, reasonNoSDP},
		{"offer without call-id", Dict{"command": "offer", "from-tag": "f", "sdp": sdpFor(a.addr())}, reasonNoCallID},
		{"offer without from-tag", Dict{"command": "offer", "call-id": "x", "sdp": sdpFor(a.addr())}, reasonNoFromTag},
		{"bad sdp", Dict{"command": "offer", "call-id": "x", "from-tag": "f", "sdp": "hello"}, reasonBadSDP},
		{"sdp not a string", Dict{"command": "offer", "call-id": "x", "from-tag": "f", "sdp": 5}, "Invalid request"},
		{"flags not a list", Dict{"command": "offer", "call-id": "x", "from-tag": "f", "flags": "x"}, "Invalid request"},
		{"answer unknown call", Dict{"command": "answer", "call-id": "x", "from-tag": "f", "to-tag": "t", "sdp": sdpFor(a.addr())}, reasonUnknownCall},
		{"answer without to-tag", Dict{"command": "answer", "call-id": "x", "from-tag": "f", "sdp": sdpFor(a.addr())}, reasonNoToTag},
		{"query unknown", Dict{"command": "query", "call-id": "x"}, reasonUnknownCall},
		{"play media unknown call", Dict{"command": "play media", "call-id": "x", "from-tag": "f", "file": "x.wav"}, reasonUnknownCall},
		{"play media blob", Dict{"command": "play media", "call-id": "x", "from-tag": "f", "blob": "RIFF"}, "'blob' is not supported"},
		{"play DTMF unknown call", Dict{"command": "play DTMF", "call-id": "x", "from-tag": "f", "code": "1"}, reasonUnknownCall},
		{"play DTMF bad code", Dict{"command": "play DTMF", "call-id": "x", "from-tag": "f", "code": "x"}, "Invalid request"},
		{"start recording unknown call", Dict{"command": "start recording", "call-id": "x"}, reasonUnknownCall},
		{"block DTMF", Dict{"command": "block DTMF", "call-id": "x", "from-tag": "f"}, "not supported by mediagw yet"},
	}
	for _, c := range cases {
		got := r.do(c.cmd)
		if got["result"] != "error" || !strings.Contains(got["error-reason"].(string), c.reason) {
			t.Errorf("%s: %v, want error %q", c.name, got, c.reason)
		}
	}
	// Not bencode at all, and no cookie.
	rep := raw(t, r.client, r.addr, []byte("c1 d3:foo"))
	if !bytes.Contains(rep, []byte(reasonDecode)) || !bytes.HasPrefix(rep, []byte("c1 ")) {
		t.Errorf("undecodable: %q", rep)
	}
	if _, err := r.client.WriteToUDP([]byte("nocookie"), r.addr); err != nil {
		t.Fatal(err)
	}
	if got := r.do(Dict{"command": "ping"}); got["result"] != "pong" {
		t.Fatal("front stopped answering after a datagram without a cookie")
	}
	if n := len(r.table.Connections()); n != 0 {
		t.Fatalf("failed commands left %d connections", n)
	}
	if n := counter(t, r.reg, "mediagw_ng_requests_total", map[string]string{"command": "unknown", "result": "error"}); n != 6 {
		t.Fatalf("unknown/error counter %v, want 6 (unknown command, no command, three bad fields, undecodable)", n)
	}
	if n := counter(t, r.reg, "mediagw_ng_requests_total", map[string]string{"command": "play dtmf", "result": "error"}); n != 1 {
		t.Fatalf("play dtmf/error counter %v, want 1", n)
	}
}

func TestNoPortsIsAnErrorAndLeaksNothing(t *testing.T) {
	r := newRig(t, instant())
	a := newPeer(t)
	var held []string
	for r.pool.FreePairs() > 1 {
		c, err := r.table.CreateConnection(session.ConnectionParams{Owner: session.FrontHTTP})
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c.ID)
	}
	got := r.do(Dict{"command": "offer", "call-id": "full", "from-tag": "f", "sdp": sdpFor(a.addr())})
	if got["result"] != "error" || !strings.Contains(got["error-reason"].(string), "Ran out of ports") {
		t.Fatalf("offer with one free pair: %v", got)
	}
	if n := r.pool.FreePairs(); n != 1 {
		t.Fatalf("free pairs %d after the failed offer, want 1", n)
	}
	if n := len(r.table.Connections()); n != len(held) {
		t.Fatalf("%d connections, want %d", n, len(held))
	}
}

func TestSourceOutsideAllowDropped(t *testing.T) {
	cfg := instant()
	cfg.Allow = []string{"127.0.0.1"}
	r := newRig(t, cfg)
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.WriteToUDP([]byte("c1 d7:command4:pinge"), r.addr); err != nil {
		t.Fatal(err)
	}
	_ = other.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := other.ReadFromUDP(make([]byte, 100)); err == nil {
		t.Fatalf("a source outside ng.allow got %d bytes of reply", n)
	}
	if got := r.do(Dict{"command": "ping"}); got["result"] != "pong" {
		t.Fatalf("allowed source: %v", got)
	}
	if n := counter(t, r.reg, "mediagw_ng_dropped_total", map[string]string{"reason": "source"}); n != 1 {
		t.Fatalf("dropped{source} %v, want 1", n)
	}
}

// Draining (or out of ports), a new call is refused with "load limit" to a
// client that supports it, so the proxy tries another relay; calls in
// progress go on.
func TestDrainAnswersLoadLimit(t *testing.T) {
	r := newRig(t, instant())
	a, b := newPeer(t), newPeer(t)
	setup(t, r, "old", a, b)
	r.table.Drain(true)
	got := r.do(Dict{"command": "offer", "call-id": "new", "from-tag": "f", "sdp": sdpFor(a.addr()), "supports": []string{"load limit"}})
	if got["result"] != "load limit" || got["message"] == nil {
		t.Fatalf("offer while draining: %v", got)
	}
	if got := r.do(Dict{"command": "offer", "call-id": "new2", "from-tag": "f", "sdp": sdpFor(a.addr())}); got["result"] != "error" {
		t.Fatalf("offer while draining, client without load limit: %v", got)
	}
	if got := r.do(Dict{"command": "offer", "call-id": "old", "from-tag": "fa", "to-tag": "tb", "sdp": sdpFor(a.addr(), "a=sendonly")}); got["result"] != "ok" {
		t.Fatalf("re-offer of a call in progress while draining: %v", got)
	}
	if n := len(r.table.Connections()); n != 2 {
		t.Fatalf("%d connections, want the old call's 2", n)
	}
	if n := counter(t, r.reg, "mediagw_ng_requests_total", map[string]string{"command": "offer", "result": "load limit"}); n != 1 {
		t.Fatalf("offer/load limit counter %v", n)
	}
}

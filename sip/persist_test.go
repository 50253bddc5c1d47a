package sip

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/mediagw/mediagw/confbridge"
	"github.com/mediagw/mediagw/internal/memstate"
	"github.com/mediagw/mediagw/rtpproxy"
	"github.com/mediagw/mediagw/session"
)

// A confirmed dialog written to the state comes back in a new front as it
// was: a BYE built after the restore goes to the remote target along the
// recorded route set, with our next CSeq and both tags; the remote CSeq
// still orders their requests; the bridge partner is linked again; a
// connection of the front that no dialog owns is released, and a dialog
// whose connection is gone is hung up once its transport serves.
func TestDialogRestore(t *testing.T) {
	pool, err := rtpproxy.NewPool(testRTPConfig(poolMin+700, poolMin+719))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	eng := confbridge.NewEngine(confbridge.Config{Ptime: 20 * time.Millisecond})
	defer eng.Close()
	table := session.New(session.Config{Conference: session.DefaultConferenceConfig()}, pool, eng, testLogger(t))
	defer table.Shutdown()
	mk := func(tag string) session.Connection {
		c, err := table.CreateConnection(session.ConnectionParams{Codec: "PCMU", Owner: session.FrontSIP, Tag: tag, CallID: "call-" + tag})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, cb := mk("a-tag"), mk("b-tag")
	orphan := mk("setup-tag")

	st := memstate.New()
	s1, err := New(Config{Trusted: DefaultTrusted}, DefaultRoutes(), nil, table, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	s1.state = st
	dial := func(l *leg, conn session.Connection, uac bool) {
		var from gosip.FromHeader
		var to gosip.ToHeader
		if _, err := gosip.ParseAddressValue(`"Gateway" <sip:gw@127.0.0.1:5060>;tag=`+l.tag, &from.Address, &from.Params); err != nil {
			t.Fatal(err)
		}
		if _, err := gosip.ParseAddressValue(`<sip:alice@192.0.2.7>;tag=theirs-`+l.tag, &to.Address, &to.Params); err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		l.dlg = dialog{from: &from, to: &to, routes: []string{"<sip:p1.example.net;lr>", "<sip:p2.example.net;lr>"},
			seq: 41, remoteSeq: 7, transport: "UDP"}
		if err := gosip.ParseUri("sip:alice@192.0.2.7:5062;transport=udp", &l.dlg.target); err != nil {
			t.Fatal(err)
		}
		l.connID, l.action = conn.ID, ActionBridge
		l.media = mediaState{sessID: 99, version: 3, codec: format{PT: 0, Name: "PCMU", Rate: 8000}, dir: dirSendRecv,
			ptime: 20 * time.Millisecond, local: conn.Local}
		l.state = stateAnswered
		l.confirmLocked()
		l.mu.Unlock()
	}
	a, err := s1.newLeg("a-tag", "call-a-tag", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s1.newLeg("b-tag", "call-b-tag", true)
	if err != nil {
		t.Fatal(err)
	}
	dial(a, ca, false)
	dial(b, cb, true)
	if !link(a, b) {
		t.Fatal("link")
	}
	st.Put(StateDialog, "gone-tag", []byte(`{"v":1,"tag":"gone-tag","call_id":"x","conn":"999","action":"conference","from":"<sip:a@b>;tag=gone-tag","to":"<sip:c@d>;tag=e","target":"sip:c@d","transport":"UDP","local":"127.0.0.1:1"}`))
	if n := st.Count(StateDialog); n != 3 {
		t.Fatalf("%d dialogs written, want 3 (a, b, and the planted one)", n)
	}

	s2, err := New(Config{Trusted: DefaultTrusted}, DefaultRoutes(), nil, table, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s2.Restore(st)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Dialogs != 2 || rep.Lost != 1 || rep.Dropped != 0 || rep.Released != 1 {
		t.Fatalf("restore: %+v, want 2 dialogs, 1 lost (its connection is gone), 1 released (the call in setup)", rep)
	}
	if l := s2.leg("gone-tag"); l == nil || l.connID != "" {
		t.Fatal("the dialog without media is not kept for its BYE")
	}
	s2.hangUpLost("UDP") // what ServeUDP does once it listens (the BYE finds no listener here)
	if _, err := table.Connection(orphan.ID); err == nil {
		t.Fatal("the connection of a call in setup is still there")
	}
	if _, ok := st.Get(StateDialog, "gone-tag"); ok || s2.leg("gone-tag") != nil {
		t.Fatal("the dialog hung up is still there")
	}
	ra := s2.leg("a-tag")
	if ra == nil || ra.partner == nil || ra.partner.tag != "b-tag" || s2.leg("b-tag").partner != ra {
		t.Fatal("the bridge partners are not linked again")
	}
	ra.mu.Lock()
	bye := ra.newRequest(gosip.BYE)
	ra.mu.Unlock()
	if got := bye.CSeq().SeqNo; got != 42 {
		t.Errorf("BYE CSeq %d, want 42", got)
	}
	if got := bye.Recipient.String(); got != "sip:alice@192.0.2.7:5062;transport=udp" {
		t.Errorf("BYE to %s", got)
	}
	var routes []string
	for _, h := range bye.GetHeaders("Route") {
		routes = append(routes, h.Value())
	}
	if strings.Join(routes, ",") != "<sip:p1.example.net;lr>,<sip:p2.example.net;lr>" {
		t.Errorf("BYE routes %v", routes)
	}
	if tag, _ := bye.From().Params.Get("tag"); tag != "a-tag" {
		t.Errorf("BYE From tag %q", tag)
	}
	if tag, _ := bye.To().Params.Get("tag"); tag != "theirs-a-tag" {
		t.Errorf("BYE To tag %q", tag)
	}
	if bye.CallID().Value() != "call-a-tag" {
		t.Errorf("BYE Call-ID %q", bye.CallID().Value())
	}
	old := gosip.NewRequest(gosip.INFO, gosip.Uri{Scheme: "sip", Host: "x"})
	old.AppendHeader(&gosip.CSeqHeader{SeqNo: 6, MethodName: gosip.INFO})
	if ra.checkSeq(old) {
		t.Error("a request older than the recorded remote CSeq was taken")
	}
	if ra.media.local != ca.Local || ra.media.codec.Name != "PCMU" || ra.media.version != 3 {
		t.Errorf("media state %+v", ra.media)
	}
}

// The hand-written dialog record reads back, through encoding/json, as
// json.Marshal of the same record would.
func TestDialogRecordEncoding(t *testing.T) {
	s := &Server{}
	var from gosip.FromHeader
	var to gosip.ToHeader
	if _, err := gosip.ParseAddressValue(`"Gâteway \"1\"" <sip:gw@127.0.0.1:5060>;tag=ours`, &from.Address, &from.Params); err != nil {
		t.Fatal(err)
	}
	if _, err := gosip.ParseAddressValue(`<sip:alice@192.0.2.7>;tag=theirs`, &to.Address, &to.Params); err != nil {
		t.Fatal(err)
	}
	te := format{PT: 101, Name: "telephone-event", Rate: 8000, Fmtp: "0-15"}
	l := &leg{s: s, tag: "ours", callID: "c\\1", uac: true, connID: "42", action: ActionBridge, partner: &leg{tag: "p"},
		dlg: dialog{from: &from, to: &to, routes: []string{"<sip:p1;lr>", `<sip:"odd";lr>`}, seq: 9, remoteSeq: 3, transport: "TCP", dest: "192.0.2.7:5060"},
		media: mediaState{sessID: 1 << 40, version: 7, codec: format{PT: 8, Name: "PCMA", Rate: 8000, Channels: 1}, te: &te,
			dir: dirRecvOnly, ptime: 30 * time.Millisecond, local: netip.MustParseAddrPort("[::1]:20000")}}
	if err := gosip.ParseUri("sip:alice@192.0.2.7:5062;transport=tcp", &l.dlg.target); err != nil {
		t.Fatal(err)
	}
	want := dialogRecord{V: dialogVersion, Tag: l.tag, CallID: l.callID, UAC: true, Conn: "42", Action: ActionBridge, Partner: "p",
		From: from.Value(), To: to.Value(), Target: l.dlg.target.String(), Routes: l.dlg.routes, Seq: 9, RemoteSeq: 3,
		Transport: "TCP", Dest: "192.0.2.7:5060", SessID: 1 << 40, Version: 7, Codec: l.media.codec, TE: &te,
		Dir: uint8(dirRecvOnly), PtimeMs: 30, Local: "[::1]:20000"}
	var got dialogRecord
	if err := json.Unmarshal(l.appendRecord(nil), &got); err != nil {
		t.Fatalf("%s: %v", l.appendRecord(nil), err)
	}
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if string(wb) != string(gb) {
		t.Fatalf("read back %s\nwant      %s", gb, wb)
	}
}

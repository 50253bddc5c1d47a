package rtpproxy

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

var (
	ip2 = net.IPv4(127, 0, 0, 2)
	ip3 = net.IPv4(127, 0, 0, 3)
)

// expectSeq reads pb until a packet arrives and checks it is seq: whatever
// was sent before it and dropped never shows up first.
func expectSeq(t *testing.T, pb *peer, seq uint16, why string) {
	t.Helper()
	if got, _ := recv(t, pb.rtp); seqOf(got) != seq {
		t.Fatalf("%s: got seq %d, want %d", why, seqOf(got), seq)
	}
}

func dropsOf(l *Leg, r DropReason) uint64 { return l.Drops()[r] }

// TestLatchOnlyFromSignalledSources: before latching only the SDP address
// (exactly) or any port of the signalling IP may latch; an attacker spraying
// the port first neither latches nor is relayed, and is counted.
func TestLatchOnlyFromSignalledSources(t *testing.T) {
	_, a, b, sdp, pb := relayPair(t)
	attacker := newPeerOn(t, ip3)
	samehost := newPeer(t) // the SDP's IP, another port: not allowed without signalling IP
	nat := newPeerOn(t, ip2)

	attacker.send(t, legAddr(a), rtpPacket(0, 90, 0, 9, 10))
	samehost.send(t, legAddr(a), rtpPacket(0, 91, 0, 9, 10))
	sdp.send(t, legAddr(a), rtpPacket(0, 1, 0, 1, 10))
	expectSeq(t, pb, 1, "first accepted packet")
	if a.Remote() != sdp.addr() {
		t.Fatalf("Remote = %v, want the SDP address %v", a.Remote(), sdp.addr())
	}
	if n := dropsOf(a, DropSource); n != 2 {
		t.Fatalf("source drops %d, want 2", n)
	}
	// B's media goes to the SDP address, never to the attacker.
	pb.send(t, legAddr(b), rtpPacket(0, 2, 0, 2, 10))
	if _, from := recv(t, sdp.rtp); from != legAddr(a) {
		t.Fatalf("from %v", from)
	}
	// Latched and strict: the attacker is still dropped.
	attacker.send(t, legAddr(a), rtpPacket(0, 92, 0, 9, 10))
	sdp.send(t, legAddr(a), rtpPacket(0, 3, 160, 1, 10))
	expectSeq(t, pb, 3, "after latching")
	if n := dropsOf(a, DropSource); n != 3 {
		t.Fatalf("source drops %d, want 3", n)
	}

	// Signalling names the NAT's IP: any port of it may latch, the SDP
	// address may too, until one has.
	a.SetSignalingIP(netip.AddrFrom4([4]byte{127, 0, 0, 2}))
	if a.Remote() != sdp.addr() {
		t.Fatalf("Remote = %v after SetSignalingIP, want the SDP address", a.Remote())
	}
	attacker.send(t, legAddr(a), rtpPacket(0, 93, 0, 9, 10))
	nat.send(t, legAddr(a), rtpPacket(0, 4, 0, 4, 10))
	expectSeq(t, pb, 4, "from the signalling IP")
	if a.Remote() != nat.addr() {
		t.Fatalf("Remote = %v, want latched %v", a.Remote(), nat.addr())
	}
	sdp.send(t, legAddr(a), rtpPacket(0, 94, 0, 9, 10)) // now latched to the NAT
	nat.send(t, legAddr(a), rtpPacket(0, 5, 160, 4, 10))
	expectSeq(t, pb, 5, "the SDP address after latching to the NAT")

	// SetRemote (a re-INVITE, MDCX) starts over.
	a.SetRemote(sdp.addr())
	sdp.send(t, legAddr(a), rtpPacket(0, 6, 320, 1, 10))
	expectSeq(t, pb, 6, "after SetRemote")
	if a.Remote() != sdp.addr() {
		t.Fatalf("Remote = %v, want %v", a.Remote(), sdp.addr())
	}
	if n := dropsOf(a, DropSource); n != 5 {
		t.Fatalf("source drops %d, want 5", n)
	}
}

// TestNoRemoteAcceptsNothing: a leg that knows neither a remote nor a
// signalling IP (MGCP CRCX without SDP, HTTP ReserveConnection) takes
// nothing until signalling gives it one.
func TestNoRemoteAcceptsNothing(t *testing.T) {
	p := newTestPool(t, testPortMin, testPortMax)
	l := openLeg(t, p)
	ph := newPeer(t)
	if l.Remote().IsValid() {
		t.Fatalf("new leg has remote %v", l.Remote())
	}
	if err := l.Send(rtpPacket(0, 1, 0, 1, 10)); err != nil {
		t.Fatalf("Send with no remote: %v, want a silent drop", err)
	}
	got := make(chan []byte, 4)
	l.SetHandler(HandlerFunc(func(pkt []byte) { got <- bytes.Clone(pkt) }))
	ph.send(t, legAddr(l), rtpPacket(0, 1, 0, 1, 10))
	waitFor(t, "the drop", func() bool { return dropsOf(l, DropSource) == 1 })
	if l.Remote().IsValid() || len(got) != 0 {
		t.Fatalf("latched %v with no signalled source", l.Remote())
	}
	l.SetRemote(ph.addr())
	ph.send(t, legAddr(l), rtpPacket(0, 2, 0, 1, 10))
	if pkt := <-got; seqOf(pkt) != 2 {
		t.Fatalf("got seq %d", seqOf(pkt))
	}
	if err := l.Send(rtpPacket(0, 3, 0, 5, 10)); err != nil {
		t.Fatal(err)
	}
	if pkt, _ := recv(t, ph.rtp); seqOf(pkt) != 3 {
		t.Fatalf("got seq %d", seqOf(pkt))
	}
}

// TestStrictSourceOff: without strict_source a latched leg still hears
// others (rtpengine's default) but its remote does not move.
func TestStrictSourceOff(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Bind, cfg.PortMin, cfg.PortMax, cfg.StrictSource = "127.0.0.1", testPortMin, testPortMax, false
	p := newConfigPool(t, cfg)
	a, b := openLeg(t, p), openLeg(t, p)
	pa, pb, other := newPeer(t), newPeer(t), newPeerOn(t, ip3)
	a.SetRemote(pa.addr())
	b.SetRemote(pb.addr())
	Relay(a, b)
	other.send(t, legAddr(a), rtpPacket(0, 90, 0, 9, 10)) // before latching: still refused
	pa.send(t, legAddr(a), rtpPacket(0, 1, 0, 1, 10))
	expectSeq(t, pb, 1, "first")
	other.send(t, legAddr(a), rtpPacket(0, 2, 0, 9, 10))
	expectSeq(t, pb, 2, "another source, not strict")
	if a.Remote() != pa.addr() {
		t.Fatalf("Remote moved to %v", a.Remote())
	}
	if n := dropsOf(a, DropSource); n != 1 {
		t.Fatalf("source drops %d, want 1 (the packet before latching)", n)
	}
}

// TestRelatchAfterSilence: a latched source silent for relatch_after may be
// replaced by an allowed address (a NAT that picked a new port), never by
// anyone else; while it talks, nobody replaces it.
func TestRelatchAfterSilence(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Bind, cfg.PortMin, cfg.PortMax, cfg.RelatchAfter = "127.0.0.1", testPortMin, testPortMax, 300*time.Millisecond
	p := newConfigPool(t, cfg)
	a, b := openLeg(t, p), openLeg(t, p)
	sdp, pb := newPeer(t), newPeer(t)
	nat1, nat2, attacker := newPeerOn(t, ip2), newPeerOn(t, ip2), newPeerOn(t, ip3)
	a.SetRemote(sdp.addr())
	a.SetSignalingIP(netip.AddrFrom4([4]byte{127, 0, 0, 2}))
	b.SetRemote(pb.addr())
	Relay(a, b)
	nat1.send(t, legAddr(a), rtpPacket(0, 1, 0, 1, 10))
	expectSeq(t, pb, 1, "first")
	nat2.send(t, legAddr(a), rtpPacket(0, 90, 0, 1, 10)) // nat1 talks: refused
	nat1.send(t, legAddr(a), rtpPacket(0, 2, 160, 1, 10))
	expectSeq(t, pb, 2, "while the latched source talks")
	time.Sleep(400 * time.Millisecond)
	attacker.send(t, legAddr(a), rtpPacket(0, 91, 0, 9, 10)) // silent, but not allowed
	nat2.send(t, legAddr(a), rtpPacket(0, 3, 320, 1, 10))
	expectSeq(t, pb, 3, "after silence, from an allowed address")
	if a.Remote() != nat2.addr() {
		t.Fatalf("Remote = %v, want relatched %v", a.Remote(), nat2.addr())
	}
	nat1.send(t, legAddr(a), rtpPacket(0, 92, 0, 1, 10))
	nat2.send(t, legAddr(a), rtpPacket(0, 4, 480, 1, 10))
	expectSeq(t, pb, 4, "the old source is refused")
	if n := dropsOf(a, DropSource); n != 3 {
		t.Fatalf("source drops %d, want 3", n)
	}
}

// TestRTCPSources: RTCP latches from the SDP address's port+1 or the RTP
// source's IP, not from a stranger; malformed RTP and RTCP are counted.
func TestRTCPSources(t *testing.T) {
	_, a, _, sdp, _ := relayPair(t)
	attacker := newPeerOn(t, ip3)
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}})
	attacker.rtcp.WriteToUDPAddrPort(rr, legRTCPAddr(a))
	waitFor(t, "the RTCP drop", func() bool { return dropsOf(a, DropSource) == 1 })
	if !a.LastReceived().IsZero() {
		t.Fatal("a stranger's RTCP counted as activity")
	}
	sdp.rtcp.WriteToUDPAddrPort(rr, legRTCPAddr(a))
	waitFor(t, "RTCP from the SDP address", func() bool { return !a.LastReceived().IsZero() })

	attacker.rtcp.WriteToUDPAddrPort([]byte("junk"), legRTCPAddr(a))
	attacker.send(t, legAddr(a), []byte{0x80, 0, 0}) // too short for RTP
	attacker.send(t, legAddr(a), []byte("GET / HTTP/1.0\r\n\r\n"))
	waitFor(t, "malformed drops", func() bool { return dropsOf(a, DropMalformed) == 3 })
	if d := a.pool.Drops(); d[DropMalformed] != 3 || d[DropSource] != 1 {
		t.Fatalf("pool drops %v", d)
	}
}

// TestDropsOutliveLegs: the pool's totals keep what closed legs dropped.
func TestDropsOutliveLegs(t *testing.T) {
	p := newTestPool(t, testPortMin, testPortMax)
	l := openLeg(t, p)
	ph := newPeer(t)
	ph.send(t, legAddr(l), rtpPacket(0, 1, 0, 1, 10))
	waitFor(t, "the drop", func() bool { return dropsOf(l, DropSource) == 1 })
	l.Close()
	if d := p.Drops(); d[DropSource] != 1 {
		t.Fatalf("pool drops after close %v", d)
	}
}

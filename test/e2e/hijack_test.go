package e2e

import (
	"encoding/binary"
	"math"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// newTonePeerAt is NewTonePeer on another loopback address (127.0.0.3 for
// an attacker on a different host).
func newTonePeerAt(t testing.TB, ip net.IP, freq float64, pt uint8) *TonePeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	p := &TonePeer{Freq: freq, Amp: toneAmplitude, PT: pt, conn: c, ssrc: uint32(freq*7919) ^ 0x5eed, stop: make(chan struct{}), power: map[float64]float64{}}
	t.Cleanup(p.Close)
	return p
}

// spray sends p's tone from p's socket to every even port of lo..hi every
// 20 ms, as an attacker scanning the RTP range would, until stop closes.
func spray(p *TonePeer, lo, hi int, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	pkt := make([]byte, 12+160)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	n := 0
	for seq := uint16(0); ; seq++ {
		pkt[0], pkt[1] = 0x80, p.PT
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
		binary.BigEndian.PutUint32(pkt[8:], p.ssrc)
		for i := range 160 {
			pkt[12+i] = encode(p.PT, int16(p.Amp*math.Sin(2*math.Pi*p.Freq*float64(n)/8000)))
			n++
		}
		for port := lo + lo%2; port <= hi; port += 2 {
			_, _ = p.conn.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)))
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// TestRTPHijack (issue 10, finding 3): an attacker on another address
// (127.0.0.3) sprays RTP at the whole port range from before two SIP phones
// join a conference until after their legs latched. Neither the first packet
// to a fresh leg nor any later one redirects a call: each phone hears the
// other and not the attacker, the attacker hears neither phone, and the
// gateway counts the refused packets.
func TestRTPHijack(t *testing.T) {
	g := StartGateway(t, GatewayOptions{})
	start := g.Metrics(t)
	freqs := []float64{400, 900, 1500}
	attacker := newTonePeerAt(t, net.IPv4(127, 0, 0, 3), freqs[2], 0)
	attacker.Run(netip.AddrPort{}, false, freqs...) // listens only; spray sends
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go spray(attacker, g.RTPMin, g.RTPMax, stop, &wg)
	defer func() { close(stop); wg.Wait() }()

	phoneA, phoneB := newSIPPhone(t, "alice"), newSIPPhone(t, "bob")
	peerA, peerB := NewTonePeer(t, freqs[0], 0), NewTonePeer(t, freqs[1], 0)
	_, ansA := phoneA.call(g.SIP, "conf-hijack", peerA)
	_, ansB := phoneB.call(g.SIP, "conf-hijack", peerB)
	// The spray reaches the fresh legs (every 20 ms) before their phones
	// send anything.
	time.Sleep(300 * time.Millisecond)
	peerA.Run(mediaAddr(t, ansA), true, freqs...)
	peerB.Run(mediaAddr(t, ansB), true, freqs...)

	check := func(phase string) {
		t.Helper()
		waitPackets(t, 25, peerA, peerB)
		for _, p := range []*TonePeer{peerA, peerB, attacker} {
			p.Reset()
		}
		waitPackets(t, 50, peerA, peerB)
		AssertHearing(t, phase+": alice", peerA, freqs, map[float64]bool{freqs[1]: true})
		AssertHearing(t, phase+": bob", peerB, freqs, map[float64]bool{freqs[0]: true})
		AssertHearing(t, phase+": attacker", attacker, freqs, map[float64]bool{})
		if _, n := attacker.Heard(freqs[0]); n != 0 {
			t.Errorf("%s: the attacker received %d packets", phase, n)
		}
	}
	check("latching under attack")
	before := g.Metrics(t)[`mediagw_rtp_dropped_total{reason="source"}`]
	if before < 20 {
		t.Errorf("dropped{source} = %v, want the spray counted", before)
	}
	check("latched, still under attack")
	if after := g.Metrics(t)[`mediagw_rtp_dropped_total{reason="source"}`]; after <= before {
		t.Errorf("dropped{source} did not move after latching: %v then %v", before, after)
	}
	g.MustAction(t, "DeleteConnection", map[string]any{"ConferenceId": "hijack"})
	phoneA.expectBye("alice")
	phoneB.expectBye("bob")
	g.WaitGaugesBack(t, start)
}

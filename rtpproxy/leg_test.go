package rtpproxy

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"go.uber.org/goleak"
)

// relayPair opens two legs relayed to each other, each addressed to its own peer.
func relayPair(t *testing.T) (p *Pool, a, b *Leg, pa, pb *peer) {
	p = newTestPool(t, testPortMin, testPortMax)
	a, b = openLeg(t, p), openLeg(t, p)
	pa, pb = newPeer(t), newPeer(t)
	a.SetRemote(pa.addr())
	b.SetRemote(pb.addr())
	Relay(a, b)
	return p, a, b, pa, pb
}

func TestRelayBothWays(t *testing.T) {
	p, a, b, pa, pb := relayPair(t)
	const n = 50
	var octets uint64
	for i := range n {
		// A to B: varied sizes, CSRCs and padding must pass untouched.
		pkt := rtpPacket(0, uint16(1000+i), uint32(160*i), 0xA, 20+i*7)
		if i%5 == 0 {
			pkt[0] |= 0x20 // padding: last octet counts it
			pkt[len(pkt)-1] = 4
		}
		octets += uint64(payloadLen(pkt))
		pa.send(t, legAddr(a), pkt)
		got, from := recv(t, pb.rtp)
		if !bytes.Equal(got, pkt) {
			t.Fatalf("A->B packet %d changed: % x != % x", i, got, pkt)
		}
		if from != legAddr(b) {
			t.Fatalf("A->B arrived from %v, want leg b %v", from, legAddr(b))
		}
		// B to A.
		back := rtpPacket(8, uint16(60000+i), uint32(160*i), 0xB, 160)
		pb.send(t, legAddr(b), back)
		got, from = recv(t, pa.rtp)
		if !bytes.Equal(got, back) || from != legAddr(a) {
			t.Fatalf("B->A packet %d: % x from %v", i, got, from)
		}
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.PacketsReceived != n || sa.OctetsReceived != octets || sb.PacketsSent != n || sb.OctetsSent != octets {
		t.Fatalf("A->B counts: a %+v b %+v (octets %d)", sa, sb, octets)
	}
	if sb.PacketsReceived != n || sb.OctetsReceived != n*160 || sa.PacketsSent != n || sa.OctetsSent != n*160 {
		t.Fatalf("B->A counts: a %+v b %+v", sa, sb)
	}
	if sa.PacketsLost != 0 || sb.PacketsLost != 0 {
		t.Fatalf("loss without gaps: %d %d", sa.PacketsLost, sb.PacketsLost)
	}
	if in, out := p.Packets(); in != 2*n || out != 2*n {
		t.Fatalf("pool Packets = %d in, %d out, want %d each", in, out, 2*n)
	}
	if a.LastReceived().IsZero() || time.Since(a.LastReceived()) < 0 {
		t.Fatalf("LastReceived = %v", a.LastReceived())
	}
	// Totals survive the legs.
	a.Close()
	b.Close()
	if in, out := p.Packets(); in != 2*n || out != 2*n {
		t.Fatalf("pool Packets after Close = %d in, %d out", in, out)
	}
}

func TestRelayDropsNonRTP(t *testing.T) {
	for _, read := range readModes {
		t.Run(read, func(t *testing.T) {
			setReadMode(t, read)
			testRelayDropsNonRTP(t)
		})
	}
}

func testRelayDropsNonRTP(t *testing.T) {
	_, a, _, pa, pb := relayPair(t)
	pa.send(t, legAddr(a), []byte("not rtp at all"))
	pa.send(t, legAddr(a), []byte{0x80, 0, 0, 1})             // too short
	pa.send(t, legAddr(a), rtpPacket(0, 6, 0, 1, rtpBufSize)) // larger than the buffer
	big := rtpPacket(0, 5, 0, 1, rtpBufSize-rtpHeaderLen)     // exactly fits
	pa.send(t, legAddr(a), big)
	if got, _ := recv(t, pb.rtp); !bytes.Equal(got, big) {
		t.Fatalf("first packet through is %d octets, want the %d-octet one that fits", len(got), len(big))
	}
	marker := rtpPacket(0, 7, 0, 1, 10)
	pa.send(t, legAddr(a), marker)
	got, _ := recv(t, pb.rtp)
	if !bytes.Equal(got, marker) {
		t.Fatalf("first packet through is % x, want the RTP marker", got)
	}
	if s := a.Stats(); s.PacketsReceived != 2 {
		t.Fatalf("PacketsReceived = %d, want 2", s.PacketsReceived)
	}
}

// TestRelayPortableReader runs a relay on the one-datagram-per-call reader
// that platforms without recvmmsg use.
func TestRelayPortableReader(t *testing.T) {
	setReadMode(t, readRecvfrom)
	_, a, b, pa, pb := relayPair(t)
	for i := range 20 {
		pkt := rtpPacket(0, uint16(i), uint32(i*160), 1, 160)
		pa.send(t, legAddr(a), pkt)
		if got, from := recv(t, pb.rtp); !bytes.Equal(got, pkt) || from != legAddr(b) {
			t.Fatalf("packet %d: % x from %v", i, got, from)
		}
		back := rtpPacket(8, uint16(i), uint32(i*160), 2, 160)
		pb.send(t, legAddr(b), back)
		if got, from := recv(t, pa.rtp); !bytes.Equal(got, back) || from != legAddr(a) {
			t.Fatalf("packet %d back: % x from %v", i, got, from)
		}
	}
	if s := a.Stats(); s.PacketsReceived != 20 || s.PacketsSent != 20 {
		t.Fatalf("stats %+v", s)
	}
}

// HandlerFunc adapts a function for tests.
type HandlerFunc func(pkt []byte)

func (f HandlerFunc) HandleRTP(pkt []byte) { f(pkt) }

func TestDirection(t *testing.T) {
	tests := []struct {
		name             string
		aSend, aRecv     bool // leg a faces peer A
		bSend, bRecv     bool
		aToB, bToA       bool // which directions must flow
		aGotRTP, bGotRTP bool // whether a / b count received packets
	}{
		{"sendrecv", true, true, true, true, true, true, true, true},
		{"a recvonly", false, true, true, true, true, false, true, true},
		{"a sendonly", true, false, true, true, false, true, false, true},
		{"a inactive", false, false, true, true, false, false, false, true},
		{"b sendonly", true, true, true, false, true, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, a, b, pa, pb := relayPair(t)
			a.SetDirection(tt.aSend, tt.aRecv)
			b.SetDirection(tt.bSend, tt.bRecv)
			pa.send(t, legAddr(a), rtpPacket(0, 1, 0, 1, 10))
			pb.send(t, legAddr(b), rtpPacket(0, 1, 0, 2, 10))
			// Once both were read, open both ways again and send markers: the
			// first packet each peer sees tells whether the gated one got through.
			waitFor(t, "gated packets to be read", func() bool {
				return !a.LastReceived().IsZero() && !b.LastReceived().IsZero()
			})
			a.SetDirection(true, true)
			b.SetDirection(true, true)
			pa.send(t, legAddr(a), rtpPacket(0, 2, 160, 1, 10))
			pb.send(t, legAddr(b), rtpPacket(0, 2, 160, 2, 10))
			if got, _ := recv(t, pb.rtp); (seqOf(got) == 1) != tt.aToB {
				t.Errorf("A->B first packet seq %d, flow expected %v", seqOf(got), tt.aToB)
			}
			if got, _ := recv(t, pa.rtp); (seqOf(got) == 1) != tt.bToA {
				t.Errorf("B->A first packet seq %d, flow expected %v", seqOf(got), tt.bToA)
			}
			if tt.aToB { // the marker is still to come
				recv(t, pb.rtp)
			}
			if tt.bToA {
				recv(t, pa.rtp)
			}
			wantA, wantB := uint64(1), uint64(1)
			if tt.aGotRTP {
				wantA = 2
			}
			if tt.bGotRTP {
				wantB = 2
			}
			if s := a.Stats(); s.PacketsReceived != wantA {
				t.Errorf("a received %d, want %d", s.PacketsReceived, wantA)
			}
			if s := b.Stats(); s.PacketsReceived != wantB {
				t.Errorf("b received %d, want %d", s.PacketsReceived, wantB)
			}
		})
	}
}

func TestLoopback(t *testing.T) {
	p := newTestPool(t, testPortMin, testPortMax)
	l := openLeg(t, p)
	ph := newPeer(t)
	l.SetRemote(ph.addr())
	Loopback(l)
	// The packet comes back as it was, under the leg's own SSRC (RFC 3550
	// §8.2: the caller's own would be a collision or a loop), the same for
	// every packet; a sender that takes that SSRC gets another.
	var ours uint32
	for i := range 20 {
		ssrc := uint32(42)
		if i == 10 {
			ssrc = ours
		}
		pkt := rtpPacket(8, uint16(i), uint32(i*160), ssrc, 160)
		ph.send(t, legAddr(l), pkt)
		got, from := recv(t, ph.rtp)
		echoed := binary.BigEndian.Uint32(got[8:])
		if i == 0 {
			ours = echoed
		}
		if echoed == ssrc || (i != 10 && echoed != ours) || !bytes.Equal(got[:8], pkt[:8]) || !bytes.Equal(got[12:], pkt[12:]) || from != legAddr(l) {
			t.Fatalf("echo %d: % x from %v (sent SSRC %x)", i, got[:12], from, ssrc)
		}
		if i == 10 {
			ours = echoed
		}
	}
	if s := l.Stats(); s.PacketsReceived != 20 || s.PacketsSent != 20 || s.OctetsSent != 20*160 {
		t.Fatalf("stats %+v", s)
	}
	// Unlinked: nothing comes back; a marker through a handler proves the
	// packet was read and dropped.
	l.SetHandler(nil)
	ph.send(t, legAddr(l), rtpPacket(8, 100, 0, 42, 160))
	waitFor(t, "the unlinked packet", func() bool { return l.Stats().PacketsReceived == 21 })
	Loopback(l)
	ph.send(t, legAddr(l), rtpPacket(8, 101, 0, 42, 160))
	if got, _ := recv(t, ph.rtp); seqOf(got) != 101 {
		t.Fatalf("got seq %d after unlinking, want 101", seqOf(got))
	}
}

func TestHandlerSwap(t *testing.T) {
	_, a, b, pa, pb := relayPair(t)
	var mu sync.Mutex
	var seen []uint16
	a.SetHandler(HandlerFunc(func(pkt []byte) {
		mu.Lock()
		seen = append(seen, seqOf(pkt))
		mu.Unlock()
	}))
	pa.send(t, legAddr(a), rtpPacket(0, 1, 0, 1, 10))
	waitFor(t, "handler", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 1 })
	// b still relays to a; a's own traffic went to the handler only.
	pb.send(t, legAddr(b), rtpPacket(0, 9, 0, 2, 10))
	if got, _ := recv(t, pa.rtp); seqOf(got) != 9 {
		t.Fatalf("seq %d", seqOf(got))
	}
	Relay(a, b)
	pa.send(t, legAddr(a), rtpPacket(0, 2, 160, 1, 10))
	if got, _ := recv(t, pb.rtp); seqOf(got) != 2 {
		t.Fatalf("seq %d, want 2 relayed again", seqOf(got))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != 1 {
		t.Fatalf("handler saw %v", seen)
	}
}

func TestStatsOverSockets(t *testing.T) {
	_, a, _, pa, pb := relayPair(t)
	// Sequence 100..119 with 103, 104, 105 missing; timestamps at 20 ms
	// while packets leave at 5 ms and 35 ms spacing: jitter must show.
	var octets uint64
	sent := 0
	for seq := uint16(100); seq < 120; seq++ {
		if seq >= 103 && seq <= 105 {
			continue
		}
		pkt := rtpPacket(0, seq, uint32(seq)*160, 77, 160)
		octets += 160
		pa.send(t, legAddr(a), pkt)
		recv(t, pb.rtp)
		sent++
		if seq%2 == 0 {
			time.Sleep(5 * time.Millisecond)
		} else {
			time.Sleep(35 * time.Millisecond)
		}
	}
	s := a.Stats()
	if s.PacketsReceived != uint64(sent) || s.OctetsReceived != octets {
		t.Fatalf("received %d/%d octets %d/%d", s.PacketsReceived, sent, s.OctetsReceived, octets)
	}
	if s.PacketsLost != 3 {
		t.Fatalf("PacketsLost = %d, want 3", s.PacketsLost)
	}
	if s.Jitter <= 0 {
		t.Fatalf("Jitter = %v with irregular sending", s.Jitter)
	}
	t.Logf("stats %+v", s)
}

// TestRTCPRelayAndLatency: A's SR goes through a and out of b to B's RTCP
// port; B answers with an RR echoing it, which gives b a round trip.
func TestRTCPRelayAndLatency(t *testing.T) {
	_, a, b, pa, pb := relayPair(t)
	ntp := uint64(0x1122334455667788)
	sr := &rtcp.SenderReport{SSRC: 0xA, NTPTime: ntp, RTPTime: 1234, PacketCount: 10, OctetCount: 1600}
	sdes := &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: 0xA, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "a@test"}},
	}}}
	raw, err := rtcp.Marshal([]rtcp.Packet{sr, sdes})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pa.rtcp.WriteToUDPAddrPort(raw, legRTCPAddr(a)); err != nil {
		t.Fatal(err)
	}
	got, from := recv(t, pb.rtcp)
	if !bytes.Equal(got, raw) || from != legRTCPAddr(b) {
		t.Fatalf("RTCP relayed as % x from %v", got, from)
	}
	const hold = 30 * time.Millisecond
	time.Sleep(hold)
	rr := &rtcp.ReceiverReport{SSRC: 0xB, Reports: []rtcp.ReceptionReport{{
		SSRC: 0xA, LastSenderReport: uint32(ntp >> 16), Delay: 65536 / 100, // 10 ms held
	}}}
	raw, _ = rtcp.Marshal([]rtcp.Packet{rr})
	if _, err := pb.rtcp.WriteToUDPAddrPort(raw, legRTCPAddr(b)); err != nil {
		t.Fatal(err)
	}
	got, _ = recv(t, pa.rtcp) // forwarded to A as well
	if !bytes.Equal(got, raw) {
		t.Fatalf("RR relayed as % x", got)
	}
	lat := b.Stats().Latency
	if lat < hold-10*time.Millisecond {
		t.Fatalf("Latency = %v, want at least %v (slept %v, DLSR 10ms)", lat, hold-10*time.Millisecond, hold)
	}
	if a.Stats().Latency != 0 {
		t.Fatalf("a measured latency %v without having forwarded an SR", a.Stats().Latency)
	}
	// Junk on the RTCP port is dropped, not forwarded.
	pa.rtcp.WriteToUDPAddrPort([]byte("junk"), legRTCPAddr(a))
	raw, _ = rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 0xA}})
	pa.rtcp.WriteToUDPAddrPort(raw, legRTCPAddr(a))
	if got, _ := recv(t, pb.rtcp); !bytes.Equal(got, raw) {
		t.Fatalf("got % x, want the RR after the junk", got)
	}
}

func TestCloseReleases(t *testing.T) {
	p, a, b, pa, pb := relayPair(t)
	pa.send(t, legAddr(a), rtpPacket(0, 1, 0, 1, 10))
	recv(t, pb.rtp)
	portA := a.Port()
	var wg sync.WaitGroup
	for range 4 { // concurrent Close calls all return after the release
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Close(); err != nil {
				t.Error(err)
			}
			if p.FreePairs() < p.Pairs()-1 {
				t.Error("Close returned before the pair was back")
			}
		}()
	}
	wg.Wait()
	if err := a.Send(rtpPacket(0, 1, 0, 1, 10)); err == nil {
		t.Fatal("Send on a closed leg succeeded")
	}
	// b relays into the closed a without harm.
	pb.send(t, legAddr(b), rtpPacket(0, 1, 0, 2, 10))
	waitFor(t, "b to read", func() bool { return b.Stats().PacketsReceived == 1 })
	b.Close()
	if p.FreePairs() != p.Pairs() {
		t.Fatalf("FreePairs = %d", p.FreePairs())
	}
	// The pool keeps released pairs bound for reuse until it is closed.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, port := range []int{portA, portA + 1} {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			t.Fatalf("port %d: %v", port, err)
		}
		c.Close()
	}
	goleak.VerifyNone(t)
}

func TestIPv6Leg(t *testing.T) {
	p := newBoundPool(t, "::1", testPortMin, testPortMax)
	l, err := p.Open()
	if err != nil {
		t.Fatalf("IPv6 loopback: %v", err)
	}
	defer l.Close()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback, Port: peerPortMax - 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l.SetRemote(c.LocalAddr().(*net.UDPAddr).AddrPort())
	Loopback(l)
	pkt := rtpPacket(0, 1, 0, 1, 10)
	to := netip.AddrPortFrom(netip.IPv6Loopback(), uint16(l.Port()))
	if _, err := c.WriteToUDPAddrPort(pkt, to); err != nil {
		t.Fatal(err)
	}
	if got, _ := recv(t, c); !bytes.Equal(got[12:], pkt[12:]) {
		t.Fatalf("echo % x", got)
	}
	if l.LocalAddr().Addr() != netip.IPv6Loopback() {
		t.Fatalf("LocalAddr %v", l.LocalAddr())
	}
}

func TestLastReceivedRTCP(t *testing.T) {
	p := newTestPool(t, testPortMin, testPortMax)
	l := openLeg(t, p)
	ph := newPeer(t)
	l.SetRemote(ph.addr())
	if !l.LastReceived().IsZero() {
		t.Fatal("LastReceived set before any packet")
	}
	before := time.Now()
	raw, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 1}})
	ph.rtcp.WriteToUDPAddrPort(raw, legRTCPAddr(l))
	waitFor(t, "RTCP to count as activity", func() bool { return !l.LastReceived().IsZero() })
	if l.LastReceived().Before(before) {
		t.Fatalf("LastReceived %v before send %v", l.LastReceived(), before)
	}
}

// TestConcurrentControl changes a relay from the control side while packets
// flow, for the race detector: the packet loops take no lock, so everything
// they read must be published through atomics.
func TestConcurrentControl(t *testing.T) {
	p, a, b, pa, pb := relayPair(t)
	other := newPeer(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	var sent atomic.Bool
	go func() { // traffic A -> a, bounded
		defer wg.Done()
		defer sent.Store(true)
		for i := range 3000 {
			select {
			case <-stop:
				return
			default:
			}
			if i%16 == 0 {
				time.Sleep(100 * time.Microsecond) // keep the queues from overflowing
			}
			pa.rtp.WriteToUDPAddrPort(rtpPacket(0, uint16(i), uint32(i*160), 1, 160), legAddr(a))
			if i%3 == 0 {
				pb.rtp.WriteToUDPAddrPort(rtpPacket(8, uint16(i), uint32(i*160), 2, 160), legAddr(b))
			}
		}
	}()
	go func() { // drain both peers so nothing backs up
		defer wg.Done()
		buf := make([]byte, 4096)
		for _, c := range []*net.UDPConn{pa.rtp, pb.rtp} {
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			pb.rtp.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
			pb.rtp.ReadFromUDPAddrPort(buf)
		}
	}()
	go func() { // the control side
		defer wg.Done()
		h := HandlerFunc(func(pkt []byte) { _ = seqOf(pkt) })
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			switch i % 7 {
			case 0:
				a.SetRemote(other.addr())
			case 1:
				a.SetRemote(pa.addr())
			case 2:
				a.SetDirection(i%2 == 0, true)
			case 3:
				a.SetHandler(h)
			case 4:
				Loopback(b)
			case 5:
				Relay(a, b)
			case 6:
				_ = a.Stats()
				_ = b.Remote()
				_, _ = p.Packets()
				_ = a.LastReceived()
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	waitFor(t, "traffic", func() bool { return a.Stats().PacketsReceived > 1000 || sent.Load() })
	close(stop)
	wg.Wait()
	// Quiesce: unlink, then push a marker through each reader; once a
	// reader hands its marker over, it has finished every earlier packet.
	for _, x := range []struct {
		l  *Leg
		ph *peer
	}{{a, pa}, {b, pb}} {
		seen := make(chan struct{})
		var once sync.Once
		x.l.SetHandler(HandlerFunc(func(pkt []byte) {
			if seqOf(pkt) == 65000 {
				once.Do(func() { close(seen) })
			}
		}))
		x.l.SetDirection(true, true)
		x.l.SetRemote(x.ph.addr())
		// The socket may still hold a backlog, and a full queue drops: resend.
		deadline := time.After(5 * time.Second)
	retry:
		x.ph.send(t, legAddr(x.l), rtpPacket(0, 65000, 0, 99, 10))
		select {
		case <-seen:
		case <-time.After(100 * time.Millisecond):
			goto retry
		case <-deadline:
			t.Fatalf("marker not handled by leg %d: stats %+v remote %v route %+v dir %d", x.l.Port(), x.l.Stats(), x.l.Remote(), x.l.route.Load(), x.l.dir.Load())
		}
	}
	a.Close()
	b.Close()
	sa, sb := a.Stats(), b.Stats()
	in, out := p.Packets()
	if in != sa.PacketsReceived+sb.PacketsReceived || out != sa.PacketsSent+sb.PacketsSent {
		t.Fatalf("pool totals %d/%d, legs %+v %+v", in, out, sa, sb)
	}
}

// TestReaderBursts sends bursts around the batch size: every packet of
// every burst must come back, so no wake-up is lost between batches.
func TestReaderBursts(t *testing.T) {
	for _, read := range readModes {
		t.Run(read, func(t *testing.T) {
			setReadMode(t, read)
			p := newTestPool(t, testPortMin, testPortMax)
			l := openLeg(t, p)
			ph := newPeer(t)
			l.SetRemote(ph.addr())
			Loopback(l)
			seq := uint16(0)
			for round := range 30 {
				burst := 1 + round%(2*readBatch+2)
				for range burst {
					ph.send(t, legAddr(l), rtpPacket(0, seq, uint32(seq)*160, 1, 160))
					seq++
				}
				for k := range burst {
					got, _ := recv(t, ph.rtp)
					if want := seq - uint16(burst-k); seqOf(got) != want {
						t.Fatalf("round %d: got seq %d, want %d", round, seqOf(got), want)
					}
				}
			}
		})
	}
}

// TestSendErrorNotCounted: a packet the socket refuses is not in the stats.
func TestSendErrorNotCounted(t *testing.T) {
	p := newTestPool(t, testPortMin, testPortMax)
	l := openLeg(t, p)
	l.SetRemote(netip.MustParseAddrPort("[::1]:30950")) // an IPv4 socket cannot reach it
	if err := l.Send(rtpPacket(0, 1, 0, 1, 100)); err == nil {
		t.Fatal("Send to an IPv6 remote from an IPv4 socket succeeded")
	}
	if s := l.Stats(); s.PacketsSent != 0 || s.OctetsSent != 0 {
		t.Fatalf("stats %+v after a failed send", s)
	}
	if _, out := p.Packets(); out != 0 {
		t.Fatalf("pool counted %d sent", out)
	}
}

// TestDualStackLeg: bound to "::", a leg serves IPv4 peers; their addresses
// are seen unmapped and answered through the IPv6 socket.
func TestDualStackLeg(t *testing.T) {
	p := newBoundPool(t, "::", testPortMin, testPortMax)
	l, err := p.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ph := newPeer(t)
	l.SetSignalingIP(loopback) // the mapped source must match the plain IPv4 address
	Loopback(l)
	pkt := rtpPacket(0, 1, 0, 1, 10)
	ph.send(t, legAddr(l), pkt)
	if got, from := recv(t, ph.rtp); !bytes.Equal(got[12:], pkt[12:]) || from != legAddr(l) {
		t.Fatalf("echo % x from %v", got, from)
	}
	if l.Remote() != ph.addr() {
		t.Fatalf("Remote = %v, want the unmapped %v", l.Remote(), ph.addr())
	}
	if err := l.Send(pkt); err != nil {
		t.Fatal(err)
	}
	recv(t, ph.rtp)
}

//go:build linux

package rtpproxy

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// TestPollerCloseUnderTraffic closes and reopens relayed legs spread over
// several poll loops while their sockets are flooded: every pair comes back
// exactly once, the loops stop with their last leg, and a relay opened
// afterwards works. Under -race, a loop still handling a closed leg, or an
// old event delivered to the leg that reused its pair on another loop,
// shows up as a race on the leg's receive state.
func TestPollerCloseUnderTraffic(t *testing.T) {
	setReadMode(t, readPoll)
	p := newTestPool(t, testPortMin, testPortMax)
	p.pollers = make([]poller, 3) // more loops than this machine may have cores
	src, sink := newPeer(t), newPeer(t)
	openRelay := func() (a, b *Leg) {
		a, err1 := p.Open()
		b, err2 := p.Open()
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		a.SetRemote(src.addr())
		b.SetRemote(sink.addr())
		Relay(a, b)
		return a, b
	}
	var mu sync.Mutex // guards legs
	var legs []*Leg
	for range 12 {
		a, b := openRelay()
		legs = append(legs, a, b)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // flood every a leg, open or closed, from src
		defer wg.Done()
		pkt := rtpPacket(0, 0, 0, 1, 160)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			l := legs[(2*i)%len(legs)]
			mu.Unlock()
			pkt[2], pkt[3] = byte(i>>8), byte(i)
			src.rtp.WriteToUDPAddrPort(pkt, legAddr(l))
		}
	}()
	go func() { // drain the sink
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			select {
			case <-stop:
				return
			default:
			}
			sink.rtp.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
			sink.rtp.ReadFromUDPAddrPort(buf)
		}
	}()
	waitFor(t, "traffic", func() bool {
		in, _ := p.Packets()
		return in > 100
	})
	for round := range 40 { // close a relay (b first or a first), open another
		mu.Lock()
		k := 2 * rand.IntN(len(legs)/2)
		a, b := legs[k], legs[k+1]
		mu.Unlock()
		first, second := a, b
		if round%2 == 1 {
			first, second = b, a
		}
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
		if err := second.Close(); err != nil {
			t.Fatal(err)
		}
		na, nb := openRelay()
		mu.Lock()
		legs[k], legs[k+1] = na, nb
		mu.Unlock()
	}
	close(stop)
	wg.Wait()
	for _, l := range legs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if p.FreePairs() != p.Pairs() {
		t.Fatalf("FreePairs = %d, want %d", p.FreePairs(), p.Pairs())
	}
	checkFreeList(t, p)
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	if idle < len(legs) { // the legs closed last, and those replaced under traffic
		t.Fatalf("%d idle pairs after closing %d legs", idle, len(legs))
	}

	// Idle pairs (and new ones) relay again.
	a, b := openRelay()
	pkt := rtpPacket(0, 7, 0, 5, 160)
	// Empty the sink of the flood first: a full queue would drop the packet.
	buf := make([]byte, 2048)
	for {
		sink.rtp.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, _, err := sink.rtp.ReadFromUDPAddrPort(buf); err != nil {
			break
		}
	}
	src.send(t, legAddr(a), pkt)
	if got, from := recv(t, sink.rtp); !bytes.Equal(got, pkt) || from != legAddr(b) {
		t.Fatalf("got % x from %v, want the packet from %v", got, from, legAddr(b))
	}
	a.Close()
	b.Close()

	// Closing the pool unbinds the idle pairs and stops the loops.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	for i, pl := range p.pollers {
		if pl.run != nil {
			t.Errorf("poller %d still running after Close", i)
		}
	}
	p.mu.Unlock()
	for i := range p.byPair {
		if p.byPair[i].Load() != nil {
			t.Errorf("pair %d still maps to a leg", i)
		}
	}
	if p.FreePairs() != p.Pairs() {
		t.Fatalf("FreePairs = %d after Close, want %d", p.FreePairs(), p.Pairs())
	}
	checkFreeList(t, p)
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

// TestPoolReusesIdlePair closes a leg, lets an old peer send RTP and RTCP to
// the pair while it is idle, and opens the pair again (the only one): what
// arrived while idle is thrown away (and counted nowhere), so the new leg
// latches its new peer and not the old one and its statistics start at zero.
func TestPoolReusesIdlePair(t *testing.T) {
	setReadMode(t, readPoll)
	p := newTestPool(t, 30000, 30001) // one pair
	a, err := p.Open()
	if err != nil {
		t.Fatal(err)
	}
	old, fresh := newPeer(t), newPeer(t)
	a.SetRemote(old.addr())
	Loopback(a)
	old.send(t, legAddr(a), rtpPacket(0, 1, 0, 1, 160))
	recv(t, old.rtp)
	s := a.s
	a.Close()
	if p.FreePairs() != 1 || len(p.idle) != 1 {
		t.Fatalf("FreePairs %d, idle %d after Close", p.FreePairs(), len(p.idle))
	}
	old.send(t, legAddr(a), rtpPacket(0, 2, 160, 1, 160))
	sr, err := (&rtcp.SenderReport{SSRC: 1, NTPTime: 1 << 32}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.rtcp.WriteToUDPAddrPort(sr, legRTCPAddr(a)); err != nil {
		t.Fatal(err)
	}
	for _, fd := range []int{s.rtpFd, s.rtcpFd} {
		waitFor(t, "the poll loop to throw away what reached the idle pair", func() bool {
			n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
			return err == nil && n == 0
		})
	}
	in, _ := p.Packets()
	// Sent just before the pair is reused: Open drains it, or the loop
	// throws it away; either way the new leg never sees it.
	old.send(t, legAddr(a), rtpPacket(0, 3, 320, 1, 160))

	b, err := p.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Port() != a.Port() || b.s != s {
		t.Fatalf("reopened port %d (sockets %+v), want the idle pair %d (%+v)", b.Port(), b.s, a.Port(), s)
	}
	b.SetSignalingIP(loopback) // either peer may latch: only what reaches b counts
	Loopback(b)
	fresh.send(t, legAddr(b), rtpPacket(0, 7, 0, 2, 160))
	if got, _ := recv(t, fresh.rtp); seqOf(got) != 7 {
		t.Fatalf("echoed seq %d, want 7", seqOf(got))
	}
	if st := b.Stats(); st.PacketsReceived != 1 || b.Remote() != fresh.addr() {
		t.Fatalf("new leg: %d packets from %v, want 1 from the new peer %v", st.PacketsReceived, b.Remote(), fresh.addr())
	}
	if b.LastReceived().IsZero() {
		t.Fatal("LastReceived not set")
	}
	if now, _ := p.Packets(); now != in+1 {
		t.Fatalf("pool counted %d packets since the pair went idle, want the new peer's 1", now-in)
	}
	if r := b.rtcpRemote.Load(); r.latched {
		t.Fatalf("the old peer's RTCP latched the new leg's RTCP remote %v", r.addr)
	}
}

package session

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mediagw/mediagw/confbridge"
)

// An RFC 4733 telephone-event from a member is announced, never mixed.
func TestDigitEvent(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+940, testPortMin+959)
	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	cid, ids := f.conference(t, "dtmf", 3)
	// The phone sends from its own port, not the SDP remote: the signalling
	// source's IP lets it latch (any port of it), as for a phone behind a NAT.
	c, err := f.ModifyConnection(ids[0], ConnectionParams{SignalingIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 16)
	pkt[0], pkt[1] = 0x80, 101
	binary.BigEndian.PutUint32(pkt[8:], 0xd7f)
	pkt[12] = 5 // digit 5
	pkt[13] = 10
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], 8000)
		if i >= 3 {
			pkt[13] |= 0x80 // end
		}
		binary.BigEndian.PutUint16(pkt[14:], uint16(160*(i+1)))
		if _, err := phone.WriteToUDPAddrPort(pkt, c.Local); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-f.events:
			if ev.Type != DigitReceived {
				continue
			}
			if ev.Digit != 5 || ev.ConferenceID != cid || ev.Connection.ID != ids[0] {
				t.Fatalf("digit event %+v", ev)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("no DigitReceived event")
}

// Join and leave tones mix a hairpin for a moment; the resources held
// follow the membership, not the tone.
func TestTonesKeepAccountingExact(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+960, testPortMin+979)
	a, b := f.conn(t, "PCMU"), f.conn(t, "PCMU")
	cf, err := f.CreateConferenceWith("tones", KindConference, a.ID, MemberAttrs{}, ConferenceOptions{Hairpin: true, SoundToneOnJoin: true})
	wantCode(t, err, 0)
	if _, err := f.JoinConference(cf.ID, b.ID, MemberAttrs{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := f.checkInvariants(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	if got := f.InUse("conference"); got != 0 {
		t.Fatalf("a two-member hairpin holds %d conference resources", got)
	}
}

// One-way media through a bridge (an announcement, a one-way relay) keeps
// both legs alive; when it stops, both time out.
func TestBridgeOneWayMediaIsNotIdle(t *testing.T) {
	pool := newPool(t, testPortMin+980, testPortMin+999)
	engine := confbridge.NewEngine(confbridge.Config{Ptime: 20 * time.Millisecond})
	defer engine.Close()
	tab := New(Config{MediaTimeout: 300 * time.Millisecond}, pool, engine, nil)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); tab.Run(contextFromChan(stop)) }()
	defer func() { close(stop); <-done; tab.Shutdown() }()
	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	a, _ := tab.CreateConnection(ConnectionParams{Remote: phone.LocalAddr().(*net.UDPAddr).AddrPort()})
	b, _ := tab.CreateConnection(ConnectionParams{Remote: remote})
	if _, err := tab.Bridge(a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 172)
	pkt[0] = 0x80
	for i := 0; i < 20; i++ { // 1 s of one-way media into a
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		_, _ = phone.WriteToUDPAddrPort(pkt, a.Local)
		time.Sleep(50 * time.Millisecond)
	}
	for _, id := range []string{a.ID, b.ID} {
		if _, err := tab.Connection(id); err != nil {
			t.Fatalf("leg %s released while media flowed through the bridge: %v", id, err)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(tab.Connections()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the bridge did not time out once media stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

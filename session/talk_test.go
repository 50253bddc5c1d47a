package session

import (
	"encoding/binary"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"
)

// A member's speech is announced as StartTalking, its silence as
// StopTalking, and the conference snapshot says who talks now.
func TestTalkEvents(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+560, testPortMin+579)
	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	cid, ids := f.conference(t, "talk", 3)
	// The phone sends from its own port: the signalling IP lets it latch.
	c, err := f.ModifyConnection(ids[1], ConnectionParams{SignalingIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 0 // PCMU
	binary.BigEndian.PutUint32(pkt[8:], 0x7a1c)
	send := func(i int, amp float64) {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(160*i))
		for j := 0; j < 160; j++ {
			pkt[12+j] = ulaw(int16(amp * math.Sin(2*math.Pi*440*float64(160*i+j)/8000)))
		}
		if _, err := phone.WriteToUDPAddrPort(pkt, c.Local); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(want EventType, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case ev := <-f.events:
				if ev.Type != StartTalking && ev.Type != StopTalking {
					continue
				}
				if ev.Type != want || ev.Connection.ID != ids[1] || ev.ConferenceID != cid {
					t.Fatalf("event %v of %s in %s, want %v of %s in %s", ev.Type, ev.Connection.ID, ev.ConferenceID, want, ids[1], cid)
				}
				return
			case <-deadline:
				t.Fatalf("no %v within %s", want, within)
			}
		}
	}
	i := 0
	for ; i < 25; i++ { // 500 ms of tone
		send(i, 8000)
		time.Sleep(20 * time.Millisecond)
	}
	wait(StartTalking, 5*time.Second)
	cf, err := f.Conference(cid)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cf.Members {
		if m.Talking != (m.ConnectionID == ids[1]) {
			t.Errorf("snapshot: member %s talking %v", m.ConnectionID, m.Talking)
		}
	}
	for end := i + 50; i < end; i++ { // a second of silence
		send(i, 0)
		time.Sleep(20 * time.Millisecond)
	}
	wait(StopTalking, 5*time.Second)
}

// ulaw encodes one sample as G.711 µ-law.
func ulaw(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := 0
	if v < 0 {
		v, sign = -v, 0x80
	}
	if v > clip {
		v = clip
	}
	v += bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

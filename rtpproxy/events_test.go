package rtpproxy

import (
	"encoding/binary"
	"fmt"
	"testing"
)

func eventPkt(ssrc, ts uint32, seq uint16, event byte, end bool, dur uint16) []byte {
	p := make([]byte, 16)
	p[0], p[1] = 0x80, 101
	binary.BigEndian.PutUint16(p[2:], seq)
	binary.BigEndian.PutUint32(p[4:], ts)
	binary.BigEndian.PutUint32(p[8:], ssrc)
	p[12] = event
	p[13] = 10
	if end {
		p[13] |= 0x80
	}
	binary.BigEndian.PutUint16(p[14:], dur)
	return p
}

// The RFC 4733 state machine: an event is reported once at its start and
// once at its end, however many packets (and repeated ends) carry it; a
// lost start is recovered from any packet of the event; a new timestamp or
// source is a new event.
func TestEventState(t *testing.T) {
	var s eventState
	var got []string
	fn := func(ev byte, end bool) { got = append(got, fmt.Sprintf("%d/%v", ev, end)) }
	feed := func(p []byte) {
		h, ok := parseRTP(p)
		if !ok {
			t.Fatal("parse")
		}
		s.observe(&h, p, fn)
	}
	feed(eventPkt(1, 1000, 1, 5, false, 160))
	feed(eventPkt(1, 1000, 2, 5, false, 320))
	feed(eventPkt(1, 1000, 3, 5, true, 480))
	feed(eventPkt(1, 1000, 4, 5, true, 480)) // repeated end
	feed(eventPkt(1, 1000, 5, 5, true, 480))
	feed(eventPkt(1, 2000, 7, 11, true, 400)) // start lost: only the end packets came
	feed(eventPkt(2, 2000, 1, 3, false, 160)) // another source, same timestamp
	feed(eventPkt(1, 4294967200, 9, 1, false, 160))
	feed(eventPkt(1, 4294967200, 10, 1, true, 320)) // timestamp near the wrap
	want := "[5/false 5/true 11/false 11/true 3/false 1/false 1/true]"
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	// A payload too short is ignored.
	short := eventPkt(1, 5000, 11, 7, false, 0)[:14]
	h, _ := parseRTP(short)
	s.observe(&h, short, fn)
	if len(got) != 7 {
		t.Fatal("a 2-byte event payload was reported")
	}
}

func BenchmarkEventObserve(b *testing.B) {
	var s eventState
	p := eventPkt(1, 1000, 1, 5, false, 160)
	h, _ := parseRTP(p)
	fn := func(byte, bool) {}
	b.ReportAllocs()
	for b.Loop() {
		s.observe(&h, p, fn)
	}
}

// Any packet of the telephone-event payload type: no panic, and an event's
// end is never reported before (or without) its start.
func FuzzEventObserve(f *testing.F) {
	f.Add(eventPkt(1, 1000, 1, 5, false, 160), eventPkt(1, 1000, 2, 5, true, 320))
	f.Add([]byte{0xa0, 101, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5, 0x80, 0, 9, 3}, []byte{0x80, 101})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var s eventState
		open := false
		fn := func(_ byte, end bool) {
			if end && !open {
				t.Fatal("an end reported without its start")
			}
			open = !end
		}
		for _, p := range [][]byte{a, b, a} {
			if h, ok := parseRTP(p); ok {
				s.observe(&h, p, fn)
			}
		}
	})
}

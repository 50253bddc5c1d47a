package confbridge

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
)

func TestTalkerDetection(t *testing.T) {
	h := newHarness(t, Options{})
	ps := addParties(t, h, []Codec{PCMU, PCMA, PCMU, PCMA, PCMU}, []float64{440, 0, -1, -1, 0})
	ps[1].s.amp = 0     // digital silence
	ps[2].s.amp = 100   // background noise, about −50 dBFS
	ps[3].s.amp = 12000 // loud noise: energy is energy
	ps[4].s = nil       // sends nothing at all
	run(h, ps, 20)
	for i, want := range []bool{true, false, false, true, false} {
		st, _ := h.b.MemberStats(ps[i].id)
		if st.Talking != want {
			t.Errorf("%s talking %v, want %v", ps[i].id, st.Talking, want)
		}
	}
}

func TestTalkerHangover(t *testing.T) {
	h := newHarness(t, Options{Hangover: 100 * 1e6}) // 100 ms = 5 ticks
	ps := addParties(t, h, []Codec{PCMU, PCMU}, []float64{440, 0})
	ps[1].s.amp = 0
	run(h, ps, 10)
	ps[0].s.amp = 0 // stops talking
	var talking []bool
	for i := 0; i < 12; i++ {
		run(h, ps, 1)
		st, _ := h.b.MemberStats("m0")
		talking = append(talking, st.Talking)
	}
	// Two ticks of jitter-buffer delay, then five of hang-over.
	n := 0
	for _, v := range talking {
		if v {
			n++
		}
	}
	if n != 7 || talking[len(talking)-1] {
		t.Fatalf("talking after the tone stopped: %v", talking)
	}
}

// Members who are not talking are not mixed: a conference of quiet noise
// sends pure digital silence.
func TestNonTalkersNotMixed(t *testing.T) {
	h := newHarness(t, Options{})
	ps := addParties(t, h, []Codec{PCMU, PCMU, PCMA}, []float64{-1, -1, -1})
	for _, p := range ps {
		p.s.amp = 100
	}
	run(h, ps, 20)
	for _, p := range ps {
		for i, pkt := range p.out.packets() {
			sil := Codec(pkt[1] & 0x7f).law().silence
			for _, b := range pkt[rtpHeaderLen:] {
				if b != sil {
					t.Fatalf("%s packet %d not silence", p.id, i)
				}
			}
		}
	}
}

// Non-talkers of one codec share one encoded mix per tick; talkers get
// their own (the mix minus themselves).
func TestSharedMixPerCodec(t *testing.T) {
	h := newHarness(t, Options{})
	ps := addParties(t, h, []Codec{PCMU, PCMU, PCMU, PCMU, PCMA, PCMA}, []float64{440, 770, 0, 0, 0, 0})
	for _, p := range ps[2:] {
		p.s.amp = 0
	}
	run(h, ps, 10)
	last := func(i int) []byte { p := ps[i].out.packets(); return p[len(p)-1][rtpHeaderLen:] }
	if !bytes.Equal(last(2), last(3)) || !bytes.Equal(last(4), last(5)) {
		t.Fatal("listeners of one codec got different mixes")
	}
	if bytes.Equal(last(0), last(2)) || bytes.Equal(last(0), last(1)) {
		t.Fatal("a talker got the shared mix (it would hear itself)")
	}
	checkHearing(t, ps, 5, map[int][]int{0: {1}, 1: {0}, 2: {0, 1}, 3: {0, 1}, 4: {0, 1}, 5: {0, 1}})
}

func TestCoachPupilMatrix(t *testing.T) {
	h := newHarness(t, Options{})
	// m0 coach, m1 pupil, m2 and m3 others.
	ps := addParties(t, h, []Codec{PCMU, PCMA, PCMU, PCMA}, toneFreqs)
	if err := h.b.SetCoach("m0", true); err != nil {
		t.Fatal(err)
	}
	if err := h.b.SetPupil("m1", true); err != nil {
		t.Fatal(err)
	}
	run(h, ps, 40)
	checkHearing(t, ps, 10, map[int][]int{
		0: {1, 2, 3}, // the coach hears everyone
		1: {0, 2, 3}, // the pupil hears the coach too
		2: {1, 3},    // others never hear the coach
		3: {1, 2},
	})
	// Coach off: an ordinary member again.
	if err := h.b.SetCoach("m0", false); err != nil {
		t.Fatal(err)
	}
	n := len(ps[2].out.packets())
	run(h, ps, 40)
	checkHearing(t, ps, n+10, map[int][]int{0: {1, 2, 3}, 1: {0, 2, 3}, 2: {0, 1, 3}, 3: {0, 1, 2}})
}

func TestJoinAndLeaveTones(t *testing.T) {
	h := newHarness(t, Options{JoinTone: true, LeaveTone: true, Hairpin: true})
	ps := addParties(t, h, []Codec{PCMU}, []float64{0})
	ps[0].s.amp = 0
	run(h, ps, 15)
	p1 := &party{id: "m1", s: newSender(PCMU, 99, 0), out: &capture{}}
	p1.s.amp = 0
	m, err := h.b.Add("m1", PCMU, p1.out)
	if err != nil {
		t.Fatal(err)
	}
	p1.m = m
	ps = append(ps, p1)
	n0 := len(ps[0].out.packets())
	run(h, ps, 12)
	for _, p := range ps {
		x := p.out.pcm(0)
		if p == ps[0] {
			x = p.out.pcm(n0)
		}
		if !hears(x[:800], 660) || !hears(x[800:1600], 880) {
			t.Errorf("%s did not hear the join tone", p.id)
		}
	}
	// After the tone the pair is hairpinned again.
	run(h, ps, 2)
	if st, _ := h.b.MemberStats("m0"); !st.Hairpinned {
		t.Fatal("not hairpinned after the join tone")
	}
	n := len(ps[0].out.packets())
	h.b.Remove("m1")
	run(h, ps[:1], 12)
	x := ps[0].out.pcm(n)
	if !hears(x[:800], 880) || !hears(x[800:1600], 660) {
		t.Errorf("no leave tone")
	}
}

type digit struct {
	member string
	event  byte
	end    bool
}

func eventPacket(seq uint16, ts uint32, event byte, end bool, dur uint16) []byte {
	p := make([]byte, rtpHeaderLen+4)
	putRTPHeader(p, 101, false, seq, ts, 42)
	p[12] = event
	p[13] = 10
	if end {
		p[13] |= 0x80
	}
	binary.BigEndian.PutUint16(p[14:], dur)
	return p
}

func TestTelephoneEventsReportedNotMixed(t *testing.T) {
	for _, hairpin := range []bool{false, true} {
		var mu sync.Mutex
		var got []digit
		h := newHarness(t, Options{Hairpin: hairpin, OnDigit: func(id string, ev byte, end bool) {
			mu.Lock()
			got = append(got, digit{id, ev, end})
			mu.Unlock()
		}})
		ps := addParties(t, h, []Codec{PCMU, PCMU}, []float64{0, 0})
		ps[1].s.amp = 0
		seq := uint16(0)
		send := func(ts uint32, ev byte, end bool, dur uint16) {
			ps[0].m.HandleRTP(eventPacket(seq, ts, ev, end, dur))
			seq++
		}
		for i := 0; i < 3; i++ {
			send(1000, 5, false, uint16(160*(i+1)))
			ps[1].m.HandleRTP(ps[1].s.next())
			h.tick()
		}
		for i := 0; i < 3; i++ { // the end packet is sent three times
			send(1000, 5, true, 640)
		}
		send(2000, 11, true, 400) // an event whose start packets were lost
		run(h, ps[1:], 5)
		want := []digit{{"m0", 5, false}, {"m0", 5, true}, {"m0", 11, false}, {"m0", 11, true}}
		mu.Lock()
		if len(got) != len(want) {
			t.Fatalf("hairpin %v: digits %v, want %v", hairpin, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("hairpin %v: digits %v, want %v", hairpin, got, want)
			}
		}
		mu.Unlock()
		// Never mixed into audio; relayed as events when hairpinned.
		events := 0
		for _, pkt := range ps[1].out.packets() {
			h, _ := parseRTP(pkt)
			if h.pt == 101 {
				events++
				continue
			}
			for _, b := range pkt[h.off:h.end] {
				if b != ulawSilence {
					t.Fatalf("hairpin %v: event leaked into audio", hairpin)
				}
			}
		}
		if hairpin && events != 7 || !hairpin && events != 0 {
			t.Fatalf("hairpin %v: %d event packets forwarded", hairpin, events)
		}
	}
}

func TestOnTalkReportsChangesOnce(t *testing.T) {
	var got []string
	h := newHarness(t, Options{Hangover: 100 * 1e6, OnTalk: func(id string, talking bool) {
		if talking {
			got = append(got, "start "+id)
		} else {
			got = append(got, "stop "+id)
		}
	}})
	ps := addParties(t, h, []Codec{PCMU, PCMU, PCMA}, []float64{440, 0, 660})
	ps[1].s.amp, ps[2].s.amp = 0, 0
	run(h, ps, 10)
	if !h.b.Talking("m0") || h.b.Talking("m1") {
		t.Errorf("Talking: m0 %v m1 %v, want true false", h.b.Talking("m0"), h.b.Talking("m1"))
	}
	ps[0].s.amp = 0
	ps[2].s.amp = 8000
	run(h, ps, 20)
	want := []string{"start m0", "start m2", "stop m0"}
	if len(got) != len(want) {
		t.Fatalf("OnTalk calls %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("OnTalk calls %v, want %v", got, want)
		}
	}
	if h.b.Talking("nobody") {
		t.Error("an unknown member talks")
	}
}

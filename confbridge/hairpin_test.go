package confbridge

import (
	"bytes"
	"testing"
)

// timeline places what a capture received at its RTP timestamps (relative
// to the first packet) and checks it is one stream: one SSRC, sequence
// numbers +1 without gaps or repeats.
func timeline(t *testing.T, c *capture) []int16 {
	t.Helper()
	pkts := c.packets()
	if len(pkts) == 0 {
		t.Fatal("nothing received")
	}
	seq0, ts0, ssrc0 := rtpFields(pkts[0])
	var x []int16
	var covered []bool
	for i, p := range pkts {
		h, ok := parseRTP(p)
		if !ok {
			t.Fatalf("packet %d malformed", i)
		}
		seq, ts, ssrc := rtpFields(p)
		if ssrc != ssrc0 {
			t.Fatalf("packet %d: SSRC %x, stream started with %x", i, ssrc, ssrc0)
		}
		if seq != seq0+uint16(i) {
			t.Fatalf("packet %d: seq %d, want %d", i, seq, seq0+uint16(i))
		}
		off := int(int32(ts - ts0))
		if off < 0 {
			t.Fatalf("packet %d: timestamp went back %d", i, off)
		}
		l := Codec(h.pt).law()
		for j, b := range p[h.off:h.end] {
			for len(x) <= off+j {
				x = append(x, 0)
				covered = append(covered, false)
			}
			if covered[off+j] {
				t.Fatalf("packet %d: timestamp %d overlaps earlier audio", i, ts)
			}
			x[off+j], covered[off+j] = l.dec[b], true
		}
	}
	return x
}

// longestGap returns the longest run, in 20 ms windows, in which freq is
// not heard, between the first and the last window where it is.
func longestGap(x []int16, freq float64) (gap, windows int) {
	first, run := -1, 0
	for w := 0; (w+1)*160 <= len(x); w++ {
		on := goertzel(x[w*160:(w+1)*160], freq) > 0.2 && level(x[w*160:(w+1)*160]) > 300
		if on {
			if first < 0 {
				first = w
			}
			gap = max(gap, run)
			run = 0
			windows++
		} else if first >= 0 {
			run++
		}
	}
	return gap, windows
}

func TestHairpinRelaysWithoutMixing(t *testing.T) {
	h := newHarness(t, Options{Hairpin: true})
	ps := addParties(t, h, []Codec{PCMA, PCMA}, toneFreqs)
	if h.b.Mixing() {
		t.Fatal("two PCMA members: Mixing() true")
	}
	var sent [][]byte
	for i := 0; i < 20; i++ {
		p := ps[0].s.next()
		sent = append(sent, p)
		ps[0].m.HandleRTP(p)
		ps[1].m.HandleRTP(ps[1].s.next())
		h.tick()
	}
	got := ps[1].out.packets()
	if len(got) != 20 {
		t.Fatalf("relayed %d packets, want 20", len(got))
	}
	for i := range got {
		if !bytes.Equal(got[i][rtpHeaderLen:], sent[i][rtpHeaderLen:]) {
			t.Fatalf("packet %d payload changed by the relay", i)
		}
		if _, _, ssrc := rtpFields(got[i]); ssrc != ps[1].m.SSRC() {
			t.Fatalf("relayed packet keeps SSRC %x, want the member's stream %x", ssrc, ps[1].m.SSRC())
		}
	}
	timeline(t, ps[1].out)
	st, _ := h.b.MemberStats("m0")
	if !st.Hairpinned || st.Relayed != 20 || st.Jitter.Received != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHairpinEligibility(t *testing.T) {
	tests := map[string]struct {
		codecs []Codec
		opts   Options
		attr   func(b *Bridge) error
		mixing bool
	}{
		"same codec":      {[]Codec{PCMU, PCMU}, Options{Hairpin: true}, nil, false},
		"option off":      {[]Codec{PCMU, PCMU}, Options{}, nil, true},
		"different codec": {[]Codec{PCMU, PCMA}, Options{Hairpin: true}, nil, true},
		"one member":      {[]Codec{PCMU}, Options{Hairpin: true}, nil, true},
		"three members":   {[]Codec{PCMU, PCMU, PCMU}, Options{Hairpin: true}, nil, true},
		"muted":           {[]Codec{PCMU, PCMU}, Options{Hairpin: true}, func(b *Bridge) error { return b.SetMuted("m0", true) }, true},
		"receive-only":    {[]Codec{PCMU, PCMU}, Options{Hairpin: true}, func(b *Bridge) error { return b.SetReceiveOnly("m1", true) }, true},
		"coach":           {[]Codec{PCMU, PCMU}, Options{Hairpin: true}, func(b *Bridge) error { return b.SetCoach("m1", true) }, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			addParties(t, h, tc.codecs, toneFreqs)
			if tc.attr != nil {
				if err := tc.attr(h.b); err != nil {
					t.Fatal(err)
				}
			}
			if got := h.b.Mixing(); got != tc.mixing {
				t.Fatalf("Mixing() %v, want %v", got, tc.mixing)
			}
		})
	}
}

// A hairpinned pair becomes a mixer when a third member joins and a relay
// again when it leaves; each member's stream stays one stream and the other
// party's tone never drops out for more than one frame.
func TestHairpinPromoteDemoteContinuity(t *testing.T) {
	for name, startWithThree := range map[string]bool{"from hairpin": false, "from mixer": true} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{Hairpin: true})
			ps := addParties(t, h, []Codec{PCMU, PCMU}, toneFreqs)
			third := &party{id: "m2", s: newSender(PCMU, 3000, toneFreqs[2]), out: &capture{}}
			join := func() {
				m, err := h.b.Add(third.id, PCMU, third.out)
				if err != nil {
					t.Fatal(err)
				}
				third.m = m
				if !h.b.Mixing() {
					t.Fatal("three members: not mixing")
				}
			}
			leave := func() {
				if left := h.b.Remove(third.id); left != 2 {
					t.Fatalf("left %d", left)
				}
				if h.b.Mixing() {
					t.Fatal("back to two: still mixing")
				}
			}
			if startWithThree {
				join()
				run(h, append(ps, third), 25)
				leave()
				run(h, ps, 25)
				join()
				run(h, append(ps, third), 25)
			} else {
				run(h, ps, 25)
				join()
				run(h, append(ps, third), 25)
				leave()
				run(h, ps, 25)
			}
			for i, p := range ps {
				other := ps[1-i]
				x := timeline(t, p.out)
				gap, on := longestGap(x, other.s.freq)
				if gap > 1 || on < 60 {
					t.Errorf("%s: %s's tone missing for %d frames (heard in %d)", p.id, other.id, gap, on)
				}
				if _, self := longestGap(x, p.s.freq); self != 0 {
					t.Errorf("%s hears itself in %d frames", p.id, self)
				}
			}
		})
	}
}

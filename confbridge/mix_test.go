package confbridge

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

type party struct {
	id  string
	s   *sender
	out *capture
	m   *Member
}

func addParties(t *testing.T, h *harness, codecs []Codec, freqs []float64) []*party {
	t.Helper()
	var ps []*party
	for i, c := range codecs {
		p := &party{id: fmt.Sprint("m", i), s: newSender(c, uint32(1000+i), freqs[i]), out: &capture{}}
		m, err := h.b.Add(p.id, c, p.out)
		if err != nil {
			t.Fatal(err)
		}
		p.m = m
		ps = append(ps, p)
	}
	return ps
}

// run sends one packet per member per tick for n ticks.
func run(h *harness, ps []*party, n int) {
	for i := 0; i < n; i++ {
		for _, p := range ps {
			if p.s != nil {
				p.m.HandleRTP(p.s.next())
			}
		}
		h.tick()
	}
}

var toneFreqs = []float64{440, 770, 1230, 1630, 2050}

// checkHearing asserts that each party hears exactly the frequencies of
// want[party index].
func checkHearing(t *testing.T, ps []*party, from int, want map[int][]int) {
	t.Helper()
	for i, p := range ps {
		x := p.out.pcm(from)
		heard := map[int]bool{}
		for _, j := range want[i] {
			heard[j] = true
		}
		for j, q := range ps {
			if q.s == nil || q.s.freq <= 0 {
				continue
			}
			got := goertzel(x, q.s.freq) > 0.05 && level(x) > 300
			if got != heard[j] {
				t.Errorf("%s hears %s (%.0f Hz): %v, want %v (share %.3f, level %.0f)",
					p.id, q.id, q.s.freq, got, heard[j], goertzel(x, q.s.freq), level(x))
			}
		}
	}
}

func TestThreeMembersHearOthersNotThemselves(t *testing.T) {
	for name, codecs := range map[string][]Codec{
		"ulaw":  {PCMU, PCMU, PCMU},
		"alaw":  {PCMA, PCMA, PCMA},
		"mixed": {PCMU, PCMA, PCMU},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, Options{})
			ps := addParties(t, h, codecs, toneFreqs)
			run(h, ps, 50)
			checkHearing(t, ps, 10, map[int][]int{0: {1, 2}, 1: {0, 2}, 2: {0, 1}})
			for _, p := range ps {
				checkStream(t, p)
			}
		})
	}
}

// checkStream asserts each member's output is one RTP stream in its own
// codec: constant SSRC, consecutive sequence numbers, timestamps +160.
func checkStream(t *testing.T, p *party) {
	t.Helper()
	pkts := p.out.packets()
	if len(pkts) == 0 {
		t.Fatalf("%s got nothing", p.id)
	}
	seq0, ts0, ssrc0 := rtpFields(pkts[0])
	for i, pkt := range pkts {
		h, ok := parseRTP(pkt)
		if !ok || Codec(h.pt) != p.m.codec {
			t.Fatalf("%s packet %d: pt %d ok %v", p.id, i, h.pt, ok)
		}
		seq, ts, ssrc := rtpFields(pkt)
		if ssrc != ssrc0 || seq != seq0+uint16(i) || ts != ts0+uint32(160*i) {
			t.Fatalf("%s packet %d: seq %d ts %d ssrc %x (first %d %d %x)", p.id, i, seq, ts, ssrc, seq0, ts0, ssrc0)
		}
	}
}

func TestOutputStreamsDistinctSSRC(t *testing.T) {
	h := newHarness(t, Options{})
	ps := addParties(t, h, []Codec{PCMU, PCMU, PCMU}, toneFreqs)
	run(h, ps, 3)
	seen := map[uint32]bool{}
	for _, p := range ps {
		_, _, ssrc := rtpFields(p.out.packets()[0])
		if seen[ssrc] {
			t.Fatalf("SSRC %x used twice", ssrc)
		}
		seen[ssrc] = true
		if ssrc != p.m.SSRC() {
			t.Fatalf("SSRC() %x, stream %x", p.m.SSRC(), ssrc)
		}
	}
}

func TestMutedMemberNotHeard(t *testing.T) {
	h := newHarness(t, Options{})
	ps := addParties(t, h, []Codec{PCMU, PCMA, PCMU}, toneFreqs)
	if err := h.b.SetMuted("m1", true); err != nil {
		t.Fatal(err)
	}
	run(h, ps, 40)
	checkHearing(t, ps, 10, map[int][]int{0: {2}, 1: {0, 2}, 2: {0}})

	// Unmuted, it is heard again.
	if err := h.b.SetMuted("m1", false); err != nil {
		t.Fatal(err)
	}
	n := len(ps[0].out.packets())
	run(h, ps, 40)
	checkHearing(t, ps, n+10, map[int][]int{0: {1, 2}, 1: {0, 2}, 2: {0, 1}})
}

func TestReceiveOnlyHearsButIsNotHeard(t *testing.T) {
	h := newHarness(t, Options{})
	ps := addParties(t, h, []Codec{PCMU, PCMU, PCMA}, toneFreqs)
	if err := h.b.SetReceiveOnly("m2", true); err != nil {
		t.Fatal(err)
	}
	run(h, ps, 40)
	checkHearing(t, ps, 10, map[int][]int{0: {1}, 1: {0}, 2: {0, 1}})
}

func TestSaturation(t *testing.T) {
	h := newHarness(t, Options{})
	ps := addParties(t, h, []Codec{PCMU, PCMU, PCMU, PCMU}, []float64{440, 440, 440, 0})
	for _, p := range ps[:3] {
		p.s.amp = 30000
	}
	run(h, ps, 20)
	x := ps[3].out.pcm(10)
	var peak int
	for _, v := range x {
		if int(v) > peak {
			peak = int(v)
		}
		if -int(v) > peak {
			peak = -int(v)
		}
	}
	// Three in-phase 30000 tones sum to 90000: clipped at the top level,
	// not wrapped around (a wrap would show as a low level and other tones).
	if peak != 32124 {
		t.Fatalf("peak %d, want the µ-law maximum 32124", peak)
	}
	if !hears(x, 440) {
		t.Fatal("clipped tone lost")
	}
}

func TestAttributeErrors(t *testing.T) {
	h := newHarness(t, Options{})
	if _, err := h.b.Add("a", PCMU, &capture{}); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		err  error
		want error
	}{
		"duplicate":     {func() error { _, err := h.b.Add("a", PCMU, &capture{}); return err }(), ErrMemberExists},
		"bad codec":     {func() error { _, err := h.b.Add("b", Codec(18), &capture{}); return err }(), ErrCodec},
		"empty id":      {func() error { _, err := h.b.Add("", PCMU, &capture{}); return err }(), ErrInvalidMember},
		"mute unknown":  {h.b.SetMuted("zz", true), ErrUnknownMember},
		"recv unknown":  {h.b.SetReceiveOnly("zz", true), ErrUnknownMember},
		"coach unknown": {h.b.SetCoach("zz", true), ErrUnknownMember},
		"pupil unknown": {h.b.SetPupil("zz", true), ErrUnknownMember},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Fatalf("err %v, want %v", tc.err, tc.want)
			}
		})
	}
}

func TestRemoveReportsLeftAndStopsOutput(t *testing.T) {
	h := newHarness(t, Options{})
	ps := addParties(t, h, []Codec{PCMU, PCMU, PCMU}, toneFreqs)
	run(h, ps, 2)
	if left := h.b.Remove("nobody"); left != 3 {
		t.Fatalf("unknown id: left %d", left)
	}
	if left := h.b.Remove("m0"); left != 2 {
		t.Fatalf("left %d, want 2", left)
	}
	n := len(ps[0].out.packets())
	run(h, ps[1:], 3)
	if got := len(ps[0].out.packets()); got != n {
		t.Fatalf("removed member still sent %d packets", got-n)
	}
	ps[0].m.HandleRTP(ps[0].s.next()) // a late packet from a removed member is ignored
	if h.b.Len() != 2 {
		t.Fatalf("Len %d", h.b.Len())
	}
	if left := h.b.Remove("m1"); left != 1 {
		t.Fatalf("left %d", left)
	}
	if left := h.b.Remove("m2"); left != 0 {
		t.Fatalf("left %d, want 0 (last member gone)", left)
	}
	if h.b.Mixing() {
		t.Fatal("empty bridge mixing")
	}
	// An empty bridge is off the schedule; it can be reused.
	if l := len(*h.b.sh.list.Load()); l != 0 {
		t.Fatalf("shard still lists %d bridges", l)
	}
	if _, err := h.b.Add("x", PCMA, &capture{}); err != nil {
		t.Fatal(err)
	}
	h.b.Close()
	if _, err := h.b.Add("y", PCMA, &capture{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if l := len(*h.b.sh.list.Load()); l != 0 {
		t.Fatalf("closed bridge still scheduled")
	}
}

func TestMalformedPacketsCounted(t *testing.T) {
	h := newHarness(t, Options{})
	m, _ := h.b.Add("a", PCMU, &capture{})
	bad := [][]byte{
		nil,
		{0x80},
		make([]byte, 11),
		{0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // version 1
		{0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // 15 CSRC, none there
		{0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}, // extension longer than packet
		{0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40},         // padding longer than packet
	}
	for _, p := range bad {
		m.HandleRTP(p)
	}
	wrong := newSender(PCMA, 1, 440).next() // PCMA to a PCMU member
	m.HandleRTP(wrong)
	h.tick()
	st, _ := h.b.MemberStats("a")
	if st.Malformed != uint64(len(bad)) || st.WrongPT != 1 || st.Jitter.Received != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A 30 ms mix period with phones sending 20 ms packets: the jitter buffer
// works in samples, so packet size and tick need not match.
func TestPtimeDiffersFromPacketSize(t *testing.T) {
	h := &harness{t: t}
	h.e = newEngine(Config{Shards: 1, Ptime: 30 * time.Millisecond}, false)
	h.e.clock = func() int64 { return h.clock }
	h.b = h.e.NewBridge(Options{})
	t.Cleanup(h.b.Close)
	ps := addParties(t, h, []Codec{PCMU, PCMA, PCMU}, toneFreqs)
	sent := 0
	for tick := 0; tick < 60; tick++ {
		// 20 ms packets due by the end of this 30 ms tick.
		for ; sent*20 < (tick+1)*30; sent++ {
			for _, p := range ps {
				p.m.HandleRTP(p.s.next())
			}
		}
		h.tick()
	}
	checkHearing(t, ps, 10, map[int][]int{0: {1, 2}, 1: {0, 2}, 2: {0, 1}})
	for _, p := range ps {
		pkts := p.out.packets()
		if hd, _ := parseRTP(pkts[len(pkts)-1]); hd.end-hd.off != 240 {
			t.Fatalf("%s: %d-byte frames, want 240 (30 ms)", p.id, hd.end-hd.off)
		}
		if st, _ := h.b.MemberStats(p.id); st.Jitter.Lost != 0 || st.Jitter.Late != 0 {
			t.Fatalf("%s: %+v", p.id, st.Jitter)
		}
	}
}

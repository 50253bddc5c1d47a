package confbridge

import (
	"encoding/binary"
	"math"
	"testing"
)

// toneSource plays freq for n frames.
type toneSource struct {
	freq   float64
	frames int
	pos    int
}

func (s *toneSource) Read(pcm []int16) bool {
	for i := range pcm {
		pcm[i] = int16(6000 * math.Sin(2*math.Pi*s.freq*float64(s.pos*len(pcm)+i)/sampleRate))
	}
	s.pos++
	return s.pos < s.frames
}

// A Play to one member is heard by it alone, on top of the conference, and
// its done runs once when the source ends; the stream stays continuous.
func TestPlayToOneMember(t *testing.T) {
	h := newHarness(t, Options{Hairpin: true})
	ps := addParties(t, h, []Codec{PCMU, PCMA, PCMU}, toneFreqs)
	done := 0
	if err := h.b.Play("m0", &toneSource{freq: 1800, frames: 40}, func() { done++ }); err != nil {
		t.Fatal(err)
	}
	run(h, ps, 40)
	if done != 1 {
		t.Fatalf("done ran %d times", done)
	}
	x := ps[0].out.pcm(10)
	if goertzel(x, 1800) < 0.05 || goertzel(x, toneFreqs[1]) < 0.05 {
		t.Errorf("m0 should hear the prompt and m1: %.3f %.3f", goertzel(x, 1800), goertzel(x, toneFreqs[1]))
	}
	if y := ps[1].out.pcm(10); goertzel(y, 1800) > 0.01 {
		t.Errorf("m1 hears m0's prompt: %.3f", goertzel(y, 1800))
	}
	n := len(ps[0].out.packets())
	run(h, ps, 20)
	if x := ps[0].out.pcm(n + 2); goertzel(x, 1800) > 0.01 {
		t.Errorf("prompt still heard after it ended: %.3f", goertzel(x, 1800))
	}
	checkStream(t, ps[0])
	if done != 1 {
		t.Fatalf("done ran %d times", done)
	}
}

// PlayAll reaches every member, and a hairpinned pair mixes for the
// duration and relays again afterwards.
func TestPlayAllPromotesHairpin(t *testing.T) {
	h := newHarness(t, Options{Hairpin: true})
	ps := addParties(t, h, []Codec{PCMU, PCMU}, toneFreqs)
	run(h, ps, 10)
	if !h.b.hairpin {
		t.Fatal("two PCMU members should be hairpinned")
	}
	done := false
	if err := h.b.PlayAll(&toneSource{freq: 1800, frames: 30}, func() { done = true }); err != nil {
		t.Fatal(err)
	}
	if h.b.hairpin {
		t.Fatal("a play should unlink the hairpin")
	}
	from0, from1 := len(ps[0].out.packets()), len(ps[1].out.packets())
	run(h, ps, 30)
	for i, from := range []int{from0, from1} {
		if x := ps[i].out.pcm(from + 5); goertzel(x, 1800) < 0.05 {
			t.Errorf("m%d does not hear the play: %.3f", i, goertzel(x, 1800))
		}
	}
	if !done || !h.b.hairpin {
		t.Fatalf("after the play: done %v hairpin %v", done, h.b.hairpin)
	}
	if h.b.Mixing() {
		t.Fatal("Mixing() must not count a play")
	}
}

// SendEvents: RFC 4733 packets in the member's own stream (its SSRC,
// consecutive sequence numbers), one timestamp per key, durations growing
// by a frame, the end packet three times, and audio again afterwards with
// its timestamp past the key.
func TestSendEventsRFC4733(t *testing.T) {
	h := newHarness(t, Options{})
	ps := addParties(t, h, []Codec{PCMU, PCMU}, toneFreqs)
	run(h, ps, 5)
	from := len(ps[0].out.packets())
	done := 0
	if err := h.b.SendEvents("m0", []byte{1, 11}, 101, func() { done++ }); err != nil {
		t.Fatal(err)
	}
	run(h, ps, 30)
	if done != 1 {
		t.Fatalf("done ran %d times", done)
	}
	pkts := ps[0].out.packets()
	seq0, _, ssrc := rtpFields(pkts[0])
	type key struct {
		code byte
		ts   uint32
		durs []int
		ends int
		mark bool
	}
	var keys []*key
	lastEventEnd := uint32(0)
	for i, p := range pkts {
		seq, ts, s := rtpFields(p)
		if s != ssrc || seq != seq0+uint16(i) {
			t.Fatalf("packet %d: seq %d ssrc %x", i, seq, s)
		}
		if p[1]&0x7f != 101 {
			if i > from && lastEventEnd != 0 && int32(ts-lastEventEnd) < 0 {
				t.Fatalf("audio ts %d before the end of the key (%d)", ts, lastEventEnd)
			}
			continue
		}
		code, end, dur := p[12], p[13]&0x80 != 0, int(binary.BigEndian.Uint16(p[14:]))
		if len(keys) == 0 || keys[len(keys)-1].ts != ts {
			keys = append(keys, &key{code: code, ts: ts, mark: p[1]&0x80 != 0})
		}
		k := keys[len(keys)-1]
		if end {
			k.ends++
		}
		k.durs = append(k.durs, dur)
		lastEventEnd = ts + uint32(dur)
	}
	if len(keys) != 2 || keys[0].code != 1 || keys[1].code != 11 {
		t.Fatalf("keys %+v", keys)
	}
	for _, k := range keys {
		if !k.mark || k.ends != 3 || len(k.durs) != eventTicks+3 || k.durs[0] != 160 || k.durs[len(k.durs)-1] != eventTicks*160 {
			t.Errorf("key %d: marker %v ends %d durations %v", k.code, k.mark, k.ends, k.durs)
		}
	}
	if d := keys[1].ts - keys[0].ts; d < eventTicks*160 {
		t.Errorf("second key's timestamp only %d after the first", d)
	}
}

// A tap sees what the member says, decoded, every tick (silence when it
// says nothing).
func TestTapHearsMember(t *testing.T) {
	h := newHarness(t, Options{})
	ps := addParties(t, h, []Codec{PCMA, PCMU}, toneFreqs)
	var heard []int16
	frames := 0
	if err := h.b.SetTap("m0", TapDetect, func(pcm []int16) { frames++; heard = append(heard, pcm...) }); err != nil {
		t.Fatal(err)
	}
	run(h, ps, 30)
	if frames != 30 || goertzel(heard[1600:], toneFreqs[0]) < 0.5 {
		t.Fatalf("%d frames, share of m0's tone %.3f", frames, goertzel(heard[1600:], toneFreqs[0]))
	}
	ps[0].s = nil // m0 falls silent
	heard = heard[:0]
	run(h, ps, 20)
	if level(heard[800:]) > 50 {
		t.Fatalf("tap of a silent member: level %.0f", level(heard[800:]))
	}
}

func BenchmarkMixWithTapAndPlay(b *testing.B) {
	h := &harness{}
	h.e = newEngine(Config{Shards: 1}, false)
	h.e.clock = func() int64 { return h.clock }
	h.b = h.e.NewBridge(Options{})
	defer h.b.Close()
	var ms []*Member
	for i := range 10 {
		m, _ := h.b.Add(string(rune('a'+i)), PCMU, discard{})
		ms = append(ms, m)
	}
	h.b.SetTap("a", TapRecord, func([]int16) {})
	h.b.Play("b", &toneSource{freq: 1000, frames: math.MaxInt}, nil)
	s := newSender(PCMU, 1, 440)
	pkts := make([][]byte, 64)
	for i := range pkts {
		pkts[i] = s.next()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, m := range ms {
			m.HandleRTP(pkts[i%64])
		}
		h.clock += int64(h.e.cfg.Ptime)
		h.b.tick(h.clock)
		i++
	}
}

package loadstat

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestProbeRoundTrip(t *testing.T) {
	pkt := make([]byte, PacketSize)
	want := Probe{Step: 7, Stream: 1234, Seq: 99999, SentNs: 123456789012}
	Fill(pkt, 8, want)
	if pkt[0] != 0x80 || pkt[1] != 8 {
		t.Fatalf("header %x", pkt[:2])
	}
	got, err := Parse(pkt)
	if err != nil || got != want {
		t.Fatalf("Parse = %+v, %v; want %+v", got, err, want)
	}
}

func TestParseSkipsCSRCAndExtension(t *testing.T) {
	want := Probe{Step: 1, Stream: 2, Seq: 3, SentNs: 4}
	plain := make([]byte, PacketSize)
	Fill(plain, 0, want)
	// one CSRC and a one-word header extension inserted by a relay
	pkt := append([]byte{}, plain[:HeaderSize]...)
	pkt[0] |= 0x10 | 1
	pkt = append(pkt, 0, 0, 0, 9)       // CSRC
	pkt = append(pkt, 0xbe, 0xde, 0, 1) // extension header, length 1 word
	pkt = append(pkt, 1, 2, 3, 4)       // extension body
	pkt = append(pkt, plain[HeaderSize:]...)
	got, err := Parse(pkt)
	if err != nil || got != want {
		t.Fatalf("Parse = %+v, %v; want %+v", got, err, want)
	}
}

func TestParseRejects(t *testing.T) {
	good := make([]byte, PacketSize)
	Fill(good, 0, Probe{})
	cases := map[string][]byte{
		"short":       good[:HeaderSize+ProbeSize-1],
		"version 1":   append([]byte{0x40}, good[1:]...),
		"bad magic":   append(append([]byte{}, good[:HeaderSize]...), make([]byte, PayloadSize)...),
		"empty":       nil,
		"ext overrun": append([]byte{0x90}, good[1:HeaderSize+2]...),
	}
	for name, pkt := range cases {
		if _, err := Parse(pkt); !errors.Is(err, ErrNotProbe) {
			t.Errorf("%s: err = %v, want ErrNotProbe", name, err)
		}
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	var prevHi uint64
	for i := 0; i < numBuckets; i++ {
		lo, hi := bucketBounds(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d,%d] maps to %d,%d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= 2*subBuckets && float64(hi-lo+1)/float64(lo) > 1.0/subBuckets+1e-12 {
			t.Fatalf("bucket %d [%d,%d] wider than 1/%d", i, lo, hi, subBuckets)
		}
		prevHi = hi
	}
}

func TestQuantileExactSmall(t *testing.T) {
	var h Histogram
	for v := uint64(1); v <= 10; v++ {
		h.Record(v)
	}
	for q, want := range map[float64]uint64{0.1: 1, 0.5: 5, 0.51: 6, 0.99: 10, 1: 10} {
		if got := h.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %d, want %d", q, got, want)
		}
	}
	var empty Histogram
	if empty.Quantile(0.99) != 0 || empty.Max() != 0 {
		t.Error("empty histogram not zero")
	}
}

func TestQuantileMatchesSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]uint64, 0, 100000)
	for i := 0; i < 100000; i++ {
		// log-uniform from 10 µs to ~1 s, like latencies of a relay past its knee
		v := uint64(10 * math.Exp(r.Float64()*11.5))
		vals = append(vals, v)
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		rank := int(math.Ceil(q * float64(len(vals))))
		exact := vals[rank-1]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/subBuckets {
			t.Errorf("Quantile(%v) = %d, exact %d: outside [exact, exact*(1+1/%d)]", q, got, exact, subBuckets)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Count() != uint64(len(vals)) {
		t.Errorf("max %d count %d", h.Max(), h.Count())
	}
	var m Histogram
	m.Merge(&h)
	m.Merge(&h)
	if m.Count() != 2*h.Count() || m.Quantile(0.5) != h.Quantile(0.5) {
		t.Errorf("merge: count %d q50 %d vs %d", m.Count(), m.Quantile(0.5), h.Quantile(0.5))
	}
}

func TestTrackerAccounting(t *testing.T) {
	const streams, steps = 4, 3
	tr := NewTracker(streams, steps, 8)
	sent := [steps][]uint32{{10, 10, 10, 10}, {10, 10, 10, 10}, {5, 5, 5, 0}}
	ms := int64(1e6)
	tr.SetStepEnd(0, 100*ms)
	// step 0: all 40 arrive, 1 ms latency, stream 0 seq 3 before seq 2 (reordered),
	// stream 1 seq 0 twice (duplicate), stream 2 seq 9 arrives at 150 ms (late: sent at 90 ms, 60 ms latency).
	for s := 0; s < streams; s++ {
		order := []uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
		if s == 0 {
			order[2], order[3] = 3, 2
		}
		for _, q := range order {
			sentAt := int64(q) * 10 * ms
			now := sentAt + ms
			if s == 2 && q == 9 {
				now = 150 * ms
			}
			tr.Record(Probe{Step: 0, Stream: uint32(s), Seq: q, SentNs: sentAt}, now)
		}
	}
	tr.Record(Probe{Step: 0, Stream: 1, Seq: 0, SentNs: 0}, 2*ms)
	// step 1: stream 3 silent, stream 0 loses 2 of 10; seqs continue at 10.
	for s := 0; s < 3; s++ {
		for q := uint32(10); q < 20; q++ {
			if s == 0 && q >= 18 {
				continue
			}
			tr.Record(Probe{Step: 1, Stream: uint32(s), Seq: q, SentNs: 0}, 2*ms)
		}
	}
	// a probe from a step or stream the run never had
	tr.Record(Probe{Step: 5, Stream: 0, Seq: 1}, 0)
	tr.Record(Probe{Step: 0, Stream: 9, Seq: 1}, 0)

	r0 := Summarize(0, sent[0], tr)
	want0 := StepResult{Sent: 40, Received: 40, Late: 1, Dup: 1, Reordered: 1, P50us: 1000, P99us: 60000, MaxUs: 60000, Streams: 4}
	r0.P50us, r0.P99us = roundTo(r0.P50us, 1000), roundTo(r0.P99us, 60000)
	if r0 != want0 {
		t.Errorf("step 0 = %+v\nwant     %+v", r0, want0)
	}
	r1 := Summarize(1, sent[1], tr)
	if r1.Sent != 40 || r1.Received != 28 || r1.Lost != 12 || r1.SilentStreams != 1 || r1.Late != 0 ||
		math.Abs(r1.LossRatio-0.3) > 1e-12 {
		t.Errorf("step 1 = %+v", r1)
	}
	r2 := Summarize(2, sent[2], tr)
	if r2.Sent != 15 || r2.Received != 0 || r2.Lost != 15 || r2.Streams != 3 || r2.SilentStreams != 3 || r2.LossRatio != 1 {
		t.Errorf("step 2 = %+v", r2)
	}
	if tr.Invalid() != 2 {
		t.Errorf("invalid = %d, want 2", tr.Invalid())
	}
}

// roundTo returns want when got is within the histogram's precision of it.
func roundTo(got, want uint64) uint64 {
	if got >= want && float64(got-want) <= float64(want)/subBuckets {
		return want
	}
	return got
}

func TestSummarizeSplitsStreamsAcrossTrackers(t *testing.T) {
	a, b := NewTracker(2, 1, 64), NewTracker(2, 1, 64)
	for q := uint32(0); q < 5; q++ {
		a.Record(Probe{Stream: 0, Seq: q}, 0)
		b.Record(Probe{Stream: 1, Seq: q}, 0)
	}
	b.Record(Probe{Stream: 1, Seq: 1000}, 0) // beyond the presized bitset
	r := Summarize(0, []uint32{5, 6}, a, b)
	if r.Received != 11 || r.Lost != 0 || r.SilentStreams != 0 || r.Streams != 2 {
		t.Errorf("got %+v", r)
	}
}

func BenchmarkRecord(b *testing.B) {
	tr := NewTracker(1000, 4, 1<<16)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tr.Record(Probe{Step: 1, Stream: uint32(i % 1000), Seq: uint32(i / 1000 % (1 << 16)), SentNs: 0}, 123456)
	}
}

package loadstat

import (
	"fmt"
	"math"
)

// Tracker accounts what one receiver saw, per step and per stream. Every
// packet is counted against the step it was sent in (carried in its probe),
// whenever it arrives; one that arrives after its step's send window closed
// (SetStepEnd) is also counted as late. A Tracker is not safe for concurrent
// use: its receiver owns it and others read it under the receiver's lock.
type Tracker struct {
	streams, steps int

	recv, late, dup, reord []uint64 // per step
	hist                   []Histogram
	stepEnd                []int64 // ns; packets arriving after are late

	maxSeq     []int64    // per stream; -1 before the first packet
	seen       [][]uint64 // per stream: bitset of sequence numbers received
	streamStep []uint32   // [stream*steps+step] packets received
	invalid    uint64     // probes naming an unknown stream or step
}

// NewTracker sizes a tracker for streams×steps; expectSeq presizes the
// duplicate bitsets (sequence numbers per stream expected in the run).
func NewTracker(streams, steps, expectSeq int) *Tracker {
	t := &Tracker{
		streams: streams, steps: steps,
		recv: make([]uint64, steps), late: make([]uint64, steps),
		dup: make([]uint64, steps), reord: make([]uint64, steps),
		hist: make([]Histogram, steps), stepEnd: make([]int64, steps),
		maxSeq: make([]int64, streams), seen: make([][]uint64, streams),
		streamStep: make([]uint32, streams*steps),
	}
	for i := range t.stepEnd {
		t.stepEnd[i] = math.MaxInt64
	}
	for i := range t.maxSeq {
		t.maxSeq[i] = -1
	}
	words := (expectSeq + 63) / 64
	for i := range t.seen {
		t.seen[i] = make([]uint64, words)
	}
	return t
}

// SetStepEnd marks the end of step's send window (ns, the probe's clock).
func (t *Tracker) SetStepEnd(step int, ns int64) { t.stepEnd[step] = ns }

// Record accounts one received probe that arrived at nowNs.
func (t *Tracker) Record(p Probe, nowNs int64) {
	if int(p.Stream) >= t.streams || int(p.Step) >= t.steps {
		t.invalid++
		return
	}
	st, s := int(p.Step), int(p.Stream)
	w, bit := int(p.Seq/64), uint64(1)<<(p.Seq%64)
	if w >= len(t.seen[s]) {
		grown := make([]uint64, w*2+1)
		copy(grown, t.seen[s])
		t.seen[s] = grown
	}
	if t.seen[s][w]&bit != 0 {
		t.dup[st]++
		return
	}
	t.seen[s][w] |= bit
	if int64(p.Seq) < t.maxSeq[s] {
		t.reord[st]++
	} else {
		t.maxSeq[s] = int64(p.Seq)
	}
	t.recv[st]++
	t.streamStep[s*t.steps+st]++
	if nowNs > t.stepEnd[st] {
		t.late[st]++
	}
	lat := nowNs - p.SentNs
	if lat < 0 {
		lat = 0
	}
	t.hist[st].Record(uint64(lat / 1000))
}

// Invalid counts probes that named an unknown stream or step.
func (t *Tracker) Invalid() uint64 { return t.invalid }

// StepResult is what arrived of one step's packets.
type StepResult struct {
	Sent, Received, Lost, Late, Dup, Reordered uint64
	LossRatio                                  float64 // Lost/Sent
	P50us, P99us, MaxUs                        uint64  // added latency
	Streams, SilentStreams                     int     // streams that sent; of those, received nothing
}

func (r StepResult) String() string {
	return fmt.Sprintf("sent=%d recv=%d lost=%d (%.4f%%) late=%d dup=%d reord=%d p50=%dus p99=%dus max=%dus silent=%d/%d",
		r.Sent, r.Received, r.Lost, 100*r.LossRatio, r.Late, r.Dup, r.Reordered,
		r.P50us, r.P99us, r.MaxUs, r.SilentStreams, r.Streams)
}

// Summarize combines the trackers (one per receiving socket; each stream is
// received by exactly one) for step, given how many packets each stream sent
// in it (sent[stream]).
func Summarize(step int, sent []uint32, trackers ...*Tracker) StepResult {
	var r StepResult
	var h Histogram
	for _, n := range sent {
		r.Sent += uint64(n)
	}
	for _, t := range trackers {
		r.Received += t.recv[step]
		r.Late += t.late[step]
		r.Dup += t.dup[step]
		r.Reordered += t.reord[step]
		h.Merge(&t.hist[step])
	}
	for s, n := range sent {
		if n == 0 {
			continue
		}
		r.Streams++
		var got uint32
		for _, t := range trackers {
			if s < t.streams {
				got += t.streamStep[s*t.steps+step]
			}
		}
		if got == 0 {
			r.SilentStreams++
		}
	}
	if r.Received < r.Sent {
		r.Lost = r.Sent - r.Received
	}
	if r.Sent > 0 {
		r.LossRatio = float64(r.Lost) / float64(r.Sent)
	}
	r.P50us, r.P99us, r.MaxUs = h.Quantile(0.50), h.Quantile(0.99), h.Max()
	return r
}

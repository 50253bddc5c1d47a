package confbridge

import "testing"

const (
	jtK   = 160
	jtMin = 320
	jtMax = 480
)

// jbRun feeds a jitter buffer tick by tick: arrivals[i] lists the sequence
// numbers (offsets from the stream start) that arrive just before tick i.
// It returns what each tick played: the frame's sequence number, -1 for
// silence, and whether it was a concealment.
type played struct {
	seq       int
	concealed bool
}

type jbStream struct {
	ssrc   uint32
	seq0   int
	ts0    uint32
	tsJump map[int]uint32 // extra timestamp offset from this seq on
}

func (s jbStream) ts(seq int) uint32 {
	ts := s.ts0 + uint32(seq-s.seq0)*jtK
	for from, add := range s.tsJump {
		if seq >= from {
			ts += add
		}
	}
	return ts
}

func framePayload(seq int) []byte {
	p := make([]byte, jtK)
	fill(p, byte(1+seq%200)) // never 0xFF (µ-law silence)
	return p
}

func newTestJB() *jitterBuffer {
	j := &jitterBuffer{}
	j.init(jtK, jtMin, jtMax)
	return j
}

func jbRun(j *jitterBuffer, s jbStream, arrivals [][]int, ticks int) []played {
	out := make([]byte, jtK)
	var res []played
	last := -1
	for i := 0; i < ticks; i++ {
		if i < len(arrivals) {
			for _, seq := range arrivals[i] {
				j.put(s.ssrc, uint16(seq), s.ts(seq), framePayload(seq), int64(i*jtK))
			}
		}
		kind := j.play(out, ulawSilence)
		p := played{seq: -1}
		switch kind {
		case frameReal:
			p.seq = int(out[0]) - 1
			last = p.seq
		case frameConcealed:
			p.seq, p.concealed = last, true
		}
		res = append(res, p)
	}
	return res
}

func inOrder(n int) [][]int {
	a := make([][]int, n)
	for i := range a {
		a[i] = []int{i}
	}
	return a
}

// realSeqs lists the sequence numbers played as real frames, in order.
func realSeqs(p []played) []int {
	var s []int
	for _, x := range p {
		if x.seq >= 0 && !x.concealed {
			s = append(s, x.seq)
		}
	}
	return s
}

func wantContiguous(t *testing.T, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("played %v, want %d..%d", got, from, to-1)
	}
	for i, s := range got {
		if s != from+i {
			t.Fatalf("played %v, want %d..%d", got, from, to-1)
		}
	}
}

func TestJitterInOrder(t *testing.T) {
	j := newTestJB()
	p := jbRun(j, jbStream{ssrc: 1}, inOrder(20), 22)
	// Two ticks of pre-roll (the 40 ms target), then every frame in order.
	if p[0].seq != -1 || p[1].seq != -1 || p[2].seq != 0 {
		t.Fatalf("start %v", p[:3])
	}
	wantContiguous(t, realSeqs(p), 0, 20)
	st := j.stats()
	if st.Received != 20 || st.Lost != 0 || st.Late != 0 || st.Resyncs != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJitterReorderedAndJittered(t *testing.T) {
	// Pairs swapped, and a few packets 20–40 ms late: all within the depth.
	arr := make([][]int, 40)
	for i := 0; i < 36; i += 2 {
		arr[i] = append(arr[i], i+1)
		arr[i+1] = append(arr[i+1], i)
	}
	arr[36] = []int{}
	arr[38] = []int{36, 37, 38} // a burst after 40 ms of nothing
	arr[39] = []int{39}
	j := newTestJB()
	p := jbRun(j, jbStream{ssrc: 7, seq0: 65530, ts0: 4294967000}, arr, 44)
	wantContiguous(t, realSeqs(p), 0, 40)
	if st := j.stats(); st.Lost != 0 || st.Late != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJitterDuplicates(t *testing.T) {
	arr := inOrder(20)
	for i := range arr {
		arr[i] = []int{i, i}
		if i > 0 {
			arr[i] = append(arr[i], i-1) // and once more a tick later
		}
	}
	j := newTestJB()
	p := jbRun(j, jbStream{ssrc: 1}, arr, 22)
	wantContiguous(t, realSeqs(p), 0, 20)
	if st := j.stats(); st.Duplicates != 39 {
		t.Fatalf("duplicates %d, want 39 (%+v)", st.Duplicates, st)
	}
}

func TestJitterLateDropped(t *testing.T) {
	arr := inOrder(20)
	arr[5] = nil
	arr[10] = []int{10, 5} // 100 ms late: already played out
	j := newTestJB()
	p := jbRun(j, jbStream{ssrc: 1}, arr, 22)
	got := realSeqs(p)
	for _, s := range got {
		if s == 5 {
			t.Fatalf("late frame played: %v", got)
		}
	}
	// Frame 5's slot was concealed by repeating frame 4.
	if p[7] != (played{seq: 4, concealed: true}) {
		t.Fatalf("slot of frame 5: %+v", p[7])
	}
	if st := j.stats(); st.Late != 1 || st.Lost != 1 || st.Concealed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJitterLossConcealThenSilence(t *testing.T) {
	arr := inOrder(20)
	arr[5], arr[6], arr[7] = nil, nil, nil
	j := newTestJB()
	p := jbRun(j, jbStream{ssrc: 1}, arr, 22)
	// Frames play two ticks after arrival: 4 at tick 6. At tick 7 nothing
	// newer is there, so playout holds (the delay grows by a tick) and
	// conceals; once frame 8 shows 5..7 are lost they play as silence.
	want := []played{{4, false}, {4, true}, {-1, false}, {-1, false}, {-1, false}, {8, false}}
	for i, w := range want {
		if p[6+i] != w {
			t.Fatalf("tick %d: %+v, want %+v (all %v)", 6+i, p[6+i], w, p)
		}
	}
	if st := j.stats(); st.Lost != 3 || st.Concealed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJitterSSRCChange(t *testing.T) {
	j := newTestJB()
	a := jbStream{ssrc: 1}
	p1 := jbRun(j, a, inOrder(10), 12)
	wantContiguous(t, realSeqs(p1), 0, 10)
	// A transfer: new SSRC, unrelated sequence numbers and timestamps.
	b := jbStream{ssrc: 2, seq0: 100, ts0: 123456789}
	arr := make([][]int, 10)
	for i := range arr {
		arr[i] = []int{100 + i}
	}
	p2 := jbRun(j, b, arr, 12)
	wantContiguous(t, realSeqs(p2), 100, 110)
	if p2[2].seq != 100 {
		t.Fatalf("new stream starts %v", p2[:3])
	}
	if st := j.stats(); st.Resyncs != 2 || st.Late != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJitterTimestampJumps(t *testing.T) {
	for name, jump := range map[string]uint32{
		"forward 10 s": 80000,
		"backward 5 s": uint32(-40000 & 0xffffffff),
	} {
		t.Run(name, func(t *testing.T) {
			j := newTestJB()
			s := jbStream{ssrc: 3, tsJump: map[int]uint32{10: jump}}
			p := jbRun(j, s, inOrder(30), 32)
			wantContiguous(t, realSeqs(p), 0, 30)
			if st := j.stats(); st.Resyncs != 2 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestJitterStreamPauseAndResume(t *testing.T) {
	// Silence suppression: nothing for 300 ms, then the stream resumes with
	// contiguous sequence numbers and a timestamp 300 ms on.
	arr := inOrder(40)
	for i := 10; i < 25; i++ {
		arr[i] = nil
	}
	j := newTestJB()
	s := jbStream{ssrc: 4}
	p := jbRun(j, s, arr, 42)
	got := realSeqs(p)
	wantContiguous(t, got[:10], 0, 10)
	wantContiguous(t, got[10:], 25, 40)
	st := j.stats()
	if st.Late != 0 || st.Underruns == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestJitterAdaptsDepth(t *testing.T) {
	steady := newTestJB()
	jbRun(steady, jbStream{ssrc: 1}, inOrder(100), 100)
	if got := steady.target(); got != jtMin {
		t.Fatalf("steady stream: target %d, want %d", got, jtMin)
	}
	// Packets arriving in pairs every 40 ms: 20 ms of jitter.
	arr := make([][]int, 100)
	for i := 0; i < 100; i += 2 {
		arr[i+1] = []int{i, i + 1}
	}
	jittery := newTestJB()
	p := jbRun(jittery, jbStream{ssrc: 1}, arr, 104)
	if got := jittery.target(); got <= jtMin || got > jtMax {
		t.Fatalf("jittery stream: target %d, want in (%d, %d]", got, jtMin, jtMax)
	}
	if st := jittery.stats(); st.Lost != 0 {
		t.Fatalf("jittery stream lost frames: %+v", st)
	}
	wantContiguous(t, realSeqs(p), 0, 100)
}

func TestJitterShrinksAfterBurst(t *testing.T) {
	// 200 ms of audio arrives at once (a network stall), then steady.
	arr := make([][]int, 120)
	arr[0] = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	for i := 1; i < 110; i++ {
		arr[i] = []int{9 + i}
	}
	j := newTestJB()
	jbRun(j, jbStream{ssrc: 1}, arr, 110)
	st := j.stats()
	if st.Dropped == 0 || st.Depth > jtMin+jtK {
		t.Fatalf("buffer did not shrink: %+v", st)
	}
}

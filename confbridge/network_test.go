package confbridge

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Ten members in one conference, three of them behind a bad network that
// delays packets by 0–50 ms (reordering them) and drops 5%: every member
// hears every other talker and nobody hears itself.
func TestTenMembersJitteryLossySenders(t *testing.T) {
	freqs := []float64{350, 500, 650, 820, 1000, 1180, 1400, 1620, 1850, 2100}
	h := newHarness(t, Options{})
	codecs := make([]Codec, len(freqs))
	for i := range codecs {
		codecs[i] = []Codec{PCMU, PCMA}[i%2]
	}
	ps := addParties(t, h, codecs, freqs)
	for _, p := range ps {
		p.s.amp = 3000
	}
	bad := map[int]bool{2: true, 5: true, 9: true}
	rng := rand.New(rand.NewPCG(1, 2))
	type inflight struct {
		at  int
		m   *Member
		pkt []byte
	}
	var queue []inflight
	dropped := 0
	const ticks = 150
	for i := 0; i < ticks; i++ {
		for j, p := range ps {
			pkt := p.s.next()
			at := i
			if bad[j] {
				if rng.IntN(100) < 5 {
					dropped++
					continue
				}
				at += rng.IntN(3) // 0, 20 or 40 ms late, plus the phase below
			}
			queue = append(queue, inflight{at, p.m, pkt})
		}
		rest := queue[:0]
		var now []inflight
		for _, q := range queue {
			if q.at <= i {
				now = append(now, q)
			} else {
				rest = append(rest, q)
			}
		}
		queue = rest
		rng.Shuffle(len(now), func(a, b int) { now[a], now[b] = now[b], now[a] })
		for _, q := range now {
			q.m.HandleRTP(q.pkt)
		}
		h.tick()
	}
	if dropped == 0 {
		t.Fatal("the bad network dropped nothing")
	}
	want := map[int][]int{}
	for i := range ps {
		for j := range ps {
			if i != j {
				want[i] = append(want[i], j)
			}
		}
	}
	checkHearing(t, ps, 20, want)
	for j := range bad {
		st, _ := h.b.MemberStats(ps[j].id)
		if st.Jitter.Lost == 0 || st.Jitter.Received == 0 {
			t.Errorf("%s: %+v", ps[j].id, st.Jitter)
		}
		t.Logf("%s jitter buffer: %s", ps[j].id, fmt.Sprintf("%+v", st.Jitter))
	}
}

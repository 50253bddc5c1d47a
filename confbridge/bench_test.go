package confbridge

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
)

type nullOut struct{ n int }

func (o *nullOut) Send(p []byte) error { o.n += len(p); return nil }

// BenchmarkMemberTick measures one tick of a bridge, with every member's
// packet for that tick arriving through HandleRTP; ns/member-tick is the
// cost per member per 20 ms. Packets are pre-built and re-stamped in place.
func BenchmarkMemberTick(b *testing.B) {
	for _, c := range []struct {
		members, talkers int
		play             bool // a PlayAll into the conference (issue 12: what a Play costs)
	}{{3, 3, false}, {10, 10, false}, {10, 2, false}, {10, 3, false}, {10, 3, true}, {100, 3, false}, {100, 3, true}, {200, 3, false}, {100, 0, false}} {
		name := fmt.Sprintf("members=%d/talkers=%d", c.members, c.talkers)
		if c.play {
			name += "/play"
		}
		b.Run(name, func(b *testing.B) {
			e := newEngine(Config{Shards: 1}, false)
			var clock int64
			e.clock = func() int64 { return clock }
			br := e.NewBridge(Options{})
			defer br.Close()
			type src struct {
				m   *Member
				pkt []byte
			}
			srcs := make([]src, c.members)
			for i := range srcs {
				codec := PCMU
				if i%2 == 1 {
					codec = PCMA
				}
				freq := 0.0
				if i < c.talkers {
					freq = toneFreqs[i%len(toneFreqs)]
				}
				m, err := br.Add(fmt.Sprint(i), codec, &nullOut{})
				if err != nil {
					b.Fatal(err)
				}
				srcs[i] = src{m: m, pkt: newSender(codec, uint32(i+1), freq).next()}
			}
			if c.play {
				// A decoded prompt, as session plays one: a copy per tick.
				if err := br.PlayAll(newLoopSource(2600), nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				for i := range srcs {
					p := srcs[i].pkt
					binary.BigEndian.PutUint16(p[2:], uint16(n))
					binary.BigEndian.PutUint32(p[4:], uint32(n*160))
					srcs[i].m.HandleRTP(p)
				}
				clock += int64(e.cfg.Ptime)
				br.tick(clock)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*c.members), "ns/member-tick")
		})
	}
}

func BenchmarkHandleRTPHairpin(b *testing.B) {
	e := newEngine(Config{Shards: 1}, false)
	br := e.NewBridge(Options{Hairpin: true})
	defer br.Close()
	x, _ := br.Add("x", PCMU, &nullOut{})
	if _, err := br.Add("y", PCMU, &nullOut{}); err != nil {
		b.Fatal(err)
	}
	pkt := newSender(PCMU, 1, 440).next()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		binary.BigEndian.PutUint16(pkt[2:], uint16(n))
		binary.BigEndian.PutUint32(pkt[4:], uint32(n*160))
		x.HandleRTP(pkt)
	}
}

func BenchmarkEncodeFrame(b *testing.B) {
	src := make([]int32, 160)
	for i := range src {
		src[i] = int32(i * 300)
	}
	dst := make([]byte, 160)
	b.ReportAllocs()
	for n := 0; n < b.N; n++ {
		lawU.encodeSat(dst, src)
	}
}

// loopSource repeats one second of a tone, decoded beforehand as session
// decodes its prompts: Read is a copy.
type loopSource struct {
	pcm []int16
	pos int
}

func newLoopSource(freq float64) *loopSource {
	s := &loopSource{pcm: make([]int16, sampleRate)}
	for i := range s.pcm {
		s.pcm[i] = int16(3000 * math.Sin(2*math.Pi*freq*float64(i)/sampleRate))
	}
	return s
}

func (s *loopSource) Read(pcm []int16) bool {
	for n := 0; n < len(pcm); {
		c := copy(pcm[n:], s.pcm[s.pos:])
		n += c
		s.pos = (s.pos + c) % len(s.pcm)
	}
	return true
}

// BenchmarkPlayAllPerTick is all a conference's Play adds to its tick:
// one frame read from the source and added into the mix.
func BenchmarkPlayAllPerTick(b *testing.B) {
	e := newEngine(Config{Shards: 1}, false)
	br := e.NewBridge(Options{})
	defer br.Close()
	br.src = newLoopSource(2600)
	sum := make([]int32, e.k)
	b.ReportAllocs()
	for b.Loop() {
		br.addSource(sum, 3)
	}
}

package confbridge

import (
	"encoding/binary"
	"math"
	"sync"
	"testing"
	"time"
)

// harness drives an engine without goroutines: the test owns the clock and
// calls the ticks, so no timing can decide a result.
type harness struct {
	t     *testing.T
	e     *Engine
	b     *Bridge
	clock int64
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{t: t}
	h.e = newEngine(Config{Shards: 1}, false)
	h.e.clock = func() int64 { return h.clock }
	h.b = h.e.NewBridge(opts)
	t.Cleanup(h.b.Close)
	return h
}

// tick advances the clock one period and runs the bridge's tick.
func (h *harness) tick() {
	h.clock += int64(h.e.cfg.Ptime)
	h.b.tick(h.clock)
}

// capture is an Output that records what it is sent.
type capture struct {
	mu   sync.Mutex // guards pkts
	pkts [][]byte
	fail bool
}

func (c *capture) Send(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pkts = append(c.pkts, append([]byte(nil), p...))
	return nil
}

func (c *capture) packets() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.pkts...)
}

// pcm decodes everything received from packet `from` on, in arrival order.
func (c *capture) pcm(from int) []int16 {
	var out []int16
	for i, p := range c.packets() {
		if i < from {
			continue
		}
		h, ok := parseRTP(p)
		if !ok {
			continue
		}
		l := Codec(h.pt).law()
		if l == nil {
			continue
		}
		for _, b := range p[h.off:h.end] {
			out = append(out, l.dec[b])
		}
	}
	return out
}

// sender makes RTP packets of a tone (freq 0: silence) in one codec.
type sender struct {
	codec Codec
	ssrc  uint32
	seq   uint16
	ts    uint32
	freq  float64
	amp   float64
	n     int // samples generated so far (tone phase)
	noise uint32
}

func newSender(codec Codec, ssrc uint32, freq float64) *sender {
	return &sender{codec: codec, ssrc: ssrc, seq: uint16(ssrc * 7), ts: ssrc * 13, freq: freq, amp: 8000}
}

// next returns the next 20 ms packet and advances seq and ts.
func (s *sender) next() []byte {
	const n = 160
	pcm := make([]int16, n)
	for i := range pcm {
		v := 0.0
		if s.freq > 0 {
			v = s.amp * math.Sin(2*math.Pi*s.freq*float64(s.n+i)/sampleRate)
		} else if s.amp > 0 && s.freq < 0 { // noise at amp
			s.noise = s.noise*1664525 + 1013904223
			v = s.amp * (float64(int32(s.noise)) / float64(1<<31))
		}
		pcm[i] = int16(v)
	}
	s.n += n
	pkt := make([]byte, rtpHeaderLen+n)
	putRTPHeader(pkt, uint8(s.codec), false, s.seq, s.ts, s.ssrc)
	s.codec.law().encode(pkt[rtpHeaderLen:], pcm)
	s.seq++
	s.ts += n
	return pkt
}

// goertzel returns the power of freq in x relative to the total power (0..1).
func goertzel(x []int16, freq float64) float64 {
	if len(x) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / sampleRate
	c := 2 * math.Cos(w)
	var s1, s2, total float64
	for _, v := range x {
		f := float64(v)
		s0 := f + c*s1 - s2
		s2, s1 = s1, s0
		total += f * f
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	if total == 0 {
		return 0
	}
	return 2 * p / (float64(len(x)) * total)
}

// level is the RMS of x.
func level(x []int16) float64 {
	if len(x) == 0 {
		return 0
	}
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// hears reports whether x holds freq at an audible share of its power.
func hears(x []int16, freq float64) bool { return goertzel(x, freq) > 0.05 && level(x) > 300 }

func rtpFields(p []byte) (seq uint16, ts, ssrc uint32) {
	return binary.BigEndian.Uint16(p[2:]), binary.BigEndian.Uint32(p[4:]), binary.BigEndian.Uint32(p[8:])
}

var _ = time.Millisecond

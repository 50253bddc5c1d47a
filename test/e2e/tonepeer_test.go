package e2e

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TonePeer is a test RTP endpoint: it sends a G.711 tone of its own
// frequency and measures the power of chosen frequencies in what it hears.
// Frequencies should be multiples of 50 Hz (whole cycles per 20 ms frame).
type TonePeer struct {
	Freq float64
	Amp  float64 // linear amplitude sent (default toneAmplitude)
	// A rough network: each packet is dropped with probability Loss, or
	// delayed by a random 0..Jitter (which reorders packets).
	Loss   float64
	Jitter time.Duration

	PT uint8 // 0 PCMU, 8 PCMA
	// Seal and Open, when set, transform what is sent and received (SRTP
	// peers encrypt and decrypt with them); Open's false drops the packet.
	// Set them before Run.
	Seal    func(pkt []byte) []byte
	Open    func(pkt []byte) ([]byte, bool)
	conn    *net.UDPConn
	ssrc    uint32
	stop    chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex // guards the fields below
	power   map[float64]float64
	frames  int
	packets int
}

// toneAmplitude is the linear amplitude each peer sends at.
const toneAmplitude = 6000.0

// NewTonePeer binds a loopback UDP socket for a peer of tone freq.
func NewTonePeer(t testing.TB, freq float64, pt uint8) *TonePeer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &TonePeer{Freq: freq, Amp: toneAmplitude, PT: pt, conn: c, ssrc: uint32(freq*7919) ^ 0x5eed, stop: make(chan struct{}), power: map[float64]float64{}}
	t.Cleanup(p.Close)
	return p
}

// Addr is where the peer receives (its MediaTx address for the gateway).
func (p *TonePeer) Addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Port is Addr().Port() as an int.
func (p *TonePeer) Port() int { return int(p.Addr().Port()) }

// Run sends the tone to dst every 20 ms (when send is true) and listens for
// the given frequencies, until Close.
func (p *TonePeer) Run(dst netip.AddrPort, send bool, listen ...float64) {
	p.mu.Lock()
	for _, f := range listen {
		p.power[f] = 0
	}
	p.mu.Unlock()
	p.done.Add(2)
	go p.recvLoop()
	go func() {
		defer p.done.Done()
		if !send {
			<-p.stop
			return
		}
		p.sendLoop(dst)
	}()
}

func (p *TonePeer) sendLoop(dst netip.AddrPort) {
	pkt := make([]byte, 12+160)
	var seq uint16
	var ts uint32
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	n := 0
	rng := rand.New(rand.NewPCG(uint64(p.ssrc), 1))
	var late sync.WaitGroup
	defer late.Wait()
	for {
		pkt[0], pkt[1] = 0x80, p.PT
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], ts)
		binary.BigEndian.PutUint32(pkt[8:], p.ssrc)
		for i := 0; i < 160; i++ {
			s := int16(p.Amp * math.Sin(2*math.Pi*p.Freq*float64(n)/8000))
			pkt[12+i] = encode(p.PT, s)
			n++
		}
		out := pkt
		if p.Seal != nil {
			out = p.Seal(pkt)
		}
		switch {
		case p.Loss > 0 && rng.Float64() < p.Loss:
		case p.Jitter > 0:
			delayed := append([]byte(nil), out...)
			late.Add(1)
			time.AfterFunc(time.Duration(rng.Int64N(int64(p.Jitter))), func() {
				defer late.Done()
				_, _ = p.conn.WriteToUDPAddrPort(delayed, dst)
			})
		default:
			_, _ = p.conn.WriteToUDPAddrPort(out, dst)
		}
		seq++
		ts += 160
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
	}
}

func (p *TonePeer) recvLoop() {
	defer p.done.Done()
	buf := make([]byte, 2048)
	pcm := make([]float64, 0, 960)
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		_ = p.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-p.stop:
				return
			default:
				continue
			}
		}
		pkt := buf[:n]
		if p.Open != nil {
			var ok bool
			if pkt, ok = p.Open(pkt); !ok {
				continue
			}
		}
		if len(pkt) < 12 || pkt[0]>>6 != 2 {
			continue
		}
		pt := pkt[1] & 0x7f
		if pt != 0 && pt != 8 {
			continue
		}
		pcm = pcm[:0]
		for _, b := range pkt[12:] {
			pcm = append(pcm, float64(decode(pt, b)))
		}
		p.mu.Lock()
		p.packets++
		if len(pcm) >= 160 {
			p.frames++
			for f := range p.power {
				p.power[f] += goertzel(pcm[:160], f)
			}
		}
		p.mu.Unlock()
	}
}

// Reset forgets what was heard so far (e.g. after a membership change).
func (p *TonePeer) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for f := range p.power {
		p.power[f] = 0
	}
	p.frames, p.packets = 0, 0
}

// Heard returns the mean amplitude heard at f, and the packets received.
func (p *TonePeer) Heard(f float64) (amplitude float64, packets int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frames == 0 {
		return 0, p.packets
	}
	return math.Sqrt(p.power[f] / float64(p.frames)), p.packets
}

// Close stops the loops and the socket.
func (p *TonePeer) Close() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.done.Wait()
	_ = p.conn.Close()
}

// goertzel returns the squared amplitude of frequency f in x (8 kHz).
func goertzel(x []float64, f float64) float64 {
	w := 2 * math.Pi * f / 8000
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s0 := v + c*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - c*s1*s2
	n := float64(len(x))
	return 4 * p / (n * n)
}

// AssertHearing checks peer i hears exactly the frequencies in want among all.
func AssertHearing(t testing.TB, name string, p *TonePeer, all []float64, want map[float64]bool) {
	t.Helper()
	AssertHearingAt(t, name, p, all, want, toneAmplitude)
}

// AssertHearingAt is AssertHearing for tones sent at amplitude amp: heard
// means at least amp/4, not heard at most amp/20.
func AssertHearingAt(t testing.TB, name string, p *TonePeer, all []float64, want map[float64]bool, amp float64) {
	t.Helper()
	for _, f := range all {
		a, pk := p.Heard(f)
		switch {
		case want[f] && a < amp/4:
			t.Errorf("%s should hear %.0f Hz: amplitude %.0f (packets %d)", name, f, a, pk)
		case !want[f] && a > amp/20:
			t.Errorf("%s should not hear %.0f Hz: amplitude %.0f (packets %d)", name, f, a, pk)
		}
	}
}

// G.711 by the reference algorithms (ITU-T G.711), for the test peers only.
func encode(pt uint8, s int16) byte {
	if pt == 8 {
		return alawEncode(s)
	}
	return ulawEncode(s)
}

func decode(pt uint8, b byte) int16 {
	if pt == 8 {
		return alawDecode(b)
	}
	return ulawDecode(b)
}

func ulawEncode(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int(s)
	sign := 0
	if v < 0 {
		v, sign = -v, 0x80
	}
	if v > clip {
		v = clip
	}
	v += bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

func ulawDecode(b byte) int16 {
	b = ^b
	exp := int(b>>4) & 7
	mant := int(b & 0x0f)
	v := ((mant << 3) + 0x84) << exp
	v -= 0x84
	if b&0x80 != 0 {
		return int16(-v)
	}
	return int16(v)
}

func alawEncode(s int16) byte {
	v := int(s) >> 3
	sign := 0xD5
	if v < 0 {
		v, sign = -v-1, 0x55
	}
	var out int
	switch {
	case v < 32:
		out = v >> 1
	default:
		exp := 1
		for t := v >> 5; t > 1 && exp < 7; t >>= 1 {
			exp++
		}
		if v > 0xFFF {
			v = 0xFFF
			exp = 7
		}
		out = exp<<4 | (v>>exp)&0x0f
	}
	return byte(out) ^ byte(sign)
}

func alawDecode(b byte) int16 {
	b ^= 0x55
	exp := int(b>>4) & 7
	mant := int(b & 0x0f)
	var v int
	if exp == 0 {
		v = mant<<4 + 8
	} else {
		v = (mant<<4 + 0x108) << (exp - 1)
	}
	if b&0x80 != 0 {
		return int16(v)
	}
	return int16(-v)
}

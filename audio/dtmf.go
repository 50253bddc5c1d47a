package audio

import "math"

// DTMF (ITU-T Q.23) keys, generation and detection. Keys are RFC 4733
// event codes: 0-9, 10 '*', 11 '#', 12-15 'A'-'D'.

var (
	dtmfRows = [4]float64{697, 770, 852, 941}
	dtmfCols = [4]float64{1209, 1336, 1477, 1633}
	// dtmfCodes[row][col] is the RFC 4733 code of the key.
	dtmfCodes = [4][4]byte{{1, 2, 3, 12}, {4, 5, 6, 13}, {7, 8, 9, 14}, {10, 0, 11, 15}}
)

// Keys spells RFC 4733 codes 0..15.
const Keys = "0123456789*#ABCD"

// KeyCode is the RFC 4733 code of a key ('0'-'9', '*', '#', 'A'-'D',
// lower case too), or false.
func KeyCode(k byte) (byte, bool) {
	if k >= 'a' && k <= 'd' {
		k -= 'a' - 'A'
	}
	for i := range len(Keys) {
		if Keys[i] == k {
			return byte(i), true
		}
	}
	return 0, false
}

// DTMFFrequencies are the low and high frequency of code.
func DTMFFrequencies(code byte) (low, high float64, ok bool) {
	for r := range 4 {
		for c := range 4 {
			if dtmfCodes[r][c] == code {
				return dtmfRows[r], dtmfCols[c], true
			}
		}
	}
	return 0, 0, false
}

// DTMF generation levels: the high group 2 dB above the low (the usual
// pre-emphasis), both well inside Q.24's acceptance window.
const (
	DTMFLowLevel  = -8.0
	DTMFHighLevel = -6.0
)

// DTMFSource plays a string of keys as tones: each key on for On samples,
// then Off samples of silence. It implements the prompt-source contract:
// Read fills a frame and says whether anything is left.
type DTMFSource struct {
	codes   []byte
	on, off int
	i, pos  int
	tone    Tone
	lo, hi  float64 // levels of the low and high tone, dBm0
}

// NewDTMFSource plays codes (RFC 4733 codes) with onMs of tone and offMs of
// pause per key.
func NewDTMFSource(codes []byte, onMs, offMs int) *DTMFSource {
	return NewDTMFSourceLevel(codes, onMs, offMs, DTMFLowLevel)
}

// NewDTMFSourceLevel is NewDTMFSource with the low tone at level dBm0 and
// the high one 2 dB above it (at most 0 dBm0), as DTMF senders pre-twist.
func NewDTMFSourceLevel(codes []byte, onMs, offMs int, level float64) *DTMFSource {
	s := &DTMFSource{codes: append([]byte(nil), codes...), on: onMs * SampleRate / 1000, off: offMs * SampleRate / 1000,
		lo: level, hi: min(level+DTMFHighLevel-DTMFLowLevel, 0)}
	s.start()
	return s
}

func (s *DTMFSource) start() {
	if s.i < len(s.codes) {
		lo, hi, _ := DTMFFrequencies(s.codes[s.i])
		s.tone.Reset(lo, hi, s.lo, s.hi)
	}
}

// Read fills pcm; more is false once the last pause has been read.
func (s *DTMFSource) Read(pcm []int16) (more bool) {
	for n := 0; n < len(pcm); {
		if s.i >= len(s.codes) {
			clear(pcm[n:])
			return false
		}
		per := s.on + s.off
		take := min(len(pcm)-n, per-s.pos)
		if s.pos < s.on {
			take = min(take, s.on-s.pos)
			s.tone.Read(pcm[n : n+take])
		} else {
			clear(pcm[n : n+take])
		}
		s.pos += take
		n += take
		if s.pos >= per {
			s.i++
			s.pos = 0
			s.start()
		}
	}
	return s.i < len(s.codes)
}

// Detection, after the usual Goertzel design (as in spandsp and Asterisk):
// windows of 102 samples (12.75 ms), two banks staggered by half a window
// so a window ends every 51 samples. A window is a hit for a key when its
// row and column tones are each above the minimum level, each stands 8 dB
// over the other tones of its group, the twist is within +5/−9 dB (Q.24:
// +4/−8, plus the estimate's error), and the two tones carry most of the
// window's energy (speech and music spread theirs). A key is reported when
// four consecutive windows agree on it: a tone of 40 ms holds at least four
// whole windows and one of 20 ms at most two (Q.24's recognition and
// non-recognition times). It ends after five windows without it, which a
// 40 ms pause always gives and a 10 ms dropout never does.
const (
	dtmfBlock         = 102
	dtmfHop           = dtmfBlock / 2
	dtmfMinLevel      = -30.0 // dBm0 per tone
	dtmfRelPeak       = 6.3   // 8 dB
	dtmfNormalTwist   = 7.94  // row up to 9 dB above column
	dtmfReverseTwist  = 3.16  // column up to 5 dB above row
	dtmfToTotalEnergy = 0.6   // share of the window's energy in the two tones
	dtmfKeyWindows    = 4
	dtmfGapWindows    = 5
	noKey             = 0xff
)

// goertzelBank is one window's running filters.
type goertzelBank struct {
	s1, s2 [8]float32
	energy float32
	n      int
}

// DTMFDetector finds keys in a stream of 8 kHz frames of any length. It
// keeps its state across calls and allocates nothing.
type DTMFDetector struct {
	coef    [8]float32
	bank    [2]goertzelBank
	thr     float32
	quiet   float32 // mean power below which a frame cannot hold a key
	last    byte    // the previous window's hit
	run     int     // consecutive windows with that hit
	current byte    // the key being reported, noKey when none
	onDigit func(code byte)
}

// dtmfTemplate is a detector's constants, worked out once: a leg or
// member gets a detector at every (re)configuration.
var dtmfTemplate = func() DTMFDetector {
	var d DTMFDetector
	for i, f := range append(dtmfRows[:], dtmfCols[:]...) {
		d.coef[i] = float32(2 * math.Cos(2*math.Pi*f/SampleRate))
	}
	a := Amplitude(dtmfMinLevel) * dtmfBlock / 2
	d.thr = float32(a * a)
	amp := Amplitude(dtmfMinLevel)
	d.quiet = float32(amp * amp / 4) // both tones at the minimum level carry amp² of mean power
	return d
}()

// NewDTMFDetector calls onDigit once per key, when it starts.
func NewDTMFDetector(onDigit func(code byte)) *DTMFDetector {
	d := new(DTMFDetector)
	*d = dtmfTemplate
	d.onDigit = onDigit
	d.Reset()
	return d
}

// Reset forgets partial windows and any key in progress.
func (d *DTMFDetector) Reset() {
	d.bank[0] = goertzelBank{}
	d.bank[1] = goertzelBank{n: dtmfHop} // ends half a window after bank 0
	d.last, d.current, d.run = noKey, noKey, 0
}

// Process runs the detector over pcm. A frame too quiet to hold a key
// (most frames of most members: silence) costs one pass of squares and
// counts as windows without a key.
func (d *DTMFDetector) Process(pcm []int16) {
	if len(pcm) >= dtmfBlock {
		var e float32
		for _, v := range pcm {
			x := float32(v)
			e += x * x
		}
		if e < d.quiet*float32(len(pcm)) {
			d.bank[0] = goertzelBank{}
			d.bank[1] = goertzelBank{n: dtmfHop}
			if d.last != noKey {
				d.last, d.run = noKey, 0
			}
			d.run += len(pcm) / dtmfHop
			if d.run >= dtmfGapWindows {
				d.current = noKey
			}
			return
		}
	}
	for _, v := range pcm {
		x := float32(v)
		for b := range d.bank {
			g := &d.bank[b]
			g.energy += x * x
			for i := range d.coef {
				s := d.coef[i]*g.s1[i] - g.s2[i] + x
				g.s2[i], g.s1[i] = g.s1[i], s
			}
			g.n++
			if g.n == dtmfBlock {
				d.window(g)
			}
		}
	}
}

func (d *DTMFDetector) window(g *goertzelBank) {
	var p [8]float32
	for i := range p {
		p[i] = g.s1[i]*g.s1[i] + g.s2[i]*g.s2[i] - d.coef[i]*g.s1[i]*g.s2[i]
	}
	hit := byte(noKey)
	r, c := best(p[0:4]), best(p[4:8])
	pr, pc := p[r], p[4+c]
	if pr >= d.thr && pc >= d.thr &&
		pc < pr*dtmfReverseTwist && pc*dtmfNormalTwist > pr &&
		peaks(p[0:4], r) && peaks(p[4:8], c) &&
		pr+pc >= dtmfToTotalEnergy*g.energy*dtmfBlock/2 {
		hit = dtmfCodes[r][c]
	}
	*g = goertzelBank{}
	if hit == d.last {
		d.run++
	} else {
		d.last, d.run = hit, 1
	}
	need := dtmfKeyWindows
	if hit == noKey {
		need = dtmfGapWindows
	}
	if d.run >= need && hit != d.current {
		d.current = hit
		if hit != noKey && d.onDigit != nil {
			d.onDigit(hit)
		}
	}
}

func best(p []float32) int {
	b := 0
	for i := 1; i < len(p); i++ {
		if p[i] > p[b] {
			b = i
		}
	}
	return b
}

// peaks: p[b] stands dtmfRelPeak over every other tone of its group.
func peaks(p []float32, b int) bool {
	for i := range p {
		if i != b && p[i]*dtmfRelPeak > p[b] {
			return false
		}
	}
	return true
}

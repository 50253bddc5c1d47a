package audio

import "math"

// Levels are in dBm0 (ITU-T G.711): a sine at +3.17 dBm0 just reaches the
// µ-law full scale, so 0 dBm0 is a sine of peak 32767·10^(−3.17/20) ≈ 22,670.
const fullScaleDBm0 = 3.17

// Off is a level that means "no such tone".
const Off = -100.0

// Amplitude is the peak linear amplitude of a sine at level dBm0.
func Amplitude(dBm0 float64) float64 {
	if dBm0 <= Off {
		return 0
	}
	return 32767 * math.Pow(10, (dBm0-fullScaleDBm0)/20)
}

// LevelDBm0 is the level of a frame: its RMS as the dBm0 of a sine with
// that RMS (Off for digital silence).
func LevelDBm0(pcm []int16) float64 {
	if len(pcm) == 0 {
		return Off
	}
	var e float64
	for _, s := range pcm {
		e += float64(s) * float64(s)
	}
	if e == 0 {
		return Off
	}
	rms := math.Sqrt(e / float64(len(pcm)))
	return 20*math.Log10(rms*math.Sqrt2/32767) + fullScaleDBm0
}

// oscillator is a sine by rotation: two multiplies per sample, no table.
type oscillator struct {
	c, s   float64 // current phasor, scaled by the amplitude
	cw, sw float64 // per-sample rotation
	amp    float64
}

func newOscillator(freq, dBm0 float64) oscillator {
	w := 2 * math.Pi * freq / SampleRate
	a := Amplitude(dBm0)
	if freq <= 0 {
		a = 0
	}
	return oscillator{c: 0, s: a, cw: math.Cos(w), sw: math.Sin(w), amp: a} // starts at phase 0 (sine)
}

// next returns the next sample (the sine's value) and advances.
func (o *oscillator) next() float64 {
	v := o.c
	o.c, o.s = o.c*o.cw+o.s*o.sw, o.s*o.cw-o.c*o.sw
	return v
}

// renorm pulls the phasor back to its amplitude (rounding drift).
func (o *oscillator) renorm() {
	if o.amp == 0 {
		return
	}
	m := math.Hypot(o.c, o.s)
	if m > 0 {
		o.c, o.s = o.c*o.amp/m, o.s*o.amp/m
	}
}

// Tone is a continuous one- or two-frequency tone. Read fills frames; it
// never ends by itself (wrap it in a Limit for a duration).
type Tone struct {
	a, b oscillator
}

// NewTone makes a tone of f1 at l1 dBm0 plus f2 at l2 dBm0 (f2 0 or l2
// Off for a single frequency).
func NewTone(f1, f2, l1, l2 float64) *Tone {
	t := &Tone{}
	t.Reset(f1, f2, l1, l2)
	return t
}

// Reset restarts the tone with new frequencies and levels.
func (t *Tone) Reset(f1, f2, l1, l2 float64) {
	t.a, t.b = newOscillator(f1, l1), newOscillator(f2, l2)
}

// Read fills pcm with the next samples of the tone.
func (t *Tone) Read(pcm []int16) {
	for i := range pcm {
		v := t.a.next() + t.b.next()
		switch {
		case v > 32767:
			v = 32767
		case v < -32768:
			v = -32768
		}
		pcm[i] = int16(math.Round(v))
	}
	t.a.renorm()
	t.b.renorm()
}

package confbridge

import "math"

// Join and leave tones: two 100 ms notes, rising on join and falling on
// leave, at about −18 dBFS with 5 ms ramps so they do not click.
var (
	joinTone  = twoNotes(660, 880)
	leaveTone = twoNotes(880, 660)
)

func twoNotes(f1, f2 float64) []int16 {
	const (
		noteLen = sampleRate / 10
		ramp    = sampleRate / 200
		amp     = 4000
	)
	t := make([]int16, 0, 2*noteLen)
	for _, f := range []float64{f1, f2} {
		for i := 0; i < noteLen; i++ {
			g := 1.0
			if i < ramp {
				g = float64(i) / ramp
			} else if i >= noteLen-ramp {
				g = float64(noteLen-1-i) / ramp
			}
			t = append(t, int16(amp*g*math.Sin(2*math.Pi*f*float64(i)/sampleRate)))
		}
	}
	return t
}

// startTone plays t to the whole conference from the next tick (mu held).
func (b *Bridge) startTone(t []int16) {
	b.tone, b.tonePos = t, 0
}

// addTone adds this tick's slice of the tone to the sum (mu held) and
// returns the new number of contributors.
func (b *Bridge) addTone(sum []int32, nSum int) int {
	t := b.tone
	for i := range sum {
		var v int32
		if p := b.tonePos + i; p < len(t) {
			v = int32(t[p])
		}
		if nSum == 0 {
			sum[i] = v
		} else {
			sum[i] += v
		}
	}
	b.tonePos += len(sum)
	if b.tonePos >= len(t) {
		b.tone = nil
	}
	return nSum + 1
}

package audio

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keyTone synthesises one key: low and high frequencies (scaled by
// 1+offset), levels in dBm0, ms of tone, then ms of silence.
func keyTone(code byte, offset, lo, hi float64, onMs, offMs int) []int16 {
	fl, fh, _ := DTMFFrequencies(code)
	pcm := make([]int16, (onMs+offMs)*SampleRate/1000)
	NewTone(fl*(1+offset), fh*(1+offset), lo, hi).Read(pcm[:onMs*SampleRate/1000])
	return pcm
}

func detect(frames ...[]int16) string {
	var got []byte
	d := NewDTMFDetector(func(c byte) { got = append(got, Keys[c]) })
	for _, f := range frames {
		for len(f) > 0 { // in 20 ms frames, as the media path hands them
			n := min(160, len(f))
			d.Process(f[:n])
			f = f[n:]
		}
	}
	d.Process(make([]int16, 800))
	return string(got)
}

func TestDTMFEveryKey(t *testing.T) {
	var frames [][]int16
	for c := byte(0); c < 16; c++ {
		frames = append(frames, keyTone(c, 0, DTMFLowLevel, DTMFHighLevel, 60, 60))
	}
	if got := detect(frames...); got != Keys {
		t.Fatalf("got %q want %q", got, Keys)
	}
}

// The edges of the ITU-T Q.24 acceptance ranges (and of our rejection).
func TestDTMFQ24Edges(t *testing.T) {
	cases := []struct {
		name        string
		off, lo, hi float64
		on          int
		want        string
	}{
		{"nominal", 0, -8, -6, 50, "5"},
		{"weak -25 dBm0 per tone", 0, -25, -25, 50, "5"},
		{"too weak -36 dBm0", 0, -36, -36, 50, ""},
		{"hot 0 dBm0", 0, -3, -3, 50, "5"},
		{"normal twist 7.5 dB", 0, -6, -13.5, 50, "5"},
		{"reverse twist 3.5 dB", 0, -10, -6.5, 50, "5"},
		{"normal twist 11 dB", 0, -6, -17, 50, ""},
		{"reverse twist 7 dB", 0, -13, -6, 50, ""},
		{"+1.5% frequency", 0.015, -8, -6, 50, "5"},
		{"-1.5% frequency", -0.015, -8, -6, 50, "5"},
		{"40 ms", 0, -8, -6, 40, "5"},
		{"20 ms", 0, -8, -6, 20, ""},
	}
	for _, tc := range cases {
		// Several phases relative to the block grid.
		for lead := 0; lead < dtmfBlock; lead += 17 {
			got := detect(make([]int16, lead), keyTone(5, tc.off, tc.lo, tc.hi, tc.on, 60))
			if got != tc.want {
				t.Errorf("%s (lead %d): got %q want %q", tc.name, lead, got, tc.want)
				break
			}
		}
	}
}

// One key held long is one digit; the same key twice with a 40 ms pause
// is two; a 10 ms dropout inside a key does not split it.
func TestDTMFDurations(t *testing.T) {
	if got := detect(keyTone(1, 0, -8, -6, 2000, 0)); got != "1" {
		t.Errorf("long key: %q", got)
	}
	if got := detect(keyTone(1, 0, -8, -6, 60, 40), keyTone(1, 0, -8, -6, 60, 40)); got != "11" {
		t.Errorf("repeat: %q", got)
	}
	if got := detect(keyTone(9, 0, -8, -6, 60, 10), keyTone(9, 0, -8, -6, 60, 0)); got != "9" {
		t.Errorf("dropout: %q", got)
	}
}

func TestDTMFSourceHeardByDetector(t *testing.T) {
	codes := []byte{1, 2, 3, 10, 11, 0}
	src := NewDTMFSource(codes, 80, 60)
	var frames [][]int16
	for {
		f := make([]int16, 160)
		more := src.Read(f)
		frames = append(frames, f)
		if !more {
			break
		}
	}
	if got := detect(frames...); got != "123*#0" {
		t.Fatalf("got %q", got)
	}
	if n := len(frames) * 20; n < 6*140 || n > 6*140+20 {
		t.Fatalf("lasted %d ms, want %d", n, 6*140)
	}
}

// Zero false digits over the real speech of Debian's Asterisk prompts
// (asterisk-core-sounds-en-wav, installed by test/tools.sh).
func TestDTMFNoFalseDigitsOnSpeech(t *testing.T) {
	const dir = "/usr/share/asterisk/sounds/en_US_f_Allison"
	files, _ := filepath.Glob(filepath.Join(dir, "*.wav"))
	more, _ := filepath.Glob(filepath.Join(dir, "*", "*.wav"))
	files = append(files, more...)
	if len(files) < 100 {
		t.Fatalf("found %d prompts under %s: install asterisk-core-sounds-en-wav (test/tools.sh)", len(files), dir)
	}
	var seconds float64
	for _, f := range files {
		if strings.Contains(filepath.Base(f), "dtmf") { // prompts that are DTMF by design
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pcm, _, err := ParseWAV(b)
		if err != nil {
			continue // a few are not 8 kHz mono
		}
		seconds += float64(len(pcm)) / SampleRate
		if got := detect(pcm); got != "" {
			t.Errorf("%s: false digits %q", filepath.Base(f), got)
		}
	}
	t.Logf("%d prompts, %.0f s of speech", len(files), seconds)
	if seconds < 600 {
		t.Fatalf("only %.0f s of speech checked", seconds)
	}
}

func TestToneLevel(t *testing.T) {
	pcm := make([]int16, 8000)
	NewTone(1004, 0, -10, Off).Read(pcm)
	if l := LevelDBm0(pcm); math.Abs(l+10) > 0.1 {
		t.Fatalf("a -10 dBm0 tone measures %.2f dBm0", l)
	}
	NewTone(1004, 0, 0, Off).Read(pcm)
	if l := LevelDBm0(pcm); math.Abs(l) > 0.1 {
		t.Fatalf("a 0 dBm0 tone measures %.2f dBm0", l)
	}
}

func BenchmarkDTMFDetector20ms(b *testing.B) {
	d := NewDTMFDetector(func(byte) {})
	frame := keyTone(5, 0, -8, -6, 20, 0)
	b.ReportAllocs()
	for b.Loop() {
		d.Process(frame)
	}
}

func BenchmarkDTMFDetectorSilence20ms(b *testing.B) {
	d := NewDTMFDetector(func(byte) {})
	frame := make([]int16, 160)
	b.ReportAllocs()
	for b.Loop() {
		d.Process(frame)
	}
}

package audio

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWAVRoundTrip(t *testing.T) {
	pcm := make([]int16, 800)
	NewTone(1000, 0, -10, -99).Read(pcm)
	for _, enc := range []Encoding{PCM16, Ulaw, Alaw} {
		b := EncodeWAV(pcm, enc)
		got, genc, err := ParseWAV(b)
		if err != nil || genc != enc || len(got) != len(pcm) {
			t.Fatalf("%v: %d samples, %v, %v", enc, len(got), genc, err)
		}
		for i := range pcm {
			if e := abs(int(got[i]) - int(pcm[i])); (enc == PCM16 && e != 0) || e > 400 {
				t.Fatalf("%v: sample %d: %d vs %d", enc, i, got[i], pcm[i])
			}
		}
	}
}

// A recording's file is a valid WAV after every Sync: a crash loses at
// most what was written since.
func TestWAVWriterValidWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.wav")
	w, f, err := CreateWAV(path, Ulaw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	check := func(want int) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := ParseWAV(b)
		if err != nil || len(got) != want {
			t.Fatalf("after sync: %d samples (want %d), %v", len(got), want, err)
		}
	}
	check(0)
	frame := make([]int16, 160)
	for range 10 {
		if err := w.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	check(1600)
	if err := w.Write(frame); err != nil { // written, not yet synced: the file says 1600
		t.Fatal(err)
	}
	check(1600)
	w.Close()
	check(1760)
}

func TestWAVRefusals(t *testing.T) {
	mk := func(tag, ch uint16, rate uint32, bits uint16) []byte {
		b := EncodeWAV(make([]int16, 10), PCM16)
		b[20], b[21] = byte(tag), byte(tag>>8)
		b[22], b[23] = byte(ch), byte(ch>>8)
		b[24], b[25], b[26], b[27] = byte(rate), byte(rate>>8), byte(rate>>16), byte(rate>>24)
		b[34], b[35] = byte(bits), byte(bits>>8)
		return b
	}
	for name, b := range map[string][]byte{
		"stereo":   mk(1, 2, 8000, 16),
		"16 kHz":   mk(1, 1, 16000, 16),
		"8-bit":    mk(1, 1, 8000, 8),
		"gsm":      mk(49, 1, 8000, 0),
		"not riff": []byte("hello world, this is not a wav"),
		"empty":    nil,
	} {
		if _, _, err := ParseWAV(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(EncodeWAV(make([]int16, 20), PCM16))
	f.Add(EncodeWAV(make([]int16, 20), Alaw))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, enc, err := ParseWAV(b)
		if err != nil {
			return
		}
		// What parses re-encodes and parses to the same samples (PCM16 exactly).
		again, _, err := ParseWAV(EncodeWAV(pcm, PCM16))
		if err != nil || len(again) != len(pcm) {
			t.Fatalf("%v: re-encode: %v", enc, err)
		}
	})
}

// A recording cut by a crash (samples written after the last Sync, the
// header stale) is resumed at its real end: AppendWAV takes the size from
// the file, and what is written after it follows what was there. A file of
// another encoding, or not a WAV, is refused and left as it was.
func TestAppendWAV(t *testing.T) {
	for _, enc := range []Encoding{PCM16, Ulaw, Alaw} {
		path := filepath.Join(t.TempDir(), "r.wav")
		first, second, third := ramp(160, 0), ramp(320, 1000), ramp(80, -3000)
		w, f, err := CreateWAV(path, enc)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(first); err != nil {
			t.Fatal(err)
		}
		_ = w.Sync()
		_ = w.Write(second) // no Sync: the header still says len(first)
		f.Close()
		w, f, err = AppendWAV(path, enc)
		if err != nil {
			t.Fatalf("%v: %v", enc, err)
		}
		if err := w.Write(third); err != nil {
			t.Fatal(err)
		}
		_ = w.Close()
		f.Close()
		b, _ := os.ReadFile(path)
		pcm, got, err := ParseWAV(b)
		if err != nil || got != enc {
			t.Fatalf("%v: resumed file: %v %v", enc, got, err)
		}
		want := len(first) + len(second) + len(third)
		if len(pcm) != want {
			t.Fatalf("%v: %d samples, want %d", enc, len(pcm), want)
		}
		other := Ulaw
		if enc == Ulaw {
			other = Alaw
		}
		if _, _, err := AppendWAV(path, other); err == nil {
			t.Fatalf("%v file resumed as %v", enc, other)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
			t.Fatalf("%v: a refused resume changed the file", enc)
		}
	}
}

func ramp(n int, base int16) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = base + int16(i*7)
	}
	return s
}

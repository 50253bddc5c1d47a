package session

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediagw/mediagw/audio"
)

func writePrompt(t *testing.T, dir, name string, ms int, enc audio.Encoding) {
	t.Helper()
	pcm := make([]int16, ms*8)
	audio.NewTone(1000, 0, -10, audio.Off).Read(pcm)
	if err := os.WriteFile(filepath.Join(dir, name), audio.EncodeWAV(pcm, enc), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPlayLifecycle(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+1000, testPortMin+1039)
	dir := t.TempDir()
	f.cfg.Media.Dir = dir
	writePrompt(t, dir, "a.wav", 200, audio.PCM16)
	writePrompt(t, dir, "b.wav", 100, audio.Ulaw)
	os.WriteFile(filepath.Join(dir, "bad.wav"), []byte("RIFF....WAVEjunk"), 0o644)
	os.WriteFile(filepath.Join(t.TempDir(), "outside.wav"), audio.EncodeWAV(make([]int16, 8), audio.PCM16), 0o644)
	confID, ids := f.conference(t, "play", 3)

	// To the conference: both prompts in order, then eod.
	start := time.Now()
	op, err := f.Play("", confID, PlayParams{Prompts: []string{"a.wav", "b.wav"}, TermDigit: -1, State: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Play("", confID, PlayParams{Prompts: []string{"a.wav"}, TermDigit: -1}); ResultCode(err) != 14 {
		t.Fatalf("second play on the conference: %v", err)
	}
	r := f.nextOp(t)
	if r.OperationID != op || r.Action != "Play" || r.TerminationCondition != TermEOD || r.ConferenceID != confID || r.State != "s1" {
		t.Fatalf("%+v", r)
	}
	if el := time.Since(start); el < 280*time.Millisecond || el > 2*time.Second {
		t.Fatalf("300 ms of prompts ended after %v", el)
	}

	// To one member: a digit named by TermCondDigit stops it.
	op, err = f.Play(ids[0], "", PlayParams{Prompts: []string{"a.wav", "a.wav", "a.wav"}, TermDigit: 11})
	if err != nil {
		t.Fatal(err)
	}
	keys(t, f, ids[0], "1#")
	if r := f.nextOp(t); r.OperationID != op || r.TerminationCondition != TermDigit || r.ConnectionID != ids[0] {
		t.Fatalf("%+v", r)
	}

	// TermCondMaxTime, StopMediaOperation, and autostop before the release.
	op, _ = f.Play(ids[1], "", PlayParams{Prompts: []string{"a.wav", "a.wav", "a.wav", "a.wav"}, TermDigit: -1, MaxTime: 100 * time.Millisecond})
	if r := f.nextOp(t); r.OperationID != op || r.TerminationCondition != TermMaxTime {
		t.Fatalf("%+v", r)
	}
	op, _ = f.Play(ids[1], "", PlayParams{Prompts: []string{"a.wav"}, TermDigit: -1})
	if done, err := f.StopMediaOperation(ids[1], op); err != nil || len(done) != 1 || done[0].TerminationCondition != TermUserStop {
		t.Fatalf("%v %+v", err, done)
	}
	f.nextOp(t)
	op, _ = f.PlayTone(ids[2], "", ToneParams{Freq1: 350, Freq2: 440, Level1: -13, Level2: -13})
	opConf, _ := f.Play("", confID, PlayParams{Prompts: []string{"a.wav", "a.wav"}, TermDigit: -1})
	if _, err := f.DeleteConnection("", confID, Release{By: FrontHTTP}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for len(seen) < 2 {
		ev := <-f.events
		switch ev.Type {
		case OperationComplete:
			seen[ev.Op.OperationID] = ev.Op.TerminationCondition
		case ConnectionReleased:
			t.Fatalf("ConnectionReleased before the autostops (%v)", seen)
		}
	}
	if seen[op] != TermAutoStop || seen[opConf] != TermAutoStop {
		t.Fatalf("%v", seen)
	}

	// Refusals: a file outside media.dir or not a WAV we play is 27, a
	// missing one 30 (a connection outside any mixer borrows one: lent_test.go).
	_, ids = f.conference(t, "p2", 2)
	for name, code := range map[string]int{"../" + filepath.Base(filepath.Dir(dir)) + "/x.wav": 27, "/etc/passwd": 27, "bad.wav": 27, "missing.wav": 30} {
		if _, err := f.Play(ids[0], "", PlayParams{Prompts: []string{name}, TermDigit: -1}); ResultCode(err) != code {
			t.Errorf("%s: %v (want %d)", name, err, code)
		}
	}
	if _, err := f.SendDigits(ids[0], "12x", ""); ResultCode(err) != 27 {
		t.Errorf("bad digits: %v", err)
	}
	op, err = f.SendDigits(ids[0], "12#", "sd")
	if err != nil {
		t.Fatal(err)
	}
	if r := f.nextOp(t); r.OperationID != op || r.Action != "SendDigits" || r.TerminationCondition != TermEOD || r.State != "sd" {
		t.Fatalf("%+v", r)
	}
}

// conference.talk_threshold in dBm0 becomes the mixer's mean-absolute
// level: -40 dBm0 is about the 150 ConfBridge-like default; a config
// outside -70..0 is refused.
func TestTalkThresholdDBm0(t *testing.T) {
	c := DefaultConferenceConfig()
	if l := c.talkLevel(); l < 135 || l > 155 {
		t.Fatalf("-40 dBm0 -> %d", l)
	}
	c.TalkThreshold = -20
	if l := c.talkLevel(); l < 1350 || l > 1550 {
		t.Fatalf("-20 dBm0 -> %d", l)
	}
	c.TalkThreshold = 3
	if c.Validate() == nil {
		t.Fatal("+3 dBm0 accepted")
	}
}

// A cadence plays its steps in order for Repeat rounds, then ends; with a
// Duration it is cut there, whatever the round.
func TestToneCadence(t *testing.T) {
	src := newToneSource(ToneParams{Steps: []ToneStep{{Freq1: 350, Freq2: 440, Level: -13, Duration: 100 * time.Millisecond},
		{Duration: 100 * time.Millisecond}}, Repeat: 3})
	var levels []float64
	frame := make([]int16, 160)
	for more := true; more; {
		more = src.Read(frame)
		levels = append(levels, audio.LevelDBm0(frame))
	}
	if len(levels) != 30 {
		t.Fatalf("3 rounds of 200 ms took %d frames", len(levels))
	}
	for i, l := range levels {
		if on := i%10 < 5; on != (l > -20) {
			t.Fatalf("frame %d at %.1f dBm0 (on %v)", i, l, on)
		}
	}
	src = newToneSource(ToneParams{Steps: []ToneStep{{Freq1: 440, Level: -19, Duration: 2 * time.Second}, {Duration: 4 * time.Second}},
		Duration: 500 * time.Millisecond})
	n := 0
	for src.Read(frame) {
		n++
	}
	if n+1 != 25 {
		t.Fatalf("a 500 ms cut of a ringback cadence took %d frames", n+1)
	}
}

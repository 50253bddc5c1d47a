package session

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mediagw/mediagw/audio"
)

func TestRecord(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+1040, testPortMin+1079)
	dir, recDir := t.TempDir(), t.TempDir()
	f.cfg.Media.Dir, f.cfg.Media.RecordDir = dir, recDir
	writePrompt(t, dir, "tone.wav", 600, audio.PCM16)
	confID, ids := f.conference(t, "rec", 3)

	// The conference's mix, with a prompt played into it, until userstop.
	op, err := f.Record("", confID, RecordParams{Filename: "mix.wav", Encoding: audio.Alaw, TermDigit: -1, State: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Record("", confID, RecordParams{TermDigit: -1}); ResultCode(err) != 14 {
		t.Fatalf("second Record: %v", err)
	}
	play, _ := f.Play("", confID, PlayParams{Prompts: []string{"tone.wav"}, TermDigit: -1})
	if r := f.nextOp(t); r.OperationID != play {
		t.Fatalf("%+v", r)
	}
	time.Sleep(100 * time.Millisecond)
	if done, err := f.StopMediaOperation("", op); err != nil || len(done) != 1 {
		t.Fatalf("%v %v", err, done)
	}
	r := f.nextOp(t)
	if r.OperationID != op || r.Filename != "mix.wav" || r.TerminationCondition != TermUserStop || r.State != "r" || r.ResultCode != 0 {
		t.Fatalf("%+v", r)
	}
	var pcm []int16
	deadline := time.Now().Add(3 * time.Second)
	for { // the writer closes the file just after the stop
		b, _ := os.ReadFile(filepath.Join(recDir, "mix.wav"))
		if p, enc, err := audio.ParseWAV(b); err == nil && enc == audio.Alaw && len(p) >= 8000*6/10 {
			pcm = p
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mix.wav: %d bytes", len(b))
		}
		time.Sleep(20 * time.Millisecond)
	}
	loud := 0
	for i := 0; i+160 <= len(pcm); i += 160 {
		if audio.LevelDBm0(pcm[i:i+160]) > -15 {
			loud++
		}
	}
	if loud < 25 || loud > 32 { // 600 ms of prompt = 30 frames
		t.Fatalf("%d loud frames in %d samples, want about 30", loud, len(pcm))
	}

	// A silent member's recording ends by TermCondSilence; a file name that
	// leaves record_dir is 27.
	op, _ = f.Record(ids[0], "", RecordParams{Silence: 300 * time.Millisecond, TermDigit: -1})
	if r := f.nextOp(t); r.OperationID != op || r.TerminationCondition != TermSilence || r.Elapsed < 280*time.Millisecond {
		t.Fatalf("%+v", r)
	}
	for _, name := range []string{"../x.wav", "/tmp/x.wav", "a/b.wav", "x.mp3"} {
		if _, err := f.Record(ids[1], "", RecordParams{Filename: name, TermDigit: -1}); ResultCode(err) != 27 {
			t.Errorf("%s: %v", name, err)
		}
	}

	// An unwritable record_dir: Record_Failed, ResultCode 31; nothing stalls.
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, nil, 0o644)
	f.cfg.Media.RecordDir = filepath.Join(blocker, "sub")
	op, err = f.Record(ids[1], "", RecordParams{TermDigit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.nextOp(t); r.OperationID != op || r.ResultCode != 31 {
		t.Fatalf("%+v", r)
	}
	// Digits stop a recording; a release autostops one.
	f.cfg.Media.RecordDir = recDir
	op, _ = f.Record(ids[1], "", RecordParams{TermDigit: 11})
	keys(t, f, ids[1], "#")
	if r := f.nextOp(t); r.OperationID != op || r.TerminationCondition != TermDigit {
		t.Fatalf("%+v", r)
	}
	op, _ = f.Record(ids[2], "", RecordParams{TermDigit: -1})
	f.DeleteConnection(ids[2], "", Release{By: FrontHTTP})
	if r := f.nextOp(t); r.OperationID != op || r.TerminationCondition != TermAutoStop {
		t.Fatalf("%+v", r)
	}
	// Each end is counted by action and termination; bytes written too.
	for term, want := range map[string]float64{"failed": 1, TermDigit: 1, TermAutoStop: 1, TermSilence: 1} {
		if got := testutil.ToFloat64(f.met.opsTotal.WithLabelValues("Record", term)); got != want {
			t.Errorf("mediagw_media_operations_total{Record,%s} = %v, want %v", term, got, want)
		}
	}
	if b := testutil.ToFloat64(f.met.recBytes); b < 8000 {
		t.Errorf("mediagw_recording_bytes_total = %v after more than 0.5 s of recordings", b)
	}
}

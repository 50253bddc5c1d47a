package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// pyWAV is what Python's own wave module reads in a file: rate, channels,
// sample width and the samples (16-bit PCM), an independent parser of what
// we write.
type pyWAV struct {
	Rate, Channels, Width, Frames int
	Samples                       []int
}

func readWithPython(t *testing.T, path string) pyWAV {
	t.Helper()
	py := requireTool(t, "python3")
	const script = `import json, struct, sys, wave
w = wave.open(sys.argv[1], "rb")
n = w.getnframes()
data = w.readframes(n)
samples = list(struct.unpack("<%dh" % (len(data) // 2), data)) if w.getsampwidth() == 2 else []
print(json.dumps({"Rate": w.getframerate(), "Channels": w.getnchannels(), "Width": w.getsampwidth(), "Frames": n, "Samples": samples}))`
	out, err := exec.Command(py, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("python's wave cannot read %s: %v\n%s", path, err, tail(string(out), 10))
	}
	var w pyWAV
	if err := json.Unmarshal(out, &w); err != nil {
		t.Fatal(err)
	}
	return w
}

// Three tone-tagged talkers recorded as a conference for 3 s: Python's
// wave module reads the file, it lasts 3 s (±60 ms) and holds all three
// tones. A recording cut by SIGKILL still reads, with the audio up to its
// last header patch (one a second).
func TestRecordThreeTalkers(t *testing.T) {
	recDir := t.TempDir()
	g := StartGateway(t, GatewayOptions{ExtraYAML: "media: {record_dir: " + strconv.Quote(recDir) + "}\n"})
	events := followEvents(t, g)
	tones := []float64{440, 1000, 1800}
	var ids []string
	for _, f := range tones {
		p := NewTonePeer(t, f, 0)
		res := g.MustAction(t, "CreateConnection", map[string]any{"MediaTxIP": "127.0.0.1", "MediaTxPort": p.Port(), "MediaTxCodec": "PCMU"})
		ids = append(ids, res["ConnectionId"])
		p.Run(rxAddr(t, res), true)
	}
	g.MustAction(t, "CreateConference", map[string]any{"ConnectionId": ids[0], "ConferenceId": "rec3"})
	for _, id := range ids[1:] {
		g.MustAction(t, "JoinConference", map[string]any{"ConnectionId": id, "ConferenceId": "rec3"})
	}
	time.Sleep(300 * time.Millisecond)
	op := g.MustAction(t, "Record", map[string]any{"ConferenceId": "rec3", "Filename": "three.wav", "TermCondMaxTime": 3000})["OperationId"]
	if d := waitEvent(t, events, "Record_Complete", op, 10*time.Second); d["TerminationCondition"] != "maxtime" {
		t.Fatalf("Record_Complete %v", d)
	}
	time.Sleep(200 * time.Millisecond) // the writer's last header patch
	w := readWithPython(t, filepath.Join(recDir, "three.wav"))
	if w.Rate != 8000 || w.Channels != 1 || w.Width != 2 {
		t.Fatalf("three.wav: %d Hz, %d channels, %d bytes a sample", w.Rate, w.Channels, w.Width)
	}
	if d := time.Duration(w.Frames) * time.Second / 8000; d < 2940*time.Millisecond || d > 3060*time.Millisecond {
		t.Fatalf("three.wav lasts %v, want 3 s ± 60 ms", d)
	}
	x := make([]float64, len(w.Samples))
	for i, v := range w.Samples {
		x[i] = float64(v)
	}
	for _, f := range tones {
		if a := goertzel(x[8000:16000], f); a < 1e4 {
			t.Errorf("three.wav: %.0f Hz at power %.0f, want all three talkers", f, a)
		}
	}
	if a := goertzel(x[8000:16000], 1400); a > 1e4 {
		t.Errorf("three.wav: 1400 Hz (nobody) at power %.0f", a)
	}

	// Killed mid-recording: the file still reads.
	g.MustAction(t, "Record", map[string]any{"ConferenceId": "rec3", "Filename": "killed.wav"})
	time.Sleep(2500 * time.Millisecond)
	g.Kill()
	if _, err := os.Stat(filepath.Join(recDir, "killed.wav")); err != nil {
		t.Fatal(err)
	}
	k := readWithPython(t, filepath.Join(recDir, "killed.wav"))
	if d := time.Duration(k.Frames) * time.Second / 8000; d < 900*time.Millisecond || d > 2600*time.Millisecond {
		t.Fatalf("killed.wav reads as %v of a 2.5 s recording (headers are patched every second)", d)
	}
}

package main

import (
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func stepLine(i int, label string, offered, loss float64, p99 int) string {
	return fmt.Sprintf("step=%d label=%s offered_pps=%.0f sent_pps=%.0f recv_pps=%.0f loss_pct=%.4f late=0 dup=0 reord=0 "+
		"p50_us=40 p99_us=%d max_us=900 silent=0/1000 sut_cpu_pct=50.0 cpu_s_per_mpkt=2.650 gen_cpu_pct=60.0 "+
		"sut_core_busy_pct=55.0 gen_drops=0 sut_drops=0 verdict=ok\n", i, label, offered, offered, offered*(1-loss/100), loss, p99)
}

func writeRun(t *testing.T, dir, system string, knee float64) {
	t.Helper()
	var ramp strings.Builder
	ramp.WriteString("setup_calls=1000 setup_s=0.50 streams=1000\n")
	ramp.WriteString(stepLine(0, "warmup", 10000, 0, 100))
	for i, r := 1, 10000.0; r < knee*1.5; i, r = i+1, r*1.15 {
		loss, p99 := 0.0, 200
		if r > knee {
			loss, p99 = 5+r/knee, 60000
		}
		ramp.WriteString(stepLine(i, "step", r, loss, p99))
	}
	ramp.WriteString("result_knee_pps=" + fmt.Sprint(knee) + "\n")
	over := stepLine(0, "warmup", 10000, 0, 100) + stepLine(1, "step", knee*1.2, 3, 40000) + stepLine(2, "recover", 10000, 0, 100)
	for name, text := range map[string]string{"ramp": ramp.String(), "overload": over} {
		if err := os.WriteFile(filepath.Join(dir, system+"-relay-"+name+".txt"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseRelay(t *testing.T) {
	steps, err := parseRelay(strings.NewReader("noise\n" + stepLine(3, "step", 123456, 0.05, 777) + "result_limit=x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 || steps[0].offered != 123456 || steps[0].lossPct != 0.05 || steps[0].p99us != 777 || steps[0].label != "step" {
		t.Fatalf("parsed %+v", steps)
	}
	if _, err := parseRelay(strings.NewReader("step=1 label=step offered_pps=abc\n")); err == nil {
		t.Fatal("a bad number parsed")
	}
}

func TestParseConference(t *testing.T) {
	text := `# conference capacity: 10 members per conference
#   legs  confs     late%     loss%  jit_p99ms  jit_maxms   cpu_us/m·s  gw_cpu%  audio_ok
     500     50    0.0000    0.0000       0.40       1.20       210.00     10.5     1.000 pass
    1000    100    0.5000    0.0000       3.40       9.20       215.00     21.5     1.000 FAIL
    1000    100    0.0000    0.0000       0.40       1.20       205.00     20.5     1.000 pass (retry)
    1500    150    2.0000    0.1000       8.40      19.20       230.00     34.5     0.900 FAIL
conference_legs_per_core=1000
# no-mixing ceiling (-mode relay): the same legs as two-party relays
#   legs  confs     late%     loss%  jit_p99ms  jit_maxms   cpu_us/m·s  gw_cpu%  audio_ok
     500    250    0.0000    0.0000       0.40       1.20       190.00      9.5     1.000 pass
    1000    500    0.0000    0.9000       0.40       1.20       190.00      9.5     1.000 FAIL
# generator ceiling (-mode loop): the same legs phone to phone, no gateway
     500    250    0.0000    0.0000       0.40       1.20         0.00      0.0     1.000 pass
`
	modes, err := parseConference(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if r := modes[modeRelay]; len(r) != 2 || !r[0].pass || r[1].pass || r[1].lossPct != 0.9 {
		t.Fatalf("relay steps %+v", r)
	}
	if g := modes[modeLoop]; len(g) != 1 || g[0].confs != 250 {
		t.Fatalf("loop steps %+v", g)
	}
	steps := modes[modeConference]
	if len(steps) != 3 {
		t.Fatalf("%d steps, want 3 (the retry replaces its step): %+v", len(steps), steps)
	}
	if s := steps[1]; s.legs != 1000 || !s.pass || s.cpuPerMemberSec != 205 {
		t.Fatalf("the retried step: %+v", s)
	}
	if steps[2].pass || steps[2].latePct != 2 {
		t.Fatalf("the failed step: %+v", steps[2])
	}
}

func TestPlotsArePNGs(t *testing.T) {
	run, out := t.TempDir(), t.TempDir()
	writeRun(t, run, "mediagw", 300000)
	writeRun(t, run, "rtpengine", 250000)
	writeRun(t, run, "osmo-mgw", 90000)
	files, err := plotRelay(run, out)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(run, "result.txt")
	if err := os.WriteFile(conf, []byte("  500 50 0 0 0.4 1.2 210 10.5 1.000 pass\n 1000 100 1 0 3 9 230 21 1.000 FAIL\n"+
		"# no-mixing ceiling (-mode relay)\n  500 250 0 0 0.4 1.2 180 9 1.000 pass\n 1000 500 0 2 3 9 190 19 1.000 FAIL\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	more, err := plotConference(conf, out)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, more...) {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if b := img.Bounds(); b.Dx() < 600 || b.Dy() < 500 {
			t.Errorf("%s: %v is too small", f, b)
		}
	}
	if _, err := plotRelay(t.TempDir(), out); err == nil {
		t.Error("an empty run folder plotted")
	}
}

package main

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/bench/internal/loadstat"
)

func TestJudge(t *testing.T) {
	l := limits{maxLoss: 0.001, maxP99: 50 * time.Millisecond, minSent: 0.97, maxGenDrop: 0.0005}
	full := stepStats{offered: 1000, sent: 8000, duration: 8 * time.Second}
	good := loadstat.StepResult{Sent: 8000, Received: 7999, Lost: 1, LossRatio: 1.0 / 8000, P99us: 49999, Streams: 10}
	tests := map[string]struct {
		r     loadstat.StepResult
		st    stepStats
		drops uint64
		want  string
	}{
		"ok":                  {good, full, 0, whyOK},
		"loss at limit":       {withLoss(good, 8), full, 0, whyLoss},
		"loss below limit":    {withLoss(good, 7), full, 0, whyOK},
		"p99 at limit":        {withP99(good, 50000), full, 0, whyLatency},
		"generator slow":      {good, stepStats{offered: 1000, sent: 7700, duration: 8 * time.Second}, 0, whyGenSend},
		"generator dropped":   {withLoss(good, 100), full, 5, whyGenRecv},
		"silent stream":       {withSilent(good), full, 0, whySilent},
		"nothing sent":        {good, stepStats{offered: 1000, duration: time.Second}, 0, whyNoPacket},
		"generator first":     {withLoss(good, 4000), stepStats{offered: 1000, sent: 100, duration: time.Second}, 0, whyGenSend},
		"small gen drop fine": {good, full, 4, whyOK},
	}
	for name, tc := range tests {
		if got := judge(tc.r, tc.st, tc.drops, l); got != tc.want {
			t.Errorf("%s: judge = %s, want %s", name, got, tc.want)
		}
	}
}

func withLoss(r loadstat.StepResult, lost uint64) loadstat.StepResult {
	r.Lost, r.Received = lost, r.Sent-lost
	r.LossRatio = float64(lost) / float64(r.Sent)
	return r
}
func withP99(r loadstat.StepResult, us uint64) loadstat.StepResult { r.P99us = us; return r }
func withSilent(r loadstat.StepResult) loadstat.StepResult         { r.SilentStreams = 1; return r }

func TestParseRates(t *testing.T) {
	got, err := parseRates("50k, 1500,2.5k")
	if err != nil || len(got) != 3 || got[0] != 50000 || got[1] != 1500 || got[2] != 2500 {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "-5", "0", "5kk"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if lo, hi, err := parsePortRange("40000-47999"); err != nil || lo != 40000 || hi != 47999 {
		t.Errorf("port range %d-%d %v", lo, hi, err)
	}
	if _, _, err := parsePortRange("5-1"); err == nil {
		t.Error("inverted range accepted")
	}
}

func TestSummarizeKnee(t *testing.T) {
	mk := func(label string, rate float64, why string) stepLine {
		return stepLine{label: label, why: why, st: stepStats{offered: rate, sent: uint64(rate), duration: time.Second},
			res: loadstat.StepResult{Sent: uint64(rate), Received: uint64(rate)}, sutCPU: 100 * time.Millisecond, wall: time.Second}
	}
	var b bytes.Buffer
	summarize(&b, []stepLine{mk("warmup", 10, whyLatency), mk("step", 10, whyOK), mk("step", 20, whyGenSend),
		mk("retry", 20, whyOK), mk("step", 30, whyLoss), mk("retry", 30, whyLoss), mk("step", 40, whyOK),
		mk("recover", 10, whySilent)})
	out := b.String()
	for _, want := range []string{"result_knee_pps=20\n", "result_limit=sut_loss\n", "result_last_offered_pps=40\n",
		"result_recover_pps=10\n", "result_knee_cpu_s_per_mpkt=5000.000\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

// TestLoopRelay runs the generator against itself (no SUT) at a low rate:
// every packet sent must be accounted as received, none lost or late.
func TestLoopRelay(t *testing.T) {
	var b bytes.Buffer
	o := relayOpts{driver: "loop", calls: 20, bidir: true, rates: []float64{2000, 4000}, warmup: 100 * time.Millisecond,
		step: 300 * time.Millisecond, drain: 100 * time.Millisecond, stopOnFail: true, sutCore: -1, sutHi: -1,
		limits: limits{maxLoss: 0.001, maxP99: time.Hour, minSent: 0.5, maxGenDrop: 0.5}}
	o.localA, o.localB = mustAP("127.0.0.1:59051"), mustAP("127.0.0.1:59052")
	o.recoverRate = 1000
	if err := relay(t.Context(), o, &b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"result_knee_pps=4000\n", "result_limit=none\n", "result_recover_silent=0\n", "result_invalid=0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "verdict=sut_") {
		t.Errorf("loop run judged against the SUT:\n%s", out)
	}
}

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

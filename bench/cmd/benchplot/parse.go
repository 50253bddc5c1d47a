package main

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// relayStep is one step line of bench/cmd/rtpload relay.
type relayStep struct {
	label         string
	offered, recv float64 // packets per second
	lossPct       float64
	p99us         float64
	verdict       string
}

// parseRelay reads the step lines ("step=N label=... offered_pps=...") of
// an rtpload relay output; other lines are skipped.
func parseRelay(r io.Reader) ([]relayStep, error) {
	var steps []relayStep
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.HasPrefix(line, "step=") {
			continue
		}
		kv := map[string]string{}
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
		var s relayStep
		var err error
		num := func(key string) float64 {
			if err != nil {
				return 0
			}
			v, e := strconv.ParseFloat(kv[key], 64)
			if e != nil {
				err = fmt.Errorf("line %d: %s=%q: %v", n, key, kv[key], e)
			}
			return v
		}
		s.offered, s.recv, s.lossPct, s.p99us = num("offered_pps"), num("recv_pps"), num("loss_pct"), num("p99_us")
		if err != nil {
			return nil, err
		}
		s.label, s.verdict = kv["label"], kv["verdict"]
		steps = append(steps, s)
	}
	return steps, sc.Err()
}

// confStep is one step line of bench/conference.
type confStep struct {
	legs, confs     int
	latePct         float64
	lossPct         float64
	cpuPerMemberSec float64 // µs of gateway CPU per member-second
	gwCPUPct        float64
	pass            bool
}

// Conference run modes, as bench/conference's table headers name them.
const (
	modeConference = "conference" // "# conference capacity: ..."
	modeRelay      = "relay"      // "# no-mixing ceiling (-mode relay): ..."
	modeLoop       = "loop"       // "# generator ceiling (-mode loop): ..."
)

// parseConference reads the step tables of bench/conference: lines of
// "legs confs late% loss% jit_p99ms jit_maxms cpu_us/m·s gw_cpu% audio_ok verdict",
// each table under a header that names its mode (lines before any header
// are a conference's). A step measured twice (a retry) keeps its last line.
func parseConference(r io.Reader) (map[string][]confStep, error) {
	byMode := map[string]map[int]confStep{}
	mode := modeConference
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "# conference capacity"):
			mode = modeConference
		case strings.HasPrefix(line, "# no-mixing ceiling"):
			mode = modeRelay
		case strings.HasPrefix(line, "# generator ceiling"):
			mode = modeLoop
		}
		f := strings.Fields(line)
		if len(f) < 10 || strings.HasPrefix(f[0], "#") {
			continue
		}
		legs, err := strconv.Atoi(f[0])
		if err != nil {
			continue // not a step line
		}
		vals := make([]float64, 8)
		for i := range vals {
			if vals[i], err = strconv.ParseFloat(f[1+i], 64); err != nil {
				return nil, fmt.Errorf("line %d: column %d %q: %v", n, 2+i, f[1+i], err)
			}
		}
		if byMode[mode] == nil {
			byMode[mode] = map[int]confStep{}
		}
		byMode[mode][legs] = confStep{legs: legs, confs: int(vals[0]), latePct: vals[1], lossPct: vals[2],
			cpuPerMemberSec: vals[5], gwCPUPct: vals[6], pass: strings.HasPrefix(f[9], "pass")}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := map[string][]confStep{}
	for m, steps := range byMode {
		for _, s := range steps {
			out[m] = append(out[m], s)
		}
		sort.Slice(out[m], func(i, j int) bool { return out[m][i].legs < out[m][j].legs })
	}
	return out, nil
}

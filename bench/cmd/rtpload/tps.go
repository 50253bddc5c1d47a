package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mediagw/mediagw/bench/internal/driver"
	"github.com/mediagw/mediagw/bench/internal/procstat"
)

type tpsOpts struct {
	ctl, ctlLocal, wildcard string
	conc                    []int
	dur                     time.Duration
	pid                     int
}

func tpsMain(args []string) error {
	fs := flag.NewFlagSet("mgcptps", flag.ExitOnError)
	var o tpsOpts
	fs.StringVar(&o.ctl, "ctl", "", "SUT MGCP address, host:port")
	fs.StringVar(&o.ctlLocal, "ctl-local", "127.0.0.1:59003", "local address of the call agent socket")
	fs.StringVar(&o.wildcard, "wildcard", "rtpbridge/*@mgw", "endpoint of each CRCX")
	conc := fs.String("conc", "4,16,64", "transaction pairs in flight; a list runs each in turn and reports the best")
	fs.DurationVar(&o.dur, "dur", 5*time.Second, "measuring time")
	fs.IntVar(&o.pid, "pid", 0, "SUT process id, for its CPU time")
	_ = fs.Parse(args)
	for _, f := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("bad -conc %q", *conc)
		}
		o.conc = append(o.conc, n)
	}
	l, err := newTPSLoop(o)
	if err != nil {
		return err
	}
	defer l.Close()
	var best tpsResult
	for _, n := range o.conc {
		r := tps(l, n, o, os.Stdout)
		if r.fail == 0 && r.pairsPerS > best.pairsPerS {
			best = r
		}
	}
	fmt.Fprintf(os.Stdout, "result_best_pairs_per_s=%.0f\nresult_best_conc=%d\nresult_best_pair_p99_us=%d\nresult_best_sut_cpu_pct=%.1f\n",
		best.pairsPerS, best.conc, best.p99, best.sutCPU)
	return nil
}

// tpsResult is one closed-loop run at one concurrency.
type tpsResult struct {
	conc      int
	ok, fail  uint64
	pairsPerS float64
	p99       uint64
	sutCPU    float64 // percent of one core
}

// tps runs closed-loop CRCX+DLCX pairs: conc in flight, each creating a
// recvonly connection on the wildcard endpoint (no SDP) and deleting it
// (endpoint from Z:, call and connection ID), for dur; the pairs in flight
// then finish. A pair counts only if CRCX got 200 and DLCX 250 (or 200).
func tps(l *tpsLoop, conc int, o tpsOpts, w io.Writer) tpsResult {
	var cpu0 time.Duration
	if o.pid > 0 {
		cpu0, _ = procstat.CPU(o.pid)
	}
	self0, _ := procstat.CPU(0)
	res, el := l.run(conc)
	var cpu1 time.Duration
	if o.pid > 0 {
		cpu1, _ = procstat.CPU(o.pid)
	}
	self1, _ := procstat.CPU(0)
	res.sutCPU = 100 * (cpu1 - cpu0).Seconds() / el.Seconds()
	fmt.Fprintf(w, "conc=%d pairs=%d pairs_per_s=%.0f failures=%d retransmits=%d stray=%d pair_p50_us=%d pair_p99_us=%d sut_cpu_pct=%.1f driver_cpu_pct=%.1f",
		conc, res.ok, res.pairsPerS, res.fail, l.retrans, l.stray,
		l.hist.Quantile(0.5), res.p99, res.sutCPU, 100*(self1-self0).Seconds()/el.Seconds())
	keys := make([]string, 0, len(l.codes))
	for k := range l.codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, " %s=%d", k, l.codes[k])
	}
	fmt.Fprintln(w)
	return res
}

func failCode(verb string, r *driver.MGCPResponse, err error) string {
	if err != nil {
		return verb + "_error"
	}
	return fmt.Sprintf("%s_%d", verb, r.Code)
}

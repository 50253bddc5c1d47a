package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/bench/internal/driver"
	"github.com/mediagw/mediagw/bench/internal/loadstat"
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
	c, err := driver.DialMGCP(o.ctlLocal, o.ctl)
	if err != nil {
		return err
	}
	defer c.Close()
	var best tpsResult
	for _, n := range o.conc {
		r := tps(context.Background(), c, n, o, os.Stdout)
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

// tps runs closed-loop CRCX+DLCX pairs: conc workers, each creating a
// recvonly connection on the wildcard endpoint (no SDP) and deleting it
// (endpoint from Z:, call and connection ID), for dur. A pair counts only if
// CRCX got 200 and DLCX 250 (or 200).
func tps(ctx context.Context, c *driver.MGCPClient, conc int, o tpsOpts, w io.Writer) tpsResult {
	type result struct {
		ok, fail uint64
		hist     loadstat.Histogram // pair time, µs
		codes    map[string]uint64
	}
	results := make([]result, conc)
	var cpu0 time.Duration
	if o.pid > 0 {
		cpu0, _ = procstat.CPU(o.pid)
	}
	self0, _ := procstat.CPU(0)
	r0, s0 := c.Stats()
	start := time.Now()
	deadline := start.Add(o.dur)
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := &results[i]
			r.codes = map[string]uint64{}
			for n := 0; time.Now().Before(deadline); n++ {
				t := time.Now()
				callID := fmt.Sprintf("t%x-%x-%x", os.Getpid(), i, n)
				cr, err := c.Do(ctx, "CRCX", o.wildcard, []string{"C: " + callID, "L: p:20, a:PCMU", "M: recvonly"}, "")
				if err != nil || cr.Code != 200 || cr.Param("Z") == "" {
					r.fail++
					r.codes[failCode("CRCX", cr, err)]++
					continue
				}
				dr, err := c.Do(ctx, "DLCX", cr.Param("Z"), []string{"C: " + callID, "I: " + cr.Param("I")}, "")
				if err != nil || (dr.Code != 250 && dr.Code != 200) {
					r.fail++
					r.codes[failCode("DLCX", dr, err)]++
					continue
				}
				r.ok++
				r.hist.Record(uint64(time.Since(t).Microseconds()))
			}
		}(i)
	}
	wg.Wait()
	el := time.Since(start)
	var cpu1 time.Duration
	if o.pid > 0 {
		cpu1, _ = procstat.CPU(o.pid)
	}
	self1, _ := procstat.CPU(0)
	var total result
	total.codes = map[string]uint64{}
	for i := range results {
		total.ok += results[i].ok
		total.fail += results[i].fail
		total.hist.Merge(&results[i].hist)
		for k, v := range results[i].codes {
			total.codes[k] += v
		}
	}
	retrans, stray := c.Stats()
	res := tpsResult{conc: conc, ok: total.ok, fail: total.fail, pairsPerS: float64(total.ok) / el.Seconds(),
		p99: total.hist.Quantile(0.99), sutCPU: 100 * (cpu1 - cpu0).Seconds() / el.Seconds()}
	fmt.Fprintf(w, "conc=%d pairs=%d pairs_per_s=%.0f failures=%d retransmits=%d stray=%d pair_p50_us=%d pair_p99_us=%d sut_cpu_pct=%.1f driver_cpu_pct=%.1f",
		conc, total.ok, res.pairsPerS, total.fail, retrans-r0, stray-s0,
		total.hist.Quantile(0.5), res.p99, res.sutCPU, 100*(self1-self0).Seconds()/el.Seconds())
	for k, v := range total.codes {
		fmt.Fprintf(w, " %s=%d", k, v)
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

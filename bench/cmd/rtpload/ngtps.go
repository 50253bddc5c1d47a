package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/bench/internal/driver"
	"github.com/mediagw/mediagw/bench/internal/loadstat"
	"github.com/mediagw/mediagw/bench/internal/procstat"
)

type ngOpts struct {
	ctl, ctlLocal string
	load          int
	conc          []int
	dur           time.Duration
	pid           int
}

// ngtpsMain measures ng call setups: with -load calls set up and kept (as a
// relay with calls in progress has them), closed-loop workers run
// offer+answer+delete cycles for -dur at each concurrency.
func ngtpsMain(args []string) error {
	fs := flag.NewFlagSet("ngtps", flag.ExitOnError)
	var o ngOpts
	fs.StringVar(&o.ctl, "ctl", "", "SUT ng address, host:port")
	fs.StringVar(&o.ctlLocal, "ctl-local", "127.0.0.1:59003", "local address of the ng client socket")
	fs.IntVar(&o.load, "load", 1000, "calls set up before measuring and kept until the end")
	conc := fs.String("conc", "4,16,64", "cycles in flight; a list runs each in turn and reports the best")
	fs.DurationVar(&o.dur, "dur", 5*time.Second, "measuring time per concurrency")
	fs.IntVar(&o.pid, "pid", 0, "SUT process id, for its CPU time")
	_ = fs.Parse(args)
	for _, f := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("bad -conc %q", *conc)
		}
		o.conc = append(o.conc, n)
	}
	c, err := driver.DialNG(o.ctlLocal, o.ctl)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := context.Background()
	prefix := fmt.Sprintf("n%x-", os.Getpid())
	// Loaded calls: offer + answer each, kept.
	t0 := time.Now()
	for i := 0; i < o.load; i++ {
		if err := ngSetup(ctx, c, fmt.Sprintf("%sL%d", prefix, i), i); err != nil {
			return fmt.Errorf("loading call %d: %w", i, err)
		}
	}
	fmt.Fprintf(os.Stdout, "loaded_calls=%d load_s=%.2f\n", o.load, time.Since(t0).Seconds())
	var best ngResult
	for _, n := range o.conc {
		r := ngtps(ctx, c, n, o, prefix, os.Stdout)
		if r.fail == 0 && r.cyclesPerS > best.cyclesPerS {
			best = r
		}
	}
	fmt.Fprintf(os.Stdout, "result_best_cycles_per_s=%.0f\nresult_best_conc=%d\nresult_best_cycle_p99_us=%d\nresult_best_sut_cpu_pct=%.1f\n",
		best.cyclesPerS, best.conc, best.p99, best.sutCPU)
	return nil
}

// ngSetup offers A's SDP and answers with B's (addresses only named: no
// RTP is sent in this measurement).
func ngSetup(ctx context.Context, c *driver.NGClient, callID string, n int) error {
	a := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(20000+2*(n%10000)))
	b := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(40000+2*(n%10000)))
	replace := []string{"origin", "session-connection"}
	if _, err := c.Do(ctx, map[string]any{"command": "offer", "call-id": callID, "from-tag": "a",
		"sdp": driver.SDP(a, n), "replace": replace}); err != nil {
		return err
	}
	_, err := c.Do(ctx, map[string]any{"command": "answer", "call-id": callID, "from-tag": "a", "to-tag": "b",
		"sdp": driver.SDP(b, n), "replace": replace})
	return err
}

type ngResult struct {
	conc       int
	ok, fail   uint64
	cyclesPerS float64
	p99        uint64
	sutCPU     float64
}

func ngtps(ctx context.Context, c *driver.NGClient, conc int, o ngOpts, prefix string, w io.Writer) ngResult {
	type result struct {
		ok, fail uint64
		hist     loadstat.Histogram
	}
	results := make([]result, conc)
	var cpu0 time.Duration
	if o.pid > 0 {
		cpu0, _ = procstat.CPU(o.pid)
	}
	start := time.Now()
	deadline := start.Add(o.dur)
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := &results[i]
			for n := 0; time.Now().Before(deadline); n++ {
				t := time.Now()
				callID := fmt.Sprintf("%sc%d-%x-%x", prefix, conc, i, n)
				err := ngSetup(ctx, c, callID, n)
				if err == nil {
					// Delete at once on both systems (rtpengine's default delays 30 s).
					_, err = c.Do(ctx, map[string]any{"command": "delete", "call-id": callID, "from-tag": "a", "delete delay": 0})
				}
				if err != nil {
					r.fail++
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
	var total result
	for i := range results {
		total.ok += results[i].ok
		total.fail += results[i].fail
		total.hist.Merge(&results[i].hist)
	}
	res := ngResult{conc: conc, ok: total.ok, fail: total.fail, cyclesPerS: float64(total.ok) / el.Seconds(),
		p99: total.hist.Quantile(0.99), sutCPU: 100 * (cpu1 - cpu0).Seconds() / el.Seconds()}
	fmt.Fprintf(w, "conc=%d cycles=%d cycles_per_s=%.0f failures=%d cycle_p50_us=%d cycle_p99_us=%d sut_cpu_pct=%.1f\n",
		conc, total.ok, res.cyclesPerS, total.fail, total.hist.Quantile(0.5), res.p99, res.sutCPU)
	return res
}

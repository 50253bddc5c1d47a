package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/bench/internal/driver"
	"github.com/mediagw/mediagw/bench/internal/loadstat"
	"github.com/mediagw/mediagw/bench/internal/procstat"
)

type relayOpts struct {
	driver, ctl, ctlLocal, wildcard string
	localA, localB                  netip.AddrPort
	calls                           int
	bidir                           bool
	rates                           []float64
	recoverRate, warmupRate         float64
	warmup, step, drain             time.Duration
	stopOnFail                      bool
	retries                         int
	pid, sutCore                    int
	sutLo, sutHi                    int
	limits                          limits
}

// limits decide whether a step was "loss-free".
type limits struct {
	maxLoss    float64       // loss ratio, e.g. 0.001
	maxP99     time.Duration // added latency
	minSent    float64       // achieved/offered below this: the generator could not send
	maxGenDrop float64       // generator socket drops / sent above this: the generator could not receive
}

// Verdicts; the first that applies names why a step failed.
const (
	whyOK       = "ok"
	whyGenSend  = "generator_send"
	whyGenRecv  = "generator_recv"
	whyLoss     = "sut_loss"
	whyLatency  = "sut_latency"
	whySilent   = "sut_silent_streams"
	whyNoPacket = "nothing_sent"
)

// judge says whether a step was loss-free and, if not, what limited it. The
// generator's own limits are checked first: a step the generator could not
// drive says nothing about the SUT.
func judge(r loadstat.StepResult, st stepStats, genDrops uint64, l limits) string {
	switch {
	case st.sent == 0:
		return whyNoPacket
	case float64(st.sent) < l.minSent*st.offered*st.duration.Seconds():
		return whyGenSend
	case float64(genDrops) > l.maxGenDrop*float64(st.sent):
		return whyGenRecv
	case r.LossRatio >= l.maxLoss:
		return whyLoss
	case time.Duration(r.P99us)*time.Microsecond >= l.maxP99:
		return whyLatency
	case r.SilentStreams > 0:
		return whySilent
	}
	return whyOK
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mult := 1.0
		if strings.HasSuffix(f, "k") {
			mult, f = 1000, strings.TrimSuffix(f, "k")
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad rate %q", f)
		}
		out = append(out, v*mult)
	}
	if len(out) == 0 {
		return nil, errors.New("no rates")
	}
	return out, nil
}

func parsePortRange(s string) (lo, hi int, err error) {
	if s == "" {
		return 0, -1, nil
	}
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo > hi {
		return 0, 0, fmt.Errorf("bad port range %q", s)
	}
	return lo, hi, nil
}

func relayMain(args []string) error {
	fs := flag.NewFlagSet("relay", flag.ExitOnError)
	var o relayOpts
	var rates, recoverRate, warmupRate, la, lb, sutPorts string
	fs.StringVar(&o.driver, "driver", "loop", "control driver: mgcp, rtpengine, or loop (no SUT: the generator's ceiling)")
	fs.StringVar(&o.ctl, "ctl", "", "SUT control address (MGCP or ng), host:port")
	fs.StringVar(&o.ctlLocal, "ctl-local", "127.0.0.1:59003", "local address of the control socket")
	fs.StringVar(&o.wildcard, "wildcard", "rtpbridge/*@mgw", "MGCP endpoint of the first CRCX of a call")
	fs.StringVar(&la, "a", "127.0.0.1:59001", "generator side A address (sends A→B streams)")
	fs.StringVar(&lb, "b", "127.0.0.1:59002", "generator side B address (receives them)")
	fs.IntVar(&o.calls, "calls", 1000, "calls to set up")
	fs.BoolVar(&o.bidir, "bidir", false, "send both directions of every call")
	fs.StringVar(&rates, "rates", "50k", "offered total rates in packets/s, in order, e.g. 50k,100k")
	fs.StringVar(&recoverRate, "recover", "", "after the last step, a recovery step at this rate (pps): streams silent in it stopped for good")
	fs.StringVar(&warmupRate, "warmup-rate", "", "rate of the warmup (default: the first of -rates)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warmup duration (not judged)")
	fs.DurationVar(&o.step, "step", 8*time.Second, "duration of each step")
	fs.DurationVar(&o.drain, "drain", time.Second, "receive-only pause after each step before it is judged")
	fs.BoolVar(&o.stopOnFail, "stop-on-fail", true, "stop stepping up after the first step that is not loss-free")
	fs.IntVar(&o.retries, "retry", 1, "run a step that is not loss-free again, up to this many times (a busy shared machine can spoil one step)")
	fs.IntVar(&o.pid, "pid", 0, "SUT process id, for its CPU time (0: not measured)")
	fs.IntVar(&o.sutCore, "sut-core", -1, "CPU the SUT is pinned to, for that core's busy share from /proc/stat (-1: not measured)")
	fs.StringVar(&sutPorts, "sut-ports", "", "SUT RTP port range lo-hi, for its socket drops from /proc/net/udp")
	fs.Float64Var(&o.limits.maxLoss, "max-loss", 0.001, "loss ratio at or above which a step is not loss-free")
	fs.DurationVar(&o.limits.maxP99, "max-p99", 50*time.Millisecond, "p99 added latency at or above which a step is not loss-free")
	_ = fs.Parse(args)
	o.limits.minSent, o.limits.maxGenDrop = 0.97, 0.0005
	var err error
	if o.rates, err = parseRates(rates); err != nil {
		return err
	}
	if warmupRate != "" {
		r, err := parseRates(warmupRate)
		if err != nil || len(r) != 1 {
			return fmt.Errorf("bad -warmup-rate %q", warmupRate)
		}
		o.warmupRate = r[0]
	}
	if recoverRate != "" {
		r, err := parseRates(recoverRate)
		if err != nil || len(r) != 1 {
			return fmt.Errorf("bad -recover %q", recoverRate)
		}
		o.recoverRate = r[0]
	}
	if o.localA, err = netip.ParseAddrPort(la); err != nil {
		return err
	}
	if o.localB, err = netip.ParseAddrPort(lb); err != nil {
		return err
	}
	if o.sutLo, o.sutHi, err = parsePortRange(sutPorts); err != nil {
		return err
	}
	if o.calls <= 0 {
		return errors.New("-calls must be positive")
	}
	return relay(context.Background(), o, os.Stdout)
}

func newDriver(o relayOpts) (driver.Driver, error) {
	prefix := fmt.Sprintf("rl%d-", os.Getpid())
	switch o.driver {
	case "loop":
		return driver.Loop{}, nil
	case "mgcp":
		c, err := driver.DialMGCP(o.ctlLocal, o.ctl)
		if err != nil {
			return nil, err
		}
		return &driver.MGCP{Client: c, Wildcard: o.wildcard, Prefix: prefix}, nil
	case "rtpengine":
		c, err := driver.DialNG(o.ctlLocal, o.ctl)
		if err != nil {
			return nil, err
		}
		return &driver.RTPengine{Client: c, Prefix: prefix}, nil
	}
	return nil, fmt.Errorf("unknown driver %q", o.driver)
}

// setupCalls sets up n calls with a few in flight at once.
func setupCalls(ctx context.Context, d driver.Driver, n int, a, b netip.AddrPort) ([]driver.Call, error) {
	calls := make([]driver.Call, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				calls[i], errs[i] = d.Setup(ctx, i, a, b)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	var good []driver.Call
	var first error
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if first == nil {
				first = fmt.Errorf("call %d: %w", i, err)
			}
			continue
		}
		good = append(good, calls[i])
	}
	if first != nil {
		return good, fmt.Errorf("%d of %d calls failed to set up, first: %w", failed, n, first)
	}
	return good, nil
}

func teardownCalls(ctx context.Context, d driver.Driver, calls []driver.Call) (failed int) {
	var mu sync.Mutex // guards failed
	var wg sync.WaitGroup
	next := make(chan driver.Call)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				if err := d.Teardown(ctx, c); err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		}()
	}
	for _, c := range calls {
		next <- c
	}
	close(next)
	wg.Wait()
	return failed
}

// stepLine is one judged step, as printed.
type stepLine struct {
	idx      int
	label    string
	st       stepStats
	res      loadstat.StepResult
	sutCPU   time.Duration
	genCPU   time.Duration
	wall     time.Duration
	genDrop  uint64
	sutDrop  uint64
	coreBusy float64 // share of the SUT's core busy (any process, softirq included); -1 unknown
	why      string
}

func (s stepLine) recvPPS() float64 { return float64(s.res.Received) / s.st.duration.Seconds() }

func (s stepLine) cpuPerMpkt() float64 {
	if s.res.Received == 0 {
		return 0
	}
	return s.sutCPU.Seconds() / (float64(s.res.Received) / 1e6)
}

func (s stepLine) print(w io.Writer) {
	r := s.res
	fmt.Fprintf(w, "step=%d label=%s offered_pps=%.0f sent_pps=%.0f recv_pps=%.0f loss_pct=%.4f late=%d dup=%d reord=%d "+
		"p50_us=%d p99_us=%d max_us=%d silent=%d/%d sut_cpu_pct=%.1f cpu_s_per_mpkt=%.3f gen_cpu_pct=%.1f "+
		"sut_core_busy_pct=%.1f gen_drops=%d sut_drops=%d verdict=%s\n",
		s.idx, s.label, s.st.offered, float64(s.st.sent)/s.st.duration.Seconds(), s.recvPPS(), 100*r.LossRatio,
		r.Late, r.Dup, r.Reordered, r.P50us, r.P99us, r.MaxUs, r.SilentStreams, r.Streams,
		100*s.sutCPU.Seconds()/s.wall.Seconds(), s.cpuPerMpkt(), 100*s.genCPU.Seconds()/s.wall.Seconds(),
		100*s.coreBusy, s.genDrop, s.sutDrop, s.why)
}

func relay(ctx context.Context, o relayOpts, w io.Writer) error {
	nStreams := o.calls
	if o.bidir {
		nStreams *= 2
	}
	type plan struct {
		label string
		rate  float64
		dur   time.Duration
	}
	wr := o.warmupRate
	if wr <= 0 {
		wr = o.rates[0]
	}
	steps := []plan{{"warmup", wr, o.warmup}}
	for _, r := range o.rates {
		steps = append(steps, plan{"step", r, o.step})
	}
	if o.recoverRate > 0 {
		steps = append(steps, plan{"recover", o.recoverRate, o.step})
	}
	var pkts float64
	for _, p := range steps {
		pkts += p.rate * p.dur.Seconds()
	}
	expectSeq := int(pkts/float64(nStreams)*1.05*float64(1+o.retries)) + 64

	g := &gen{epoch: time.Now(), sentBy: make([]uint32, nStreams)}
	for i, addr := range []netip.AddrPort{o.localA, o.localB} {
		s, err := newSide(addr, nStreams, len(steps)+len(o.rates)*o.retries, expectSeq)
		if err != nil {
			return fmt.Errorf("generator socket %v: %w", addr, err)
		}
		defer s.conn.Close()
		g.sides[i] = s
	}
	d, err := newDriver(o)
	if err != nil {
		return err
	}
	defer d.Close()

	t0 := time.Now()
	calls, err := setupCalls(ctx, d, o.calls, o.localA, o.localB)
	defer func() {
		tctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		fmt.Fprintf(w, "result_teardown_failures=%d\n", teardownCalls(tctx, d, calls))
	}()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "setup_calls=%d setup_s=%.2f streams=%d\n", len(calls), time.Since(t0).Seconds(), nStreams)
	for _, c := range calls {
		g.streams = append(g.streams, stream{sock: 0, dst: net.UDPAddrFromAddrPort(c.AToB)})
		if o.bidir {
			g.streams = append(g.streams, stream{sock: 1, dst: net.UDPAddrFromAddrPort(c.BToA)})
		}
	}

	genPorts := [2]int{int(o.localA.Port()), int(o.localB.Port())}
	drops := func(lo, hi int) uint64 {
		if hi < lo {
			return 0
		}
		n, _ := procstat.UDPDrops(lo, hi)
		return n
	}
	cpu := func(pid int) time.Duration {
		if pid < 0 {
			return 0
		}
		c, _ := procstat.CPU(pid)
		return c
	}
	sutPid := o.pid
	if sutPid == 0 {
		sutPid = -1
	}

	var lines []stepLine
	failed := false
	retried := 0
	for i := 0; i < len(steps); i++ {
		p := steps[i]
		if failed && (p.label == "step" || p.label == "retry") {
			continue
		}
		sc0, gc0, t := cpu(sutPid), cpu(0), time.Now()
		cb0, ct0, cerr := procstat.CoreTimes(o.sutCore)
		gd0 := drops(genPorts[0], genPorts[0]) + drops(genPorts[1], genPorts[1])
		sd0 := drops(o.sutLo, o.sutHi)
		st := g.run(uint32(i), p.rate, p.dur)
		end := g.now()
		for _, s := range g.sides {
			s.tr.SetStepEnd(i, end)
		}
		g.drain(o.drain)
		l := stepLine{idx: i, label: p.label, st: st, sutCPU: cpu(sutPid) - sc0, genCPU: cpu(0) - gc0, wall: time.Since(t),
			genDrop: drops(genPorts[0], genPorts[0]) + drops(genPorts[1], genPorts[1]) - gd0,
			sutDrop: drops(o.sutLo, o.sutHi) - sd0,
			res:     loadstat.Summarize(i, g.sentBy, g.sides[0].tr, g.sides[1].tr)}
		l.coreBusy = -0.01
		if cb1, ct1, err := procstat.CoreTimes(o.sutCore); err == nil && cerr == nil && ct1 > ct0 {
			l.coreBusy = float64(cb1-cb0) / float64(ct1-ct0)
		}
		l.why = judge(l.res, st, l.genDrop, o.limits)
		l.print(w)
		lines = append(lines, l)
		if (p.label == "step" || p.label == "retry") && l.why != whyOK {
			if retried < o.retries {
				retried++
				steps = slices.Insert(steps, i+1, plan{"retry", p.rate, p.dur})
				continue
			}
			failed = o.stopOnFail
		}
		retried = 0
	}
	summarize(w, lines)
	fmt.Fprintf(w, "result_send_errors=%d result_junk=%d result_invalid=%d\n", g.sendErr,
		g.sides[0].junk+g.sides[1].junk, g.sides[0].tr.Invalid()+g.sides[1].tr.Invalid())
	return nil
}

// summarize prints the result_ lines: the knee (highest loss-free rate
// before the first step that was not), why the ramp stopped, and the last
// and recovery steps. Of a step and its retries, the last attempt counts.
func summarize(w io.Writer, lines []stepLine) {
	var knee *stepLine
	limit := "none"
	var last *stepLine
	for i := range lines {
		l := &lines[i]
		if l.label != "step" && l.label != "retry" {
			continue
		}
		if i+1 < len(lines) && lines[i+1].label == "retry" {
			continue // the retry that follows decides this rate
		}
		last = l
		if limit != "none" {
			continue
		}
		if l.why == whyOK {
			knee = l
		} else {
			limit = l.why
		}
	}
	if knee != nil {
		fmt.Fprintf(w, "result_knee_pps=%.0f\nresult_knee_recv_pps=%.0f\nresult_knee_cpu_s_per_mpkt=%.3f\nresult_knee_p50_us=%d\nresult_knee_p99_us=%d\nresult_knee_sut_cpu_pct=%.1f\nresult_knee_sut_core_busy_pct=%.1f\n",
			knee.st.offered, knee.recvPPS(), knee.cpuPerMpkt(), knee.res.P50us, knee.res.P99us,
			100*knee.sutCPU.Seconds()/knee.wall.Seconds(), 100*knee.coreBusy)
	} else {
		fmt.Fprintln(w, "result_knee_pps=0")
	}
	fmt.Fprintf(w, "result_limit=%s\n", limit)
	if last != nil {
		fmt.Fprintf(w, "result_last_offered_pps=%.0f\nresult_last_recv_pps=%.0f\nresult_last_loss_pct=%.4f\nresult_last_p99_us=%d\nresult_last_silent=%d\n",
			last.st.offered, last.recvPPS(), 100*last.res.LossRatio, last.res.P99us, last.res.SilentStreams)
	}
	for _, l := range lines {
		if l.label == "recover" {
			fmt.Fprintf(w, "result_recover_pps=%.0f\nresult_recover_loss_pct=%.4f\nresult_recover_silent=%d\n",
				l.st.offered, 100*l.res.LossRatio, l.res.SilentStreams)
		}
	}
}

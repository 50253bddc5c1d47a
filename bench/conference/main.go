// Command conference is the load program of the conference capacity
// benchmark (bench/conference/run.sh). It creates K conferences of M members
// through the gateway's HTTP control API, plays every member as an RTP phone
// over loopback (a few talkers with tones per conference, the rest sending
// silence, as phones without VAD do), and measures in real time: late mixer
// ticks (from /metrics), mixed packets missing at the phones, inter-arrival
// jitter of the mixed streams (kernel receive timestamps), gateway CPU per
// member-second (/proc/PID/stat), and whether listeners hear every talker.
// It steps the number of legs up until a step fails, then measures one
// 200-member conference for tick jitter.
//
// Two more modes give the machine's ceilings in the same run (issue 17):
// -mode relay plays the same legs as two-party relays through the gateway
// (MGCP rtpbridge, the same packets in and out per leg, no mixing), and
// -mode loop plays them phone to phone without the gateway (what the
// phones themselves can drive).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediagw/mediagw/audio"
	"github.com/mediagw/mediagw/bench/internal/driver"
)

var (
	httpAddr  = flag.String("http", "127.0.0.1:59080", "gateway HTTP control address")
	gwPID     = flag.Int("gw-pid", 0, "gateway process ID (for CPU time)")
	members   = flag.Int("members", 10, "members per conference in the capacity steps")
	talkers   = flag.Int("talkers", 3, "talkers per conference")
	stepsFlag = flag.String("steps", "500,1000,1500,2000,2250,2500,2750,3000,3250,3500,4000,4500,5000,6000,7000,8000,10000,12000,14000,16000", "total legs per step, until one fails")
	warmup    = flag.Duration("warmup", 3*time.Second, "time before measuring a step")
	measure   = flag.Duration("measure", 8*time.Second, "measuring time per step")
	bigConf   = flag.Int("big", 200, "members of the single conference measured for tick jitter (0 skips)")
	sockBase  = flag.Int("port", 50000, "first local UDP port of the phones")
	nSockets  = flag.Int("sockets", 8, "phone-side UDP sockets")
	lateMax   = flag.Float64("late-max", 0.001, "largest late-tick ratio of a passing step")
	lossMax   = flag.Float64("loss-max", 0.001, "largest mixed-packet loss ratio of a passing step")
	verbose   = flag.Bool("v", false, "print diagnostics to stderr")
	play      = flag.Bool("play", false, "play a tone (PlayTone, 2600 Hz at -30 dBm0) into every conference for the whole run (PLAY=1)")
	mode      = flag.String("mode", "conference", "conference (mixed), relay (two-party relays through the gateway's MGCP rtpbridge, no mixing) or loop (phone to phone, no gateway)")
	mgcpAddr  = flag.String("mgcp", "127.0.0.1:59427", "gateway MGCP address (-mode relay)")
)

const (
	ptime       = 20 * time.Millisecond
	frame       = 160
	phases      = 10 // the phones' send times are spread over the period
	histStep    = 10 * time.Microsecond
	histBuckets = 5001 // 0–50 ms
)

var toneFreqs = []float64{440, 770, 1230, 1630, 2050}

type leg struct {
	conf   int
	sock   int
	codec  byte // 0 PCMU, 8 PCMA
	talker int  // tone index, -1 when silent
	listen bool // analysed: should hear every talker of its conference
	connID string
	rx     netip.AddrPort
	ssrc   uint32
	seq    uint16
	ts     uint32

	// receive side, owned by the socket's receiver (under its mu)
	haveLast bool
	lastSeq  uint16
	lastAt   int64
	got      atomic.Uint64
	lost     atomic.Uint64
	frames   int    // analysed frames
	heard    [5]int // frames in which each tone was heard
}

// conference is one group of legs: a conference, or in the relay and loop
// modes one two-party call.
type conference struct {
	id   string
	legs []*leg
	call driver.Call // -mode relay: the rtpbridge endpoint to DLCX
}

type phoneSocket struct {
	c    *net.UDPConn
	addr netip.AddrPort
	mu   sync.Mutex // guards the receive state of legs on this socket and hist
	legs []*leg
	hist [histBuckets]uint64
	// port → leg on this socket (the gateway's leg port is the source)
	byPort map[uint16]*leg
	// -mode loop: the sender's SSRC → the leg on this socket it plays to
	bySSRC map[uint32]*leg
}

type load struct {
	client   *http.Client
	mgcp     *driver.MGCP // -mode relay
	socks    []*phoneSocket
	mu       sync.Mutex // guards confs and legs (the sender takes a snapshot)
	confs    []*conference
	analyse  atomic.Bool
	legsSnap atomic.Pointer[[]*leg]
	tones    [5][2][50][frame]byte // tone, law, frame of a 1 s loop
	silence  [2][frame]byte
	decode   [2][256]int16
	nextSSRC uint32
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "conference bench:", err)
		os.Exit(1)
	}
}

func run() error {
	l := &load{client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	l.initAudio()
	for i := 0; i < *nSockets; i++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: *sockBase + i})
		if err != nil {
			return err
		}
		s := &phoneSocket{c: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort(), byPort: map[uint16]*leg{}, bySSRC: map[uint32]*leg{}}
		l.socks = append(l.socks, s)
		go func() { _ = recvLoop(c, l.receiver(s)) }()
	}
	add := l.addConference
	switch *mode {
	case "conference":
	case "relay", "loop":
		if *mode == "relay" {
			c, err := driver.DialMGCP("127.0.0.1:0", *mgcpAddr)
			if err != nil {
				return err
			}
			defer c.Close()
			l.mgcp = &driver.MGCP{Client: c, Wildcard: "rtpbridge/$@mgw", Prefix: fmt.Sprintf("cb%x-", time.Now().UnixNano()&0xffffff)}
		}
		add = l.addPairs
		*play = false
	default:
		return fmt.Errorf("bad -mode %q", *mode)
	}
	empty := []*leg{}
	l.legsSnap.Store(&empty)
	stop := make(chan struct{})
	go l.sender(stop)
	defer close(stop)

	var steps []int
	for _, f := range strings.Split(*stepsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("bad -steps %q", *stepsFlag)
		}
		steps = append(steps, n)
	}
	playing := ""
	if *play {
		playing = ", a PlayTone into every conference"
	}
	switch *mode {
	case "relay":
		fmt.Printf("# no-mixing ceiling (-mode relay): the same legs as two-party relays through the gateway (MGCP rtpbridge, PCMU), every leg talking, ptime 20 ms, %v warm-up, %v measured per step; delay%% = packets 10 ms or more off their 20 ms spacing (the mixer's late-tick bound)\n",
			*warmup, *measure)
	case "loop":
		fmt.Printf("# generator ceiling (-mode loop): the same legs phone to phone, no gateway, ptime 20 ms, %v warm-up, %v measured per step; delay%% as above\n",
			*warmup, *measure)
	default:
		fmt.Printf("# conference capacity: %d members per conference, %d talkers each%s, ptime 20 ms, %v warm-up, %v measured per step\n",
			*members, *talkers, playing, *warmup, *measure)
	}
	lateCol := "late%"
	if *mode != "conference" {
		lateCol = "delay%" // packets >= 10 ms off their spacing
	}
	fmt.Printf("# %6s %6s %9s %9s %10s %10s %12s %8s %9s\n", "legs", "confs", lateCol, "loss%", "jit_p99ms", "jit_maxms", "cpu_us/m·s", "gw_cpu%", "audio_ok")
	best := 0
	for _, target := range steps {
		for l.legCount() < target {
			if err := add(*members, *talkers); err != nil {
				return fmt.Errorf("setting up %d legs: %w", target, err)
			}
		}
		// A step that fails is measured once more: on a shared machine a
		// burst of someone else's work can spoil one window.
		var ok bool
		for try := 0; try < 2 && !ok; try++ {
			r, err := l.step()
			if err != nil {
				return err
			}
			late := r.late // the mixer's late ticks; without a mixer, the packets delayed as much
			if *mode != "conference" {
				late = r.delayed
			}
			ok = late <= *lateMax && r.loss <= *lossMax && r.audioOK == 1
			verdict := passFail(ok)
			if try > 0 {
				verdict += " (retry)"
			}
			fmt.Printf("  %6d %6d %9.4f %9.4f %10.2f %10.2f %12.2f %8.1f %9.3f %s\n", l.legCount(), len(l.confs),
				100*late, 100*r.loss, ms(r.jitP99), ms(r.jitMax), r.cpuPerMemberSec*1e6, 100*r.cpu, r.audioOK, verdict)
		}
		if !ok {
			break
		}
		best = l.legCount()
	}
	if best > 0 && best >= steps[len(steps)-1] {
		fmt.Printf("# the ladder ended without a failing step: the capacity is at least %d legs\n", best)
	}
	if err := l.deleteAll(); err != nil {
		return err
	}
	switch *mode {
	case "relay":
		fmt.Printf("conference_relay_legs_per_core=%d\n", best)
		return nil
	case "loop":
		fmt.Printf("conference_generator_legs=%d\n", best)
		return nil
	}
	jitter := math.NaN()
	if *bigConf > 0 {
		time.Sleep(time.Second)
		if err := l.addConference(*bigConf, *talkers); err != nil {
			return err
		}
		r, err := l.step()
		if err != nil {
			return err
		}
		jitter = ms(r.jitP99)
		fmt.Printf("# one conference of %d members: late %.4f%%, loss %.4f%%, tick jitter p99 %.3f ms (max %.2f ms), gateway CPU %.1f%%, audio_ok %.3f\n",
			*bigConf, 100*r.late, 100*r.loss, jitter, ms(r.jitMax), 100*r.cpu, r.audioOK)
		if err := l.deleteAll(); err != nil {
			return err
		}
	}
	fmt.Printf("conference_legs_per_core=%d\n", best)
	fmt.Printf("conference_tick_jitter_p99_ms=%.3f\n", jitter)
	return nil
}

func passFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// --- audio -----------------------------------------------------------------

func (l *load) initAudio() {
	for c := 0; c < 256; c++ {
		l.decode[0][c] = audio.UlawDecode(byte(c))
		l.decode[1][c] = audio.AlawDecode(byte(c))
	}
	for law := 0; law < 2; law++ {
		enc := [2]func(int16) byte{audio.UlawEncode, audio.AlawEncode}[law]
		for i := range l.silence[law] {
			l.silence[law][i] = enc(0)
		}
		for t, f := range toneFreqs {
			for fr := 0; fr < 50; fr++ {
				for i := 0; i < frame; i++ {
					n := fr*frame + i
					l.tones[t][law][fr][i] = enc(int16(6000 * math.Sin(2*math.Pi*f*float64(n)/8000)))
				}
			}
		}
	}
}

func lawIndex(pt byte) int {
	if pt == 8 {
		return 1
	}
	return 0
}

// --- control API -------------------------------------------------------------

type apiError struct {
	action string
	body   string
}

func (e *apiError) Error() string { return e.action + ": " + e.body }

func (l *load) action(name string, params map[string]string) (map[string]string, error) {
	body, _ := json.Marshal(params)
	resp, err := l.client.Post("http://"+*httpAddr+"/v1/actions/"+name, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, &apiError{name, string(raw)}
	}
	res := map[string]string{}
	for k, v := range out {
		res[k] = fmt.Sprint(v)
	}
	if res["ResultCode"] != "0" {
		return nil, &apiError{name, string(raw)}
	}
	return res, nil
}

func (l *load) addConference(n, nTalk int) error {
	l.mu.Lock()
	ci := len(l.confs)
	l.mu.Unlock()
	conf := &conference{}
	for i := 0; i < n; i++ {
		lg := &leg{conf: ci, sock: (ci*n + i) % len(l.socks), talker: -1}
		if i%2 == 1 {
			lg.codec = 8
		}
		if i < nTalk {
			lg.talker = i % len(toneFreqs)
		}
		lg.listen = i == 0 || i == nTalk // one talker and one silent member are checked
		l.nextSSRC++
		lg.ssrc, lg.seq, lg.ts = l.nextSSRC*2654435761, uint16(l.nextSSRC*7919), l.nextSSRC*104729
		s := l.socks[lg.sock]
		p := map[string]string{
			"MediaTxIP":    s.addr.Addr().String(),
			"MediaTxPort":  strconv.Itoa(int(s.addr.Port())),
			"MediaTxCodec": map[byte]string{0: "PCMU", 8: "PCMA"}[lg.codec],
		}
		act := "JoinConference"
		if i == 0 {
			act = "CreateConference"
		} else {
			p["ConferenceId"] = conf.id
		}
		res, err := l.action(act, p)
		if err != nil {
			return err
		}
		if i == 0 {
			conf.id = res["ConferenceId"]
		}
		lg.connID = res["ConnectionId"]
		ip, err := netip.ParseAddr(res["MediaRxIP"])
		if err != nil || ip.IsUnspecified() {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		port, err := strconv.Atoi(res["MediaRxPort"])
		if err != nil {
			return fmt.Errorf("%s: MediaRxPort %q", act, res["MediaRxPort"])
		}
		lg.rx = netip.AddrPortFrom(ip, uint16(port))
		s.mu.Lock()
		s.byPort[uint16(port)] = lg
		s.legs = append(s.legs, lg)
		s.mu.Unlock()
		conf.legs = append(conf.legs, lg)
	}
	if *play {
		// Everyone hears it, mixed with the talk: what a Play costs a conference.
		if _, err := l.action("PlayTone", map[string]string{"ConferenceId": conf.id, "Frequency1": "2600", "Amplitude1": "-30"}); err != nil {
			return err
		}
	}
	l.addGroup(conf)
	return nil
}

// addGroup makes conf's legs play: they join the sender's snapshot.
func (l *load) addGroup(conf *conference) {
	l.mu.Lock()
	l.confs = append(l.confs, conf)
	all := make([]*leg, 0, len(*l.legsSnap.Load())+len(conf.legs))
	all = append(all, *l.legsSnap.Load()...)
	all = append(all, conf.legs...)
	l.mu.Unlock()
	l.legsSnap.Store(&all)
}

func (l *load) legCount() int { return len(*l.legsSnap.Load()) }

func (l *load) deleteAll() error {
	l.mu.Lock()
	confs := l.confs
	l.confs = nil
	l.mu.Unlock()
	empty := []*leg{}
	l.legsSnap.Store(&empty)
	time.Sleep(50 * time.Millisecond)
	for _, c := range confs {
		switch *mode {
		case "relay":
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := l.mgcp.Teardown(ctx, c.call)
			cancel()
			if err != nil {
				return err
			}
		case "loop":
		default:
			if _, err := l.action("DeleteConnection", map[string]string{"ConferenceId": c.id}); err != nil {
				return err
			}
		}
	}
	for _, s := range l.socks {
		s.mu.Lock()
		s.legs = nil
		clear(s.byPort)
		clear(s.bySSRC)
		s.mu.Unlock()
	}
	return nil
}

// --- phones: sending -----------------------------------------------------------

// sender plays every leg: one packet per leg per 20 ms, the legs spread over
// ten send phases, each socket's packets in sendmmsg batches.
func (l *load) sender(stop chan struct{}) {
	batches := make([]*batch, len(l.socks))
	fill := make([]int, len(l.socks))
	for i := range batches {
		batches[i] = newBatch()
	}
	start := time.Now()
	frameNo := 0
	for n := 0; ; n++ {
		due := start.Add(time.Duration(n) * ptime / phases)
		if d := time.Until(due); d > 0 {
			select {
			case <-stop:
				return
			case <-time.After(d):
			}
		}
		phase := n % phases
		if phase == 0 && n > 0 {
			frameNo++
		}
		legs := *l.legsSnap.Load()
		for i := phase; i < len(legs); i += phases {
			lg := legs[i]
			b := batches[lg.sock]
			k := fill[lg.sock]
			buf := b.bufs[k]
			buf[0], buf[1] = 0x80, lg.codec
			binary.BigEndian.PutUint16(buf[2:], lg.seq)
			binary.BigEndian.PutUint32(buf[4:], lg.ts)
			binary.BigEndian.PutUint32(buf[8:], lg.ssrc)
			law := lawIndex(lg.codec)
			if lg.talker >= 0 {
				copy(buf[12:], l.tones[lg.talker][law][frameNo%50][:])
			} else {
				copy(buf[12:], l.silence[law][:])
			}
			lg.seq++
			lg.ts += frame
			b.setDest(k, lg.rx, 12+frame)
			fill[lg.sock]++
			if fill[lg.sock] == maxBatch {
				_ = sendmmsg(l.socks[lg.sock].c, b, maxBatch)
				fill[lg.sock] = 0
			}
		}
		for si, k := range fill {
			if k > 0 {
				_ = sendmmsg(l.socks[si].c, batches[si], k)
				fill[si] = 0
			}
		}
	}
}

// --- phones: receiving ---------------------------------------------------------

func (l *load) receiver(s *phoneSocket) func([]byte, uint16, int64) {
	return func(pkt []byte, port uint16, at int64) {
		if len(pkt) < 12 {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		lg := s.byPort[port]
		if lg == nil {
			if lg = s.bySSRC[binary.BigEndian.Uint32(pkt[8:])]; lg == nil {
				return
			}
		}
		seq := binary.BigEndian.Uint16(pkt[2:])
		lg.got.Add(1)
		if lg.haveLast {
			if gap := seq - lg.lastSeq; gap > 1 && gap < 1000 {
				lg.lost.Add(uint64(gap - 1))
			}
			if gap := seq - lg.lastSeq; gap == 1 && at > 0 && lg.lastAt > 0 {
				d := time.Duration(at - lg.lastAt - int64(ptime))
				if d < 0 {
					d = -d
				}
				b := int(d / histStep)
				if b >= histBuckets {
					b = histBuckets - 1
				}
				s.hist[b]++
			}
		}
		if !lg.haveLast || int16(seq-lg.lastSeq) > 0 {
			lg.lastSeq, lg.lastAt, lg.haveLast = seq, at, true
		}
		if lg.listen && l.analyse.Load() && len(pkt) >= 12+frame {
			// Goertzel per 20 ms frame: is each tone a fair share of it?
			dec := &l.decode[lawIndex(pkt[1]&0x7f)]
			var x [frame]float64
			var total float64
			for i, b := range pkt[12 : 12+frame] {
				x[i] = float64(dec[b])
				total += x[i] * x[i]
			}
			lg.frames++
			for t, f := range toneFreqs {
				c := 2 * math.Cos(2*math.Pi*f/8000)
				var s1, s2 float64
				for _, v := range x {
					s1, s2 = v+c*s1-s2, s1
				}
				if p := s1*s1 + s2*s2 - c*s1*s2; total > 0 && 2*p/(frame*total) > 0.05 {
					lg.heard[t]++
				}
			}
		}
	}
}

// --- one measured step -----------------------------------------------------------

type result struct {
	late, loss, cpu, cpuPerMemberSec, audioOK float64
	// delayed is the share of packets that came 10 ms or more off their
	// 20 ms spacing: for relays and phone to phone, what late ticks are for
	// the mixer (a tick is late when it starts more than half a period late).
	delayed        float64
	jitP99, jitMax time.Duration
}

func (l *load) step() (result, error) {
	var r result
	time.Sleep(*warmup)
	legs := *l.legsSnap.Load()
	snapshot := func() (got, lost uint64, hist [histBuckets]uint64) {
		for _, s := range l.socks {
			s.mu.Lock()
			for i, v := range s.hist {
				hist[i] += v
			}
			s.mu.Unlock()
		}
		for _, lg := range legs {
			got += lg.got.Load()
			lost += lg.lost.Load()
		}
		return
	}
	for _, lg := range legs {
		s := l.socks[lg.sock]
		s.mu.Lock()
		lg.frames, lg.heard = 0, [5]int{}
		s.mu.Unlock()
	}
	late0, err := l.lateTicks()
	if err != nil {
		return r, err
	}
	cpu0, err := cpuTime(*gwPID)
	if err != nil {
		return r, err
	}
	got0, lost0, hist0 := snapshot()
	t0 := time.Now()
	l.analyse.Store(true)
	time.Sleep(*measure)
	l.analyse.Store(false)
	elapsed := time.Since(t0)
	got1, lost1, hist1 := snapshot()
	cpu1, err := cpuTime(*gwPID)
	if err != nil {
		return r, err
	}
	late1, err := l.lateTicks()
	if err != nil {
		return r, err
	}
	l.mu.Lock()
	nConf := len(l.confs)
	l.mu.Unlock()
	ticks := float64(nConf) * float64(elapsed) / float64(ptime)
	r.late = (late1 - late0) / ticks
	expected := float64(len(legs)) * float64(elapsed) / float64(ptime)
	got := float64(got1 - got0)
	r.loss = math.Max(0, 1-got/expected)
	if lost := float64(lost1 - lost0); lost/expected > r.loss {
		r.loss = lost / expected
	}
	if *verbose {
		fmt.Fprintf(os.Stderr, "step: expected %.0f got %.0f gaps %d elapsed %v\n", expected, got, lost1-lost0, elapsed)
	}
	var h [histBuckets]uint64
	var total uint64
	for i := range h {
		h[i] = hist1[i] - hist0[i]
		total += h[i]
	}
	var acc, off uint64
	for i, v := range h {
		if time.Duration(i)*histStep >= ptime/2 {
			off += v
		}
		acc += v
		if r.jitP99 == 0 && float64(acc) >= 0.99*float64(total) {
			r.jitP99 = time.Duration(i+1) * histStep
		}
		if v > 0 {
			r.jitMax = time.Duration(i+1) * histStep
		}
	}
	if total > 0 {
		r.delayed = float64(off) / float64(total)
	}
	r.cpu = (cpu1 - cpu0) / elapsed.Seconds()
	r.cpuPerMemberSec = (cpu1 - cpu0) / (float64(len(legs)) * elapsed.Seconds())

	// Audio: every listener hears every talker of its conference.
	var listeners, ok int
	l.mu.Lock()
	for _, c := range l.confs {
		var tones []int
		for _, lg := range c.legs {
			if lg.talker >= 0 {
				tones = append(tones, lg.talker)
			}
		}
		for _, lg := range c.legs {
			if !lg.listen {
				continue
			}
			s := l.socks[lg.sock]
			s.mu.Lock()
			// Every other talker heard in at least 95% of the frames, its
			// own tone (a talker's) in at most 5%.
			good := lg.frames > 0
			for _, t := range tones {
				if t == lg.talker {
					if float64(lg.heard[t]) > 0.05*float64(lg.frames) {
						good = false
					}
				} else if float64(lg.heard[t]) < 0.95*float64(lg.frames) {
					good = false
				}
			}
			s.mu.Unlock()
			listeners++
			if good {
				ok++
			}
		}
	}
	l.mu.Unlock()
	if listeners > 0 {
		r.audioOK = float64(ok) / float64(listeners)
	}
	return r, nil
}

func (l *load) lateTicks() (float64, error) {
	resp, err := l.client.Get("http://" + *httpAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "mediagw_mix_late_ticks_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, errors.New("/metrics has no mediagw_mix_late_ticks_total")
}

// cpuTime returns utime+stime of pid in seconds.
func cpuTime(pid int) (float64, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the ")" that closes the command name.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // CLK_TCK
}

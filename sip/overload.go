package sip

import (
	"bytes"
	"context"
	"math"
	rtmetrics "runtime/metrics"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Overload shedding (issue 17). Past its capacity a SIP server that answers
// every INVITE in full (parse, transaction, 503) spends nearly as much on
// the calls it refuses as on those it takes; the queue grows, answers come
// after the clients' 500 ms retransmission timer, and the rate of completed
// calls collapses. Here the signal is the Go scheduler's own: when the
// goroutines handling SIP wait to run longer than sip.overload.delay (the
// 90th percentile, over two 20 ms periods in a row), the gateway is behind, and new
// INVITEs arriving over UDP are answered at the socket, before sipgo parses
// them, with a stateless 503 and Retry-After (a few microseconds each); the
// ACKs of those 503s are dropped there too. Calls already up (their ACKs,
// BYEs, re-INVITEs) go through as always. The door opens again as soon as
// the backlog is worked off, so the gateway keeps completing calls at its
// capacity instead of none.
//
// The scheduler cannot see a backlog that waits in the kernel: offered far
// past capacity, the datagrams queue in the socket's 4 MiB buffer (about
// 100 ms at 10k calls/s) while the goroutines that do run, run on time.
// So each datagram's own wait is measured too (the kernel stamps its
// arrival, SO_TIMESTAMPNS), and a new INVITE that waited longer than
// sip.overload.queue_delay is answered 503 at the socket the same way: the
// queue then stays near that delay, well inside the clients' 500 ms
// retransmission timer, and what is taken completes.
//
// The watch reads the scheduler only while SIP datagrams arrive: after
// overloadIdlePeriods without one it sleeps until the next (an idle
// gateway is not woken 50 times a second for nothing).

// OverloadConfig is sip.overload.
type OverloadConfig struct {
	// Delay is the scheduling delay past which new INVITEs are shed; 0 = never.
	Delay time.Duration `yaml:"delay"`
	// QueueDelay is how long a new INVITE may have waited in the UDP
	// socket before it is shed; 0 = never (Linux only).
	QueueDelay time.Duration `yaml:"queue_delay"`
}

// DefaultOverload is sip.overload's default.
var DefaultOverload = OverloadConfig{Delay: 20 * time.Millisecond, QueueDelay: 100 * time.Millisecond}

// overloadPeriod is how often the scheduler's latency is read;
// overloadPeriods in a row over the delay turn shedding on.
const (
	overloadPeriod  = 20 * time.Millisecond
	overloadPeriods = 2
)

// overload is the shedding state, read at the socket.
type overload struct {
	delay time.Duration
	queue time.Duration // QueueDelay
	log   *logrus.Entry // episodes (at most one logged per overloadLogEvery); nil: none
	on    atomic.Bool
	shed  atomic.Uint64 // INVITEs answered 503 at the socket

	reads  atomic.Uint64 // datagrams read since the watch last looked
	asleep atomic.Bool   // the watch waits for a datagram (wake)
	wake   chan struct{} // cap 1; nil: the watch never sleeps
	naps   atomic.Uint64 // times the watch went to sleep
}

// overloadIdlePeriods without a datagram put the watch to sleep.
const overloadIdlePeriods = 50

// arrived is told of every datagram read, before it is handled.
func (o *overload) arrived() {
	o.reads.Add(1)
	if o.asleep.Load() && o.asleep.CompareAndSwap(true, false) {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

// sleep waits, if no datagram came meanwhile, until one does; false: ctx ended.
func (o *overload) sleep(ctx context.Context) bool {
	select {
	case <-o.wake: // a stale signal, from a sleep that did not happen
	default:
	}
	o.asleep.Store(true)
	if o.reads.Load() != 0 {
		o.asleep.Store(false) // one came after the watch looked
		return true
	}
	o.naps.Add(1)
	select {
	case <-o.wake:
		return true
	case <-ctx.Done():
		return false
	}
}

// watch reads the scheduler's latencies every overloadPeriod until ctx
// ends, and turns shedding on while their 90th percentile over the last
// period is above o.delay.
func (o *overload) watch(ctx context.Context) {
	if o.delay <= 0 {
		return
	}
	s := []rtmetrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	var prev []uint64
	var last time.Time // when prev was read
	over := 0          // periods in a row over the delay
	idle := 0          // periods in a row without a datagram
	var ep episode
	t := time.NewTicker(overloadPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			o.on.Store(false)
			return
		case <-t.C:
		}
		if o.reads.Swap(0) != 0 || o.on.Load() || o.wake == nil {
			idle = 0
		} else if idle++; idle >= overloadIdlePeriods {
			t.Stop()
			if !o.sleep(ctx) {
				return
			}
			idle, prev = 0, nil // a fresh baseline: what passed while asleep is not a period
			t.Reset(overloadPeriod)
			continue
		}
		// When the watch itself waited to run (the overload it looks
		// for), the ticker has kept a tick for it: that read would come
		// at once, see no samples and end the run of periods over the
		// delay. A period counts only once half of it has passed.
		now := time.Now()
		if prev != nil && now.Sub(last) < overloadPeriod/2 {
			continue
		}
		last = now
		rtmetrics.Read(s)
		if s[0].Value.Kind() != rtmetrics.KindFloat64Histogram {
			return // not in this runtime: never shed
		}
		h := s[0].Value.Float64Histogram()
		if prev == nil {
			prev = make([]uint64, len(h.Counts))
			copy(prev, h.Counts)
			continue
		}
		// On after two periods in a row over the delay (a burst at
		// capacity passes within one; a backlog that grows does not),
		// off after the first under it.
		p90 := percentile(h, prev, 0.9)
		if p90 > o.delay.Seconds() {
			over++
		} else {
			over = 0
		}
		on := over >= overloadPeriods
		if on != o.on.Load() {
			ep.turned(o, on, p90, s[1].Value.Uint64())
			o.on.Store(on)
		}
		copy(prev, h.Counts)
	}
}

// overloadLogEvery bounds the log to one episode per interval: a gateway
// at its limit may shed and recover many times a second.
const overloadLogEvery = 10 * time.Second

// episode is what the watch logs about shedding episodes.
type episode struct {
	start      time.Time
	shed0, gc0 uint64 // o.shed and the GC count when it started
	logged     bool   // this episode's start was logged
	lastLog    time.Time
	unlogged   int // episodes since the last logged one
}

// turned logs an episode's start (with the scheduler's 90th percentile
// then) and its end (how long, how many INVITEs shed, how many garbage
// collections ran meanwhile), at most one episode per overloadLogEvery.
func (e *episode) turned(o *overload, on bool, p90 float64, gcs uint64) {
	if o.log == nil {
		return
	}
	now := time.Now()
	if on {
		e.start, e.shed0, e.gc0 = now, o.shed.Load(), gcs
		e.logged = now.Sub(e.lastLog) >= overloadLogEvery
		if !e.logged {
			e.unlogged++
			return
		}
		e.lastLog = now
		o.log.WithFields(logrus.Fields{"sched_p90_ms": math.Round(p90*1e4) / 10, "delay": o.delay,
			"episodes_not_logged": e.unlogged}).Warn("overloaded: new INVITEs over UDP get 503 at the socket")
		e.unlogged = 0
		return
	}
	if e.logged {
		o.log.WithFields(logrus.Fields{"lasted": now.Sub(e.start).Round(time.Millisecond), "shed": o.shed.Load() - e.shed0,
			"gc_cycles": gcs - e.gc0}).Info("overload over: new INVITEs are taken again")
	}
}

// percentile is the q quantile (its bucket's lower bound) of the samples
// added to h since prev.
func percentile(h *rtmetrics.Float64Histogram, prev []uint64, q float64) float64 {
	var total uint64
	for i, c := range h.Counts {
		total += c - prev[i]
	}
	if total == 0 {
		return 0
	}
	want := uint64(float64(total) * q)
	var seen uint64
	for i, c := range h.Counts {
		seen += c - prev[i]
		if seen > want {
			return h.Buckets[i]
		}
	}
	return h.Buckets[len(h.Buckets)-1]
}

// shedTag marks the To tag of a stateless 503, so its ACK is known at the
// socket.
const shedTag = "mgw-ovl"

// initialInvite reports whether a datagram is an INVITE outside a dialog
// (no To tag): what the door may shed.
func initialInvite(b []byte) bool {
	if !bytes.HasPrefix(b, []byte("INVITE ")) {
		return false
	}
	to := rawHeader(b, "to", "t")
	return to != nil && !bytes.Contains(to, []byte(";tag="))
}

// shedAck reports whether a datagram is the ACK of a stateless 503.
func shedAck(b []byte) bool {
	if !bytes.HasPrefix(b, []byte("ACK ")) {
		return false
	}
	to := rawHeader(b, "to", "t")
	return to != nil && bytes.Contains(to, []byte("tag="+shedTag))
}

// rawHeader returns the value of the first header named name (or its compact
// form) in a SIP message, nil when absent.
func rawHeader(msg []byte, name, compact string) (value []byte) {
	eachHeader(msg, func(n, v []byte) bool {
		if bytes.EqualFold(n, []byte(name)) || compact != "" && bytes.EqualFold(n, []byte(compact)) {
			value = v
			return false
		}
		return true
	})
	return value
}

// eachHeader calls fn with each header line's trimmed name and value, after
// the start line and up to the blank line, until fn returns false. false: a
// line holds a CR of its own (nothing of it may be echoed).
func eachHeader(msg []byte, fn func(name, value []byte) bool) bool {
	if i := bytes.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:] // the start line
	} else {
		return true
	}
	for len(msg) > 0 {
		i := bytes.IndexByte(msg, '\n')
		if i < 0 {
			i = len(msg)
		}
		line := bytes.TrimRight(msg[:i], "\r")
		if len(line) == 0 {
			return true // end of headers
		}
		if bytes.IndexByte(line, '\r') >= 0 {
			return false
		}
		if c := bytes.IndexByte(line, ':'); c > 0 && !fn(bytes.TrimSpace(line[:c]), bytes.TrimSpace(line[c+1:])) {
			return true
		}
		if i == len(msg) {
			break
		}
		msg = msg[i+1:]
	}
	return true
}

// appendShed503 writes a stateless 503 to the INVITE req (RFC 3261 §8.2.6:
// its Via headers in order, From, To with a tag of ours, Call-ID, CSeq) to
// dst; ok is false when req lacks one of them.
func appendShed503(dst, req []byte, seq uint64) (out []byte, ok bool) {
	dst = append(dst, "SIP/2.0 503 Service Unavailable\r\n"...)
	var from, to, callID, cseq []byte
	vias := 0
	clean := eachHeader(req, func(n, v []byte) bool {
		switch {
		case bytes.EqualFold(n, []byte("via")) || bytes.EqualFold(n, []byte("v")):
			dst = append(dst, "Via: "...)
			dst = append(dst, v...)
			dst = append(dst, '\r', '\n')
			vias++
		case from == nil && (bytes.EqualFold(n, []byte("from")) || bytes.EqualFold(n, []byte("f"))):
			from = v
		case to == nil && (bytes.EqualFold(n, []byte("to")) || bytes.EqualFold(n, []byte("t"))):
			to = v
		case callID == nil && (bytes.EqualFold(n, []byte("call-id")) || bytes.EqualFold(n, []byte("i"))):
			callID = v
		case cseq == nil && bytes.EqualFold(n, []byte("cseq")):
			cseq = v
		}
		return true
	})
	if !clean {
		return dst, false // a CR inside a line: not ours to echo
	}
	if vias == 0 || from == nil || to == nil || callID == nil || cseq == nil {
		return dst, false
	}
	dst = append(dst, "From: "...)
	dst = append(dst, from...)
	dst = append(dst, "\r\nTo: "...)
	dst = append(dst, to...)
	dst = append(dst, ";tag="+shedTag...)
	dst = strconv.AppendUint(dst, seq, 36)
	dst = append(dst, "\r\nCall-ID: "...)
	dst = append(dst, callID...)
	dst = append(dst, "\r\nCSeq: "...)
	dst = append(dst, cseq...)
	dst = append(dst, "\r\nRetry-After: 1\r\nServer: "+userAgent+"\r\nContent-Length: 0\r\n\r\n"...)
	return dst, true
}

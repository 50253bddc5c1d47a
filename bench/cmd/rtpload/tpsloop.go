package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/mediagw/mediagw/bench/internal/driver"
	"github.com/mediagw/mediagw/bench/internal/loadstat"
)

// tpsLoop is the call agent of mgcptps as one event loop: conc pairs in
// flight over one socket, read with recvmmsg and written with sendmmsg, each
// answer sending that pair's next command. With a goroutine, a channel and a
// timer per command (driver.MGCPClient), the driver spent 90% of its core
// at 30k pairs/s and became the limit it was measuring; here a pair costs
// the driver a fraction of that, so the SUT's limit is what shows.
type tpsLoop struct {
	conn   *net.UDPConn
	pc     *ipv4.PacketConn
	remote *net.UDPAddr
	o      tpsOpts

	slots  []tpsSlot
	byTID  map[uint32]int // transaction in flight → slot
	tid    uint32
	seq    int
	out    []ipv4.Message
	in     []ipv4.Message
	closed bool // past the deadline: pairs finish, none start

	ok, fail       uint64
	retrans, stray uint64
	hist           loadstat.Histogram
	codes          map[string]uint64
}

// tpsSlot is one pair in flight: its CRCX or its DLCX.
type tpsSlot struct {
	busy   bool
	dlcx   bool
	tid    uint32
	callID string
	msg    []byte
	sent   time.Time
	tries  int
	start  time.Time
}

const (
	loopTimeout = 500 * time.Millisecond // per try, as driver.MGCPClient
	loopTries   = 3
)

func newTPSLoop(o tpsOpts) (*tpsLoop, error) {
	ra, err := net.ResolveUDPAddr("udp4", o.ctl)
	if err != nil {
		return nil, err
	}
	la, err := net.ResolveUDPAddr("udp4", o.ctlLocal)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp4", la)
	if err != nil {
		return nil, err
	}
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	l := &tpsLoop{conn: conn, pc: ipv4.NewPacketConn(conn), remote: ra, o: o, tid: 1000}
	l.in = make([]ipv4.Message, 64)
	for i := range l.in {
		l.in[i].Buffers = [][]byte{make([]byte, 4096)}
	}
	return l, nil
}

func (l *tpsLoop) Close() error { return l.conn.Close() }

// run drives conc pairs for o.dur and returns the result line's figures.
func (l *tpsLoop) run(conc int) (res tpsResult, el time.Duration) {
	l.slots = make([]tpsSlot, conc)
	l.byTID = make(map[uint32]int, 2*conc)
	l.ok, l.fail, l.retrans, l.stray = 0, 0, 0, 0
	l.hist = loadstat.Histogram{}
	l.codes = map[string]uint64{}
	l.closed = false
	start := time.Now()
	deadline := start.Add(l.o.dur)
	for i := range l.slots {
		l.crcx(i, start)
	}
	lastScan := start
	for {
		l.flush()
		now := time.Now()
		if !l.closed && now.After(deadline) {
			l.closed = true
		}
		if l.closed && len(l.byTID) == 0 {
			break
		}
		if now.Sub(lastScan) > 50*time.Millisecond {
			l.retransmit(now)
			lastScan = now
		}
		_ = l.conn.SetReadDeadline(now.Add(50 * time.Millisecond))
		n, err := l.pc.ReadBatch(l.in, 0)
		if err != nil {
			continue // the deadline: scan for retransmissions
		}
		now = time.Now()
		for i := range n {
			for _, msg := range bytes.Split(l.in[i].Buffers[0][:l.in[i].N], []byte("\n.\n")) { // piggybacked
				l.answer(msg, now)
			}
		}
	}
	el = time.Since(start)
	return tpsResult{conc: conc, ok: l.ok, fail: l.fail, pairsPerS: float64(l.ok) / el.Seconds(), p99: l.hist.Quantile(0.99)}, el
}

// crcx starts a pair in slot i (unless the run is closing).
func (l *tpsLoop) crcx(i int, now time.Time) {
	s := &l.slots[i]
	s.busy, s.dlcx = false, false
	if l.closed {
		return
	}
	l.seq++
	s.callID = fmt.Sprintf("t%x-%x-%x", os.Getpid(), i, l.seq)
	s.start = now
	l.send(i, now, "CRCX", l.o.wildcard, "C: "+s.callID+"\r\nL: p:20, a:PCMU\r\nM: recvonly\r\n")
}

func (l *tpsLoop) send(i int, now time.Time, verb, endpoint, params string) {
	s := &l.slots[i]
	l.tid++
	if l.tid > 999999999 {
		l.tid = 1
	}
	s.tid, s.busy, s.sent, s.tries = l.tid, true, now, 1
	s.msg = []byte(verb + " " + strconv.FormatUint(uint64(l.tid), 10) + " " + endpoint + " MGCP 1.0\r\n" + params)
	l.byTID[l.tid] = i
	l.out = append(l.out, ipv4.Message{Buffers: [][]byte{s.msg}, Addr: l.remote})
}

// answer takes one response: the pair's next step, or its end.
func (l *tpsLoop) answer(msg []byte, now time.Time) {
	r, err := driver.ParseMGCPResponse(msg)
	if err != nil || r.Code < 200 {
		return // provisional or junk: keep waiting
	}
	i, ok := l.byTID[r.TID]
	if !ok {
		l.stray++
		return
	}
	delete(l.byTID, r.TID)
	s := &l.slots[i]
	if !s.dlcx {
		if r.Code != 200 || r.Param("Z") == "" {
			l.failed(i, "CRCX", r, now)
			return
		}
		s.dlcx = true
		l.send(i, now, "DLCX", r.Param("Z"), "C: "+s.callID+"\r\nI: "+r.Param("I")+"\r\n")
		return
	}
	if r.Code != 250 && r.Code != 200 {
		l.failed(i, "DLCX", r, now)
		return
	}
	l.ok++
	l.hist.Record(uint64(now.Sub(s.start).Microseconds()))
	l.crcx(i, now)
}

func (l *tpsLoop) failed(i int, verb string, r *driver.MGCPResponse, now time.Time) {
	l.fail++
	l.codes[failCode(verb, r, nil)]++
	l.crcx(i, now)
}

// retransmit repeats what waited a try's timeout, and gives up after the
// last try.
func (l *tpsLoop) retransmit(now time.Time) {
	for i := range l.slots {
		s := &l.slots[i]
		if !s.busy || now.Sub(s.sent) < loopTimeout {
			continue
		}
		if s.tries >= loopTries {
			delete(l.byTID, s.tid)
			verb := "CRCX"
			if s.dlcx {
				verb = "DLCX"
			}
			l.fail++
			l.codes[verb+"_error"]++
			l.crcx(i, now)
			continue
		}
		s.tries++
		s.sent = now
		l.retrans++
		l.out = append(l.out, ipv4.Message{Buffers: [][]byte{s.msg}, Addr: l.remote})
	}
}

// flush sends what the loop queued, in order.
func (l *tpsLoop) flush() {
	out := l.out
	for len(out) > 0 {
		n, err := l.pc.WriteBatch(out, 0)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mgcptps: send: %v\n", err)
			n = max(n, 1)
		}
		out = out[n:]
	}
	clear(l.out)
	l.out = l.out[:0]
}

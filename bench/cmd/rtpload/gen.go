package main

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/mediagw/mediagw/bench/internal/loadstat"
)

const batch = 64

// stream is one direction of one call: sent from socket sock to dst.
type stream struct {
	sock int
	dst  *net.UDPAddr
	seq  uint32
}

// side is one of the generator's two UDP sockets (A and B): it sends the
// streams whose sock is its index and receives the other side's.
type side struct {
	conn *net.UDPConn
	pc   *ipv4.PacketConn
	fd   int
	tr   *loadstat.Tracker

	out  []ipv4.Message // send batch under construction
	nout int
	in   []ipv4.Message
	junk uint64 // datagrams that carried no probe
}

// gen is a single-threaded load generator: one loop paces the sends
// (sendmmsg) and drains both sockets (recvmmsg, non-blocking), and waits in
// ppoll when there is nothing to do. One goroutine owns everything, so the
// generator needs one core and no locks, and a packet's arrival is seen
// within microseconds, not at the next scheduler tick.
type gen struct {
	sides   [2]*side
	streams []stream
	epoch   time.Time
	pt      uint8

	rr      int      // next stream to send, round robin
	sentBy  []uint32 // packets sent per stream in the current step
	sendErr uint64
}

func newSide(addr netip.AddrPort, streams, steps, expectSeq int) (*side, error) {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	s := &side{conn: conn, pc: ipv4.NewPacketConn(conn), tr: loadstat.NewTracker(streams, steps, expectSeq)}
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		s.fd = int(fd)
		// Root may exceed net.core.rmem_max; the generator must not be the one dropping.
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 64<<20)
		}
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
	}); err != nil {
		conn.Close()
		return nil, err
	}
	if serr != nil {
		conn.Close()
		return nil, fmt.Errorf("receive buffer: %w", serr)
	}
	s.out = make([]ipv4.Message, batch)
	s.in = make([]ipv4.Message, batch)
	for i := range s.out {
		s.out[i].Buffers = [][]byte{make([]byte, loadstat.PacketSize)}
		s.in[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	return s, nil
}

func (g *gen) now() int64 { return int64(time.Since(g.epoch)) }

// recvAll drains both sockets without blocking; it returns the packets read.
func (g *gen) recvAll() int {
	total := 0
	for _, s := range g.sides {
		for {
			n, err := s.pc.ReadBatch(s.in, syscall.MSG_DONTWAIT)
			if n <= 0 || err != nil {
				break
			}
			now := g.now()
			for i := 0; i < n; i++ {
				m := &s.in[i]
				p, err := loadstat.Parse(m.Buffers[0][:m.N])
				if err != nil {
					s.junk++
					continue
				}
				s.tr.Record(p, now)
			}
			total += n
			if n < batch {
				break
			}
		}
	}
	return total
}

// queue adds the next k packets (round robin over streams) to the send
// batches, flushing a batch when it is full.
func (g *gen) queue(k int, step uint32) {
	now := g.now()
	for ; k > 0; k-- {
		st := &g.streams[g.rr]
		s := g.sides[st.sock]
		m := &s.out[s.nout]
		loadstat.Fill(m.Buffers[0], g.pt, loadstat.Probe{Step: step, Stream: uint32(g.rr), Seq: st.seq, SentNs: now})
		m.Addr = st.dst
		st.seq++
		g.sentBy[g.rr]++
		s.nout++
		if s.nout == batch {
			g.flush(s)
		}
		g.rr++
		if g.rr == len(g.streams) {
			g.rr = 0
		}
	}
	for _, s := range g.sides {
		g.flush(s)
	}
}

func (g *gen) flush(s *side) {
	off := 0
	for off < s.nout {
		n, err := s.pc.WriteBatch(s.out[off:s.nout], 0)
		if err != nil || n <= 0 {
			// ENOBUFS, ECONNREFUSED and the like: the first message is
			// counted as sent (and so as lost), the rest retried.
			g.sendErr++
			n = 1
		}
		off += n
	}
	s.nout = 0
}

// wait blocks until a socket is readable or d has passed (ns precision).
func (g *gen) wait(d time.Duration) {
	if d <= 0 {
		return
	}
	fds := [2]unix.PollFd{{Fd: int32(g.sides[0].fd), Events: unix.POLLIN}, {Fd: int32(g.sides[1].fd), Events: unix.POLLIN}}
	ts := unix.NsecToTimespec(int64(d))
	_, _ = unix.Ppoll(fds[:], &ts, nil)
}

// stepStats is what the sender did in one step.
type stepStats struct {
	offered  float64 // pps asked for
	sent     uint64
	skipped  uint64 // packets the sender could not send in time (generator limit)
	duration time.Duration
}

// run sends at rate pps for dur, tagging packets with step, while receiving.
// It never lets a backlog of more than 20 ms of packets build up: what it
// cannot send in time it skips and counts, so sent/duration is the real rate.
func (g *gen) run(step uint32, rate float64, dur time.Duration) stepStats {
	clear(g.sentBy)
	st := stepStats{offered: rate}
	start := time.Now()
	var owed uint64 // packets due so far (sent + skipped)
	maxBacklog := uint64(rate*0.020) + batch
	minBurst := uint64(rate * 0.0002) // send at most every 200 µs
	if minBurst < 1 {
		minBurst = 1
	}
	if minBurst > batch {
		minBurst = batch
	}
	for {
		el := time.Since(start)
		if el >= dur {
			break
		}
		target := uint64(rate * el.Seconds())
		due := uint64(0)
		if target > owed {
			due = target - owed
		}
		if due > maxBacklog {
			st.skipped += due - maxBacklog
			owed += due - maxBacklog
			due = maxBacklog
		}
		if due >= minBurst {
			k := due
			if k > 4*batch {
				k = 4 * batch
			}
			g.queue(int(k), step)
			owed += k
			st.sent += k
			g.recvAll()
			continue
		}
		if g.recvAll() > 0 {
			continue
		}
		next := time.Duration(float64(owed+minBurst)/rate*1e9) - el
		if rem := dur - el; next > rem {
			next = rem
		}
		g.wait(next)
	}
	st.duration = time.Since(start)
	return st
}

// drain receives only, for d.
func (g *gen) drain(d time.Duration) {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		if g.recvAll() == 0 {
			g.wait(left)
		}
	}
}

package rtpproxy

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Handler receives the RTP a leg accepts. pkt is valid only during the call,
// which runs on the leg's reader (a poller goroutine shared with other legs
// on Linux): it must not block, and must not Close a leg (Close waits for
// the readers, its own caller among them).
type Handler interface{ HandleRTP(pkt []byte) }

// Buffer sizes of the readers: an Ethernet MTU of RTP with room to spare,
// and a generous compound RTCP packet. Longer datagrams are truncated.
const (
	rtpBufSize  = 2048
	rtcpBufSize = 1500
)

// epoch anchors the monotonic clock that the packet loops read.
var epoch = time.Now()

// monoNow is nanoseconds on the monotonic clock since epoch, never 0.
func monoNow() int64 { return int64(time.Since(epoch)) + 1 }

// route says where a leg's received RTP goes. Replaced whole on change.
type route struct {
	peer *Leg    // Relay: send out of peer (RTCP is forwarded to peer too)
	echo bool    // Loopback: send back to the source
	h    Handler // anything else
}

var (
	errSendBufferFull = errors.New("rtpproxy: socket send buffer full, packet dropped")
	errAddrFamily     = errors.New("rtpproxy: remote address family differs from the socket's")
)

// direction bits
const (
	dirSend = 1 << iota
	dirRecv
)

// Leg is one RTP/RTCP port pair facing one remote media endpoint. Its two
// reader goroutines own the receive-side state; everything the control side
// changes is swapped through atomic pointers, so the packet loops take no lock.
type Leg struct {
	pool   *Pool
	pair   int32 // index in the pool
	port   int
	s      sockets // descriptors for the pollers, or conns for reader goroutines
	rtpTx  *sender
	rtcpTx *sender
	v6     bool // IPv6 sockets: IPv4 sources arrive mapped

	// Poller legs: the loop whose epoll set holds the pair's sockets. Set
	// by Pool.Open before the first packet.
	run *pollRun

	remote     atomic.Pointer[latch] // RTP remote
	rtcpRemote atomic.Pointer[latch] // RTCP remote; zero addr = RTP remote's port+1
	dir        atomic.Uint32
	route      atomic.Pointer[route]
	dynRate    atomic.Uint32             // clock rate of dynamic payload types, Hz
	srtp       atomic.Pointer[srtpState] // nil: plain RTP (srtp.go)
	events     atomic.Pointer[eventTap]  // nil: telephone-events not reported (events.go)
	audio      atomic.Pointer[audioTap]  // nil: no audio tap (events.go)
	echoSSRC   uint32                    // the SSRC of what Loopback sends back (RFC 3550 §8.2: never the sender's own)

	st counters
	rx receiver // owned by the RTP reader

	srMu   sync.Mutex // guards srSent and srNext (RTCP rate, never per RTP packet)
	srSent [srHistory]srRecord
	srNext int

	wg        sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// newLeg makes the leg of a bound pair.
func newLeg(p *Pool, pair int32, port int, s sockets) (*Leg, error) {
	l := &Leg{pool: p, pair: pair, port: port, s: s, v6: p.network != "udp4", echoSSRC: rand.Uint32()}
	if s.rtp != nil {
		var err1, err2 error
		l.rtpTx, err1 = newSender(s.rtp, l.v6)
		l.rtcpTx, err2 = newSender(s.rtcp, l.v6)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
	} else {
		l.rtpTx = fdSender(s.rtpFd, l.v6)
		l.rtcpTx = fdSender(s.rtcpFd, l.v6)
	}
	l.remote.Store(&latch{})
	l.rtcpRemote.Store(&latch{})
	l.dir.Store(dirSend | dirRecv)
	l.dynRate.Store(8000)
	return l, nil
}

// start runs the reader goroutines of a leg the pollers do not read.
func (l *Leg) start() {
	if l.s.rtp != nil {
		l.wg.Add(2)
		go l.readRTP()
		go l.readRTCP()
	}
}

// Port is the RTP port; RTCP is Port()+1.
func (l *Leg) Port() int { return l.port }

// LocalAddr is the address to advertise: AdvertisedIP:Port.
func (l *Leg) LocalAddr() netip.AddrPort {
	return netip.AddrPortFrom(l.pool.lay.advertised, uint16(l.port))
}

// Remote is the current remote: the latched source, or the SDP address.
func (l *Leg) Remote() netip.AddrPort { return l.remote.Load().addr }

// SetDirection gates media: send=false drops what Send is given, recv=false
// drops what arrives (the source is still latched and LastReceived updated).
func (l *Leg) SetDirection(send, recv bool) {
	var d uint32
	if send {
		d |= dirSend
	}
	if recv {
		d |= dirRecv
	}
	l.dir.Store(d)
}

// SetHandler sets where received RTP goes; nil drops it (and unlinks a
// Relay or Loopback). A call already running may finish after it returns.
func (l *Leg) SetHandler(h Handler) {
	if h == nil {
		l.route.Store(nil)
		return
	}
	l.route.Store(&route{h: h})
}

// SetClockRate sets the RTP clock (Hz) assumed for dynamic payload types
// (96-127) in jitter; static types use their RFC 3551 rate. Default 8000.
func (l *Leg) SetClockRate(hz uint32) {
	if hz == 0 {
		hz = 8000
	}
	l.dynRate.Store(hz)
}

// Send writes pkt to the remote and counts it. With sending disabled or no
// remote known yet the packet is dropped and nil returned. It never waits:
// when the socket's send buffer is full the packet is dropped with an error.
func (l *Leg) Send(pkt []byte) error {
	if l.dir.Load()&dirSend == 0 {
		return nil
	}
	to := l.remote.Load().addr
	if !to.IsValid() {
		return nil
	}
	return l.sendTo(pkt, to)
}

func (l *Leg) sendTo(pkt []byte, to netip.AddrPort) error {
	// Counted before the write, so that a peer holding the packet never
	// sees a count without it; taken back if the write fails.
	octets := uint64(payloadLen(pkt))
	l.st.pktsOut.Add(1)
	l.st.octetsOut.Add(octets)
	var err error
	if sp := l.srtp.Load(); sp != nil {
		err = sp.sendRTP(l.rtpTx, pkt, to)
	} else {
		err = l.rtpTx.sendTo(pkt, to)
	}
	if err != nil {
		l.st.pktsOut.Add(^uint64(0))
		l.st.octetsOut.Add(-octets)
		return err
	}
	return nil
}

// Stats returns the leg's statistics so far.
func (l *Leg) Stats() Stats {
	s := Stats{
		PacketsSent:     l.st.pktsOut.Load(),
		OctetsSent:      l.st.octetsOut.Load(),
		PacketsReceived: l.st.pktsIn.Load(),
		OctetsReceived:  l.st.octetsIn.Load(),
		PacketsLost:     l.st.lost.Load(),
		Jitter:          time.Duration(l.st.jitter.Load()),
	}
	if n := l.st.rttN.Load(); n > 0 {
		s.Latency = time.Duration(l.st.rttSum.Load() / n)
	}
	return s
}

// LastReceived is when the last RTP or RTCP packet came from the remote;
// the zero Time when none has.
func (l *Leg) LastReceived() time.Time {
	v := l.st.lastRx.Load()
	if v == 0 {
		return time.Time{}
	}
	return epoch.Add(time.Duration(v - 1))
}

// Close stops the readers and returns the pair to the pool, which closes its
// sockets or keeps them bound for a later leg. Nothing sent through l or
// received for it is handled after Close returns. It is idempotent; every
// call returns after the first has finished.
func (l *Leg) Close() error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		l.route.Store(nil)
		l.detach() // a poller handles l no more
		l.rtpTx.shut()
		l.rtcpTx.shut()
		if l.s.rtp != nil {
			// Reader goroutines: closing the sockets stops them.
			l.closeErr = l.s.close()
			l.wg.Wait()
		}
		l.closeErr = errors.Join(l.closeErr, l.pool.release(l))
	})
	return l.closeErr
}

// handleRTP is the per-packet path: filter, count, forward. It allocates
// nothing once the source is latched.
func (l *Leg) handleRTP(pkt []byte, src netip.AddrPort) {
	sp := l.srtp.Load()
	var h rtpHeader
	var ok bool
	if sp == nil {
		h, ok = parseRTP(pkt)
	} else {
		ok = srtpLooksRTP(pkt)
	}
	if !ok {
		l.st.drops[DropMalformed].Add(1)
		return // not RTP (or mangled): not ours to forward
	}
	if l.v6 {
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	}
	now := monoNow()
	if sp != nil {
		// Authenticate before latching: see mayAcceptRTP.
		if !l.mayAcceptRTP(src, now) {
			return
		}
		if pkt, ok = sp.decryptRTP(&l.st, pkt); !ok {
			return
		}
		if h, ok = parseRTP(pkt); !ok {
			l.st.drops[DropMalformed].Add(1)
			return
		}
	}
	if !l.acceptRTP(src, now) {
		return
	}
	l.st.lastRx.Store(now)
	if l.dir.Load()&dirRecv == 0 {
		return
	}
	l.rx.dynRate = l.dynRate.Load()
	lost, jitter := l.rx.update(&h, now)
	l.st.pktsIn.Add(1)
	l.st.octetsIn.Add(uint64(h.payload))
	l.st.lost.Store(lost)
	l.st.jitter.Store(int64(jitter))
	if tap := l.events.Load(); tap != nil && h.pt == tap.pt {
		l.rx.events.observe(&h, pkt, tap.fn)
	}
	if tap := l.audio.Load(); tap != nil && h.pt == tap.pt {
		tap.fn(payloadOf(&h, pkt))
	}

	rt := l.route.Load()
	switch {
	case rt == nil:
	case rt.peer != nil:
		_ = rt.peer.Send(pkt) // a closed or unaddressed peer drops it
	case rt.echo:
		if l.dir.Load()&dirSend != 0 {
			if binary.BigEndian.Uint32(pkt[8:]) == l.echoSSRC { // the sender took ours: move away (§8.2)
				l.echoSSRC++
			}
			binary.BigEndian.PutUint32(pkt[8:], l.echoSSRC) // sequence and timestamp stay the sender's, continuous
			_ = l.sendTo(pkt, src)
		}
	case rt.h != nil:
		rt.h.HandleRTP(pkt)
	}
}

// readRTCP is the RTCP reader goroutine of a leg the pollers do not read.
func (l *Leg) readRTCP() {
	defer l.wg.Done()
	buf := make([]byte, rtcpBufSize)
	var sum rtcpSummary
	for {
		n, src, err := l.s.rtcp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l.handleRTCP(buf[:n], src, &sum)
	}
}

func (l *Leg) handleRTCP(pkt []byte, src netip.AddrPort, sum *rtcpSummary) {
	sp := l.srtp.Load()
	if (sp == nil && !parseRTCP(pkt, sum)) || (sp != nil && !srtpLooksRTCP(pkt)) {
		l.st.drops[DropMalformed].Add(1)
		return
	}
	if l.v6 {
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	}
	now := monoNow()
	if sp != nil {
		if !l.mayAcceptRTCP(src, now) {
			return
		}
		var ok bool
		if pkt, ok = sp.decryptRTCP(&l.st, pkt); !ok {
			return
		}
		if !parseRTCP(pkt, sum) {
			l.st.drops[DropMalformed].Add(1)
			return
		}
	}
	if !l.acceptRTCP(src, now) {
		return
	}
	l.st.lastRx.Store(now)
	for i := range sum.n {
		rr := &sum.reports[i]
		if rr.LastSenderReport == 0 {
			continue
		}
		if sent, ok := l.srSentAt(rr.LastSenderReport); ok {
			rtt := roundTrip(now, sent, rr.Delay)
			if rtt < 0 {
				rtt = 0 // DLSR is rounded to 1/65536 s
			}
			l.st.rttSum.Add(int64(rtt))
			l.st.rttN.Add(1)
		}
	}
	if rt := l.route.Load(); rt != nil && rt.peer != nil {
		_ = rt.peer.sendRTCP(pkt, sum, now)
	}
}

// sendRTCP forwards a compound RTCP packet to the remote's RTCP address and
// remembers the SR in it, if any.
func (l *Leg) sendRTCP(pkt []byte, sum *rtcpSummary, now int64) error {
	to := l.rtcpRemote.Load().addr
	if !to.IsValid() {
		rtp := l.remote.Load().addr
		if !rtp.IsValid() || rtp.Port() == 65535 {
			return nil
		}
		to = netip.AddrPortFrom(rtp.Addr(), rtp.Port()+1)
	}
	var err error
	if sp := l.srtp.Load(); sp != nil {
		err = sp.sendRTCP(l.rtcpTx, pkt, to)
	} else {
		err = l.rtcpTx.sendTo(pkt, to)
	}
	if err != nil {
		return err
	}
	if sum.hasSR {
		l.srMu.Lock()
		l.srSent[l.srNext] = srRecord{ntp: sum.srNTP, sent: now}
		l.srNext = (l.srNext + 1) % srHistory
		l.srMu.Unlock()
	}
	return nil
}

func (l *Leg) srSentAt(lsr uint32) (int64, bool) {
	l.srMu.Lock()
	defer l.srMu.Unlock()
	for _, r := range l.srSent {
		if r.sent != 0 && r.ntp == lsr {
			return r.sent, true
		}
	}
	return 0, false
}

// Relay links a and b: RTP received on a goes out of b to b's remote and the
// other way round; RTCP is forwarded the same way.
func Relay(a, b *Leg) {
	a.route.Store(&route{peer: b})
	b.route.Store(&route{peer: a})
}

// Loopback echoes the RTP that arrives on l back to its sender (subject to
// the send direction). RTCP is read for statistics, not echoed.
func Loopback(l *Leg) {
	l.route.Store(&route{echo: true})
}

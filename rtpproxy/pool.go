package rtpproxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// ErrNoPorts is returned by Open when no port pair can be had.
var ErrNoPorts = errors.New("rtpproxy: no free RTP port pair")

// Pool hands out RTP/RTCP port pairs from the configured range and keeps the
// packet totals of every leg it opened.
type Pool struct {
	network string // "udp4", or "udp" for IPv6 (dual-stack on "::")
	lay     layout
	poll    bool // RTP is read by poller goroutines (readMode at NewPool)
	// byPair is the owner of each pair bound for the pollers, for their
	// events: its open leg, or its last leg (closed) while idle.
	byPair []atomic.Pointer[Leg]

	mu sync.Mutex // guards free, pos, idle, closed, live, closedIn, closedOut, closedDrops, pollers, nextPoller
	// free holds the indices of the free pairs in no particular order; pos[i]
	// is the position of pair i in free, or -1 while pair i is taken. A pick
	// swaps the chosen entry with the last one, so both ends are O(1).
	free []int32
	pos  []int32
	// idle holds the free pairs whose sockets are still bound, and still
	// read by their poll loop, which throws away what arrives for an ended
	// call. Reusing one saves making, binding, registering and closing two
	// sockets (ten system calls, the costliest part of a CRCX+DLCX). There
	// is no cap: a pair is open, idle or unbound, so idle pairs never hold
	// more descriptors than a full pool of open legs. Close closes them.
	idle        []idlePair
	closed      bool // Close was called: released pairs are not kept bound
	live        map[*Leg]struct{}
	closedIn    uint64 // packets received by legs already closed
	closedOut   uint64 // packets sent by legs already closed
	closedDrops Drops  // packets dropped by legs already closed
	// pollers are the poll loop slots (one per GOMAXPROCS at NewPool);
	// new legs go to them round robin.
	pollers    []poller
	nextPoller int
}

// idlePair is a free pair whose sockets are still bound and still in the
// epoll set of run, where last (its last leg, closed) owns them.
type idlePair struct {
	pair int32
	s    sockets
	run  *pollRun
	last *Leg
}

// NewPool validates cfg and prepares the range; no socket is bound yet.
func NewPool(cfg Config) (*Pool, error) {
	lay, err := cfg.layout(true)
	if err != nil {
		return nil, err
	}
	p := &Pool{
		network: "udp4",
		lay:     lay,
		free:    make([]int32, lay.pairs),
		pos:     make([]int32, lay.pairs),
		live:    make(map[*Leg]struct{}),
	}
	if lay.bind.Is6() {
		p.network = "udp"
	}
	if usePollers() {
		p.poll = true
		p.byPair = make([]atomic.Pointer[Leg], lay.pairs)
		p.pollers = make([]poller, runtime.GOMAXPROCS(0))
	}
	for i := range p.free {
		p.free[i] = int32(i)
		p.pos[i] = int32(i)
	}
	return p, nil
}

// Pairs is the size of the range in pairs.
func (p *Pool) Pairs() int { return p.lay.pairs }

// FreePairs is the number of pairs not held by an open leg (idle pairs
// kept bound for reuse are free).
func (p *Pool) FreePairs() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free) + len(p.idle)
}

// AdvertisedIP is the address to put in SDP c= lines and MediaRxIP.
func (p *Pool) AdvertisedIP() netip.Addr { return p.lay.advertised }

// Packets returns the RTP packets received and sent by all legs, open or
// closed, since the pool was made. Each leg counts its own packets (no counter
// is shared between packet loops); this sums them.
func (p *Pool) Packets() (in, out uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	in, out = p.closedIn, p.closedOut
	for l := range p.live {
		in += l.st.pktsIn.Load()
		out += l.st.pktsOut.Load()
	}
	return in, out
}

// Open hands out a free pair, RTP on the even port and RTCP on the odd one,
// and starts its readers. A pair still bound from an earlier leg (see idle)
// is preferred, drained of what arrived while it was idle; otherwise a random
// unbound pair is bound. A pair whose ports are in use by someone else is
// skipped and put back for a later Open; when no pair can be had the error
// is ErrNoPorts.
func (p *Pool) Open() (*Leg, error) {
	var busy []int32 // pairs found in use by others, returned after this call
	defer func() {
		if len(busy) > 0 {
			p.mu.Lock()
			for _, i := range busy {
				p.push(i)
			}
			p.mu.Unlock()
		}
	}()
	for {
		p.mu.Lock()
		i, e, ok := p.takeAny()
		p.mu.Unlock()
		if !ok {
			if len(busy) > 0 {
				return nil, fmt.Errorf("%w: %d pairs in use by other sockets", ErrNoPorts, len(busy))
			}
			return nil, ErrNoPorts
		}
		l, inUse, err := p.openPair(i, e)
		if inUse {
			busy = append(busy, i)
			continue
		}
		if err != nil {
			busy = append(busy, i)
			return nil, err
		}
		return l, nil
	}
}

// ErrPortTaken: OpenPort's pair is held by a live leg, or its ports by
// another socket.
var ErrPortTaken = errors.New("rtpproxy: RTP port pair taken")

// OpenPort hands out the pair whose RTP port is port (even, in the pool's
// range): what a restored connection needs to keep its address. A pair
// held by a live leg, or bound by another socket meanwhile, is ErrPortTaken.
func (p *Pool) OpenPort(port int) (*Leg, error) {
	off := port - p.lay.firstPort
	if off < 0 || off%2 != 0 || off/2 >= p.lay.pairs {
		return nil, fmt.Errorf("rtpproxy: port %d is not an RTP port of the pool", port)
	}
	i := int32(off / 2)
	p.mu.Lock()
	e, ok := p.takePair(i)
	p.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrPortTaken, port)
	}
	l, inUse, err := p.openPair(i, e)
	if err != nil {
		p.mu.Lock()
		p.push(i)
		p.mu.Unlock()
		if inUse {
			return nil, fmt.Errorf("%w: %d: %v", ErrPortTaken, port, err)
		}
		return nil, err
	}
	return l, nil
}

// takePair removes pair i from the free or idle pairs. Caller holds p.mu.
func (p *Pool) takePair(i int32) (idlePair, bool) {
	for k, e := range p.idle {
		if e.pair == i {
			p.idle[k] = p.idle[len(p.idle)-1]
			p.idle = p.idle[:len(p.idle)-1]
			return e, true
		}
	}
	k := p.pos[i]
	if k < 0 {
		return idlePair{}, false
	}
	last := p.free[len(p.free)-1]
	p.free[k] = last
	p.pos[last] = k
	p.free = p.free[:len(p.free)-1]
	p.pos[i] = -1
	return idlePair{pair: i, s: unbound}, true
}

// openPair makes the leg of taken pair i. inUse reports a port bound by
// someone else (the pair goes back to the free set).
func (p *Pool) openPair(i int32, e idlePair) (l *Leg, inUse bool, err error) {
	port := p.lay.firstPort + 2*int(i)
	s := e.s
	if s.bound() {
		s.drain() // what the pollers have not thrown away yet
	} else if s, err = p.bindPair(port); err != nil {
		if !errors.Is(err, syscall.EADDRINUSE) {
			// Not a busy port (bad bind address, no permission...): no other
			// pair would fare better.
			return nil, false, fmt.Errorf("rtpproxy: bind port %d: %w", port, err)
		}
		return nil, true, err
	}
	l, err = newLeg(p, i, port, s)
	switch {
	case err != nil:
	case e.run != nil: // idle: its sockets are in e.run's epoll set
		l.run = e.run
		p.byPair[i].Store(l)
	case p.poll:
		err = p.attach(l)
	}
	if err != nil {
		if e.run != nil {
			p.unbind(e.last)
		}
		s.close()
		return nil, false, fmt.Errorf("rtpproxy: port %d: %w", port, err)
	}
	p.mu.Lock()
	p.live[l] = struct{}{}
	p.mu.Unlock()
	l.start()
	return l, false, nil
}

// sockets are the two sockets of a pair: bare descriptors read by the
// pollers, or net.UDPConns read by goroutines (fds -1).
type sockets struct {
	rtp, rtcp     *net.UDPConn
	rtpFd, rtcpFd int
}

var unbound = sockets{rtpFd: -1, rtcpFd: -1}

func (s sockets) bound() bool { return s.rtpFd >= 0 || s.rtp != nil }

// close closes both sockets; the errors are joined.
func (s sockets) close() error {
	var e1, e2 error
	if s.rtp != nil {
		e1 = s.rtp.Close()
	} else if s.rtpFd >= 0 {
		e1 = closeFd(s.rtpFd)
	}
	if s.rtcp != nil {
		e2 = s.rtcp.Close()
	} else if s.rtcpFd >= 0 {
		e2 = closeFd(s.rtcpFd)
	}
	return errors.Join(e1, e2)
}

// bindPair binds RTP on port and RTCP on port+1: bare descriptors for the
// pollers, net.UDPConns otherwise.
func (p *Pool) bindPair(port int) (sockets, error) {
	s := unbound
	var err error
	if p.poll {
		if s.rtpFd, err = p.bindFd(port); err != nil {
			return unbound, err
		}
		if s.rtcpFd, err = p.bindFd(port + 1); err != nil {
			closeFd(s.rtpFd)
			return unbound, err
		}
		return s, nil
	}
	ip := p.lay.bind.AsSlice()
	if s.rtp, err = net.ListenUDP(p.network, &net.UDPAddr{IP: ip, Port: port}); err != nil {
		return unbound, err
	}
	if s.rtcp, err = net.ListenUDP(p.network, &net.UDPAddr{IP: ip, Port: port + 1}); err != nil {
		s.rtp.Close()
		return unbound, err
	}
	return s, nil
}

// takeAny removes a pair picked at random among all free ones, idle or
// unbound (e.s unbound). Caller holds p.mu.
func (p *Pool) takeAny() (int32, idlePair, bool) {
	n := len(p.idle)
	if n+len(p.free) == 0 {
		return 0, idlePair{}, false
	}
	k := rand.IntN(n + len(p.free))
	if k >= n {
		i, ok := p.take()
		return i, idlePair{pair: i, s: unbound}, ok
	}
	e := p.idle[k]
	p.idle[k] = p.idle[n-1]
	p.idle = p.idle[:n-1]
	return e.pair, e, true
}

// Close closes the sockets of the idle pairs; pairs released later are
// closed at once, and the poll loops stop with the last open leg. The ports
// of every closed leg are then free for anyone to bind. Open legs are not
// touched (the session table closes them).
func (p *Pool) Close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = true
	p.mu.Unlock()
	var errs []error
	for _, e := range idle {
		p.unbind(e.last)
		errs = append(errs, e.s.close())
	}
	p.mu.Lock()
	for _, e := range idle {
		p.push(e.pair)
	}
	if len(p.live) == 0 {
		p.stopPollers()
	}
	p.mu.Unlock()
	return errors.Join(errs...)
}

// take removes a random free pair. Caller holds p.mu.
func (p *Pool) take() (int32, bool) {
	n := len(p.free)
	if n == 0 {
		return 0, false
	}
	k := rand.IntN(n)
	i := p.free[k]
	last := p.free[n-1]
	p.free[k] = last
	p.pos[last] = int32(k)
	p.free = p.free[:n-1]
	p.pos[i] = -1
	return i, true
}

// push returns pair i to the free set; a pair already free is left alone.
// Caller holds p.mu.
func (p *Pool) push(i int32) {
	if p.pos[i] >= 0 {
		return
	}
	p.pos[i] = int32(len(p.free))
	p.free = append(p.free, i)
}

// release is called once by Leg.Close after its readers have stopped (or,
// for poller legs, stopped handling it) and its senders are shut. A poller
// leg's pair becomes idle, its sockets still bound and still read (and
// thrown away) by its poll loop; otherwise, or once the Pool is closed, the
// sockets are closed and the pair goes back to the free set.
func (p *Pool) release(l *Leg) error {
	p.mu.Lock()
	if _, ok := p.live[l]; !ok {
		p.mu.Unlock()
		return nil
	}
	delete(p.live, l)
	p.closedIn += l.st.pktsIn.Load()
	p.closedOut += l.st.pktsOut.Load()
	l.st.addDrops(&p.closedDrops)
	if l.run != nil && !p.closed {
		p.idle = append(p.idle, idlePair{pair: l.pair, s: l.s, run: l.run, last: l})
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	var err error
	if l.run != nil { // goroutine readers' sockets are closed already
		p.unbind(l)
		err = l.s.close()
	}
	p.mu.Lock()
	p.push(l.pair)
	if p.closed && len(p.live) == 0 {
		p.stopPollers()
	}
	p.mu.Unlock()
	return err
}

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
	poll    bool                  // RTP is read by poller goroutines (readMode at NewPool)
	byPair  []atomic.Pointer[Leg] // poller legs by pair index, for the poll loops' events
	gen     atomic.Uint32         // generation of the last poller leg opened

	mu sync.Mutex // guards free, pos, idle, closed, live, closedIn, closedOut, pollers, nextPoller
	// free holds the indices of the free pairs in no particular order; pos[i]
	// is the position of pair i in free, or -1 while pair i is taken. A pick
	// swaps the chosen entry with the last one, so both ends are O(1).
	free []int32
	pos  []int32
	// idle holds the free pairs whose sockets are still bound (they are in
	// neither free nor any epoll set). Reusing one saves making, binding
	// and closing two sockets (six system calls, the costliest of a
	// CRCX+DLCX). There is no cap: a pair is open, idle or unbound, so
	// idle pairs never hold more descriptors than a full pool of open legs.
	// An idle socket's receive buffer is shrunk to the minimum (what
	// arrives for an ended call waits in little memory, and is drained on
	// reuse). Close closes them.
	idle      []idlePair
	closed    bool // Close was called: released pairs are not kept bound
	rcvbuf    int  // SO_RCVBUF a socket gets when bound (restored on reuse); set by NewPool
	live      map[*Leg]struct{}
	closedIn  uint64 // packets received by legs already closed
	closedOut uint64 // packets sent by legs already closed
	// pollers are the poll loop slots (one per GOMAXPROCS at NewPool);
	// new legs go to them round robin.
	pollers    []poller
	nextPoller int
}

type idlePair struct {
	pair int32
	s    sockets
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
		p.rcvbuf = defaultRcvbuf(family(lay.bind))
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
		i, s, ok := p.takeAny()
		p.mu.Unlock()
		if !ok {
			if len(busy) > 0 {
				return nil, fmt.Errorf("%w: %d pairs in use by other sockets", ErrNoPorts, len(busy))
			}
			return nil, ErrNoPorts
		}
		port := p.lay.firstPort + 2*int(i)
		var err error
		if s.bound() {
			s.reuse(p.rcvbuf)
		} else if s, err = p.bindPair(port); err != nil {
			busy = append(busy, i)
			if !errors.Is(err, syscall.EADDRINUSE) {
				// Not a busy port (bad bind address, no permission...): no other
				// pair would fare better.
				return nil, fmt.Errorf("rtpproxy: bind port %d: %w", port, err)
			}
			continue
		}
		l, err := newLeg(p, i, port, s)
		if err == nil && p.poll {
			l.gen = p.gen.Add(1)
			err = p.attach(l)
		}
		if err != nil {
			s.close()
			busy = append(busy, i)
			return nil, fmt.Errorf("rtpproxy: port %d: %w", port, err)
		}
		p.mu.Lock()
		p.live[l] = struct{}{}
		p.mu.Unlock()
		l.start()
		return l, nil
	}
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

// takeAny removes a pair picked at random among all free ones, bound (with
// its sockets) or not. Caller holds p.mu.
func (p *Pool) takeAny() (int32, sockets, bool) {
	n := len(p.idle)
	if n+len(p.free) == 0 {
		return 0, unbound, false
	}
	k := rand.IntN(n + len(p.free))
	if k >= n {
		i, ok := p.take()
		return i, unbound, ok
	}
	e := p.idle[k]
	p.idle[k] = p.idle[n-1]
	p.idle = p.idle[:n-1]
	return e.pair, e.s, true
}

// Close closes the sockets of the idle pairs; pairs released later are
// closed at once. Open legs are not touched (the session table closes them).
// The ports of every closed leg are then free for anyone to bind.
func (p *Pool) Close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = true
	for _, e := range idle {
		p.push(e.pair)
	}
	p.mu.Unlock()
	var errs []error
	for _, e := range idle {
		errs = append(errs, e.s.close())
	}
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

// release is called once by Leg.Close after its readers have stopped and
// its senders are shut: the pair goes to the idle set with its sockets still
// bound (poller legs only: their sockets are bare descriptors no reader
// holds any more), or is closed and goes back to the free set.
func (p *Pool) release(l *Leg, s sockets) error {
	p.mu.Lock()
	if _, ok := p.live[l]; !ok {
		p.mu.Unlock()
		return nil
	}
	delete(p.live, l)
	p.closedIn += l.st.pktsIn.Load()
	p.closedOut += l.st.pktsOut.Load()
	keep := s.rtpFd >= 0 && !p.closed
	p.mu.Unlock()
	if keep && s.idle() == nil {
		p.mu.Lock()
		if !p.closed {
			p.idle = append(p.idle, idlePair{pair: l.pair, s: s})
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
	}
	err := s.close()
	p.mu.Lock()
	p.push(l.pair)
	p.mu.Unlock()
	return err
}

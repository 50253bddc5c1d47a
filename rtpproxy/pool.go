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

	mu sync.Mutex // guards free, pos, live, closedIn, closedOut, pollers, nextPoller
	// free holds the indices of the free pairs in no particular order; pos[i]
	// is the position of pair i in free, or -1 while pair i is taken. A pick
	// swaps the chosen entry with the last one, so both ends are O(1).
	free      []int32
	pos       []int32
	live      map[*Leg]struct{}
	closedIn  uint64 // packets received by legs already closed
	closedOut uint64 // packets sent by legs already closed
	// pollers are the poll loop slots (one per GOMAXPROCS at NewPool);
	// new legs go to them round robin.
	pollers    []poller
	nextPoller int
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

// FreePairs is the number of pairs not held by an open leg.
func (p *Pool) FreePairs() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
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

// Open binds a random free pair (RTP on the even port, RTCP on the odd one)
// and starts its readers. A pair whose ports are in use by someone else is
// skipped and put back for a later Open; when no pair can be bound the error
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
		i, ok := p.take()
		p.mu.Unlock()
		if !ok {
			if len(busy) > 0 {
				return nil, fmt.Errorf("%w: %d pairs in use by other sockets", ErrNoPorts, len(busy))
			}
			return nil, ErrNoPorts
		}
		port := p.lay.firstPort + 2*int(i)
		rtp, rtpFd, rtcp, err := p.bindPair(port)
		if err == nil {
			l, err := newLeg(p, i, port, rtp, rtpFd, rtcp)
			if err == nil && rtp == nil {
				l.gen = p.gen.Add(1)
				err = p.attach(l)
			}
			if err != nil {
				if rtp != nil {
					rtp.Close()
				} else {
					closeFd(rtpFd)
				}
				rtcp.Close()
				busy = append(busy, i)
				return nil, fmt.Errorf("rtpproxy: port %d: %w", port, err)
			}
			p.mu.Lock()
			p.live[l] = struct{}{}
			p.mu.Unlock()
			l.start()
			return l, nil
		}
		busy = append(busy, i)
		if !errors.Is(err, syscall.EADDRINUSE) {
			// Not a busy port (bad bind address, no permission...): no other
			// pair would fare better.
			return nil, fmt.Errorf("rtpproxy: bind port %d: %w", port, err)
		}
	}
}

// bindPair binds RTP on port and RTCP on port+1. The RTP socket is a bare
// descriptor (rtp nil) for the pollers, a net.UDPConn (rtpFd -1) otherwise.
func (p *Pool) bindPair(port int) (rtp *net.UDPConn, rtpFd int, rtcp *net.UDPConn, err error) {
	ip := p.lay.bind.AsSlice()
	rtpFd = -1
	if p.poll {
		rtpFd, err = p.bindRTPFd(port)
	} else {
		rtp, err = net.ListenUDP(p.network, &net.UDPAddr{IP: ip, Port: port})
	}
	if err != nil {
		return nil, -1, nil, err
	}
	rtcp, err = net.ListenUDP(p.network, &net.UDPAddr{IP: ip, Port: port + 1})
	if err != nil {
		if rtp != nil {
			rtp.Close()
		} else {
			closeFd(rtpFd)
		}
		return nil, -1, nil, err
	}
	return rtp, rtpFd, rtcp, nil
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

// release is called once by Leg.Close after its readers have stopped.
func (p *Pool) release(l *Leg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.live[l]; !ok {
		return
	}
	delete(p.live, l)
	p.closedIn += l.st.pktsIn.Load()
	p.closedOut += l.st.pktsOut.Load()
	p.push(l.pair)
}

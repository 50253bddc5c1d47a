//go:build linux

package rtpproxy

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The poller reader (issue 6). A goroutine per RTP socket parked on Go's
// netpoller costs, per packet, a netpoll wake-up, a goroutine switch, the
// read and a second read that only returns EAGAIN. Instead a few poller
// goroutines owned by the Pool (one per GOMAXPROCS at NewPool, legs assigned
// round robin) each wait on an epoll set of their legs' RTP descriptors,
// level-triggered: one epoll_wait hands over every ready leg, each gets one
// recvmmsg, and what is left in a socket is reported again by the next
// epoll_wait, so no read ever ends in EAGAIN and a flooded leg cannot starve
// the others. RTP sockets of poller legs are opened here, outside the net
// package, so that Go's own netpoller never watches them too. RTCP keeps its
// net.UDPConn and goroutine (a few packets per second).

// pollEvents is how many ready legs one epoll_wait may return.
const pollEvents = 128

// pollBatch is how many datagrams one recvmmsg takes from a ready leg.
const pollBatch = 8

// wakeTag marks the poller's eventfd in the epoll set (pair indices are >= 0).
const wakeTag = -1

// poller is a slot for a running poll loop. Its fields are guarded by Pool.mu.
type poller struct {
	legs int      // legs assigned to run
	run  *pollRun // nil while no leg is assigned: the loop stops with its last leg
}

// pollRun is one poll loop: its epoll set, its buffers and its goroutine.
type pollRun struct {
	pool *Pool
	epfd int
	evfd int // eventfd that wakes the loop to stop
	stop atomic.Bool
	done chan struct{} // closed when the loop has exited and closed its descriptors

	// mu is held by the loop while it handles the events of one
	// epoll_wait; Leg.Close takes it once after removing its descriptor
	// from the set, so that no event fetched before the removal is still
	// being handled when the descriptor is closed. Uncontended but for that.
	mu sync.Mutex
	b  batchBufs // owned by the loop
}

func newPollRun(p *Pool) (*pollRun, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeTag}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	r := &pollRun{pool: p, epfd: epfd, evfd: evfd, done: make(chan struct{}), b: newBatchBufs(pollBatch)}
	go r.loop()
	return r, nil
}

func (r *pollRun) loop() {
	defer close(r.done)
	events := make([]unix.EpollEvent, pollEvents)
	for !r.stop.Load() {
		n, err := unix.EpollWait(r.epfd, events, -1)
		if err != nil {
			if err != unix.EINTR {
				time.Sleep(time.Millisecond) // cannot happen on a valid set; do not spin
			}
			continue
		}
		r.mu.Lock()
		for i := range events[:n] {
			ev := &events[i]
			if ev.Fd < 0 {
				continue // the wake-up: stop is set
			}
			l := r.pool.byPair[ev.Fd].Load()
			if l == nil || l.gen != uint32(ev.Pad) || l.closed.Load() {
				continue // fetched before its leg was closed (the pair may be someone else's now)
			}
			r.b.readOnce(l, uintptr(l.rtpFd))
		}
		r.mu.Unlock()
	}
	unix.Close(r.epfd)
	unix.Close(r.evfd)
}

// attach adds l's RTP descriptor to a poll loop, starting one if needed.
func (p *Pool) attach(l *Leg) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := &p.pollers[p.nextPoller%len(p.pollers)]
	p.nextPoller++
	if pl.run == nil {
		r, err := newPollRun(p)
		if err != nil {
			return err
		}
		pl.run = r
	}
	p.byPair[l.pair].Store(l)
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: l.pair, Pad: int32(l.gen)}
	if err := unix.EpollCtl(pl.run.epfd, unix.EPOLL_CTL_ADD, l.rtpFd, &ev); err != nil {
		p.byPair[l.pair].CompareAndSwap(l, nil)
		p.stopIdle(pl)
		return os.NewSyscallError("epoll_ctl", err)
	}
	pl.legs++
	l.poller = pl
	l.run = pl.run
	return nil
}

// stopIdle tells pl's loop to stop when no leg is left on it. Caller holds p.mu.
func (p *Pool) stopIdle(pl *poller) *pollRun {
	r := pl.run
	if pl.legs > 0 || r == nil {
		return nil
	}
	pl.run = nil
	r.stop.Store(true)
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(r.evfd, one[:]) // cannot fail: the counter is far from overflowing
	return r
}

// detach removes l from its poll loop and waits until the loop cannot be
// handling it any more. l.closed is already set.
func (l *Leg) detach() {
	r := l.run
	if r == nil {
		return
	}
	unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, l.rtpFd, nil)
	r.mu.Lock()
	r.mu.Unlock() //nolint:staticcheck // a barrier: any batch that saw l is over
}

// unassign drops l from its poller's count once its descriptor is closed,
// and stops the loop (waiting for it) if l was its last leg.
func (p *Pool) unassign(l *Leg) {
	if l.poller == nil {
		return
	}
	p.mu.Lock()
	p.byPair[l.pair].CompareAndSwap(l, nil)
	l.poller.legs--
	r := p.stopIdle(l.poller)
	p.mu.Unlock()
	if r != nil {
		<-r.done
	}
}

// bindRTPFd opens and binds a non-blocking UDP socket outside the net package.
func (p *Pool) bindRTPFd(port int) (int, error) {
	family := unix.AF_INET
	if p.lay.bind.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET6 {
		// Dual-stack, as the net package makes "udp" sockets.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			unix.Close(fd)
			return -1, os.NewSyscallError("setsockopt", err)
		}
		sa = &unix.SockaddrInet6{Port: port, Addr: p.lay.bind.As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: port, Addr: p.lay.bind.As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s: %w", netip.AddrPortFrom(p.lay.bind, uint16(port)), os.NewSyscallError("bind", err))
	}
	return fd, nil
}

// usePollers says whether this platform has the poller reader and the
// current read mode selects it.
func usePollers() bool { return readMode == readPoll }

func closeFd(fd int) error {
	if err := unix.Close(fd); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// defaultReadMode: Linux pools read RTP with the pollers.
const defaultReadMode = readPoll

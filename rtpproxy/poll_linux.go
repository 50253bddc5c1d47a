//go:build linux

package rtpproxy

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The poller reader (issue 6). A goroutine per socket parked on Go's
// netpoller costs, per packet, a netpoll wake-up, a goroutine switch, the
// read and a second read that only returns EAGAIN. Instead a few poller
// goroutines owned by the Pool (one per GOMAXPROCS at NewPool, legs assigned
// round robin) each read an epoll set of their legs' RTP and RTCP
// descriptors, level-triggered: one epoll_wait hands over every ready socket,
// each gets one recvmmsg, and what is left in a socket is reported again by
// the next epoll_wait, so no read ever ends in EAGAIN and a flooded leg
// cannot starve the others. The sockets are opened here, outside the net
// package, so that Go's own netpoller never watches them too.
//
// The epoll set itself is watched by Go's netpoller: a loop that finds
// nothing ready parks its goroutine rather than its thread, so it holds no
// P while idle (with GOMAXPROCS=1 a thread blocked in epoll_wait would keep
// the only P until sysmon took it back, stalling the control plane).

// pollEvents is how many ready sockets one epoll_wait may return.
const pollEvents = 128

// pollBatch is how many datagrams one recvmmsg takes from a ready socket.
const pollBatch = 8

// Event tags: the epoll data of a socket is its pair index shifted left by
// one, the low bit set for RTCP; the poller's eventfd has wakeTag.
const (
	wakeTag = -1
	tagRTCP = 1
)

// poller is a slot for a running poll loop; run is nil until the slot's
// first pair is bound, and again after the Pool has closed and its last leg
// is gone. Guarded by Pool.mu.
type poller struct {
	run *pollRun
}

// pollRun is one poll loop: its epoll set, its buffers and its goroutine.
type pollRun struct {
	pool *Pool
	ep   *os.File // the epoll set, registered with Go's netpoller
	epfd int
	evfd int // eventfd that wakes the loop to stop
	stop atomic.Bool
	done chan struct{} // closed when the loop has exited and closed its descriptors

	// mu is held by the loop while it handles the events of one
	// epoll_wait; Leg.Close takes it once after removing its descriptors
	// from the set, so that no event fetched before the removal is still
	// being handled when the descriptors change hands. Uncontended but for
	// that.
	mu     sync.Mutex
	b      batchBufs // owned by the loop
	events []unix.EpollEvent
	rounds int
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
	// Non-blocking, so that os.NewFile hands it to the netpoller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	r := &pollRun{pool: p, ep: os.NewFile(uintptr(epfd), "epoll"), epfd: epfd, evfd: evfd,
		done: make(chan struct{}), b: newBatchBufs(pollBatch), events: make([]unix.EpollEvent, pollEvents)}
	rc, err := r.ep.SyscallConn()
	if err != nil {
		r.ep.Close()
		unix.Close(evfd)
		return nil, err
	}
	go r.loop(rc)
	return r, nil
}

func (r *pollRun) loop(rc syscall.RawConn) {
	defer close(r.done)
	poll := r.poll // one closure for the life of the loop
	for !r.stop.Load() {
		if err := rc.Read(poll); err != nil {
			break // cannot happen: only the loop closes the set
		}
	}
	r.ep.Close()
	unix.Close(r.evfd)
}

// poll is called by the netpoller whenever the epoll set may have ready
// sockets. It handles rounds of events until none is left (returning false
// parks the goroutine until the set is readable again) or the loop must stop.
func (r *pollRun) poll(epfd uintptr) bool {
	for !r.stop.Load() {
		n, _, errno := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, epfd, uintptr(unsafe.Pointer(&r.events[0])),
			uintptr(len(r.events)), 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || n == 0 {
			return false
		}
		r.mu.Lock()
		for i := range r.events[:n] {
			ev := &r.events[i]
			if ev.Fd < 0 {
				continue // the wake-up: stop is set
			}
			// The owner of the pair now, whatever it was when the event
			// was fetched: nil once its sockets are being closed (nothing to
			// read), a closed leg while the pair is idle (what arrives is
			// thrown away), or an open leg.
			l := r.pool.byPair[ev.Fd>>1].Load()
			if l == nil {
				continue
			}
			fd, rtcp := l.s.rtpFd, ev.Fd&tagRTCP != 0
			if rtcp {
				fd = l.s.rtcpFd
			}
			switch {
			case l.closed.Load():
				r.b.read(nil, uintptr(fd), false)
			case rtcp:
				r.b.readRTCPOnce(l, uintptr(fd))
			default:
				r.b.readOnce(l, uintptr(fd))
			}
		}
		r.mu.Unlock()
		// Other goroutines (signalling, the mixer) get their turn between
		// rounds, however busy the sockets are.
		if r.rounds++; r.rounds%fairBatches == 0 {
			runtime.Gosched()
		}
	}
	return true
}

// attach registers the sockets of l, a freshly bound pair, with a poll loop
// (round robin, starting one if needed); they stay there, idle between
// legs, until the pair is closed.
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
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: l.pair << 1}
	err := unix.EpollCtl(pl.run.epfd, unix.EPOLL_CTL_ADD, l.s.rtpFd, &ev)
	if err == nil {
		ev.Fd |= tagRTCP
		if err = unix.EpollCtl(pl.run.epfd, unix.EPOLL_CTL_ADD, l.s.rtcpFd, &ev); err != nil {
			unix.EpollCtl(pl.run.epfd, unix.EPOLL_CTL_DEL, l.s.rtpFd, nil)
		}
	}
	if err != nil {
		p.byPair[l.pair].CompareAndSwap(l, nil)
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.run = pl.run
	return nil
}

// barrier returns once r's loop is handling no event it took before the
// caller's last change to byPair.
func (r *pollRun) barrier() {
	if r != nil {
		r.mu.Lock()
		r.mu.Unlock() //nolint:staticcheck // any round that saw the old value is over
	}
}

// detach waits until l's poll loop handles l no more: from its next round
// on the loop sees l closed and throws away what arrives. l.closed is set.
func (l *Leg) detach() { l.run.barrier() }

// unbind takes the pair of l (open or idle) away from the pollers, so that
// its sockets may be closed.
func (p *Pool) unbind(l *Leg) {
	if p.byPair != nil {
		p.byPair[l.pair].CompareAndSwap(l, nil)
		l.run.barrier()
	}
}

// stopPollers stops every poll loop and waits for them; the Pool is closed
// and has no open leg. Caller holds p.mu.
func (p *Pool) stopPollers() {
	for i := range p.pollers {
		r := p.pollers[i].run
		if r == nil {
			continue
		}
		p.pollers[i].run = nil
		r.stop.Store(true)
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(r.evfd, one[:]) // cannot fail: the counter is far from overflowing
		<-r.done
	}
}

// bindFd opens and binds a non-blocking UDP socket outside the net package.
func (p *Pool) bindFd(port int) (int, error) {
	family := family(p.lay.bind)
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

// family is the socket address family for binding to addr.
func family(addr netip.Addr) int {
	if addr.Is6() {
		return unix.AF_INET6
	}
	return unix.AF_INET
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

//go:build linux

package rtpproxy

import (
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// sender writes datagrams with sendto(MSG_DONTWAIT) on the socket's
// descriptor. The net package would park the caller until the socket is
// writable again, which happens when datagrams pile up below the socket
// (a backed-up interface queue): a relay reader or a conference mixer must
// not stall for that. A datagram that does not fit now is dropped, as a
// congested network would drop it. It also costs fewer atomic operations
// per packet than the net package's write path.
type sender struct {
	fd uintptr
	v6 bool
	// refs counts sends in progress; once closing is set no new one starts,
	// and shut waits for refs to drain before the descriptor may be closed
	// (and its number reused).
	refs    atomic.Int32
	closing atomic.Bool
}

func newSender(c *net.UDPConn, v6 bool) (*sender, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &sender{v6: v6}
	if err := rc.Control(func(fd uintptr) { s.fd = fd }); err != nil {
		return nil, err
	}
	return s, nil
}

// fdSender sends on a descriptor opened outside the net package.
func fdSender(fd int, v6 bool) *sender { return &sender{fd: uintptr(fd), v6: v6} }

// shut stops new sends and waits for those in progress.
func (s *sender) shut() {
	s.closing.Store(true)
	for s.refs.Load() != 0 {
		runtime.Gosched()
	}
}

// sendTo cannot block (MSG_DONTWAIT), so it skips the scheduler's system
// call bookkeeping (RawSyscall6).
func (s *sender) sendTo(pkt []byte, to netip.AddrPort) error {
	s.refs.Add(1)
	defer s.refs.Add(-1)
	if s.closing.Load() {
		return net.ErrClosed
	}
	var buf unsafe.Pointer
	if len(pkt) > 0 {
		buf = unsafe.Pointer(&pkt[0])
	}
	port := to.Port()
	for {
		var errno syscall.Errno
		if s.v6 {
			sa := syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: to.Addr().As16()}
			p := (*[2]byte)(unsafe.Pointer(&sa.Port))
			p[0], p[1] = byte(port>>8), byte(port)
			_, _, errno = syscall.RawSyscall6(syscall.SYS_SENDTO, s.fd, uintptr(buf), uintptr(len(pkt)),
				syscall.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa)), syscall.SizeofSockaddrInet6)
		} else {
			if !to.Addr().Is4() {
				return errAddrFamily
			}
			sa := syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: to.Addr().As4()}
			p := (*[2]byte)(unsafe.Pointer(&sa.Port))
			p[0], p[1] = byte(port>>8), byte(port)
			_, _, errno = syscall.RawSyscall6(syscall.SYS_SENDTO, s.fd, uintptr(buf), uintptr(len(pkt)),
				syscall.MSG_DONTWAIT, uintptr(unsafe.Pointer(&sa)), syscall.SizeofSockaddrInet4)
		}
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return errSendBufferFull
		}
		return errno
	}
}

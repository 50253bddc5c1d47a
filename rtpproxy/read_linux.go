//go:build linux

package rtpproxy

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fairBatches full batches in a row make a flooded socket yield to the
// other legs' readers.
const fairBatches = 16

// batchBufs is what one recvmmsg reads into: headers, addresses and
// buffers for a batch of datagrams, made once and reused.
type batchBufs struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	bufs  [][rtpBufSize]byte
	sum   rtcpSummary // what the RTCP datagram being handled says
}

func newBatchBufs(n int) batchBufs {
	b := batchBufs{
		hdrs:  make([]unix.Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		bufs:  make([][rtpBufSize]byte, n),
	}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(rtpBufSize)
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
		b.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	return b
}

// readOnce takes up to a batch from fd, l's RTP socket, with one
// recvmmsg(MSG_DONTWAIT) and hands each datagram to l. It returns how many
// it read, or -1 when the socket had nothing (or failed).
func (b *batchBufs) readOnce(l *Leg, fd uintptr) int { return b.read(l, fd, false) }

// readRTCPOnce is readOnce for l's RTCP socket.
func (b *batchBufs) readRTCPOnce(l *Leg, fd uintptr) int { return b.read(l, fd, true) }

// read takes up to a batch from fd and hands the datagrams to l (nil throws
// them away). The call cannot block, so it does not go through the scheduler's
// system call bookkeeping.
func (b *batchBufs) read(l *Leg, fd uintptr, rtcp bool) int {
	for i := range b.hdrs {
		b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.hdrs[i].Hdr.Flags = 0
	}
	var r uintptr
	var errno syscall.Errno
	for {
		r, _, errno = syscall.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])),
			uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if errno != syscall.EINTR {
			break
		}
	}
	if errno != 0 {
		return -1 // EAGAIN: drained. Anything else: wait for the next packet.
	}
	n := int(r)
	if l == nil {
		return n // thrown away
	}
	for i := range n {
		h := &b.hdrs[i]
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			continue // larger than the buffer: do not forward a torso
		}
		src, ok := sockaddrAddrPort(&b.names[i])
		if !ok {
			continue
		}
		if rtcp {
			l.handleRTCP(b.bufs[i][:h.Len], src, &b.sum)
		} else {
			l.handleRTP(b.bufs[i][:h.Len], src)
		}
	}
	return n
}

// drain discards what arrived on the sockets of an idle pair. One ppoll
// without a wait asks both sockets at once whether anything is there (the
// pollers usually threw it all away already); a socket that has something
// is read with one recvfrom per datagram into a one-octet buffer (the rest
// is truncated away) until it is empty.
func (s sockets) drain() {
	fds := [2]unix.PollFd{{Fd: int32(s.rtpFd), Events: unix.POLLIN}, {Fd: int32(s.rtcpFd), Events: unix.POLLIN}}
	var noWait unix.Timespec
	var errno syscall.Errno
	for {
		_, _, errno = syscall.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), uintptr(len(fds)),
			uintptr(unsafe.Pointer(&noWait)), 0, 0, 0)
		if errno != syscall.EINTR {
			break
		}
	}
	var one [1]byte
	for i := range fds {
		if errno == 0 && fds[i].Revents == 0 || fds[i].Fd < 0 {
			continue // empty (a failed ppoll reads both)
		}
		for {
			_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fds[i].Fd), uintptr(unsafe.Pointer(&one[0])), 1,
				unix.MSG_DONTWAIT, 0, 0)
			if errno != 0 && errno != syscall.EINTR {
				break // EAGAIN: empty
			}
		}
	}
}

// rtpBatch is the goroutine reader of one leg on Go's netpoller (readMode
// readRecvmmsg). Besides taking a burst in one call, a batch that comes back
// short proves the socket was drained, so the reader can wait for the next
// readiness edge without the extra read that would only return EAGAIN.
type rtpBatch struct {
	l *Leg
	b batchBufs
}

func (l *Leg) readRTP() {
	defer l.wg.Done()
	rc, err := l.s.rtp.SyscallConn()
	if err != nil || readMode == readRecvfrom {
		l.readRTPPortable()
		return
	}
	b := &rtpBatch{l: l, b: newBatchBufs(readBatch)}
	read := b.read // one closure for the life of the reader
	for !l.closed.Load() {
		if err := rc.Read(read); err != nil {
			return // the socket was closed
		}
	}
}

// read is called by the runtime poller whenever the socket may be readable;
// returning false waits for the next readiness edge, true leaves Read.
func (b *rtpBatch) read(fd uintptr) bool {
	for full := 0; ; {
		if b.l.closed.Load() {
			return true
		}
		if n := b.b.readOnce(b.l, fd); n < readBatch {
			return false
		}
		if full++; full == fairBatches {
			full = 0
			runtime.Gosched()
		}
	}
}

func sockaddrAddrPort(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port), true
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port), true
	}
	return netip.AddrPort{}, false
}

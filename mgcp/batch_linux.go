//go:build linux

package mgcp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one recvmmsg takes and one sendmmsg
// sends at most.
const batchSize = 32

// batchIO reads the MGCP socket with recvmmsg and answers with sendmmsg:
// under load the call agents' commands queue in the socket, and one system
// call then takes a batch of them and one sends their answers, where
// recvfrom and sendto cost a call (and on loopback a wake-up of the reader)
// per datagram. An idle socket still answers each command at once: a batch
// is whatever was waiting, never a wait for more.
type batchIO struct {
	rc     syscall.RawConn
	inet6  bool // the socket is AF_INET6 (IPv4 peers as ::ffff:a.b.c.d)
	rhdrs  []unix.Mmsghdr
	riovs  []unix.Iovec
	rnames []unix.RawSockaddrInet6 // large enough for either family
	bufs   [][]byte

	out    []outDatagram // answers of the batch, in order
	shdrs  []unix.Mmsghdr
	siovs  []unix.Iovec
	snames []unix.RawSockaddrInet6
}

// newBatchIO returns batched I/O on conn, or nil where conn is not a UDP
// socket of the kernel (the caller then reads one datagram at a time).
func newBatchIO(conn net.PacketConn) *batchIO {
	udp, ok := conn.(*net.UDPConn)
	if !ok {
		return nil
	}
	rc, err := udp.SyscallConn()
	if err != nil {
		return nil
	}
	domain := -1
	if err := rc.Control(func(fd uintptr) {
		domain, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil || (domain != unix.AF_INET && domain != unix.AF_INET6) {
		return nil
	}
	b := &batchIO{
		rc: rc, inet6: domain == unix.AF_INET6,
		rhdrs: make([]unix.Mmsghdr, batchSize), riovs: make([]unix.Iovec, batchSize),
		rnames: make([]unix.RawSockaddrInet6, batchSize), bufs: make([][]byte, batchSize),
		shdrs: make([]unix.Mmsghdr, batchSize), siovs: make([]unix.Iovec, batchSize),
		snames: make([]unix.RawSockaddrInet6, batchSize),
	}
	for i := range b.rhdrs {
		b.bufs[i] = make([]byte, 65536) // a whole UDP datagram, as the one-at-a-time path reads
		b.riovs[i].Base = &b.bufs[i][0]
		b.riovs[i].SetLen(len(b.bufs[i]))
		b.rhdrs[i].Hdr.Iov = &b.riovs[i]
		b.rhdrs[i].Hdr.SetIovlen(1)
		b.rhdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.rnames[i]))
		b.shdrs[i].Hdr.Iov = &b.siovs[i]
		b.shdrs[i].Hdr.SetIovlen(1)
		b.shdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.snames[i]))
	}
	return b
}

// read waits for at least one datagram and returns how many it took; the
// read deadline ends the wait with a timeout error.
func (b *batchIO) read() (int, error) {
	var n int
	var errno syscall.Errno
	// The calls cannot block (MSG_DONTWAIT), so they skip the scheduler's
	// system call bookkeeping; the netpoller does the waiting.
	err := b.rc.Read(func(fd uintptr) bool {
		for i := range b.rhdrs {
			b.rhdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
			b.rhdrs[i].Hdr.Flags = 0
		}
		for {
			r, _, e := syscall.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rhdrs[0])),
				uintptr(len(b.rhdrs)), unix.MSG_DONTWAIT, 0, 0)
			if e == syscall.EINTR {
				continue
			}
			n, errno = int(r), e
			return e != syscall.EAGAIN
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return n, nil
}

// datagram is the i-th datagram of the last read and its source (IPv4 as
// IPv4). ok is false for one that cannot be answered: truncated, or from
// an address family other than IP.
func (b *batchIO) datagram(i int) (src netip.AddrPort, data []byte, ok bool) {
	h := &b.rhdrs[i]
	if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
		return src, nil, false
	}
	src, ok = sockaddrToAddrPort(&b.rnames[i])
	return src, b.bufs[i][:h.Len], ok
}

// queue adds an answer to the batch; flush sends it.
func (b *batchIO) queue(data []byte, dst netip.AddrPort) {
	b.out = append(b.out, outDatagram{data: data, dst: dst})
}

// flush sends the queued answers in order, batchSize per sendmmsg, and
// calls failed for each one the kernel refused (the others still go).
func (b *batchIO) flush(failed func(outDatagram, error)) {
	out := b.out
	for len(out) > 0 {
		n := 0
		for n < len(out) && n < batchSize {
			o := out[n]
			nameLen, ok := addrPortToSockaddr(o.dst, b.inet6, &b.snames[n])
			if !ok {
				break
			}
			b.siovs[n].Base = unsafe.SliceData(o.data)
			b.siovs[n].SetLen(len(o.data))
			b.shdrs[n].Hdr.Namelen = nameLen
			n++
		}
		if n == 0 { // the first cannot be addressed from this socket
			failed(out[0], syscall.EAFNOSUPPORT)
			out = out[1:]
			continue
		}
		sent, err := b.send(n)
		if err != nil { // the first of the batch failed: report it, go on with the rest
			failed(out[0], err)
			sent = 1
		}
		out = out[sent:]
	}
	clear(b.out) // the queue keeps its array, not the answers
	b.out = b.out[:0]
}

// send sends the first n prepared datagrams: how many went, or 0 and the
// error that stopped the first of them.
func (b *batchIO) send(n int) (int, error) {
	var sent int
	var errno syscall.Errno
	err := b.rc.Write(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.shdrs[0])),
				uintptr(n), unix.MSG_DONTWAIT, 0, 0)
			if e == syscall.EINTR {
				continue
			}
			if e == syscall.EAGAIN {
				return false // the send buffer is full: wait until it has room
			}
			sent, errno = int(r), e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, errno
	}
	return sent, nil
}

func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port), true
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		a := netip.AddrFrom16(sa.Addr).Unmap()
		if sa.Scope_id != 0 && a.Is6() {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, port), true
	}
	return netip.AddrPort{}, false
}

// addrPortToSockaddr writes dst as the socket's family wants it into sa and
// returns its length; false when an IPv4 socket is asked for an IPv6 peer.
func addrPortToSockaddr(dst netip.AddrPort, inet6 bool, sa *unix.RawSockaddrInet6) (uint32, bool) {
	a := dst.Addr()
	if !inet6 {
		a = a.Unmap()
		if !a.Is4() {
			return 0, false
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], dst.Port())
		return unix.SizeofSockaddrInet4, true
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], dst.Port())
	if z := a.Zone(); z != "" {
		if id, err := strconv.ParseUint(z, 10, 32); err == nil {
			sa.Scope_id = uint32(id)
		} else if ifi, err := net.InterfaceByName(z); err == nil {
			sa.Scope_id = uint32(ifi.Index)
		}
	}
	return unix.SizeofSockaddrInet6, true
}

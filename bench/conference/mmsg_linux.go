//go:build linux

package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batch is a set of sendmmsg/recvmmsg message headers over fixed buffers.
type batch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
	oob   [][]byte
	bufs  [][]byte
}

const (
	maxBatch = 64
	pktSize  = 1500
	oobSize  = 64
)

func newBatch() *batch {
	b := &batch{
		hdrs:  make([]unix.Mmsghdr, maxBatch),
		iovs:  make([]unix.Iovec, maxBatch),
		names: make([]unix.RawSockaddrInet4, maxBatch),
		oob:   make([][]byte, maxBatch),
		bufs:  make([][]byte, maxBatch),
	}
	for i := range b.hdrs {
		b.bufs[i] = make([]byte, pktSize)
		b.oob[i] = make([]byte, oobSize)
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(pktSize)
		h := &b.hdrs[i].Hdr
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Namelen = unix.SizeofSockaddrInet4
	}
	return b
}

// setDest addresses message i to ap with n bytes of bufs[i].
func (b *batch) setDest(i int, ap netip.AddrPort, n int) {
	sa := &b.names[i]
	sa.Family = unix.AF_INET
	sa.Addr = ap.Addr().As4()
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], ap.Port())
	b.iovs[i].SetLen(n)
	b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
}

// sendmmsg sends messages [0, n); it waits for room when the socket is full.
func sendmmsg(c *net.UDPConn, b *batch, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	off := 0
	var serr error
	werr := rc.Write(func(fd uintptr) bool {
		for off < n {
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[off])), uintptr(n-off), unix.MSG_DONTWAIT, 0, 0)
			if errno == unix.EAGAIN {
				return false
			}
			if errno != 0 {
				serr = errno
				return true
			}
			off += int(r)
		}
		return true
	})
	if werr != nil {
		return werr
	}
	return serr
}

// recvLoop reads c with recvmmsg until it is closed, calling fn for each
// datagram with its source port and kernel receive time (SO_TIMESTAMPNS).
func recvLoop(c *net.UDPConn, fn func(pkt []byte, srcPort uint16, at int64)) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	if err := rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
	}); err != nil {
		return err
	}
	b := newBatch()
	for i := range b.hdrs {
		b.hdrs[i].Hdr.Control = &b.oob[i][0]
	}
	read := func(fd uintptr) bool {
		for {
			for i := range b.hdrs {
				b.iovs[i].SetLen(pktSize)
				b.hdrs[i].Hdr.SetControllen(oobSize)
				b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
			}
			r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), maxBatch, unix.MSG_DONTWAIT, 0, 0)
			if errno == unix.EAGAIN {
				return false
			}
			if errno != 0 {
				return true
			}
			for i := 0; i < int(r); i++ {
				h := &b.hdrs[i]
				port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&b.names[i].Port))[:])
				fn(b.bufs[i][:h.Len], port, cmsgTime(b.oob[i][:h.Hdr.Controllen]))
			}
			if int(r) < maxBatch {
				return false
			}
		}
	}
	for {
		if err := rc.Read(read); err != nil {
			return err
		}
	}
}

// cmsgTime finds the SCM_TIMESTAMPNS control message (0 when absent).
func cmsgTime(oob []byte) int64 {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l >= unix.CmsgLen(16) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return ts.Sec*1e9 + ts.Nsec
		}
		oob = oob[unix.CmsgSpace(l-unix.SizeofCmsghdr):]
	}
	return 0
}

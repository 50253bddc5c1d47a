//go:build !linux

package mgcp

import (
	"net"
	"net/netip"
)

// batchIO is recvmmsg/sendmmsg on Linux; elsewhere Serve reads one
// datagram at a time.
type batchIO struct{}

func newBatchIO(net.PacketConn) *batchIO { return nil }

func (*batchIO) read() (int, error)                          { return 0, net.ErrClosed }
func (*batchIO) datagram(int) (netip.AddrPort, []byte, bool) { return netip.AddrPort{}, nil, false }
func (*batchIO) queue([]byte, netip.AddrPort)                {}
func (*batchIO) flush(func(outDatagram, error))              {}

//go:build !linux

package rtpproxy

import (
	"net"
	"net/netip"
)

// sender writes through the net package (which waits while the socket's
// send buffer is full).
type sender struct {
	c *net.UDPConn
}

func newSender(c *net.UDPConn, v6 bool) (*sender, error) { return &sender{c: c}, nil }

func (s *sender) shut() {}

func (s *sender) sendTo(pkt []byte, to netip.AddrPort) error {
	_, err := s.c.WriteToUDPAddrPort(pkt, to)
	return err
}

func fdSender(fd int, v6 bool) *sender { return &sender{} }

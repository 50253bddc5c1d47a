//go:build linux

package rtpproxy

import (
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// drain empties both sockets of a pair, whichever of them has datagrams
// waiting, and returns at once when neither has.
func TestDrainEmptiesBothSockets(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rtp, rtcp int
	}{{"both", 3, 2}, {"rtcp only", 0, 2}, {"rtp only", 4, 0}, {"none", 0, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			s := unbound // on ports the kernel picks: the test needs no particular pair
			defer func() { s.close() }()
			ports := [2]int{}
			for i, fd := range []*int{&s.rtpFd, &s.rtcpFd} {
				f, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				*fd = f
				if err := unix.Bind(f, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
					t.Fatal(err)
				}
				sa, err := unix.Getsockname(f)
				if err != nil {
					t.Fatal(err)
				}
				ports[i] = sa.(*unix.SockaddrInet4).Port
			}
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i, n := range []int{tc.rtp, tc.rtcp} {
				for range n {
					if _, err := c.WriteToUDP(make([]byte, 172), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports[i]}); err != nil {
						t.Fatal(err)
					}
				}
			}
			s.drain()
			var one [1]byte
			for _, fd := range []int{s.rtpFd, s.rtcpFd} {
				if _, _, err := unix.Recvfrom(fd, one[:], unix.MSG_DONTWAIT); err != syscall.EAGAIN {
					t.Fatalf("fd %d after drain: %v, want EAGAIN", fd, err)
				}
			}
		})
	}
}

package rtpproxy

import (
	"errors"
	"net"
)

// readRTPPortable reads one datagram per call through the net package.
func (l *Leg) readRTPPortable() {
	buf := make([]byte, rtpBufSize)
	for {
		n, src, err := l.rtp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l.handleRTP(buf[:n], src)
	}
}

package rtpproxy

import (
	"errors"
	"net"
)

// readBatch is how many datagrams one recvmmsg may return.
const readBatch = 4

// batchRead selects the recvmmsg reader where there is one; benchmarks
// turn it off to compare.
var batchRead = true

// readRTPPortable reads one datagram per call through the net package.
// The buffer has one octet to spare so that a datagram too large for the
// batch reader is recognised and dropped here too.
func (l *Leg) readRTPPortable() {
	buf := make([]byte, rtpBufSize+1)
	for {
		n, src, err := l.rtp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if n > rtpBufSize {
			continue // do not forward a torso
		}
		l.handleRTP(buf[:n], src)
	}
}

package rtpproxy

import (
	"errors"
	"net"
)

// readBatch is how many datagrams one recvmmsg of a goroutine reader may return.
const readBatch = 4

// Read modes: how a leg's RTP socket is read.
const (
	readPoll     = "poll"     // Linux: the Pool's epoll poller goroutines (the default there)
	readRecvmmsg = "recvmmsg" // Linux: a goroutine per leg on Go's netpoller, recvmmsg batches
	readRecvfrom = "recvfrom" // a goroutine per leg, one datagram per read through the net package
)

// readMode selects the RTP reader of the pools made after it is set; a
// platform falls back to what it has. Tests and benchmarks change it to
// compare.
var readMode = defaultReadMode

// readRTPPortable reads one datagram per call through the net package.
// The buffer has one octet to spare so that a datagram too large for the
// batch reader is recognised and dropped here too.
func (l *Leg) readRTPPortable() {
	buf := make([]byte, rtpBufSize+1)
	for {
		n, src, err := l.s.rtp.ReadFromUDPAddrPort(buf)
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

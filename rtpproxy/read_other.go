//go:build !linux

package rtpproxy

// defaultReadMode: without recvmmsg and the pollers, a goroutine per leg
// reads through the net package.
const defaultReadMode = readRecvfrom

func (l *Leg) readRTP() {
	defer l.wg.Done()
	l.readRTPPortable()
}

//go:build !linux

package rtpproxy

func (l *Leg) readRTP() {
	defer l.wg.Done()
	l.readRTPPortable()
}

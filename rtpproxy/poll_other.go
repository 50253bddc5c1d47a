//go:build !linux

package rtpproxy

import "errors"

// Without the poller reader every leg has its own goroutine reader.

type poller struct{}
type pollRun struct{}

func usePollers() bool              { return false }
func (p *Pool) attach(l *Leg) error { return errors.New("rtpproxy: no poller reader on this platform") }
func (l *Leg) detach()              {}
func (p *Pool) unbind(l *Leg)       {}
func (p *Pool) stopPollers()        {}
func (p *Pool) bindFd(port int) (int, error) {
	return -1, errors.New("rtpproxy: no poller reader on this platform")
}
func closeFd(fd int) error { return nil }
func (s sockets) drain()   {}

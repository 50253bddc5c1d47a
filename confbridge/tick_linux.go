//go:build linux

package confbridge

import (
	"encoding/binary"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// timerSourceFD paces a shard with a periodic timerfd on CLOCK_MONOTONIC,
// read through the runtime's poller: the kernel's high-resolution timer
// wakes the shard within microseconds, no thread is held while it waits,
// and the expiration count says exactly how many periods were missed.
type timerSourceFD struct {
	f      *os.File
	period int64
	due    int64 // CLOCK_MONOTONIC ns of the next expiration
	buf    [8]byte
	once   sync.Once
}

func newTickSource(first, period time.Duration) tickSource {
	if s, err := newTimerSourceFD(first, period); err == nil {
		return s
	}
	return newTimerSource(time.Now().Add(first), period)
}

func newTimerSourceFD(first, period time.Duration) (*timerSourceFD, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	now, err := monotonic()
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	s := &timerSourceFD{period: int64(period), due: now + int64(first)}
	spec := unix.ItimerSpec{Interval: unix.NsecToTimespec(s.period), Value: unix.NsecToTimespec(s.due)}
	if err := unix.TimerfdSettime(fd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
		unix.Close(fd)
		return nil, err
	}
	s.f = os.NewFile(uintptr(fd), "confbridge-tick") // non-blocking: polled
	return s, nil
}

func monotonic() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return ts.Nano(), nil
}

func (s *timerSourceFD) wait() (time.Duration, int, bool) {
	n, err := s.f.Read(s.buf[:])
	if err != nil || n != len(s.buf) {
		return 0, 0, false
	}
	exp := int64(binary.NativeEndian.Uint64(s.buf[:]))
	if exp < 1 {
		exp = 1
	}
	last := s.due + (exp-1)*s.period // the expiration that woke us
	s.due = last + s.period
	now, err := monotonic()
	if err != nil {
		return 0, int(exp - 1), true
	}
	return time.Duration(now - last), int(exp - 1), true
}

// pause disarms the timer; the expirations not yet read go with it.
func (s *timerSourceFD) pause() { s.settime(unix.ItimerSpec{}) }

func (s *timerSourceFD) resume() {
	if now, err := monotonic(); err == nil && s.due <= now {
		s.due += ((now-s.due)/s.period + 1) * s.period
	}
	s.settime(unix.ItimerSpec{Interval: unix.NsecToTimespec(s.period), Value: unix.NsecToTimespec(s.due)})
}

// settime sets the timer through the file, so that it does nothing once the
// source is closed (its number may belong to another file by then).
func (s *timerSourceFD) settime(spec unix.ItimerSpec) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.TimerfdSettime(int(fd), unix.TFD_TIMER_ABSTIME, &spec, nil)
	})
}

func (s *timerSourceFD) close() { s.once.Do(func() { s.f.Close() }) }

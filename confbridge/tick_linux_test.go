//go:build linux

package confbridge

import (
	"testing"

	"golang.org/x/sys/unix"
)

// platformExpired reads a timerfd source's descriptor once without waiting
// (it is non-blocking): true when an expiration was there.
func platformExpired(t *testing.T, src tickSource) (expired, known bool) {
	t.Helper()
	s, ok := src.(*timerSourceFD)
	if !ok {
		return false, false
	}
	rc, err := s.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var rerr error
	if err := rc.Control(func(fd uintptr) {
		var b [8]byte
		n, rerr = unix.Read(int(fd), b[:])
	}); err != nil {
		t.Fatal(err)
	}
	return rerr == nil && n == 8, true
}

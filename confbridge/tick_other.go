//go:build !linux

package confbridge

import "time"

func newTickSource(first, period time.Duration) tickSource {
	return newTimerSource(time.Now().Add(first), period)
}

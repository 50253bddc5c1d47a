//go:build !linux

package confbridge

import "testing"

// platformExpired: other systems pace with timerSource only.
func platformExpired(*testing.T, tickSource) (expired, known bool) { return false, false }

//go:build !linux

package sip

import "net"

// stampReceives is SO_TIMESTAMPNS on Linux; elsewhere the queue delay is
// not measured and sip.overload.queue_delay does nothing.
func stampReceives(*net.UDPConn) bool { return false }

const stampOOB = 0

func arrival([]byte) (int64, bool) { return 0, false }

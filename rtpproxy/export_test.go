package rtpproxy

import "testing"

// setReadMode selects the RTP reader of the pools the test makes.
func setReadMode(tb testing.TB, mode string) {
	old := readMode
	readMode = mode
	tb.Cleanup(func() { readMode = old })
}

// readModes are the readers this platform can run.
var readModes = []string{readPoll, readRecvmmsg, readRecvfrom}

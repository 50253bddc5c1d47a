package rtpproxy

import "testing"

func setBatchRead(tb testing.TB, on bool) {
	old := batchRead
	batchRead = on
	tb.Cleanup(func() { batchRead = old })
}

package sip

import (
	"testing"

	"go.uber.org/goleak"
)

// Every call leg, transaction and background BYE must be gone when the
// tests end. One exception: sipgo v1.7.2 can leave the reader of a UDP
// connection it opened for an outgoing request parked after its UA is
// closed (its transport closes listener connections, and client ones only
// when their reference count drops); that goroutine is sipgo's, not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/emiago/sipgo/sip.(*TransportUDP).readUDPConnection"))
}

package store

import (
	"testing"

	"go.uber.org/goleak"
)

// Every store closes its writer, heartbeat, reservations and connections.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

package sip

import (
	"testing"

	"go.uber.org/goleak"
)

// Every call leg, transaction and background BYE must be gone when the
// tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

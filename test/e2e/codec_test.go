package e2e

import "testing"

// The test peers' own G.711 must be right for their verdicts to mean anything.
func TestPeerG711RoundTrip(t *testing.T) {
	for _, pt := range []uint8{0, 8} {
		for s := -32768; s <= 32767; s += 7 {
			got := int(decode(pt, encode(pt, int16(s))))
			tol := abs(s)/16 + 16
			if abs(got-s) > tol {
				t.Fatalf("pt %d: %d → %d (tolerance %d)", pt, s, got, tol)
			}
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

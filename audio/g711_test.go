package audio

import "testing"

// Every code decodes and re-encodes to itself (µ-law's two zeros aside),
// and encoding is monotonic: the tables agree with the encoders.
func TestG711RoundTrip(t *testing.T) {
	for i := range 256 {
		u := byte(i)
		if got := UlawEncode(UlawDecode(u)); got != u && !(u == 0x7f && got == 0xff) {
			t.Errorf("µ-law %#02x -> %d -> %#02x", u, UlawDecode(u), got)
		}
		a := byte(i)
		if got := AlawEncode(AlawDecode(a)); got != a {
			t.Errorf("A-law %#02x -> %d -> %#02x", a, AlawDecode(a), got)
		}
	}
	prevU, prevA := int16(-32768), int16(-32768)
	for s := -32768; s <= 32767; s += 7 {
		du, da := UlawDecode(UlawEncode(int16(s))), AlawDecode(AlawEncode(int16(s)))
		if du < prevU || da < prevA {
			t.Fatalf("not monotonic at %d: µ %d<%d or A %d<%d", s, du, prevU, da, prevA)
		}
		prevU, prevA = du, da
		if e := abs(int(du) - s); e > 1100 {
			t.Fatalf("µ-law error %d at %d", e, s)
		}
		if e := abs(int(da) - s); e > 1100 {
			t.Fatalf("A-law error %d at %d", e, s)
		}
	}
	// Known points: silence codes and full scale.
	if UlawEncode(0) != 0xff || AlawEncode(0) != 0xd5 {
		t.Errorf("silence: µ %#x A %#x", UlawEncode(0), AlawEncode(0))
	}
	if UlawDecode(0x00) != -32124 || UlawDecode(0x80) != 32124 || AlawDecode(0xaa) != 32256 {
		t.Errorf("full scale: %d %d %d", UlawDecode(0), UlawDecode(0x80), AlawDecode(0xaa))
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

package confbridge

import "testing"

// The reference algorithm: the classic Sun Microsystems g711.c (public
// domain), with its linear segment search, written independently of the
// bit-length formulation the tables are built from.

var (
	refSegUEnd = [8]int{0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF}
	refSegAEnd = [8]int{0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF}
)

func refSearch(v int, table [8]int) int {
	for i, e := range table {
		if v <= e {
			return i
		}
	}
	return 8
}

func refLinearToUlaw(pcm int16) byte {
	v := int(pcm) >> 2
	mask := 0xFF
	if v < 0 {
		v = -v
		mask = 0x7F
	}
	if v > 8159 {
		v = 8159
	}
	v += 0x84 >> 2
	seg := refSearch(v, refSegUEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	return byte(((seg << 4) | ((v >> (seg + 1)) & 0xF)) ^ mask)
}

func refUlawToLinear(u byte) int16 {
	x := int(^u)
	t := ((x & 0x0F) << 3) + 0x84
	t <<= uint((x & 0x70) >> 4)
	if x&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

func refLinearToAlaw(pcm int16) byte {
	v := int(pcm) >> 3
	var mask int
	if v >= 0 {
		mask = 0xD5
	} else {
		mask = 0x55
		v = -v - 1
	}
	seg := refSearch(v, refSegAEnd)
	if seg >= 8 {
		return byte(0x7F ^ mask)
	}
	a := seg << 4
	if seg < 2 {
		a |= (v >> 1) & 0xF
	} else {
		a |= (v >> seg) & 0xF
	}
	return byte(a ^ mask)
}

func refAlawToLinear(a byte) int16 {
	x := int(a ^ 0x55)
	t := (x & 0x0F) << 4
	seg := (x & 0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= uint(seg - 1)
	}
	if x&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

func TestG711DecodeTablesMatchReference(t *testing.T) {
	for c := 0; c < 256; c++ {
		if got, want := ulawToLinear[c], refUlawToLinear(byte(c)); got != want {
			t.Fatalf("ulaw decode %#02x = %d, reference %d", c, got, want)
		}
		if got, want := alawToLinear[c], refAlawToLinear(byte(c)); got != want {
			t.Fatalf("alaw decode %#02x = %d, reference %d", c, got, want)
		}
	}
}

func TestG711EncodeTablesMatchReference(t *testing.T) {
	src := make([]int16, 1)
	dst := make([]byte, 1)
	for s := -32768; s <= 32767; s++ {
		src[0] = int16(s)
		lawU.encode(dst, src)
		if want := refLinearToUlaw(int16(s)); dst[0] != want {
			t.Fatalf("ulaw encode %d = %#02x, reference %#02x", s, dst[0], want)
		}
		lawA.encode(dst, src)
		if want := refLinearToAlaw(int16(s)); dst[0] != want {
			t.Fatalf("alaw encode %d = %#02x, reference %#02x", s, dst[0], want)
		}
	}
}

func TestG711KnownValues(t *testing.T) {
	tests := map[string]struct {
		l    *law
		code byte
		want int16
	}{
		"ulaw zero":         {lawU, 0xFF, 0},
		"ulaw negative 0":   {lawU, 0x7F, 0},
		"ulaw max positive": {lawU, 0x80, 32124},
		"ulaw max negative": {lawU, 0x00, -32124},
		"alaw smallest":     {lawA, 0xD5, 8},
		"alaw smallest neg": {lawA, 0x55, -8},
		"alaw max positive": {lawA, 0xAA, 32256},
		"alaw max negative": {lawA, 0x2A, -32256},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.l.dec[tc.code]; got != tc.want {
				t.Fatalf("decode %#02x = %d, want %d", tc.code, got, tc.want)
			}
		})
	}
}

// Every decoded level is a fixed point: encoding it gives back a code that
// decodes to the same level, and encoding is monotonic in the input.
func TestG711RoundTrip(t *testing.T) {
	for _, l := range []*law{lawU, lawA} {
		src, dst := make([]int16, 1), make([]byte, 1)
		for c := 0; c < 256; c++ {
			src[0] = l.dec[c]
			l.encode(dst, src)
			if got := l.dec[dst[0]]; got != src[0] {
				t.Fatalf("ulaw=%v code %#02x: level %d re-encodes to %#02x = %d", l.ulaw, c, src[0], dst[0], got)
			}
		}
		prev := int16(-32768)
		for s := -32768; s <= 32767; s++ {
			src[0] = int16(s)
			l.encode(dst, src)
			v := l.dec[dst[0]]
			if v < prev {
				t.Fatalf("ulaw=%v not monotonic at %d: %d < %d", l.ulaw, s, v, prev)
			}
			prev = v
			// The quantisation error is bounded by half the step of the segment.
			if d := int(v) - s; d > 1100 || d < -1100 {
				t.Fatalf("ulaw=%v input %d decodes back to %d", l.ulaw, s, v)
			}
		}
	}
}

func TestEncodeSatSaturates(t *testing.T) {
	dst := make([]byte, 4)
	lawU.encodeSat(dst, []int32{100000, -100000, 32767, -32768})
	if dst[0] != dst[2] || dst[1] != dst[3] {
		t.Fatalf("saturation: %x", dst)
	}
	if lawU.dec[dst[0]] != 32124 || lawU.dec[dst[1]] != -32124 {
		t.Fatalf("saturated levels %d %d", lawU.dec[dst[0]], lawU.dec[dst[1]])
	}
}

func TestParseCodec(t *testing.T) {
	for name, want := range map[string]Codec{"PCMU": PCMU, "pcmu": PCMU, "PcMa": PCMA} {
		if c, ok := ParseCodec(name); !ok || c != want {
			t.Errorf("ParseCodec(%q) = %v %v", name, c, ok)
		}
	}
	for _, name := range []string{"", "G729", "opus"} {
		if _, ok := ParseCodec(name); ok {
			t.Errorf("ParseCodec(%q) accepted", name)
		}
	}
}

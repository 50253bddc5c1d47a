package audio

// G.711 (ITU-T G.711, 1988): µ-law and A-law companding of 16-bit linear
// samples. Decoding is a 256-entry table built once; encoding works on the
// 13/14-bit magnitude with the segment found by a leading-zero count.

import "math/bits"

var (
	ulawToLinear [256]int16
	alawToLinear [256]int16
)

func init() {
	for i := range 256 {
		ulawToLinear[i] = ulawDecode(byte(i))
		alawToLinear[i] = alawDecode(byte(i))
	}
}

func ulawDecode(u byte) int16 {
	u = ^u
	t := (int32(u&0x0f) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

func alawDecode(a byte) int16 {
	a ^= 0x55
	t := int32(a&0x0f) << 4
	seg := (a & 0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// UlawDecode returns the linear sample of a µ-law byte.
func UlawDecode(u byte) int16 { return ulawToLinear[u] }

// AlawDecode returns the linear sample of an A-law byte.
func AlawDecode(a byte) int16 { return alawToLinear[a] }

// UlawEncode compands a linear sample to µ-law.
func UlawEncode(s int16) byte {
	const bias, clip = 0x84, 32635
	v := int32(s)
	mask := byte(0xff)
	if v < 0 {
		v = -v
		mask = 0x7f
	}
	if v > clip {
		v = clip
	}
	v += bias
	seg := byte(bits.Len32(uint32(v)>>7)) - 1 // v >= 0x84: Len >= 1
	if seg > 7 {
		seg = 7
	}
	return (seg<<4 | byte(v>>(seg+3))&0x0f) ^ mask
}

// AlawEncode compands a linear sample to A-law.
func AlawEncode(s int16) byte {
	v := int32(s)
	mask := byte(0xd5)
	if v < 0 {
		v = -v - 1
		mask = 0x55
	}
	if v > 32767 {
		v = 32767
	}
	v >>= 3 // 13-bit magnitude
	var out byte
	if v < 32 {
		out = byte(v >> 1)
	} else {
		seg := byte(bits.Len32(uint32(v))) - 5 // v in [32, 4095]: Len 6..12
		if seg > 7 {
			seg = 7
		}
		out = seg<<4 | byte(v>>seg)&0x0f
	}
	return out ^ mask
}

// DecodeUlaw appends nothing: it decodes src into dst[:len(src)].
func DecodeUlaw(dst []int16, src []byte) {
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = ulawToLinear[b]
	}
}

// DecodeAlaw decodes src into dst[:len(src)].
func DecodeAlaw(dst []int16, src []byte) {
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = alawToLinear[b]
	}
}

// EncodeUlaw encodes src into dst[:len(src)].
func EncodeUlaw(dst []byte, src []int16) {
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = UlawEncode(s)
	}
}

// EncodeAlaw encodes src into dst[:len(src)].
func EncodeAlaw(dst []byte, src []int16) {
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = AlawEncode(s)
	}
}

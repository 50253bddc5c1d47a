package confbridge

import "math/bits"

// G.711 by lookup tables. Decoding is one 256-entry table per law. Encoding
// indexes a table by the top bits of the 16-bit sample: µ-law uses 14 bits
// (16384 entries), A-law 13 bits (8192 entries), which is exactly the input
// resolution each law's encoder looks at, so the tables lose nothing.
var (
	ulawToLinear [256]int16
	alawToLinear [256]int16
	linearToUlaw [1 << 14]byte // index: uint16(s>>2) & 0x3fff
	linearToAlaw [1 << 13]byte // index: uint16(s>>3) & 0x1fff
	ulawAbs      [256]uint16   // |decoded sample|, for the energy detector
	alawAbs      [256]uint16
)

const (
	ulawSilence = 0xff // encodes 0
	alawSilence = 0xd5 // encodes +8, the smallest positive level
)

func init() {
	for i := 0; i < 256; i++ {
		ulawToLinear[i] = ulawDecode(byte(i))
		alawToLinear[i] = alawDecode(byte(i))
		ulawAbs[i] = absInt16(ulawToLinear[i])
		alawAbs[i] = absInt16(alawToLinear[i])
	}
	for i := range linearToUlaw {
		s14 := int(int16(uint16(i)<<2)) >> 2 // sign-extend the 14-bit index
		linearToUlaw[i] = ulawEncode14(s14)
	}
	for i := range linearToAlaw {
		s13 := int(int16(uint16(i)<<3)) >> 3
		linearToAlaw[i] = alawEncode13(s13)
	}
}

func absInt16(v int16) uint16 {
	if v < 0 {
		return uint16(-int32(v))
	}
	return uint16(v)
}

// ulawDecode expands one µ-law octet (ITU-T G.711, bit-inverted transmission).
func ulawDecode(u byte) int16 {
	u = ^u
	exp := (u >> 4) & 7
	t := (int32(u&0x0f)<<3 + 0x84) << exp
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// alawDecode expands one A-law octet (even bits inverted).
func alawDecode(a byte) int16 {
	a ^= 0x55
	seg := (a >> 4) & 7
	t := int32(a&0x0f) << 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t = (t + 0x108) << (seg - 1)
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// ulawEncode14 compresses a 14-bit signed sample (-8192..8191).
func ulawEncode14(x int) byte {
	mask := byte(0xff)
	if x < 0 {
		x = -x
		mask = 0x7f
	}
	if x > 8159 {
		x = 8159
	}
	x += 0x84 >> 2
	seg := bits.Len(uint(x)) - 6 // x >= 33, so seg >= 0
	if seg > 7 {
		return 0x7f ^ mask
	}
	return (byte(seg)<<4 | byte(x>>(seg+1))&0x0f) ^ mask
}

// alawEncode13 compresses a 13-bit signed sample (-4096..4095).
func alawEncode13(x int) byte {
	mask := byte(0xd5)
	if x < 0 {
		mask = 0x55
		x = -x - 1
	}
	seg := bits.Len(uint(x)) - 5
	if seg < 0 {
		seg = 0
	}
	var q int
	if seg < 2 {
		q = (x >> 1) & 0x0f
	} else {
		q = (x >> seg) & 0x0f
	}
	return (byte(seg)<<4 | byte(q)) ^ mask
}

// law bundles the tables of one G.711 variant.
type law struct {
	dec     *[256]int16
	abs     *[256]uint16
	silence byte
	ulaw    bool
}

var (
	lawU = &law{dec: &ulawToLinear, abs: &ulawAbs, silence: ulawSilence, ulaw: true}
	lawA = &law{dec: &alawToLinear, abs: &alawAbs, silence: alawSilence}
)

// decode expands src into dst (len(dst) >= len(src)).
func (l *law) decode(dst []int16, src []byte) {
	dec := l.dec
	dst = dst[:len(src)]
	for i, c := range src {
		dst[i] = dec[c]
	}
}

// encode compresses src into dst (len(dst) >= len(src)).
func (l *law) encode(dst []byte, src []int16) {
	dst = dst[:len(src)]
	if l.ulaw {
		for i, s := range src {
			dst[i] = linearToUlaw[uint16(s>>2)&0x3fff]
		}
		return
	}
	for i, s := range src {
		dst[i] = linearToAlaw[uint16(s>>3)&0x1fff]
	}
}

// encodeSat saturates the 32-bit mix into 16 bits and compresses it.
func (l *law) encodeSat(dst []byte, src []int32) {
	dst = dst[:len(src)]
	if l.ulaw {
		for i, v := range src {
			dst[i] = linearToUlaw[uint16(sat16(v)>>2)&0x3fff]
		}
		return
	}
	for i, v := range src {
		dst[i] = linearToAlaw[uint16(sat16(v)>>3)&0x1fff]
	}
}

// meanAbs is the mean absolute amplitude of an encoded frame, read from a
// table so that members who are not talking are never decoded. Every other
// sample is enough for a level detector (a 4 kHz tone would alias to DC,
// which carries the same level).
func (l *law) meanAbs(src []byte) int {
	if len(src) < 2 {
		return 0
	}
	abs := l.abs
	var s0, s1 uint32
	i := 0
	for ; i+3 < len(src); i += 4 {
		s0 += uint32(abs[src[i]])
		s1 += uint32(abs[src[i+2]])
	}
	n := uint32(i / 2)
	for ; i < len(src); i += 2 {
		s0 += uint32(abs[src[i]])
		n++
	}
	return int((s0 + s1) / n)
}

func sat16(v int32) int16 { return int16(max(-32768, min(32767, v))) }

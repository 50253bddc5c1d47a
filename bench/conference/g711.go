package main

// G.711 for the phones (ITU-T G.711; the gateway has its own tables).

func ulawDecode(u byte) int16 {
	u = ^u
	t := (int32(u&0x0f)<<3 + 0x84) << ((u >> 4) & 7)
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

func alawDecode(a byte) int16 {
	a ^= 0x55
	t := int32(a&0x0f) << 4
	switch seg := (a >> 4) & 7; seg {
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

func ulawEncode(s int16) byte {
	v := int(s) >> 2
	mask := 0xff
	if v < 0 {
		v, mask = -v, 0x7f
	}
	v = min(v, 8159) + 33
	seg := 0
	for x := v >> 6; x > 0; x >>= 1 {
		seg++
	}
	if seg > 7 {
		return byte(0x7f ^ mask)
	}
	return byte((seg<<4 | (v>>(seg+1))&0x0f) ^ mask)
}

func alawEncode(s int16) byte {
	v := int(s) >> 3
	mask := 0xd5
	if v < 0 {
		v, mask = -v-1, 0x55
	}
	seg := 0
	for x := v >> 5; x > 0; x >>= 1 {
		seg++
	}
	if seg > 7 {
		return byte(0x7f ^ mask)
	}
	q := (v >> 1) & 0x0f
	if seg >= 2 {
		q = (v >> seg) & 0x0f
	}
	return byte((seg<<4 | q) ^ mask)
}

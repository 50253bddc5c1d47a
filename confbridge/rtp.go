package confbridge

import "encoding/binary"

const rtpHeaderLen = 12

// rtpHeader is the part of an RTP header the bridge uses.
type rtpHeader struct {
	pt     uint8
	marker bool
	seq    uint16
	ts     uint32
	ssrc   uint32
	off    int // payload start
	end    int // payload end (padding removed)
}

// parseRTP validates an RTP packet (RFC 3550 §5.1): version 2, CSRC list,
// header extension and padding within bounds.
func parseRTP(b []byte) (h rtpHeader, ok bool) {
	if len(b) < rtpHeaderLen || b[0]>>6 != 2 {
		return h, false
	}
	h.marker = b[1]&0x80 != 0
	h.pt = b[1] & 0x7f
	h.seq = binary.BigEndian.Uint16(b[2:])
	h.ts = binary.BigEndian.Uint32(b[4:])
	h.ssrc = binary.BigEndian.Uint32(b[8:])
	off := rtpHeaderLen + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // extension
		if len(b) < off+4 {
			return h, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 { // padding
		if end == 0 {
			return h, false
		}
		pad := int(b[end-1])
		if pad == 0 {
			return h, false
		}
		end -= pad
	}
	if off > end {
		return h, false
	}
	h.off, h.end = off, end
	return h, true
}

// putRTPHeader writes a 12-byte RTP header (no CSRC, no extension) into b.
func putRTPHeader(b []byte, pt uint8, marker bool, seq uint16, ts, ssrc uint32) {
	_ = b[11]
	b[0] = 0x80
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
}

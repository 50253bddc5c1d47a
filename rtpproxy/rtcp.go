package rtpproxy

import (
	"encoding/binary"
	"time"

	"github.com/pion/rtcp"
)

// maxReports bounds the reception reports kept from one compound packet.
const maxReports = 16

// rtcpSummary is what a compound RTCP datagram tells the relay: the NTP time
// of its sender report, and the reception reports that may answer ours.
type rtcpSummary struct {
	hasSR   bool
	srNTP   uint32 // middle 32 bits of the SR's NTP timestamp: the LSR a receiver will echo
	n       int
	reports [maxReports]rtcp.ReceptionReport
}

// parseRTCP walks a compound RTCP datagram without allocating: every packet
// must carry version 2 and fit, SR and RR packets must hold the reports they
// announce. Other packet types are stepped over.
func parseRTCP(b []byte, s *rtcpSummary) bool {
	s.hasSR, s.n = false, 0
	if len(b) == 0 {
		return false
	}
	for len(b) > 0 {
		var h rtcp.Header
		if err := h.Unmarshal(b); err != nil {
			return false
		}
		size := 4 * (int(h.Length) + 1)
		if size > len(b) {
			return false
		}
		pkt := b[:size]
		b = b[size:]
		end := size
		if h.Padding {
			pad := int(pkt[size-1])
			if pad == 0 || pad > size-4 {
				return false
			}
			end -= pad
		}
		var first int // offset of the first report block
		switch h.Type {
		case rtcp.TypeSenderReport:
			first = 28
			if end < first {
				return false
			}
			if !s.hasSR {
				s.hasSR = true
				s.srNTP = binary.BigEndian.Uint32(pkt[10:14])
			}
		case rtcp.TypeReceiverReport:
			first = 8
		default:
			continue
		}
		if first+24*int(h.Count) > end {
			return false
		}
		for k := 0; k < int(h.Count) && s.n < maxReports; k++ {
			off := first + 24*k
			if err := s.reports[s.n].Unmarshal(pkt[off : off+24]); err != nil {
				return false
			}
			s.n++
		}
	}
	return true
}

// srRecord remembers when an SR left through a leg, so that the peer's
// reception report (which echoes it as LSR, plus its DLSR) gives a round trip.
type srRecord struct {
	ntp  uint32
	sent int64 // monotonic nanoseconds
}

const srHistory = 8

// roundTrip is arrival - sent - DLSR (DLSR in units of 1/65536 s).
func roundTrip(arrival, sent int64, dlsr uint32) time.Duration {
	return time.Duration(arrival-sent) - time.Duration(int64(dlsr)*int64(time.Second)>>16)
}

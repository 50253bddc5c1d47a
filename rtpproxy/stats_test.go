package rtpproxy

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestParseRTP(t *testing.T) {
	withCSRC := rtpPacket(0, 1, 2, 3, 20)
	withCSRC[0] |= 2 // two CSRCs: payload shrinks by 8
	ext := rtpPacket(0, 1, 2, 3, 20)
	ext[0] |= 0x10
	ext[12+2], ext[12+3] = 0, 2 // extension of 2 words after its 4-octet header
	pad := rtpPacket(0, 1, 2, 3, 20)
	pad[0] |= 0x20
	pad[len(pad)-1] = 5
	tests := []struct {
		name    string
		pkt     []byte
		ok      bool
		payload int
	}{
		{"plain", rtpPacket(8, 1, 2, 3, 160), true, 160},
		{"header only", rtpPacket(0, 1, 2, 3, 0), true, 0},
		{"csrc", withCSRC, true, 12},
		{"extension", ext, true, 8},
		{"padding", pad, true, 15},
		{"short", rtpPacket(0, 1, 2, 3, 0)[:11], false, 0},
		{"version 1", append([]byte{0x40}, rtpPacket(0, 1, 2, 3, 4)[1:]...), false, 0},
		{"csrc beyond end", append([]byte{0x8f}, rtpPacket(0, 1, 2, 3, 4)[1:]...), false, 0},
		{"zero padding count", append(rtpPacket(0, 1, 2, 3, 4)[:15:15], 0), false, 0},
	}
	tests[len(tests)-1].pkt[0] |= 0x20
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, ok := parseRTP(tt.pkt)
			if ok != tt.ok || (ok && h.payload != tt.payload) {
				t.Fatalf("parseRTP = %+v, %v; want payload %d, %v", h, ok, tt.payload, tt.ok)
			}
			if ok && (h.seq != 1 || h.ts != 2 || h.ssrc != 3) {
				t.Fatalf("header fields %+v", h)
			}
		})
	}
}

// seqStep is one packet: its sequence number and SSRC.
type seqStep struct {
	seq  uint16
	ssrc uint32
}

func steps(ssrc uint32, seqs ...uint16) []seqStep {
	s := make([]seqStep, len(seqs))
	for i, q := range seqs {
		s[i] = seqStep{q, ssrc}
	}
	return s
}

func TestReceiverLoss(t *testing.T) {
	tests := []struct {
		name string
		pkts []seqStep
		lost int64
	}{
		{"in order", steps(1, 10, 11, 12, 13), 0},
		{"gap of two", steps(1, 10, 11, 14, 15), 2},
		{"reordered, nothing lost", steps(1, 10, 12, 11, 13), 0},
		{"late packet fills its gap", steps(1, 10, 12, 13, 11), 0},
		{"duplicate is not negative loss", steps(1, 10, 11, 11, 12), 0},
		{"wrap", steps(1, 65533, 65534, 65535, 0, 1), 0},
		{"wrap with loss", steps(1, 65534, 65535, 1, 2), 1},
		{"reorder across wrap", steps(1, 65534, 0, 65535, 1), 0},
		{"big jump not confirmed is ignored", steps(1, 10, 11, 30000, 12, 13), 0},
		{"big jump confirmed restarts", steps(1, 10, 11, 13, 30000, 30001, 30002), 1},
		{"new SSRC keeps old loss", append(steps(1, 10, 12), steps(2, 500, 501, 503)...), 2},
		{"gap below dropout limit", steps(1, 100, 2000), 1899},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r receiver
			var lost int64
			for i, p := range tt.pkts {
				lost, _ = r.update(&rtpHeader{seq: p.seq, ssrc: p.ssrc, ts: uint32(i * 160)}, int64(i)*int64(20*time.Millisecond))
			}
			if lost != tt.lost {
				t.Fatalf("lost = %d, want %d", lost, tt.lost)
			}
		})
	}
}

// refJitter is RFC 3550 A.8 in floating point over timestamp units.
func refJitter(arrivals []float64, ts []uint32, rate float64) float64 {
	var j float64
	for i := 1; i < len(ts); i++ {
		d := (arrivals[i]-arrivals[i-1])*rate - float64(int32(ts[i]-ts[i-1]))
		j += (math.Abs(d) - j) / 16
	}
	return j / rate // seconds
}

func TestReceiverJitter(t *testing.T) {
	tests := []struct {
		name  string
		pt    uint8
		rate  float64
		dyn   uint32
		delay func(i int) time.Duration // arrival offset from the nominal time
	}{
		{"steady PCMU", 0, 8000, 0, func(int) time.Duration { return 0 }},
		{"alternating PCMA", 8, 8000, 0, func(i int) time.Duration { return time.Duration(i%2) * 7 * time.Millisecond }},
		{"ramp G722 (8 kHz clock)", 9, 8000, 0, func(i int) time.Duration { return time.Duration(i%10) * time.Millisecond }},
		{"dynamic at 48 kHz", 111, 48000, 48000, func(i int) time.Duration { return time.Duration((i*7919)%13) * time.Millisecond }},
		{"dynamic default 8 kHz", 101, 8000, 0, func(i int) time.Duration { return time.Duration(i%3) * 3 * time.Millisecond }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := receiver{dynRate: tt.dyn}
			const n = 200
			step := uint32(tt.rate / 50) // 20 ms of clock
			arrivals := make([]float64, n)
			ts := make([]uint32, n)
			var got time.Duration
			for i := range n {
				ts[i] = 4000000000 + uint32(i)*step // wraps on the way
				at := time.Duration(i)*20*time.Millisecond + tt.delay(i)
				arrivals[i] = at.Seconds()
				_, got = r.update(&rtpHeader{pt: tt.pt, seq: uint16(i), ts: ts[i], ssrc: 5}, int64(at)+1)
			}
			want := refJitter(arrivals, ts, tt.rate)
			if diff := math.Abs(got.Seconds() - want); diff > 1e-6+want*1e-3 {
				t.Fatalf("jitter %v, reference %.9fs", got, want)
			}
		})
	}
}

func TestReceiverJitterClockChange(t *testing.T) {
	// A switch to comfort noise (PT 13) or a new SSRC must not be read as a
	// huge transit jump.
	var r receiver
	for i := range 10 {
		r.update(&rtpHeader{pt: 0, seq: uint16(i), ts: uint32(i * 160), ssrc: 1}, int64(i)*int64(20*time.Millisecond))
	}
	_, j := r.update(&rtpHeader{pt: 13, seq: 10, ts: 999999, ssrc: 1}, int64(10)*int64(20*time.Millisecond))
	_, j2 := r.update(&rtpHeader{pt: 13, seq: 11, ts: 999999 + 160, ssrc: 1}, int64(11)*int64(20*time.Millisecond))
	_, j3 := r.update(&rtpHeader{pt: 0, seq: 0, ts: 5, ssrc: 2}, int64(12)*int64(20*time.Millisecond))
	if j != 0 || j2 != 0 || j3 != 0 {
		t.Fatalf("jitter %v %v %v across clock changes of a steady stream", j, j2, j3)
	}
}

// FuzzParseRTP checks the header walk against pion/rtp and feeds what parses
// into the statistics, which must stay sane.
func FuzzParseRTP(f *testing.F) {
	f.Add(rtpPacket(0, 1, 2, 3, 160), uint16(5), int64(20_000_000))
	f.Add([]byte{0xb2, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 9, 9, 2}, uint16(0), int64(0))
	f.Add([]byte{0x80}, uint16(65535), int64(-5))
	f.Fuzz(func(t *testing.T, pkt []byte, seqStep uint16, gap int64) {
		h, ok := parseRTP(pkt)
		var ref rtp.Packet
		refErr := ref.Unmarshal(pkt)
		if !ok && refErr == nil && ref.Version == 2 {
			t.Fatalf("pion parses a version 2 packet we reject: %+v", ref.Header)
		}
		if ok && refErr != nil {
			// pion also checks the elements of one- and two-byte header
			// extensions (RFC 8285); a relay passes them on as they are.
			if prof := ref.ExtensionProfile; !ref.Extension || (prof != 0xBEDE && prof != 0x1000) {
				t.Fatalf("we parse what pion rejects (%v): %+v", refErr, h)
			}
			ok = false
		}
		if ok {
			if h.payload != len(ref.Payload) || h.seq != ref.SequenceNumber || h.ts != ref.Timestamp || h.ssrc != ref.SSRC || h.pt != ref.PayloadType {
				t.Fatalf("ours %+v, pion payload %d hdr %+v", h, len(ref.Payload), ref.Header)
			}
			if h.payload < 0 || h.payload > len(pkt)-rtpHeaderLen {
				t.Fatalf("payload %d of %d octets", h.payload, len(pkt))
			}
		}
		if !ok {
			if payloadLen(pkt) < 0 {
				t.Fatal("negative payload length")
			}
			return
		}
		// Statistics over a stream made of this header: sane whatever the steps.
		var r receiver
		now := int64(1)
		for i := range 40 {
			lost, jitter := r.update(&h, now)
			if lost < 0 || jitter < 0 {
				t.Fatalf("step %d: lost %d jitter %v", i, lost, jitter)
			}
			h.seq += seqStep
			h.ts += uint32(seqStep) * 160
			now += gap
		}
	})
}

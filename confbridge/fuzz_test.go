package confbridge

import (
	"bytes"
	"testing"
)

// FuzzHandleRTP feeds arbitrary datagrams (split from the input at 0xFE
// 0xFE) to the members of a bridge that switches between hairpin and mixer
// with every tick: no panic, what parses has its payload inside the packet,
// and everything the members are sent is well-formed RTP.
func FuzzHandleRTP(f *testing.F) {
	f.Add(newSender(PCMU, 1, 440).next())
	f.Add(append(newSender(PCMU, 1, 440).next(), append([]byte{0xfe, 0xfe}, eventPacket(1, 2, 5, true, 100)...)...))
	f.Add([]byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff})
	f.Add([]byte{0x9f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newHarness(t, Options{Hairpin: true, OnDigit: func(string, byte, bool) {}})
		ps := addParties(t, h, []Codec{PCMU, PCMA, PCMU}, toneFreqs)
		for n, pkt := range bytes.Split(data, []byte{0xfe, 0xfe}) {
			if hd, ok := parseRTP(pkt); ok && (hd.off > hd.end || hd.end > len(pkt) || hd.off < rtpHeaderLen) {
				t.Fatalf("payload [%d:%d] outside a %d-byte packet", hd.off, hd.end, len(pkt))
			}
			ps[n%3].m.HandleRTP(pkt)
			if n%2 == 0 {
				h.b.Remove("m2") // hairpin and back: exercise both paths
			} else if m, err := h.b.Add("m2", PCMU, ps[2].out); err == nil {
				ps[2].m = m
			}
			h.tick()
		}
		for _, p := range ps[:2] {
			for _, pkt := range p.out.packets() {
				hd, ok := parseRTP(pkt)
				if !ok || hd.end-hd.off > maxPacket {
					t.Fatalf("%s got a malformed packet", p.id)
				}
			}
		}
	})
}

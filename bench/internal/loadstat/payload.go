// Package loadstat holds the arithmetic of the RTP load generator: the probe
// carried in each packet's payload, the latency histogram and the per-step
// accounting of loss, late arrivals, reordering and silent streams.
package loadstat

import (
	"encoding/binary"
	"errors"
)

// Packet layout: a 12-byte RTP header followed by a 160-byte G.711 payload
// (20 ms at 8 kHz) whose first ProbeSize bytes are the probe.
const (
	HeaderSize  = 12
	PayloadSize = 160
	PacketSize  = HeaderSize + PayloadSize
	ProbeSize   = 24
	probeMagic  = 0x6d677762 // "mgwb"
)

// Probe is what the generator carries in every payload.
type Probe struct {
	Step   uint32 // step the packet was sent in
	Stream uint32 // stream index
	Seq    uint32 // per-stream sequence, from 0, never wraps in a run
	SentNs int64  // send time, ns since the generator's epoch (monotonic)
}

// ErrNotProbe reports a packet that does not carry a probe.
var ErrNotProbe = errors.New("loadstat: not a probe packet")

// Fill writes a complete RTP packet for p into pkt (len >= PacketSize):
// version 2, payload type pt, RTP sequence and timestamp derived from Seq
// (timestamp advances 160 per packet), SSRC derived from Stream.
func Fill(pkt []byte, pt uint8, p Probe) {
	pkt[0] = 0x80
	pkt[1] = pt & 0x7f
	binary.BigEndian.PutUint16(pkt[2:], uint16(p.Seq))
	binary.BigEndian.PutUint32(pkt[4:], p.Seq*160)
	binary.BigEndian.PutUint32(pkt[8:], 0x10000000+p.Stream)
	b := pkt[HeaderSize:]
	binary.BigEndian.PutUint32(b[0:], probeMagic)
	binary.BigEndian.PutUint32(b[4:], p.Step)
	binary.BigEndian.PutUint32(b[8:], p.Stream)
	binary.BigEndian.PutUint32(b[12:], p.Seq)
	binary.BigEndian.PutUint64(b[16:], uint64(p.SentNs))
}

// Parse reads the probe of a received RTP packet. It skips CSRCs and a header
// extension if the relay added any.
func Parse(pkt []byte) (Probe, error) {
	if len(pkt) < HeaderSize || pkt[0]>>6 != 2 {
		return Probe{}, ErrNotProbe
	}
	off := HeaderSize + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < off+4 {
			return Probe{}, ErrNotProbe
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:]))
	}
	if len(pkt) < off+ProbeSize {
		return Probe{}, ErrNotProbe
	}
	b := pkt[off:]
	if binary.BigEndian.Uint32(b) != probeMagic {
		return Probe{}, ErrNotProbe
	}
	return Probe{
		Step:   binary.BigEndian.Uint32(b[4:]),
		Stream: binary.BigEndian.Uint32(b[8:]),
		Seq:    binary.BigEndian.Uint32(b[12:]),
		SentNs: int64(binary.BigEndian.Uint64(b[16:])),
	}, nil
}

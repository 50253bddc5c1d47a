package session

import (
	"testing"

	"github.com/mediagw/mediagw/audio"
)

// BenchmarkCreateDeleteConnection: one connection's whole life, including
// binding and closing its two sockets.
func BenchmarkCreateDeleteConnection(b *testing.B) {
	f := newFixture(b, DefaultResources(), testPortMin+800, testPortMin+899)
	b.ReportAllocs()
	for b.Loop() {
		c, err := f.CreateConnection(ConnectionParams{Remote: remote})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.DeleteConnection(c.ID, "", Release{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJoinLeave: a member joining and leaving a mixing conference
// (table and mixer bookkeeping, no sockets).
func BenchmarkJoinLeave(b *testing.B) {
	f := newFixture(b, DefaultResources(), testPortMin+900, testPortMin+919)
	cid, _ := f.conference(b, "bench", 3)
	c := f.conn(b, "PCMU")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.JoinConference(cid, c.ID, MemberAttrs{}); err != nil {
			b.Fatal(err)
		}
		if _, err := f.DeleteConnection(c.ID, cid, Release{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshot: reading one connection (as the API and AUCX do).
func BenchmarkSnapshot(b *testing.B) {
	f := newFixture(b, DefaultResources(), testPortMin+920, testPortMin+929)
	c := f.conn(b, "PCMU")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Connection(c.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLegInband is what media.inband_dtmf always adds to each 20 ms
// packet of a relayed G.711 leg without telephone-events: decode and
// search, on speech-level sound (a key) and on silence.
func BenchmarkLegInband(b *testing.B) {
	for _, c := range []struct {
		name string
		fill func(pcm []int16)
	}{
		{"sound", func(pcm []int16) { audio.NewDTMFSource([]byte{5}, 1000, 0).Read(pcm) }},
		{"silence", func(pcm []int16) { clear(pcm) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			pcm := make([]int16, 8000)
			c.fill(pcm)
			payload := make([]byte, len(pcm))
			audio.EncodeUlaw(payload, pcm)
			_, fn := legDetector("PCMU", func(byte) {})
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				off := (i % 49) * 160
				fn(payload[off : off+160])
			}
		})
	}
}

package session

import (
	"path/filepath"
	"testing"

	"github.com/mediagw/mediagw/audio"
	"github.com/mediagw/mediagw/store"
)

// BenchmarkCreateDeleteConnection: one connection's whole life, including
// binding and closing its two sockets, with the state kept nowhere or in
// the embedded file store (issue 13: it must keep 80% of none). The
// store's writer commits on its own goroutine, competing for the CPU.
func BenchmarkCreateDeleteConnection(b *testing.B) {
	for _, kind := range []string{"none", "file"} {
		b.Run("state="+kind, func(b *testing.B) {
			f := newFixture(b, DefaultResources(), testPortMin+800, testPortMin+899)
			if kind == "file" {
				st, err := store.OpenFile(filepath.Join(b.TempDir(), "bench.state"), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				f.cfg.State = st
			}
			b.ReportAllocs()
			for b.Loop() {
				c, err := f.CreateConnection(ConnectionParams{Remote: remote, Owner: FrontHTTP})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.DeleteConnection(c.ID, "", Release{}); err != nil {
					b.Fatal(err)
				}
			}
		})
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

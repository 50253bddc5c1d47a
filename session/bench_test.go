package session

import "testing"

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

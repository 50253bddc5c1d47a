package session

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/mediagw/mediagw/audio"
)

// record decodes what reaches p (µ-law) for d.
func (p *phone) record(d time.Duration) []int16 {
	var out []int16
	pcm := make([]int16, 160)
	p.each(d, func(pkt []byte) {
		if len(pkt) == 12+160 && pkt[1]&0x7f == 0 {
			audio.DecodeUlaw(pcm, pkt[12:])
			out = append(out, pcm...)
		}
	})
	return out
}

// power is the mean amplitude of frequency f in x (Goertzel).
func power(x []int16, f float64) float64 {
	c := 2 * math.Cos(2*math.Pi*f/8000)
	var s1, s2 float64
	for _, v := range x {
		s0 := float64(v) + c*s1 - s2
		s2, s1 = s1, s0
	}
	n := float64(len(x))
	if n == 0 {
		return 0
	}
	return 2 * math.Sqrt(math.Max(s1*s1+s2*s2-c*s1*s2, 0)) / n
}

// Two linked conferences: each member hears the other conference's
// members and its own, never itself; a link that would close a cycle is
// refused; the release of one side (its last member left) takes the link
// away and leaves the other side whole.
func TestLinkedConferences(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+1150, testPortMin+1169)
	type talker struct {
		p    *phone
		freq float64
		id   string
	}
	mk := func(conf string, ssrc uint32, freq float64) *talker {
		p := newPhone(t, ssrc)
		c, err := f.CreateConnection(ConnectionParams{Remote: p.addr(), Codec: "PCMU", Owner: FrontHTTP})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.JoinOrCreate(conf, KindConference, c.ID, MemberAttrs{}); err != nil {
			t.Fatal(err)
		}
		p.src = audio.NewTone(freq, 0, -15, audio.Off).Read
		return &talker{p: p, freq: freq, id: c.ID}
	}
	alice, bob, carol := mk("a", 1, 440), mk("b", 2, 1000), mk("b", 3, 1600)
	legs := map[*phone]netip.AddrPort{}
	for _, x := range []*talker{alice, bob, carol} {
		c, _ := f.Connection(x.id)
		legs[x.p] = c.Local
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { pace(stop, legs); close(done) }()
	defer func() { close(stop); <-done }()

	if err := f.LinkConferences("a", "b"); err != nil {
		t.Fatal(err)
	}
	if cf, _ := f.Conference("a"); len(cf.Links) != 1 || cf.Links[0] != "b" || len(cf.Members) != 1 {
		t.Fatalf("conference a: %+v", cf)
	}
	time.Sleep(300 * time.Millisecond)
	for _, x := range []*talker{alice, bob, carol} {
		heard := x.p.record(time.Second)
		if len(heard) < 8000/2 {
			t.Fatalf("%.0f Hz talker got %d samples in a second", x.freq, len(heard))
		}
		for _, y := range []*talker{alice, bob, carol} {
			p := power(heard[len(heard)/4:], y.freq)
			if y == x && p > 100 {
				t.Errorf("the %.0f Hz talker hears itself (%.0f)", x.freq, p)
			}
			if y != x && p < 300 {
				t.Errorf("the %.0f Hz talker hears %.0f Hz at only %.0f", x.freq, y.freq, p)
			}
		}
	}

	// No cycles, no self link.
	mk("c", 4, 2200)
	if err := f.LinkConferences("b", "c"); err != nil {
		t.Fatal(err)
	}
	if err := f.LinkConferences("c", "a"); ResultCode(err) != 27 {
		t.Fatalf("a cycle a-b-c-a: %v", err)
	}
	if err := f.LinkConferences("a", "a"); ResultCode(err) != 27 {
		t.Fatalf("a self link: %v", err)
	}
	if err := f.LinkConferences("a", "nope"); ResultCode(err) != ResultCode(ErrUnknownConference) {
		t.Fatalf("an unknown conference: %v", err)
	}

	// alice leaves: a is released with its link; b keeps its members and c.
	if _, err := f.DeleteConnection(alice.id, "", Release{By: FrontHTTP}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Conference("a"); err == nil {
		t.Fatal("conference a outlived its last member")
	}
	if cf, _ := f.Conference("b"); len(cf.Members) != 2 || len(cf.Links) != 1 || cf.Links[0] != "c" {
		t.Fatalf("conference b after a went: %+v", cf)
	}
	if _, err := f.DeleteConnection("", "b", Release{By: FrontHTTP}); err != nil {
		t.Fatal(err)
	}
	if cf, _ := f.Conference("c"); len(cf.Links) != 0 || len(cf.Members) != 1 {
		t.Fatalf("conference c after b went: %+v", cf)
	}
	if n := f.inUse(); n != [3]int{1, 0, 1} { // dave's port and his one member's resource: nothing for links
		t.Fatalf("resources in use %v, want [1 0 1]", n)
	}
}

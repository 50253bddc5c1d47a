package confbridge

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// udpOut sends a member's stream from the gateway-side socket to its peer.
type udpOut struct {
	c  *net.UDPConn
	to netip.AddrPort
}

func (u udpOut) Send(p []byte) error {
	_, err := u.c.WriteToUDPAddrPort(p, u.to)
	return err
}

// nextPort walks this package's test port range (37000–37999); listenUDP
// skips ports that are taken.
var nextPort = 37000

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	for ; nextPort < 38000; nextPort++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: nextPort})
		if err == nil {
			nextPort++
			t.Cleanup(func() { c.Close() })
			return c
		}
	}
	t.Fatal("no free port in 37000-37999")
	return nil
}

// A three-member conference over real loopback sockets and the real
// schedule: every peer sends its own tone and hears the other two, never
// itself; a muted peer is heard by nobody.
func TestLoopbackConference(t *testing.T) {
	e := NewEngine(Config{})
	defer e.Close()
	b := e.NewBridge(Options{})
	defer b.Close()

	type peer struct {
		id      string
		s       *sender
		gw, ext *net.UDPConn
		m       *Member
		got     capture
	}
	codecs := []Codec{PCMU, PCMA, PCMU, PCMA}
	var peers []*peer
	var wg sync.WaitGroup
	for i, c := range codecs {
		p := &peer{id: string(rune('a' + i)), s: newSender(c, uint32(100+i), toneFreqs[i])}
		p.gw, p.ext = listenUDP(t), listenUDP(t)
		m, err := b.Add(p.id, c, udpOut{c: p.gw, to: p.ext.LocalAddr().(*net.UDPAddr).AddrPort()})
		if err != nil {
			t.Fatal(err)
		}
		p.m = m
		peers = append(peers, p)
		wg.Add(2)
		go func() { // the gateway side: what rtpproxy's leg does
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				n, _, err := p.gw.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				p.m.HandleRTP(buf[:n])
			}
		}()
		go func() { // the phone's receiver
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				n, _, err := p.ext.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				p.got.Send(buf[:n])
			}
		}()
	}
	if err := b.SetMuted("d", true); err != nil {
		t.Fatal(err)
	}
	// Each phone sends 2 s of its tone, paced at 20 ms.
	tick := time.NewTicker(20 * time.Millisecond)
	for n := 0; n < 100; n++ {
		<-tick.C
		for _, p := range peers {
			if _, err := p.ext.WriteToUDPAddrPort(p.s.next(), p.gw.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatal(err)
			}
		}
	}
	tick.Stop()
	time.Sleep(100 * time.Millisecond)
	for _, p := range peers {
		p.gw.Close()
		p.ext.Close()
	}
	wg.Wait()

	want := map[string]string{"a": "bc", "b": "ac", "c": "ab", "d": "abc"}
	for _, p := range peers {
		x := p.got.pcm(10)
		if len(x) < 160*50 {
			t.Fatalf("%s received %d samples", p.id, len(x))
		}
		// Judged frame by frame, so that a stall of this busy machine (a
		// late tick, a concealed frame) does not smear a whole recording.
		for _, q := range peers {
			frac := framesHearing(x, q.s.freq)
			if should := strings.Contains(want[p.id], q.id); should && frac < 0.5 || !should && frac > 0.05 {
				t.Errorf("%s hears %s in %.0f%% of frames, want %v", p.id, q.id, 100*frac, should)
			}
		}
	}
	if t.Failed() {
		for _, p := range peers {
			st, err := b.MemberStats(p.id)
			t.Logf("%s: %+v %v", p.id, st, err)
		}
	}
}

// framesHearing is the fraction of 20 ms frames of x in which freq is heard.
func framesHearing(x []int16, freq float64) float64 {
	n, on := 0, 0
	for i := 0; i+160 <= len(x); i += 160 {
		n++
		if hears(x[i:i+160], freq) {
			on++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(on) / float64(n)
}

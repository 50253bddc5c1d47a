package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// dtmfPhone sends RFC 4733 telephone-events (PT 101) to a gateway port.
type dtmfPhone struct {
	t    testing.TB
	c    *net.UDPConn
	dst  *net.UDPAddr
	seq  uint16
	ts   uint32
	ssrc uint32
}

func newDTMFPhone(t testing.TB, ssrc uint32) *dtmfPhone {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &dtmfPhone{t: t, c: c, ssrc: ssrc, ts: ssrc * 1000}
}

func (p *dtmfPhone) sdp() string {
	return fmt.Sprintf("\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n",
		p.c.LocalAddr().(*net.UDPAddr).Port)
}

// dial sends each digit as three packets of the tone under way and three
// end packets, one RTP timestamp per digit.
func (p *dtmfPhone) dial(digits string) {
	const events = "0123456789*#ABCD"
	for _, d := range digits {
		code := strings.IndexRune(events, d)
		if code < 0 {
			p.t.Fatalf("no DTMF event for %q", d)
		}
		p.ts += 8000
		for i := 0; i < 6; i++ {
			pkt := make([]byte, 16)
			pkt[0], pkt[1] = 0x80, 101
			if i == 0 {
				pkt[1] |= 0x80
			}
			p.seq++
			binary.BigEndian.PutUint16(pkt[2:], p.seq)
			binary.BigEndian.PutUint32(pkt[4:], p.ts)
			binary.BigEndian.PutUint32(pkt[8:], p.ssrc)
			pkt[12], pkt[13] = byte(code), 10
			if i >= 3 {
				pkt[13] |= 0x80
			}
			binary.BigEndian.PutUint16(pkt[14:], uint16(160*min(i+1, 4)))
			if _, err := p.c.WriteToUDP(pkt, p.dst); err != nil {
				p.t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(40 * time.Millisecond)
	}
}

// ntfys waits until the call agent has received n NTFY commands (not
// counting retransmissions) and returns their X: and O: values.
func (ca *callAgent) ntfys(n int, within time.Duration) []string {
	ca.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var got []string
		seen := map[string]bool{}
		for _, c := range ca.commands() {
			if !strings.HasPrefix(c, "NTFY ") || seen[c] {
				continue // a retransmission sent before our 200 arrived
			}
			seen[c] = true
			var x, o string
			for _, l := range strings.Split(c, "\r\n") {
				if v, ok := strings.CutPrefix(l, "X: "); ok {
					x = v
				}
				if v, ok := strings.CutPrefix(l, "O: "); ok {
					o = v
				}
			}
			got = append(got, x+" "+o)
		}
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMGCPNotify: a call agent (this test process) asks a three-party
// conference on cnf/$ of the gateway binary for digits with RQNT; one
// member sends RFC 4733 telephone-events through the mixer. R:
// D/[0-9#*](N) gives one NTFY per digit; D: (xxxx|*xx) with R:
// D/[0-9#*T](D) gives one NTFY with the dialled string; /metrics counts
// the answered NTFYs.
func TestMGCPNotify(t *testing.T) {
	ca := newCallAgent(t)
	g := StartGateway(t, GatewayOptions{NotifiedEntity: ca.addr()})
	ca.attach(g)
	start := g.Metrics(t)
	endpoint := "cnf/$@mgw"
	phones := make([]*dtmfPhone, 3)
	for i := range phones {
		phones[i] = newDTMFPhone(t, uint32(i+1))
		code, params, sdp := ca.do("CRCX {tid} %s MGCP 1.0\r\nC: dtmf\r\nM: confrnce\r\n%s", endpoint, phones[i].sdp())
		if code != 200 {
			t.Fatalf("CRCX %d: %d %v", i, code, params)
		}
		if i == 0 {
			endpoint = params["Z"]
		}
		phones[i].dst = net.UDPAddrFromAddrPort(mediaAddr(t, sdp))
	}

	if code, params, _ := ca.do("RQNT {tid} %s MGCP 1.0\r\nN: ca@%s\r\nX: each\r\nR: D/[0-9#*](N)\r\nQ: loop\r\n", endpoint, ca.addr()); code != 200 {
		t.Fatalf("RQNT: %d %v", code, params)
	}
	phones[1].dial("4#")
	got := ca.ntfys(2, 10*time.Second)
	if want := []string{"each D/4", "each D/#"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("NTFYs %q, want %q", got, want)
	}

	if code, params, _ := ca.do("RQNT {tid} %s MGCP 1.0\r\nX: map\r\nR: D/[0-9#*T](D)\r\nD: (xxxx|*xx)\r\n", endpoint); code != 200 {
		t.Fatalf("RQNT with a digit map: %d %v", code, params)
	}
	phones[2].dial("2741")
	got = ca.ntfys(3, 10*time.Second)
	if len(got) != 3 || got[2] != "map D/2,D/7,D/4,D/1" {
		t.Fatalf("NTFYs %q, want a third one: map D/2,D/7,D/4,D/1", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.Metrics(t)[`mediagw_mgcp_notify_total{result="ok"}`] != 3 {
		if time.Now().After(deadline) {
			t.Fatalf(`mediagw_mgcp_notify_total{result="ok"} = %v, want 3`, g.Metrics(t)[`mediagw_mgcp_notify_total{result="ok"}`])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, params, _ := ca.do("DLCX {tid} %s MGCP 1.0\r\n", endpoint); code != 200 {
		t.Fatalf("DLCX: %d %v", code, params)
	}
	g.WaitGaugesBack(t, start)
}

package mgcp

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var sdpAudioPort = regexp.MustCompile(`(?m)^m=audio (\d+) `)

// TestCRCXWithoutSDPTakesNoMedia: the call agent is not the media endpoint,
// so MGCP passes no signalling IP (docs: a connection without a remote
// takes no media until MDCX names one). RTP from the call agent's own IP
// before and after the MDCX is refused; the MDCX's address is accepted.
func TestCRCXWithoutSDPTakesNoMedia(t *testing.T) {
	r := newRig(t)
	res := r.command("CRCX 1 cnf/7@mgw MGCP 1.0\r\nC: c1\r\nM: recvonly\r\n")
	if res.Code != 200 {
		t.Fatalf("CRCX: %d", res.Code)
	}
	id := res.Params.Value("I")
	m := sdpAudioPort.FindStringSubmatch(res.SDP)
	if m == nil {
		t.Fatalf("no m=audio in %q", res.SDP)
	}
	port, _ := strconv.Atoi(m[1])
	leg := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	early, phone := listenUDP(t, "127.0.0.1"), listenUDP(t, "127.0.0.1") // the call agent's IP
	pkt := []byte{0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0xff, 0xff}
	if _, err := early.WriteToUDPAddrPort(pkt, leg); err != nil {
		t.Fatal(err)
	}
	ap := phone.LocalAddr().(*net.UDPAddr).AddrPort()
	sdp := fmt.Sprintf("\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", ap.Port())
	if res := r.command("MDCX 2 cnf/7@mgw MGCP 1.0\r\nC: c1\r\nI: " + id + "\r\nM: sendrecv\r\n" + sdp); res.Code != 200 {
		t.Fatalf("MDCX: %d", res.Code)
	}
	pkt[3] = 2
	early.WriteToUDPAddrPort(pkt, leg)
	pkt[3] = 3
	phone.WriteToUDPAddrPort(pkt, leg)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := r.table.Connection(id)
		if err != nil {
			t.Fatal(err)
		}
		if c.Stats.PacketsReceived >= 1 {
			time.Sleep(50 * time.Millisecond) // anything else queued is handled by now
			if c, _ = r.table.Connection(id); c.Stats.PacketsReceived != 1 || c.Remote != ap {
				t.Fatalf("received %d from %v, want 1 from the MDCX's %v", c.Stats.PacketsReceived, c.Remote, ap)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the MDCX's address was not heard")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package sip

import (
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/mediagw/mediagw/rtpproxy"
)

var answerPort = regexp.MustCompile(`(?m)^m=audio (\d+) `)

// TestNATPhoneLatchesFromSignallingIP: a phone behind a NAT puts an address
// in its SDP that media never comes from; its RTP from another port of the
// IP its INVITE came from is accepted and latched, while RTP from another
// host (127.0.0.3) before it is refused.
func TestNATPhoneLatchesFromSignallingIP(t *testing.T) {
	g := startGateway(t, nil)
	res := raw(t, g.udp, request("INVITE", "echo", g.udp, nil, goodSDP), true) // SDP: 127.0.0.1:33990, nobody there
	if statusOf(res) != 200 {
		t.Fatalf("INVITE: %s", res)
	}
	m := answerPort.FindStringSubmatch(res)
	if m == nil {
		t.Fatalf("no m=audio in\n%s", res)
	}
	port, _ := strconv.Atoi(m[1])
	leg := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	nat, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer nat.Close()
	pkt := []byte{0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0xff, 0xff}
	stranger.WriteToUDPAddrPort(pkt, leg)
	pkt[3] = 2
	nat.WriteToUDPAddrPort(pkt, leg)
	// The echo comes back to the NAT's port, and only the NAT's packet.
	buf := make([]byte, 64)
	_ = nat.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := nat.ReadFromUDPAddrPort(buf)
	if err != nil || n != len(pkt) || buf[3] != 2 {
		t.Fatalf("echo to the NAT's port: %d % x %v", n, buf[:n], err)
	}
	_ = stranger.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _, err := stranger.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("the stranger got % x", buf[:n])
	}
	if d := g.pool.Drops(); d[rtpproxy.DropSource] != 1 {
		t.Fatalf("pool drops %v, want one (source)", d)
	}
	conns := g.table.Connections()
	if len(conns) != 1 || conns[0].Remote != nat.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("connections %+v, want one latched to the NAT's port", conns)
	}
}

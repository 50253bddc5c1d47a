package rtpproxy

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Ports: pools in tests use 30000-30899, peer sockets 30900-30999
// (docs/contracts.md gives this package 30000-30999).
const (
	testPortMin = 30000
	testPortMax = 30099
	peerPortMin = 30900
	peerPortMax = 30999
)

func TestMain(m *testing.M) {
	if os.Getenv(relayServerEnv) != "" {
		os.Exit(relayServer())
	}
	goleak.VerifyTestMain(m)
}

var loopback = netip.MustParseAddr("127.0.0.1")

func newTestPool(tb testing.TB, min, max int) *Pool {
	tb.Helper()
	return newBoundPool(tb, "127.0.0.1", min, max)
}

// newBoundPool is a pool on bind, closed when the test ends (after the
// cleanups of the legs opened later: they run first).
func newBoundPool(tb testing.TB, bind string, min, max int) *Pool {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Bind, cfg.PortMin, cfg.PortMax = bind, min, max
	return newConfigPool(tb, cfg)
}

// newConfigPool is a pool made of cfg, closed when the test ends.
func newConfigPool(tb testing.TB, cfg Config) *Pool {
	tb.Helper()
	p, err := NewPool(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

func openLeg(tb testing.TB, p *Pool) *Leg {
	tb.Helper()
	l, err := p.Open()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// peer is a test endpoint: an RTP socket and the RTCP socket above it.
type peer struct {
	rtp, rtcp *net.UDPConn
}

// newPeer binds an even/odd pair in the peer range on 127.0.0.1.
func newPeer(tb testing.TB) *peer {
	tb.Helper()
	return newPeerOn(tb, net.IPv4(127, 0, 0, 1))
}

// newPeerOn binds an even/odd pair in the peer range on ip (a loopback address).
func newPeerOn(tb testing.TB, ip net.IP) *peer {
	tb.Helper()
	for port := peerPortMin; port+1 <= peerPortMax; port += 2 {
		rtp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				continue
			}
			tb.Fatal(err)
		}
		rtcp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: port + 1})
		if err != nil {
			rtp.Close()
			continue
		}
		p := &peer{rtp: rtp, rtcp: rtcp}
		tb.Cleanup(func() { rtp.Close(); rtcp.Close() })
		return p
	}
	tb.Fatal("no free peer port in 30900-30999")
	return nil
}

func (p *peer) addr() netip.AddrPort     { return p.rtp.LocalAddr().(*net.UDPAddr).AddrPort() }
func (p *peer) rtcpAddr() netip.AddrPort { return p.rtcp.LocalAddr().(*net.UDPAddr).AddrPort() }

func legAddr(l *Leg) netip.AddrPort     { return netip.AddrPortFrom(loopback, uint16(l.Port())) }
func legRTCPAddr(l *Leg) netip.AddrPort { return netip.AddrPortFrom(loopback, uint16(l.Port()+1)) }

func (p *peer) send(tb testing.TB, to netip.AddrPort, pkt []byte) {
	tb.Helper()
	if _, err := p.rtp.WriteToUDPAddrPort(pkt, to); err != nil {
		tb.Fatal(err)
	}
}

// recv waits (at most 5 s, a safety net, not a verdict on speed) for a datagram.
func recv(tb testing.TB, c *net.UDPConn) ([]byte, netip.AddrPort) {
	tb.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		tb.Fatalf("waiting for a packet: %v", err)
	}
	return buf[:n], from
}

// rtpPacket builds a PCMU packet with a payload that names seq.
func rtpPacket(pt uint8, seq uint16, ts, ssrc uint32, payload int) []byte {
	b := make([]byte, rtpHeaderLen+payload)
	b[0] = 0x80
	b[1] = pt
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	for i := rtpHeaderLen; i < len(b); i++ {
		b[i] = byte(int(seq) + i)
	}
	return b
}

func seqOf(pkt []byte) uint16 { return binary.BigEndian.Uint16(pkt[2:]) }

// waitFor polls cond (a safety net of 5 s, not a speed check).
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

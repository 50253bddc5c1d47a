package sip

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// tcpOptions sends an OPTIONS over c and returns the status line of the answer.
func tcpOptions(t *testing.T, c net.Conn, gw string) string {
	t.Helper()
	local := c.LocalAddr().String()
	msg := fmt.Sprintf("OPTIONS sip:x@%s SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-%d\r\nMax-Forwards: 70\r\n"+
		"From: <sip:t@%s>;tag=a\r\nTo: <sip:x@%s>\r\nCall-ID: o%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		gw, local, time.Now().UnixNano(), local, gw, time.Now().UnixNano())
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer over TCP: %v", err)
	}
	return strings.TrimSpace(line)
}

// closedSoon reports whether the gateway closed c within d.
func closedSoon(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	ne, ok := err.(net.Error)
	return err != nil && !(ok && ne.Timeout())
}

// Issue 10, finding 5: silent TCP connections are closed after
// sip.tcp.idle_timeout and give their slot back; a caller is served meanwhile.
func TestTCPIdleConnectionsClosed(t *testing.T) {
	cfg := Config{Trusted: DefaultTrusted, TCP: TCPConfig{IdleTimeout: 500 * time.Millisecond, MaxPerSource: 1000}}
	g := startGatewayConfig(t, cfg, nil)
	var silent []net.Conn
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", g.tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	c, err := net.Dial("tcp", g.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := tcpOptions(t, c, g.tcp); got != "SIP/2.0 200 OK" {
		t.Fatalf("a caller among 200 silent connections: %q", got)
	}
	for i, sc := range silent {
		if !closedSoon(sc, 5*time.Second) {
			t.Fatalf("silent connection %d still open", i)
		}
	}
	eventually(t, "every slot given back", func() bool { return g.s.tcpLimit.open() <= 1 })
}

// A source past sip.tcp.max_per_source has its extra connections closed at
// accept, counted; its others keep working.
func TestTCPPerSourceCap(t *testing.T) {
	cfg := Config{Trusted: DefaultTrusted, TCP: TCPConfig{MaxPerSource: 5}}
	g := startGatewayConfig(t, cfg, nil)
	var conns []net.Conn
	for i := 0; i < 10; i++ {
		c, err := net.Dial("tcp", g.tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	closed := 0
	for _, c := range conns[5:] {
		if closedSoon(c, 2*time.Second) {
			closed++
		}
	}
	if closed != 5 {
		t.Fatalf("%d of the 5 connections over the cap closed", closed)
	}
	if got := tcpOptions(t, conns[0], g.tcp); got != "SIP/2.0 200 OK" {
		t.Fatalf("a connection within the cap: %q", got)
	}
	if v := g.metric("mediagw_sip_refused_total", "reason", RefusedTCPLimit); v != 5 {
		t.Fatalf("refused{tcp_limit} %v", v)
	}
}

// A request with more header fields than maxHeaderCount gets 513 and
// allocates nothing.
func TestTooManyHeaders(t *testing.T) {
	g := startGateway(t, nil)
	u := newAuthUA(t, g.udp)
	var hdrs []string
	for i := 0; i < maxHeaderCount; i++ {
		hdrs = append(hdrs, fmt.Sprintf("X-Pad-%d: %d", i, i))
	}
	code, _ := u.send(g.udp, sipReq{method: "INVITE", user: "conf-1", callID: "many", fromTag: "f", hdrs: hdrs, body: testOffer})
	if code != 513 {
		t.Fatalf("INVITE with %d+ headers: %d", maxHeaderCount, code)
	}
	nothingAllocated(t, g)
	if v := g.metric("mediagw_sip_refused_total", "reason", RefusedSize); v != 1 {
		t.Fatalf("refused{size} %v", v)
	}
}

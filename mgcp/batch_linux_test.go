//go:build linux

package mgcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Commands that queue in the socket while the server is busy are read in
// batches and every one is answered, in the order they came.
func TestBatchedCommandsAnsweredInOrder(t *testing.T) {
	r := newRig(t)
	const n = 3 * batchSize
	for i := range n {
		r.send(r.ca, fmt.Sprintf("AUEP %d rtpbridge/1@mgw MGCP 1.0\r\n", 1000+i))
	}
	for i := range n {
		got := r.read()
		if want := fmt.Sprintf("200 %d ", 1000+i); !strings.HasPrefix(got, want) {
			t.Fatalf("answer %d: %q, want %q…", i, got, want)
		}
	}
}

// An answer the socket cannot address (an IPv6 peer on an IPv4 socket) is
// reported and the answers after it in the batch still go.
func TestBatchFlushSkipsWhatFails(t *testing.T) {
	pc := listenUDP(t, "127.0.0.1")
	peer := listenUDP(t, "127.0.0.1")
	b := newBatchIO(pc)
	if b == nil || b.inet6 {
		t.Fatalf("no IPv4 batch I/O on %v", pc.LocalAddr())
	}
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	b.queue([]byte("first"), to)
	b.queue([]byte("lost"), netip.MustParseAddrPort("[::1]:9"))
	b.queue([]byte("last"), to)
	var failed []string
	b.flush(func(o outDatagram, err error) {
		if !errors.Is(err, syscall.EAFNOSUPPORT) {
			t.Errorf("%q failed with %v", o.data, err)
		}
		failed = append(failed, string(o.data))
	})
	if len(failed) != 1 || failed[0] != "lost" || len(b.out) != 0 {
		t.Fatalf("failed %q, %d left queued", failed, len(b.out))
	}
	// The queue keeps its array for the next batch, and none of the answers.
	if q := b.out[:cap(b.out)]; len(q) < 3 || q[0].data != nil || q[2].data != nil {
		t.Fatalf("queue after flush: cap %d, %v", cap(b.out), q)
	}
	buf := make([]byte, 100)
	for _, want := range []string{"first", "last"} {
		_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := peer.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("got %q (%v), want %q", buf[:n], err, want)
		}
	}
}

// An IPv4 peer of a dual-stack socket is read as IPv4 and answered at its
// IPv4 address (sent as ::ffff:a.b.c.d).
func TestBatchDualStackAddresses(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	b := newBatchIO(pc)
	if b == nil || !b.inet6 {
		t.Skip("no dual-stack socket here (IPv6 off)")
	}
	peer := listenUDP(t, "127.0.0.1")
	if _, err := peer.WriteToUDP([]byte("ping"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: pc.LocalAddr().(*net.UDPAddr).Port}); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := b.read()
	if err != nil || n != 1 {
		t.Fatalf("read %d: %v", n, err)
	}
	src, data, ok := b.datagram(0)
	if !ok || string(data) != "ping" || src != peer.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("datagram %q from %v (%v)", data, src, ok)
	}
	b.queue([]byte("pong"), src)
	b.flush(func(o outDatagram, err error) { t.Errorf("%q: %v", o.data, err) })
	buf := make([]byte, 100)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := peer.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("got %q (%v)", buf[:n], err)
	}
}

package sip

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

const shedInvite = "INVITE sip:conf-1@127.0.0.1:5060 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bK-1;rport\r\n" +
	"v: SIP/2.0/UDP 10.0.0.8:5060;branch=z9hG4bK-0\r\n" +
	"f: <sip:alice@example.com>;tag=a1\r\n" +
	"To: <sip:conf-1@127.0.0.1>\r\n" +
	"i: abc@10.0.0.9\r\n" +
	"CSeq: 7 INVITE\r\n" +
	"Content-Length: 0\r\n\r\n"

// The stateless 503 a shed INVITE gets is a response sipgo itself reads
// back: every Via in order, From, To with our tag, Call-ID, CSeq and
// Retry-After; the ACK of it (our tag) is known at the socket.
func TestShed503(t *testing.T) {
	if !initialInvite([]byte(shedInvite)) {
		t.Fatal("an INVITE without a To tag is not an initial INVITE")
	}
	reinvite := strings.Replace(shedInvite, "To: <sip:conf-1@127.0.0.1>", "To: <sip:conf-1@127.0.0.1>;tag=x", 1)
	if initialInvite([]byte(reinvite)) || initialInvite([]byte(strings.Replace(shedInvite, "INVITE", "OPTIONS", 2))) {
		t.Fatal("a re-INVITE or an OPTIONS taken for an initial INVITE")
	}
	out, ok := appendShed503(nil, []byte(shedInvite), 42)
	if !ok {
		t.Fatal("no 503 for a complete INVITE")
	}
	msg, err := gosip.ParseMessage(out)
	if err != nil {
		t.Fatalf("our 503 does not parse: %v\n%s", err, out)
	}
	res, okr := msg.(*gosip.Response)
	if !okr || res.StatusCode != 503 {
		t.Fatalf("not a 503: %s", out)
	}
	vias := res.GetHeaders("Via")
	if len(vias) != 2 || !strings.Contains(vias[0].Value(), "z9hG4bK-1") || !strings.Contains(vias[1].Value(), "z9hG4bK-0") {
		t.Fatalf("Via headers %v", vias)
	}
	if tag, _ := res.To().Params.Get("tag"); !strings.HasPrefix(tag, shedTag) {
		t.Fatalf("To tag %q", tag)
	}
	if res.From().Address.User != "alice" || res.CallID().Value() != "abc@10.0.0.9" || res.CSeq().SeqNo != 7 ||
		res.GetHeader("Retry-After") == nil {
		t.Fatalf("headers: %s", out)
	}
	ack := "ACK sip:conf-1@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bK-1\r\n" +
		"From: <sip:alice@example.com>;tag=a1\r\nTo: " + res.To().Value() + "\r\nCall-ID: abc@10.0.0.9\r\nCSeq: 7 ACK\r\n\r\n"
	if !shedAck([]byte(ack)) || shedAck([]byte(strings.Replace(ack, shedTag, "other", 1))) {
		t.Fatal("the ACK of a shed 503 not told apart")
	}
	// Without Call-ID: no 503 (sipgo answers the malformed request).
	if _, ok := appendShed503(nil, []byte(strings.Replace(shedInvite, "i: abc@10.0.0.9\r\n", "", 1)), 1); ok {
		t.Fatal("a 503 for an INVITE without Call-ID")
	}
}

// Through the socket: while shedding, a new INVITE is answered 503 at once
// and never reaches the server; an in-dialog request and a datagram while
// not shedding pass.
func TestShedAtTheSocket(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var shed []netip.AddrPort
	l := &udpListener{UDPConn: srv, peers: map[netip.AddrPort]*peerAddr{}, ovl: &overload{},
		onShed: func(a netip.AddrPort) { shed = append(shed, a) }}
	cli, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	buf := make([]byte, 4096)
	l.ovl.on.Store(true)
	reinvite := strings.Replace(shedInvite, "To: <sip:conf-1@127.0.0.1>", "To: <sip:conf-1@127.0.0.1>;tag=x", 1)
	for _, m := range []string{shedInvite, reinvite} {
		if _, err := cli.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	n, _, err := l.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte(reinvite)) {
		t.Fatalf("ReadFrom gave %q %v, want the re-INVITE (the new INVITE shed)", buf[:n], err)
	}
	_ = cli.SetReadDeadline(time.Now().Add(2 * time.Second))
	rn, err := cli.Read(buf)
	if err != nil || !bytes.HasPrefix(buf[:rn], []byte("SIP/2.0 503 ")) {
		t.Fatalf("the shed INVITE's answer: %q %v", buf[:rn], err)
	}
	if len(shed) != 1 {
		t.Fatalf("%d sheds counted", len(shed))
	}
	l.ovl.on.Store(false)
	if _, err := cli.Write([]byte(shedInvite)); err != nil {
		t.Fatal(err)
	}
	if n, _, err := l.ReadFrom(buf); err != nil || !bytes.Equal(buf[:n], []byte(shedInvite)) {
		t.Fatalf("not shedding: %q %v", buf[:n], err)
	}
}

// The watch turns shedding on while goroutines wait to run longer than
// the delay, and off again when they do not, and logs the episode.
func TestOverloadWatch(t *testing.T) {
	logger, hook := logtest.NewNullLogger()
	o := &overload{delay: 50 * time.Millisecond, log: logrus.NewEntry(logger), wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go o.watch(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for !o.on.Load() { // keep more goroutines runnable than the CPUs can run
		if time.Now().After(deadline) {
			t.Fatal("no shedding while goroutines wait to run")
		}
		o.arrived() // SIP traffic: the watch stays awake
		done := make(chan struct{})
		for range 64 {
			go func() {
				end := time.Now().Add(20 * time.Millisecond)
				for time.Now().Before(end) {
				}
				done <- struct{}{}
			}()
		}
		for range 64 {
			<-done
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for o.on.Load() {
		if time.Now().After(deadline) {
			t.Fatal("still shedding when idle")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	var msgs []string
	for _, e := range hook.AllEntries() {
		msgs = append(msgs, e.Level.String()+": "+e.Message)
	}
	if len(msgs) < 2 || !strings.HasPrefix(msgs[0], "warning: overloaded") || !strings.HasPrefix(msgs[1], "info: overload over") {
		t.Fatalf("log lines %q: want the episode's start and end", msgs)
	}
}

func FuzzShed503(f *testing.F) {
	f.Add([]byte(shedInvite))
	f.Add([]byte("INVITE x SIP/2.0\nTo: a\nVia: b\nf: c\ni: d\nCSeq: 1 INVITE\n\n"))
	f.Add([]byte("ACK x SIP/2.0\r\nt: <sip:x>;tag=" + shedTag + "1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = initialInvite(b)
		_ = shedAck(b)
		out, ok := appendShed503(nil, b, 1)
		if !ok {
			return
		}
		// Whatever the request holds, the answer is one status line and
		// whole CRLF-ended header lines: nothing in a value starts a line.
		if !bytes.HasPrefix(out, []byte("SIP/2.0 503 Service Unavailable\r\n")) || !bytes.HasSuffix(out, []byte("\r\nContent-Length: 0\r\n\r\n")) {
			t.Fatalf("not a 503: %q", out)
		}
		for i, c := range out {
			if c == '\n' && (i == 0 || out[i-1] != '\r') || c == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
				t.Fatalf("bare CR or LF at %d: %q", i, out)
			}
		}
	})
}

// A new INVITE that waited in the socket longer than queue_delay is shed
// even while the scheduler's door is off; a request in a dialog that
// waited as long passes, and so does a new INVITE read at once.
func TestShedLateInvite(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !stampReceives(srv) {
		t.Skip("no SO_TIMESTAMPNS here")
	}
	waitStamping(t, srv)
	var shed []netip.AddrPort
	l := &udpListener{UDPConn: srv, peers: map[netip.AddrPort]*peerAddr{}, ovl: &overload{queue: 20 * time.Millisecond},
		onShed: func(a netip.AddrPort) { shed = append(shed, a) }, oob: make([]byte, stampOOB)}
	cli, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	reinvite := strings.Replace(shedInvite, "To: <sip:conf-1@127.0.0.1>", "To: <sip:conf-1@127.0.0.1>;tag=x", 1)
	for _, m := range []string{shedInvite, reinvite} {
		if _, err := cli.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(60 * time.Millisecond) // both wait three times queue_delay
	buf := make([]byte, 4096)
	n, _, err := l.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte(reinvite)) {
		t.Fatalf("ReadFrom gave %q %v, want the re-INVITE (the late INVITE shed)", buf[:n], err)
	}
	_ = cli.SetReadDeadline(time.Now().Add(2 * time.Second))
	rn, err := cli.Read(buf)
	if err != nil || !bytes.HasPrefix(buf[:rn], []byte("SIP/2.0 503 ")) || len(shed) != 1 {
		t.Fatalf("the late INVITE's answer: %q %v (%d sheds)", buf[:rn], err, len(shed))
	}
	if _, err := cli.Write([]byte(shedInvite)); err != nil {
		t.Fatal(err)
	}
	if n, _, err := l.ReadFrom(buf); err != nil || !bytes.Equal(buf[:n], []byte(shedInvite)) {
		t.Fatalf("an INVITE read at once: %q %v", buf[:n], err)
	}
}

// waitStamping returns once datagrams to srv carry the time they arrived.
// The kernel turns receive stamps on for the whole stack lazily (a deferred
// static key) when the first socket asks: until then a datagram is stamped
// when it is read, and every wait measures 0.
func waitStamping(t *testing.T, srv *net.UDPConn) {
	t.Helper()
	cli, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	buf, oob := make([]byte, 64), make([]byte, stampOOB)
	for try := 0; try < 100; try++ {
		if _, err := cli.Write([]byte("probe")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		_ = srv.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, oobn, _, _, err := srv.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			t.Fatal(err)
		}
		if at, ok := arrival(oob[:oobn]); ok && time.Now().UnixNano()-at >= int64(15*time.Millisecond) {
			_ = srv.SetReadDeadline(time.Time{})
			return
		}
	}
	t.Fatal("datagrams still stamped when read after 100 tries")
}

// The watch sleeps after overloadIdlePeriods without a datagram, wakes on
// the next one, keeps watching while they come, and sleeps again after.
func TestOverloadWatchSleepsWhenIdle(t *testing.T) {
	o := &overload{delay: time.Second, wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.watch(ctx) }()
	defer func() { cancel(); <-done }()
	waitNaps := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for o.naps.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("the watch slept %d times, want %d", o.naps.Load(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitNaps(1)
	// Datagrams for well over overloadIdlePeriods: awake all along.
	end := time.Now().Add(2 * overloadIdlePeriods * overloadPeriod)
	for time.Now().Before(end) {
		o.arrived()
		time.Sleep(overloadPeriod / 4)
	}
	if n := o.naps.Load(); n != 1 {
		t.Fatalf("the watch slept %d times while datagrams came", n)
	}
	waitNaps(2) // silence again
}

package mgcp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediagw/mediagw/session"
)

const benchCRCX = "CRCX 1234 rtpbridge/$@mgw MGCP 1.0\r\nC: 5a1\r\nM: sendrecv\r\nL: p:20, a:PCMU\r\n" +
	"\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n"

func BenchmarkParseCommand(b *testing.B) {
	msg := []byte(benchCRCX)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := ParseCommand(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormatResponse(b *testing.B) {
	r := &Response{Code: 250, TransID: 1234, Comment: "Connection deleted",
		Params: Params{{"P", "PS=1000, OS=160000, PR=1000, OR=160000, PL=0, JI=0, LA=0"}}}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendTo(buf[:0])
	}
}

// benchServer is a Server with a real table, handling datagrams in-process.
func benchServer(b *testing.B) *Server {
	cfg := DefaultConfig()
	s, err := New(cfg, newTable(b), testLogger(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// setTID rewrites the transaction ID of a command text.
func setTID(cmd string, tid uint32) []byte {
	verb, rest, _ := strings.Cut(cmd, " ")
	_, rest, _ = strings.Cut(rest, " ")
	return []byte(verb + " " + strconv.FormatUint(uint64(tid), 10) + " " + rest)
}

// BenchmarkHandleAUEP is the pipeline for a command that touches no
// sockets: parse, cache lookup, endpoint, audit, format, remember.
func BenchmarkHandleAUEP(b *testing.B) {
	s := benchServer(b)
	src := netip.MustParseAddrPort("127.0.0.1:2727")
	var tid uint32
	b.ReportAllocs()
	for b.Loop() {
		tid = tid%MaxTransID + 1
		out := s.handle(src, setTID("AUEP 1 rtpbridge/1@mgw MGCP 1.0\r\nF: A\r\n", tid))
		if len(out) < 3 || string(out[:3]) != "200" {
			b.Fatalf("%q", out)
		}
	}
}

// BenchmarkHandleCRCXDLCX is one CRCX (with SDP, binding a port pair) and
// its DLCX (250 with statistics) through the pipeline, in-process.
func BenchmarkHandleCRCXDLCX(b *testing.B) {
	s := benchServer(b)
	src := netip.MustParseAddrPort("127.0.0.1:2727")
	var tid uint32
	b.ReportAllocs()
	for b.Loop() {
		cycle(b, s, src, &tid)
	}
}

// cycle runs one CRCX (benchCRCX) and its DLCX through s.handle.
func cycle(b *testing.B, s *Server, src netip.AddrPort, tid *uint32) {
	*tid++
	out := s.handle(src, setTID(benchCRCX, *tid))
	r, err := ParseResponse(out)
	if err != nil || r.Code != 200 {
		b.Fatalf("%q %v", out, err)
	}
	*tid++
	dl := fmt.Sprintf("DLCX %d %s MGCP 1.0\r\nC: 5a1\r\nI: %s\r\n", *tid, r.Params.Value("Z"), r.Params.Value("I"))
	if out := s.handle(src, []byte(dl)); string(out[:3]) != "250" {
		b.Fatalf("%q", out)
	}
}

// BenchmarkUDPCRCXDLCX measures CRCX+DLCX transactions per second over real
// UDP: several call agents (one socket each) run CRCX then DLCX in a loop,
// waiting for each answer. Reports transactions/s (a CRCX or a DLCX each).
func BenchmarkUDPCRCXDLCX(b *testing.B) {
	s := benchServer(b)
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pc) }()
	defer func() {
		cancel()
		<-done
		pc.Close()
	}()
	srv := pc.LocalAddr().(*net.UDPAddr)
	var tids atomic.Uint32
	b.SetParallelism(4)
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		do := func(dg []byte, tid uint32) *Response {
			for try := 0; try < 5; try++ {
				if _, err := c.WriteToUDP(dg, srv); err != nil {
					b.Error(err)
					return nil
				}
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				for {
					n, _, err := c.ReadFromUDP(buf)
					if err != nil {
						break // nothing yet: retransmit, as a call agent does
					}
					r, err := ParseResponse(buf[:n])
					if err != nil {
						b.Error(err)
						return nil
					}
					if r.TransID == tid { // else a late answer to an earlier try
						return r
					}
				}
			}
			b.Error("no answer after 5 tries")
			return nil
		}
		for pb.Next() {
			tid := tids.Add(1)
			r := do(setTID(benchCRCX, tid), tid)
			if r == nil || r.Code != 200 {
				b.Errorf("CRCX: %+v", r)
				return
			}
			tid = tids.Add(1)
			dl := fmt.Sprintf("DLCX %d %s MGCP 1.0\r\nC: 5a1\r\nI: %s\r\n", tid, r.Params.Value("Z"), r.Params.Value("I"))
			if r := do([]byte(dl), tid); r == nil || r.Code != 250 {
				b.Errorf("DLCX: %+v", r)
				return
			}
		}
	})
	b.ReportMetric(float64(2*b.N)/time.Since(start).Seconds(), "transactions/s")
}

// BenchmarkDigitEvent is what a DigitReceived costs the media goroutine
// that announces it: a non-blocking hand-off to the MGCP digit loop.
func BenchmarkDigitEvent(b *testing.B) {
	table := newTable(b)
	s, err := New(DefaultConfig(), table, testLogger(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-s.digitCh:
			case <-done:
				return
			}
		}
	}()
	defer close(done)
	ev := session.Event{Type: session.DigitReceived, Connection: session.Connection{ID: "7"}, ConferenceID: "1", Digit: 5}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.onEvent(ev)
	}
}

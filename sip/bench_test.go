package sip

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/session"
	"github.com/mediagw/mediagw/store"
)

// Offer/answer runs once per call (or re-INVITE), not per packet.
func BenchmarkSDPOfferAnswer(b *testing.B) {
	offer := []byte(sdpSeeds[1])
	local := localMedia{SessID: 1, Version: 2, Addr: netip.MustParseAddrPort("127.0.0.1:33000"), Ptime: 20 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		d, err := parseSDP(offer)
		if err != nil {
			b.Fatal(err)
		}
		c, _ := pickCodec(d.Formats, []string{"PCMU", "PCMA"})
		local.Formats = []format{c, defaultTE}
		local.Dir = d.effectiveDir().reverse()
		_ = buildSDP(local, d)
	}
}

func BenchmarkRoute(b *testing.B) {
	rules, _ := compileRoutes(append(DefaultRoutes(), Route{Match: `^(?P<user>[0-9]+)$`, Action: ActionBridge, Target: "sip:${user}@pbx"}))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := route(rules, "conf-sales"); !ok {
			b.Fatal("no route")
		}
	}
}

// BenchmarkEchoCall runs whole calls the way `sipp -sn uac -s echo` makes
// them (INVITE with SDP, 100, 200, ACK, BYE, 200) one after another over
// loopback UDP. allocs/op and B/op are per call, counted over the whole
// process (the gateway's goroutines included; the client allocates
// nothing); retained-B/call is the heap still held after a GC per call made
// (state kept for retransmissions).
func BenchmarkEchoCall(b *testing.B) { benchEchoCall(b, false) }

// BenchmarkEchoCallFileState is BenchmarkEchoCall with the state kept in a
// bbolt file (store.OpenFile, as state.store: file): what persisting the
// connection and the dialog costs a call in allocations (B/op, allocs/op).
// Its ns/op is not CPU: the calls run one after another, so each BYE waits
// for its own group commit (~10 ms plus an fsync); under load one commit
// serves every call of its 10 ms (bench/state.sh measures the rate).
func BenchmarkEchoCallFileState(b *testing.B) { benchEchoCall(b, true) }

func benchEchoCall(b *testing.B, file bool) {
	var st store.Store
	var opts []gwOption
	if file {
		var err error
		if st, err = store.OpenFile(filepath.Join(b.TempDir(), "s.db"), store.Options{}); err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		opts = append(opts, func(c *session.Config) { c.State = st })
	}
	g := startGateway(b, nil, opts...)
	if st != nil {
		if _, err := g.s.Restore(st); err != nil {
			b.Fatal(err)
		}
	}
	c, err := net.Dial("udp", g.udp)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	in := make([]byte, 4096)
	read := func(want string) []byte {
		for {
			_ = c.SetReadDeadline(time.Now().Add(waitFor))
			n, err := c.Read(in)
			if err != nil {
				b.Fatalf("waiting for %q: %v", want, err)
			}
			if bytes.HasPrefix(in[:n], []byte(want)) {
				return in[:n]
			}
			if !bytes.HasPrefix(in[:n], []byte("SIP/2.0 1")) {
				b.Fatalf("want %q, got:\n%s", want, in[:n])
			}
		}
	}
	sdp := strings.ReplaceAll("v=0\no=user1 53655765 2353687637 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 33990 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n", "\n", "\r\n")
	out := make([]byte, 0, 2048)
	var tag []byte
	send := func(method string, n, cseq int, body string) {
		m := out[:0]
		m = fmt.Appendf(m, "%s sip:echo@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-bench-", method, g.udp, local)
		m = strconv.AppendInt(m, int64(n), 10)
		m = append(m, method...)
		m = fmt.Appendf(m, "\r\nFrom: sipp <sip:sipp@%s>;tag=benchtag", local)
		m = strconv.AppendInt(m, int64(n), 10)
		m = fmt.Appendf(m, "\r\nTo: echo <sip:echo@%s>", g.udp)
		if method != "INVITE" {
			m = append(m, ";tag="...)
			m = append(m, tag...)
		}
		m = append(m, "\r\nCall-ID: "...)
		m = strconv.AppendInt(m, int64(n), 10)
		m = append(m, "-bench@127.0.0.1\r\nCSeq: "...)
		m = strconv.AppendInt(m, int64(cseq), 10)
		m = append(m, ' ')
		m = append(m, method...)
		m = fmt.Appendf(m, "\r\nContact: sip:sipp@%s\r\nMax-Forwards: 70\r\nSubject: Performance Test\r\n", local)
		if body != "" {
			m = append(m, "Content-Type: application/sdp\r\n"...)
		}
		m = append(m, "Content-Length: "...)
		m = strconv.AppendInt(m, int64(len(body)), 10)
		m = append(m, "\r\n\r\n"...)
		m = append(m, body...)
		out = m
		if _, err := c.Write(m); err != nil {
			b.Fatal(err)
		}
	}
	call := func(n int) {
		send("INVITE", n, 1, sdp)
		ok := read("SIP/2.0 200")
		_, after, _ := bytes.Cut(ok, []byte("\r\nTo: "))
		line, _, _ := bytes.Cut(after, []byte("\r\n"))
		_, t, found := bytes.Cut(line, []byte(";tag="))
		if !found {
			b.Fatalf("200 without To-tag:\n%s", ok)
		}
		tag = append(tag[:0], t...)
		send("ACK", n, 1, "")
		send("BYE", n, 2, "")
		read("SIP/2.0 200")
	}
	for i := range 200 { // warm up: pools, maps, stacks
		call(-1 - i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		n++
		call(n)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "retained-B/call")
	g.idle(b)
}

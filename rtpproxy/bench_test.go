package rtpproxy

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Benchmark pools use 30100-30899; peers come from 30900-30999.
const (
	benchPortMin = 30100
	benchPortMax = 30899
)

// BenchmarkHandleRTP is the per-packet path of a relay without the read:
// parse, latch check, statistics, and Send through the peer leg's socket
// (a real sendto to a sink nobody reads; the kernel drops what overflows).
func BenchmarkHandleRTP(b *testing.B) {
	p := newTestPool(b, benchPortMin, benchPortMax)
	a, out := openLeg(b, p), openLeg(b, p)
	sink := newPeer(b)
	src := newPeer(b).addr()
	a.SetRemote(src)
	out.SetRemote(sink.addr())
	Relay(a, out)
	pkt := rtpPacket(0, 0, 0, 1, 160)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		pkt[2], pkt[3] = byte(i>>8), byte(i)
		a.handleRTP(pkt, src)
	}
	b.StopTimer()
	if s := out.Stats(); s.PacketsSent == 0 {
		b.Fatal("nothing sent")
	}
}

// BenchmarkStatsUpdate is the receive-side statistics of one packet.
func BenchmarkStatsUpdate(b *testing.B) {
	pkt := rtpPacket(0, 0, 0, 1, 160)
	var r receiver
	now := int64(1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		pkt[2], pkt[3] = byte(i>>8), byte(i)
		h, _ := parseRTP(pkt)
		h.ts = uint32(i) * 160
		now += 20_000_000 + int64(i%7)*100_000
		r.update(&h, now)
	}
}

// BenchmarkClock compares the clock reads a packet loop could use.
func BenchmarkClock(b *testing.B) {
	b.Run("monoNow", func(b *testing.B) {
		var s int64
		for b.Loop() {
			s += monoNow()
		}
		_ = s
	})
	b.Run("time.Now", func(b *testing.B) {
		var s int64
		for b.Loop() {
			s += time.Now().UnixNano()
		}
		_ = s
	})
}

func BenchmarkPoolOpenClose(b *testing.B) {
	p := newTestPool(b, benchPortMin, benchPortMax)
	b.ReportAllocs()
	for b.Loop() {
		l, err := p.Open()
		if err != nil {
			b.Fatal(err)
		}
		l.Close()
	}
}

// BenchmarkPoolTakePush is the free list alone (no sockets).
func BenchmarkPoolTakePush(b *testing.B) {
	p := newTestPool(b, 20000, 29999)
	b.ReportAllocs()
	for b.Loop() {
		p.mu.Lock()
		i, _ := p.take()
		p.push(i)
		p.mu.Unlock()
	}
}

// BenchmarkRelayRoundTrip: one packet at a time from a peer through leg a,
// out of leg b, read by the other peer. ns/op is the added latency of two
// socket hops and the relay goroutine wake-up.
func BenchmarkRelayRoundTrip(b *testing.B) {
	p := newTestPool(b, benchPortMin, benchPortMax)
	a, out := openLeg(b, p), openLeg(b, p)
	pa, pb := newPeer(b), newPeer(b)
	a.SetRemote(pa.addr())
	out.SetRemote(pb.addr())
	Relay(a, out)
	pkt := rtpPacket(0, 0, 0, 1, 160)
	buf := make([]byte, 2048)
	to := legAddr(a)
	pb.rtp.SetReadDeadline(time.Now().Add(time.Minute))
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for i := 0; b.Loop(); i++ {
		pkt[2], pkt[3] = byte(i>>8), byte(i)
		if _, err := pa.rtp.WriteToUDPAddrPort(pkt, to); err != nil {
			b.Fatal(err)
		}
		if _, _, err := pb.rtp.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRelayThroughput pushes packets through `calls` relayed leg pairs
// (round robin, as many calls at 50 packets/s would), at most 64 in flight,
// and reports packets per second through the relay. The relay runs in a
// child process with GOMAXPROCS=1 (one core, as issue 6 runs it), so
// cpu-ns/pkt is the relay's own CPU per relayed packet; the generator (one
// socket sending to every leg a, one sink socket that every leg b sends to)
// runs here.
func BenchmarkRelayThroughput(b *testing.B) {
	for _, read := range []string{readPoll, readRecvmmsg, readRecvfrom} {
		for _, calls := range []int{1, 64, 192} {
			b.Run(fmt.Sprintf("read=%s/calls=%d", read, calls), func(b *testing.B) {
				relayThroughput(b, calls, 64, read)
			})
		}
		// Deep queues, as at and past the relay's capacity.
		b.Run(fmt.Sprintf("read=%s/calls=64/window=1024", read), func(b *testing.B) {
			relayThroughput(b, 64, 1024, read)
		})
	}
}

func relayThroughput(b *testing.B, calls, window int, read string) {
	// One sink socket holds some 150 queued packets: enough sinks that the
	// window always fits, each drained by its own goroutine.
	gen := newPeer(b)
	sinks := make([]*peer, 1+window/64)
	addrs := make([]netip.AddrPort, len(sinks))
	for i := range sinks {
		sinks[i] = newPeer(b)
		addrs[i] = sinks[i].addr()
	}
	child := startChildRelay(b, calls, gen.addr(), addrs, read, 1)
	targets := child.targets
	pkt := rtpPacket(0, 0, 0, 1, 160)
	tokens := make(chan struct{}, window)
	for range window {
		tokens <- struct{}{}
	}
	var received atomic.Int64
	var readers sync.WaitGroup
	for _, sink := range sinks {
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 2048)
			for {
				sink.rtp.SetReadDeadline(time.Now().Add(time.Second))
				if _, _, err := sink.rtp.ReadFromUDPAddrPort(buf); err != nil {
					return // closed at the end, or a second without packets
				}
				received.Add(1)
				tokens <- struct{}{}
			}
		}()
	}
	// Warm up: one packet through every call latches its legs (one
	// allocation each, once per remote) before anything is measured.
	for i, to := range targets {
		<-tokens
		pkt[2], pkt[3] = byte(i>>8), byte(i)
		if _, err := gen.rtp.WriteToUDPAddrPort(pkt, to); err != nil {
			b.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); received.Load() < int64(len(targets)); {
		if time.Now().After(deadline) {
			b.Fatalf("warm-up: %d of %d back", received.Load(), len(targets))
		}
		time.Sleep(time.Millisecond)
	}
	received.Store(0)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	sent := 0
	cpu0, mallocs0 := child.usage(b)
	start := time.Now()
	stall := time.NewTimer(time.Hour) // reused: the generator allocates nothing per packet
	defer stall.Stop()
	for b.Loop() {
		select {
		case <-tokens:
		default: // window full: wait, but not for ever
			stall.Reset(2 * time.Second)
			select {
			case <-tokens:
			case <-stall.C:
				b.Fatalf("no packet back for 2 s: %d of %d received", received.Load(), sent)
			}
			stall.Stop()
		}
		pkt[2], pkt[3] = byte(sent>>8), byte(sent)
		if _, err := gen.rtp.WriteToUDPAddrPort(pkt, targets[sent%calls]); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	for deadline := time.Now().Add(2 * time.Second); received.Load() < int64(sent); {
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d", received.Load(), sent)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu, mallocs := child.usage(b)
	cpu -= cpu0
	mallocs -= mallocs0
	for _, sink := range sinks {
		sink.rtp.Close() // ends the readers
	}
	readers.Wait()
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "pkts/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(sent), "relay-cpu-ns/pkt")
	b.ReportMetric(1e9*float64(sent)/float64(cpu.Nanoseconds()), "pkts/relay-cpu-s")
	// Heap allocations of the relay process per relayed packet (the
	// allocs/op column is this process, the generator).
	b.ReportMetric(float64(mallocs)/float64(sent), "relay-allocs/pkt")
}

// cpuTime is the user+system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHandleRTPReceive is the receive path alone (parse, source check,
// statistics) of a latched leg whose packets go nowhere: no system call, so
// the cost of the filtering itself shows.
func BenchmarkHandleRTPReceive(b *testing.B) {
	p := newTestPool(b, benchPortMin, benchPortMax)
	a := openLeg(b, p)
	src := newPeer(b).addr()
	a.SetRemote(src)
	pkt := rtpPacket(0, 0, 0, 1, 160)
	a.handleRTP(pkt, src) // latch
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for i := 0; b.Loop(); i++ {
		pkt[2], pkt[3] = byte(i>>8), byte(i)
		a.handleRTP(pkt, src)
	}
	if s := a.Stats(); s.PacketsReceived == 0 {
		b.Fatal("nothing received")
	}
}

// BenchmarkHandleRTPForeign is a packet from an address the latched leg
// refuses (an attacker spraying the port): parsed, checked, counted, dropped.
func BenchmarkHandleRTPForeign(b *testing.B) {
	p := newTestPool(b, benchPortMin, benchPortMax)
	a := openLeg(b, p)
	src := newPeer(b).addr()
	a.SetRemote(src)
	pkt := rtpPacket(0, 0, 0, 1, 160)
	a.handleRTP(pkt, src) // latch
	foreign := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 3}), 4000)
	b.ReportAllocs()
	for b.Loop() {
		a.handleRTP(pkt, foreign)
	}
	if a.Drops()[DropSource] == 0 {
		b.Fatal("nothing dropped")
	}
}

// BenchmarkHandleSRTP is BenchmarkHandleRTP with SRTP: an SRTP leg relayed
// to a plain one (decrypt in place, then the sendto), and two SRTP legs
// (decrypt, encrypt into the sending leg's buffer, sendto).
func BenchmarkHandleSRTP(b *testing.B) {
	for _, mode := range []string{"srtp-receive", "srtp-to-rtp", "srtp-to-srtp"} {
		both := mode == "srtp-to-srtp"
		b.Run(mode, func(b *testing.B) {
			p := newTestPool(b, benchPortMin, benchPortMax)
			a, out := openLeg(b, p), openLeg(b, p)
			sink := newPeer(b)
			src := newPeer(b).addr()
			a.SetRemote(src)
			out.SetRemote(sink.addr())
			keys := SRTP{Suite: SuiteAES128SHA1_80, LocalKey: testKey(1), RemoteKey: testKey(100)}
			if err := a.SetSRTP(keys); err != nil {
				b.Fatal(err)
			}
			if both {
				if err := out.SetSRTP(SRTP{Suite: SuiteAES128SHA1_32, LocalKey: testKey(7), RemoteKey: testKey(9)}); err != nil {
					b.Fatal(err)
				}
			}
			if mode != "srtp-receive" { // receive: decrypt and statistics only, no send
				Relay(a, out)
			}
			far := newSRTPPeer(b, keys)
			// Packets are encrypted ahead (the peer's cost is not ours) and
			// handed over in a copy, as the reader's buffer would be.
			const n = 4096
			encs := make([][]byte, n)
			for i := range encs {
				encs[i], _ = far.enc.EncryptRTP(nil, rtpPacket(0, uint16(i), uint32(i)*160, 1, 160), nil)
			}
			buf := make([]byte, rtpBufSize)
			b.ReportAllocs()
			b.SetBytes(172)
			i, base := 0, 0
			for b.Loop() {
				if i == n {
					// The next sequence numbers (a replay would be dropped), off the clock.
					b.StopTimer()
					base += n
					for k := range encs {
						seq := base + k
						encs[k], _ = far.enc.EncryptRTP(encs[k][:0], rtpPacket(0, uint16(seq), uint32(seq)*160, 1, 160), nil)
					}
					b.StartTimer()
					i = 0
				}
				pkt := buf[:copy(buf, encs[i])]
				a.handleRTP(pkt, src)
				i++
			}
			if d := a.Drops(); d[DropSRTPAuth]+d[DropSRTPReplay] != 0 {
				b.Fatalf("drops %v", d)
			}
			if mode != "srtp-receive" && out.Stats().PacketsSent == 0 {
				b.Fatal("nothing sent")
			}
		})
	}
}

// BenchmarkSRTPForged is a packet that fails SRTP authentication on a
// latched leg: header check, source check, HMAC, drop.
func BenchmarkSRTPForged(b *testing.B) {
	p := newTestPool(b, benchPortMin, benchPortMax)
	a := openLeg(b, p)
	src := newPeer(b).addr()
	a.SetRemote(src)
	keys := SRTP{Suite: SuiteAES128SHA1_80, LocalKey: testKey(1), RemoteKey: testKey(100)}
	if err := a.SetSRTP(keys); err != nil {
		b.Fatal(err)
	}
	far := newSRTPPeer(b, keys)
	enc, _ := far.enc.EncryptRTP(nil, rtpPacket(0, 1, 0, 1, 160), nil)
	a.handleRTP(bytes.Clone(enc), src) // latch
	forged := bytes.Clone(enc)
	forged[3]++
	forged[20] ^= 1
	buf := make([]byte, rtpBufSize)
	b.ReportAllocs()
	for b.Loop() {
		a.handleRTP(buf[:copy(buf, forged)], src)
	}
	if a.Drops()[DropSRTPAuth] == 0 {
		b.Fatal("nothing dropped")
	}
}

// BenchmarkSRTPReplay is a replayed SRTP packet on a latched leg: pion's
// replay check runs before the HMAC, but its error value is allocated.
func BenchmarkSRTPReplay(b *testing.B) {
	p := newTestPool(b, benchPortMin, benchPortMax)
	a := openLeg(b, p)
	src := newPeer(b).addr()
	a.SetRemote(src)
	keys := SRTP{Suite: SuiteAES128SHA1_80, LocalKey: testKey(1), RemoteKey: testKey(100)}
	if err := a.SetSRTP(keys); err != nil {
		b.Fatal(err)
	}
	far := newSRTPPeer(b, keys)
	enc, _ := far.enc.EncryptRTP(nil, rtpPacket(0, 1, 0, 1, 160), nil)
	a.handleRTP(bytes.Clone(enc), src) // accepted once
	buf := make([]byte, rtpBufSize)
	b.ReportAllocs()
	for b.Loop() {
		a.handleRTP(buf[:copy(buf, enc)], src)
	}
	if a.Drops()[DropSRTPReplay] == 0 {
		b.Fatal("nothing dropped")
	}
}

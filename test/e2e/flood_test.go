package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Floods through the binary (issue 10): while each runs, real SIPp calls
// keep succeeding; after it, ports, goroutines, fds and RSS come back.
// `make flood` runs them verbosely for their figures.

// floodRuntime has the runtime give idle memory back every second (30 s
// by default), so RSS is measured back within the test.
const floodRuntime = "runtime: {return_idle: 1s}\n"

// procFigures is what the gateway process holds now.
type procFigures struct {
	goroutines, fds int
	rssMB           float64
	heapMB, sysMB   float64 // Go heap in use, memory obtained from the OS
	portsFree       float64
}

func (p procFigures) String() string {
	return fmt.Sprintf("goroutines %d, fds %d, RSS %.1f MB (Go heap %.1f MB of %.1f MB from the OS), RTP ports free %.0f",
		p.goroutines, p.fds, p.rssMB, p.heapMB, p.sysMB, p.portsFree)
}

func (g *Gateway) figures(t *testing.T) procFigures {
	t.Helper()
	var f procFigures
	pid := g.cmd.Process.Pid
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		f.fds = len(ents)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				kb, _ := strconv.Atoi(strings.Fields(line)[1])
				f.rssMB = float64(kb) / 1024
			}
		}
	}
	resp, err := http.Get(g.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f.goroutines, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "mediagw_rtp_ports_free "); ok {
			f.portsFree, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			b, _ := strconv.ParseFloat(v, 64)
			f.heapMB = b / (1 << 20)
		}
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_sys_bytes "); ok {
			b, _ := strconv.ParseFloat(v, 64)
			f.sysMB = b / (1 << 20)
		}
	}
	return f
}

// backToBaseline waits until the gateway holds what it held at base:
// the same free ports, goroutines within a small slack, fds within the
// sockets of released RTP pairs (kept bound for reuse, by design), RSS
// within 64 MB (floodConfig has the runtime give memory back every second).
func (g *Gateway) backToBaseline(t *testing.T, base procFigures, within time.Duration) procFigures {
	t.Helper()
	deadline := time.Now().Add(within)
	fdSlack := g.RTPMax - g.RTPMin + 1 + 3
	for {
		now := g.figures(t)
		if now.portsFree == base.portsFree && now.goroutines <= base.goroutines+5 && now.fds <= base.fds+fdSlack && now.rssMB <= base.rssMB+64 {
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("not back to the baseline after %v: now %v, baseline %v\nlargest mappings:\n%s", within, now, base, g.bigMappings())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// sippCalls runs n SIPp calls into conf-real (transport "u1" or "t1") and
// fails the test unless every one succeeded.
func sippCalls(t *testing.T, g *Gateway, transport string, n int, done chan<- error) {
	sipp := requireTool(t, "sipp")
	out, err := run(t, 2*time.Minute, sipp, g.SIP, "-sn", "uac", "-s", "conf-real", "-t", transport, "-i", "127.0.0.1", "-p", "0",
		"-m", strconv.Itoa(n), "-r", "5", "-d", "1000", "-nostdin", "-timeout", "90s", "-max_recv_loops", "100000")
	if err != nil {
		err = fmt.Errorf("%v\n%s", err, tail(out, 30))
	}
	done <- err
}

// udpFlood sends n INVITEs (each a new call, never ACKed) from ip to the
// gateway at about rate a second, reading and counting what comes back.
func udpFlood(t *testing.T, gw, ip, user string, n, rate int) map[string]int {
	t.Helper()
	raddr, _ := net.ResolveUDPAddr("udp", gw)
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	codes := map[string]int{}
	answered := map[string]bool{}
	var mu sync.Mutex
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			msg := string(buf[:k])
			line, _, _ := strings.Cut(msg, "\r\n")
			code := strings.TrimPrefix(line, "SIP/2.0 ")[:3]
			mu.Lock()
			if code == "200" { // count calls, not the 2xx's retransmissions
				cid := ""
				if i := strings.Index(msg, "\r\nCall-ID: "); i >= 0 {
					cid, _, _ = strings.Cut(msg[i+11:], "\r\n")
				}
				if answered[cid] {
					mu.Unlock()
					continue
				}
				answered[cid] = true
			}
			codes[code]++
			mu.Unlock()
		}
	}()
	local := c.LocalAddr().String()
	body := "v=0\r\no=- 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip + "\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	perTick := rate / 100
	if perTick < 1 {
		perTick = 1
	}
	for i := 0; i < n; {
		<-tick.C
		for j := 0; j < perTick && i < n; j, i = j+1, i+1 {
			msg := fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-f%d\r\nMax-Forwards: 70\r\n"+
				"From: <sip:flood@%s>;tag=f%d\r\nTo: <sip:%s@%s>\r\nCall-ID: flood-%s-%d\r\nCSeq: 1 INVITE\r\nContact: <sip:flood@%s>\r\n"+
				"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
				user, gw, local, i, local, i, user, gw, ip, i, local, len(body), body)
			_, _ = c.Write([]byte(msg))
		}
	}
	<-readDone
	mu.Lock()
	defer mu.Unlock()
	return codes
}

// 20,000 INVITEs never ACKed from one (forged, trusted) address: the flood
// holds at most half the pairs, the real calls all connect, and once its
// calls time out (no ACK in 32 s) everything is back.
func TestFloodUnconfirmedInvites(t *testing.T) {
	g := StartGateway(t, GatewayOptions{Plain: true, ExtraYAML: floodRuntime})
	base := g.figures(t)
	done := make(chan error, 1)
	go sippCalls(t, g, "u1", 20, done)
	codes := udpFlood(t, g.SIP, "127.0.0.9", "conf-flood", 20000, 2000)
	if err := <-done; err != nil {
		t.Fatalf("real calls during the flood failed: %v", err)
	}
	during := g.figures(t)
	t.Logf("flood of 20,000 un-ACKed INVITEs (responses by code; 200 = calls answered): %v; baseline: %v; right after: %v", codes, base, during)
	// 50 pairs: at most 25 wait for an ACK; each real call (20) may drop one
	// of the flood's to make room, which the flood then takes again.
	if codes["200"] > 25+20 || codes["503"] == 0 {
		t.Fatalf("the flood got %d calls answered 200", codes["200"])
	}
	after := g.backToBaseline(t, base, 60*time.Second)
	t.Logf("after: %v", after)
}

// 50 untrusted sources each far above sip.rate: they get 503s and then
// silence; trusted SIPp calls meanwhile all connect.
func TestFloodRateFromFiftySources(t *testing.T) {
	g := StartGateway(t, GatewayOptions{Plain: true, ExtraYAML: floodRuntime, SIPYAML: `  trusted: ["127.0.0.1/32"]
  rate: {per_source: 5, burst: 10}`})
	base := g.figures(t)
	done := make(chan error, 1)
	go sippCalls(t, g, "u1", 20, done)
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := map[string]int{}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(ip string) {
			defer wg.Done()
			codes := udpFlood(t, g.SIP, ip, "conf-1", 200, 200)
			mu.Lock()
			for k, v := range codes {
				total[k] += v
			}
			mu.Unlock()
		}(fmt.Sprintf("127.0.1.%d", i+1))
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("real calls during the flood failed: %v", err)
	}
	answered := 0
	for _, v := range total {
		answered += v
	}
	t.Logf("50 sources x 200 INVITEs at 200/s each: answers %v, %d unanswered; baseline %v", total, 50*200-answered, base)
	if total["200"] != 0 || total["503"] == 0 || answered >= 50*200 {
		t.Fatalf("rate limit: answers %v", total)
	}
	after := g.backToBaseline(t, base, 30*time.Second)
	t.Logf("after: %v", after)
}

// 500 idle TCP connections (10 addresses x 50): SIPp calls over TCP connect
// meanwhile; after sip.tcp.idle_timeout the connections are closed and the
// fds are back.
func TestFloodIdleTCP(t *testing.T) {
	g := StartGateway(t, GatewayOptions{Plain: true, ExtraYAML: floodRuntime, SIPYAML: `  tcp: {idle_timeout: 3s, max_per_source: 64, max_total: 4096}`})
	base := g.figures(t)
	var conns []net.Conn
	for i := 0; i < 500; i++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(1+i%10))}}
		c, err := d.Dial("tcp", g.SIP)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	held := g.figures(t)
	done := make(chan error, 1)
	go sippCalls(t, g, "t1", 10, done)
	if err := <-done; err != nil {
		t.Fatalf("TCP calls next to 500 idle connections failed: %v", err)
	}
	closed := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				closed++
			}
		}
	}
	if closed != 500 {
		t.Fatalf("%d of 500 idle connections closed", closed)
	}
	after := g.backToBaseline(t, base, 20*time.Second)
	t.Logf("500 idle TCP connections: baseline %v; holding them %v; after the idle timeout %v", base, held, after)
}

// bigMappings lists the process's mappings with over 8 MB resident.
func (g *Gateway) bigMappings() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", g.cmd.Process.Pid))
	if err != nil {
		return err.Error()
	}
	var out strings.Builder
	var name string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			name = line
		}
		if len(f) >= 2 && f[0] == "Rss:" {
			if kb, _ := strconv.Atoi(f[1]); kb > 8<<10 {
				fmt.Fprintf(&out, "%d kB  %s\n", kb, name)
			}
		}
	}
	return out.String()
}

package rtpproxy

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A relay in a child process lets a benchmark charge the relay, and only
// the relay, for the CPU it uses: the child is this test binary started
// with relayServerEnv set, and TestMain hands it to relayServer.
const relayServerEnv = "RTPPROXY_BENCH_RELAY"

// relayServer opens `calls` relayed pairs whose a legs face the generator
// and whose b legs send to the sinks (round robin), prints the a ports, then answers each
// line on stdin with its own CPU time in nanoseconds and its heap
// allocation count until stdin closes.
func relayServer() int {
	f := strings.Fields(os.Getenv(relayServerEnv)) // calls gen sink[,sink...] batch
	if len(f) != 4 {
		fmt.Fprintln(os.Stderr, "bad", relayServerEnv)
		return 2
	}
	calls, _ := strconv.Atoi(f[0])
	gen := netip.MustParseAddrPort(f[1])
	var sinks []netip.AddrPort
	for _, s := range strings.Split(f[2], ",") {
		sinks = append(sinks, netip.MustParseAddrPort(s))
	}
	readMode = f[3]
	cfg := DefaultConfig()
	cfg.Bind, cfg.PortMin, cfg.PortMax = "127.0.0.1", benchPortMin, benchPortMax
	p, err := NewPool(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var ports []string
	var legs []*Leg
	for i := range calls {
		a, err1 := p.Open()
		b, err2 := p.Open()
		if err1 != nil || err2 != nil {
			fmt.Fprintln(os.Stderr, err1, err2)
			return 1
		}
		a.SetRemote(gen)
		b.SetRemote(sinks[i%len(sinks)])
		Relay(a, b)
		legs = append(legs, a, b)
		ports = append(ports, strconv.Itoa(a.Port()))
	}
	if path := os.Getenv("RTPPROXY_BENCH_PROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	fmt.Println(strings.Join(ports, " "))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Println(int64(cpuTime()), ms.Mallocs)
	}
	for _, l := range legs {
		l.Close()
	}
	return 0
}

// childRelay is a relay server process seen from the benchmark.
type childRelay struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	out     *bufio.Scanner
	targets []netip.AddrPort
}

func startChildRelay(tb testing.TB, calls int, gen netip.AddrPort, sinks []netip.AddrPort, read string, procs int) *childRelay {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("%s=%d %s %s %s", relayServerEnv, calls, gen, joinAddrs(sinks), read),
		fmt.Sprintf("GOMAXPROCS=%d", procs))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &childRelay{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	tb.Cleanup(c.stop)
	if !c.out.Scan() {
		tb.Fatal("relay child did not start")
	}
	for _, f := range strings.Fields(c.out.Text()) {
		port, _ := strconv.Atoi(f)
		c.targets = append(c.targets, netip.AddrPortFrom(loopback, uint16(port)))
	}
	return c
}

// usage asks the child for its CPU time and heap allocations so far.
func (c *childRelay) usage(tb testing.TB) (time.Duration, uint64) {
	if _, err := io.WriteString(c.stdin, "usage\n"); err != nil {
		tb.Fatal(err)
	}
	if !c.out.Scan() {
		tb.Fatal("relay child went away")
	}
	var ns int64
	var mallocs uint64
	if _, err := fmt.Sscan(c.out.Text(), &ns, &mallocs); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ns), mallocs
}

func (c *childRelay) stop() {
	if c.stdin != nil {
		c.stdin.Close()
		c.stdin = nil
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Signal(syscall.SIGKILL)
			<-done
		}
	}
}

func joinAddrs(aps []netip.AddrPort) string {
	s := make([]string, len(aps))
	for i, ap := range aps {
		s[i] = ap.String()
	}
	return strings.Join(s, ",")
}

package rtpproxy

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		err       string // substring; "" = valid
		firstPort int
		pairs     int
	}{
		{name: "defaults", cfg: DefaultConfig(), firstPort: 20000, pairs: 5000},
		{name: "odd min starts at next even", cfg: Config{Bind: "127.0.0.1", PortMin: 30001, PortMax: 30010}, firstPort: 30002, pairs: 4},
		{name: "even max leaves last RTP port without RTCP", cfg: Config{Bind: "127.0.0.1", PortMin: 30000, PortMax: 30004}, firstPort: 30000, pairs: 2},
		{name: "single pair", cfg: Config{Bind: "127.0.0.1", PortMin: 30000, PortMax: 30001}, firstPort: 30000, pairs: 1},
		{name: "empty bind is all interfaces", cfg: Config{PortMin: 30000, PortMax: 30001}, firstPort: 30000, pairs: 1},
		{name: "top of range", cfg: Config{Bind: "::", PortMin: 65534, PortMax: 65535}, firstPort: 65534, pairs: 1},
		{name: "no pair in odd..even", cfg: Config{Bind: "127.0.0.1", PortMin: 30001, PortMax: 30002}, err: "rtp.port_max"},
		{name: "min equals max", cfg: Config{Bind: "127.0.0.1", PortMin: 30000, PortMax: 30000}, err: "rtp.port_max"},
		{name: "min above max", cfg: Config{Bind: "127.0.0.1", PortMin: 30010, PortMax: 30000}, err: "rtp.port_max"},
		{name: "privileged min", cfg: Config{Bind: "127.0.0.1", PortMin: 1000, PortMax: 30000}, err: "rtp.port_min"},
		{name: "max beyond 65535", cfg: Config{Bind: "127.0.0.1", PortMin: 30000, PortMax: 70000}, err: "rtp.port_max"},
		{name: "zero ports", cfg: Config{Bind: "127.0.0.1"}, err: "rtp.port_min"},
		{name: "hostname bind", cfg: Config{Bind: "localhost", PortMin: 30000, PortMax: 30001}, err: "rtp.bind"},
		{name: "bad external", cfg: Config{Bind: "127.0.0.1", ExternalIP: "1.2.3", PortMin: 30000, PortMax: 30001}, err: "rtp.external_ip"},
		{name: "unspecified external", cfg: Config{Bind: "127.0.0.1", ExternalIP: "0.0.0.0", PortMin: 30000, PortMax: 30001}, err: "rtp.external_ip"},
		{name: "negative timeout", cfg: Config{Bind: "127.0.0.1", PortMin: 30000, PortMax: 30001, MediaTimeout: -time.Second}, err: "rtp.media_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			p, perr := NewPool(tt.cfg)
			if (err == nil) != (perr == nil) {
				t.Fatalf("Validate %v but NewPool %v", err, perr)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one naming %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.lay.firstPort != tt.firstPort || p.Pairs() != tt.pairs || p.FreePairs() != tt.pairs {
				t.Fatalf("first %d pairs %d free %d, want first %d pairs %d",
					p.lay.firstPort, p.Pairs(), p.FreePairs(), tt.firstPort, tt.pairs)
			}
		})
	}
}

func TestAdvertisedIP(t *testing.T) {
	tests := []struct {
		name, bind, external string
		want                 string // "" = any specified address of the bind's family
	}{
		{name: "external wins", bind: "127.0.0.1", external: "203.0.113.7", want: "203.0.113.7"},
		{name: "external v6", bind: "0.0.0.0", external: "2001:db8::7", want: "2001:db8::7"},
		{name: "bind address", bind: "127.0.0.2", want: "127.0.0.2"},
		{name: "mapped bind is unmapped", bind: "::ffff:127.0.0.1", want: "127.0.0.1"},
		{name: "primary v4", bind: "0.0.0.0"},
		{name: "primary v6", bind: "::"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPool(Config{Bind: tt.bind, ExternalIP: tt.external, PortMin: 30000, PortMax: 30001})
			if err != nil {
				t.Fatal(err)
			}
			got := p.AdvertisedIP()
			if tt.want != "" {
				if got != netip.MustParseAddr(tt.want) {
					t.Fatalf("AdvertisedIP = %v, want %v", got, tt.want)
				}
				return
			}
			if !got.IsValid() || got.IsUnspecified() || got.Is4() == netip.MustParseAddr(tt.bind).Is6() {
				t.Fatalf("AdvertisedIP = %v for bind %s", got, tt.bind)
			}
		})
	}
}

// TestPoolFreeList drives take/push directly: every pair handed out once,
// a double free ignored, exhaustion reported.
func TestPoolFreeList(t *testing.T) {
	p := newTestPool(t, 30000, 30015) // 8 pairs
	seen := map[int32]bool{}
	for range p.Pairs() {
		i, ok := p.take()
		if !ok || seen[i] || i < 0 || int(i) >= p.Pairs() {
			t.Fatalf("take = %d, %v (seen %v)", i, ok, seen)
		}
		seen[i] = true
		checkFreeList(t, p)
	}
	if _, ok := p.take(); ok {
		t.Fatal("take from an empty pool succeeded")
	}
	p.push(3)
	p.push(3) // double free: ignored
	p.push(5)
	checkFreeList(t, p)
	if len(p.free) != 2 {
		t.Fatalf("free = %v after pushing 3, 3, 5", p.free)
	}
	a, _ := p.take()
	b, _ := p.take()
	if a == b || (a != 3 && a != 5) || (b != 3 && b != 5) {
		t.Fatalf("took %d and %d, want 3 and 5", a, b)
	}
	checkFreeList(t, p)
}

func checkFreeList(t *testing.T, p *Pool) {
	t.Helper()
	free := 0
	for i, at := range p.pos {
		if at < 0 {
			continue
		}
		free++
		if int(at) >= len(p.free) || p.free[at] != int32(i) {
			t.Fatalf("pos[%d] = %d but free = %v", i, at, p.free)
		}
	}
	if free != len(p.free) {
		t.Fatalf("%d pairs marked free, free list holds %d", free, len(p.free))
	}
}

func TestPoolAllocateAll(t *testing.T) {
	p := newTestPool(t, 30000, 30019) // 10 pairs
	for round := range 2 {
		legs := make([]*Leg, 0, p.Pairs())
		ports := map[int]bool{}
		for range p.Pairs() {
			l, err := p.Open()
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			port := l.Port()
			if port%2 != 0 || port < 30000 || port+1 > 30019 || ports[port] {
				t.Fatalf("round %d: port %d (have %v)", round, port, ports)
			}
			if got := l.LocalAddr(); got != netip.AddrPortFrom(loopback, uint16(port)) {
				t.Fatalf("LocalAddr = %v", got)
			}
			ports[port] = true
			legs = append(legs, l)
		}
		if p.FreePairs() != 0 {
			t.Fatalf("FreePairs = %d with all open", p.FreePairs())
		}
		if _, err := p.Open(); !errors.Is(err, ErrNoPorts) {
			t.Fatalf("Open on a full pool: %v, want ErrNoPorts", err)
		}
		for _, l := range legs {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		}
		if p.FreePairs() != p.Pairs() {
			t.Fatalf("FreePairs = %d after closing all, want %d", p.FreePairs(), p.Pairs())
		}
		// Every port of the range can be bound again by anyone once the
		// pool lets go of the pairs it keeps bound for reuse.
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		for port := range ports {
			for _, q := range []int{port, port + 1} {
				c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: q})
				if err != nil {
					t.Fatalf("port %d still held after Close: %v", q, err)
				}
				c.Close()
			}
		}
	}
}

// TestPoolSkipsBusyPairs holds ports of some pairs with foreign sockets: Open
// skips those pairs, reports ErrNoPorts when only they are left, and hands
// them out once they are free again.
func TestPoolSkipsBusyPairs(t *testing.T) {
	tests := []struct {
		name string
		busy []int // ports held by someone else
	}{
		{name: "rtp port busy", busy: []int{30004}},
		{name: "rtcp port busy", busy: []int{30009}},
		{name: "both of one pair and one of another", busy: []int{30000, 30001, 30015}},
		{name: "every pair busy", busy: []int{30000, 30002, 30005, 30007, 30008, 30010, 30013, 30014, 30016, 30019}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestPool(t, 30000, 30019)
			busyPairs := map[int]bool{}
			var squatters []*net.UDPConn
			for _, port := range tt.busy {
				c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
				if err != nil {
					t.Fatal(err)
				}
				squatters = append(squatters, c)
				busyPairs[port&^1] = true
			}
			defer func() {
				for _, c := range squatters {
					c.Close()
				}
			}()
			var legs []*Leg
			defer func() {
				for _, l := range legs {
					l.Close()
				}
			}()
			for range p.Pairs() - len(busyPairs) {
				l, err := p.Open()
				if err != nil {
					t.Fatal(err)
				}
				if busyPairs[l.Port()] {
					t.Fatalf("got busy pair %d", l.Port())
				}
				legs = append(legs, l)
			}
			if _, err := p.Open(); !errors.Is(err, ErrNoPorts) {
				t.Fatalf("Open with only busy pairs left: %v, want ErrNoPorts", err)
			}
			if p.FreePairs() != len(busyPairs) {
				t.Fatalf("FreePairs = %d, want the %d busy pairs back for later", p.FreePairs(), len(busyPairs))
			}
			checkFreeList(t, p)
			for _, c := range squatters {
				c.Close()
			}
			squatters = nil
			for range busyPairs {
				l, err := p.Open()
				if err != nil {
					t.Fatalf("Open after the squatters left: %v", err)
				}
				if !busyPairs[l.Port()] {
					t.Fatalf("got pair %d, want one of the formerly busy %v", l.Port(), busyPairs)
				}
				legs = append(legs, l)
			}
		})
	}
}

func TestPoolBindErrorIsNotNoPorts(t *testing.T) {
	// 192.0.2.1 is not an address of this machine: binding fails with
	// EADDRNOTAVAIL, which no other pair would cure.
	p, err := NewPool(Config{Bind: "192.0.2.1", PortMin: 30000, PortMax: 30019})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Open(); err == nil || errors.Is(err, ErrNoPorts) {
		t.Fatalf("Open = %v, want a bind error", err)
	}
	if p.FreePairs() != p.Pairs() {
		t.Fatalf("FreePairs = %d after a failed bind, want %d", p.FreePairs(), p.Pairs())
	}
}

func TestPoolPicksAtRandom(t *testing.T) {
	p := newTestPool(t, 30000, 30099) // 50 pairs
	ports := map[int]bool{}
	for range 20 {
		l, err := p.Open()
		if err != nil {
			t.Fatal(err)
		}
		ports[l.Port()] = true
		l.Close()
	}
	// A pool that always handed out the same pair would show 1 here; the
	// chance of a random pick doing so 20 times is 50^-19.
	if len(ports) < 2 {
		t.Fatalf("20 opens used ports %v", ports)
	}
}

func TestPoolConcurrentOpenClose(t *testing.T) {
	p := newTestPool(t, 30000, 30039) // 20 pairs
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 50 {
				var l *Leg
				l, err = p.Open()
				if err != nil {
					if errors.Is(err, ErrNoPorts) {
						err = nil
						continue
					}
					break
				}
				if (g+i)%3 == 0 {
					Loopback(l)
				}
				if err = l.Close(); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if p.FreePairs() != p.Pairs() {
		t.Fatalf("FreePairs = %d, want %d", p.FreePairs(), p.Pairs())
	}
	checkFreeList(t, p)
}

// OpenPort hands out a chosen pair (a restored connection keeps its
// address): free or idle; a pair in use, an odd or foreign port, or a port
// another socket holds, is refused, and the pool is as before.
func TestPoolOpenPort(t *testing.T) {
	p := newTestPool(t, 30020, 30039)
	l, err := p.OpenPort(30024)
	if err != nil || l.Port() != 30024 {
		t.Fatalf("OpenPort(30024): %v, %v", l, err)
	}
	if _, err := p.OpenPort(30024); !errors.Is(err, ErrPortTaken) {
		t.Fatalf("a pair in use: %v", err)
	}
	for _, bad := range []int{30025, 30018, 30040} {
		if _, err := p.OpenPort(bad); err == nil || errors.Is(err, ErrPortTaken) {
			t.Fatalf("OpenPort(%d): %v", bad, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = p.OpenPort(30024) // idle now (its sockets kept bound), or free
	if err != nil || l.Port() != 30024 {
		t.Fatalf("OpenPort(30024) after its close: %v, %v", l, err)
	}
	defer l.Close()
	squat, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 30031})
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	if _, err := p.OpenPort(30030); !errors.Is(err, ErrPortTaken) {
		t.Fatalf("a pair whose RTCP port another socket holds: %v", err)
	}
	if free := p.FreePairs(); free != p.Pairs()-1 {
		t.Fatalf("%d of %d pairs free with one open", free, p.Pairs())
	}
}

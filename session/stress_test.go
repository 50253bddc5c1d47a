package session

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

func contextFromChan(stop <-chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-stop; cancel() }()
	return ctx
}

func bindUDP(port int) error {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return err
	}
	return c.Close()
}

// checkInvariants verifies that the resources in use equal what the live
// objects hold, and that the links between them agree.
func (t *Table) checkInvariants() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var want [poolCount]int
	want[poolRTP] = len(t.conns)
	for _, c := range t.conns {
		if c.Enhanced {
			want[poolEnhanced]++
		}
		if c.conf != nil {
			if t.confs[c.conf.id] != c.conf {
				return fmt.Errorf("connection %s points at unregistered conference %s", c.ID, c.conf.id)
			}
			if c.conf.memberOf(c) == nil {
				return fmt.Errorf("connection %s not listed in its conference %s", c.ID, c.conf.id)
			}
		}
	}
	for id, cf := range t.confs {
		if len(cf.members) == 0 {
			return fmt.Errorf("conference %s is registered with no members", id)
		}
		if cf.kind == KindBridge && len(cf.members) > 2 {
			return fmt.Errorf("bridge %s has %d members", id, len(cf.members))
		}
		mixing := cf.kind == KindConference && cf.mixer.Mixing()
		if mixing && cf.held != len(cf.members) || !mixing && cf.held != 0 {
			return fmt.Errorf("conference %s holds %d resources with %d members (mixing %v)", id, cf.held, len(cf.members), mixing)
		}
		want[poolConference] += cf.held
		for _, mb := range cf.members {
			if t.conns[mb.c.ID] != mb.c || mb.c.conf != cf {
				return fmt.Errorf("member %s of %s is not live or points elsewhere", mb.c.ID, id)
			}
		}
	}
	for i := range want {
		want[i] += t.pending[i]
	}
	if want != t.inUse {
		return fmt.Errorf("in use %v, live objects hold %v", t.inUse, want)
	}
	return nil
}

// TestConcurrentStress runs random create/join/leave/delete from many
// goroutines under -race, checking the invariants throughout; at the end
// every pool is back to zero and every port of the range binds again.
func TestConcurrentStress(t *testing.T) {
	lo, hi := testPortMin+600, testPortMin+799 // 100 pairs
	f := newFixture(t, Resources{RTP: 80, EnhancedRTP: 10, Conference: 40}, lo, hi)
	dur := time.Duration(envInt("MEDIAGW_STRESS_MS", 2500)) * time.Millisecond
	deadline := time.Now().Add(dur)
	confIDs := []string{"a", "b", "c", "d", "e"}
	codecs := []string{"PCMU", "PCMU", "PCMA", "G729"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var live []string // connection IDs some goroutine created (may be stale)
	ops := make([]int, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			pick := func() string {
				mu.Lock()
				defer mu.Unlock()
				if len(live) == 0 {
					return "1"
				}
				return live[rng.IntN(len(live))]
			}
			by := Release{By: FrontHTTP}
			for time.Now().Before(deadline) {
				op := rng.IntN(8)
				ops[seed] = ops[seed] + 1
				switch op {
				case 0, 1:
					c, err := f.CreateConnection(ConnectionParams{Remote: remote, Codec: codecs[rng.IntN(len(codecs))]})
					if err == nil {
						mu.Lock()
						live = append(live, c.ID)
						mu.Unlock()
					} else if ResultCode(err) != CodeNoResources {
						t.Errorf("create: %v", err)
					}
				case 2:
					_, _ = f.JoinOrCreate(confIDs[rng.IntN(len(confIDs))], KindConference, pick(), MemberAttrs{Muted: rng.IntN(4) == 0})
				case 3:
					_, _ = f.Bridge(pick(), pick())
				case 4:
					_, _ = f.DeleteConnection(pick(), "", by)
				case 5:
					_, _ = f.DeleteConnection(pick(), confIDs[rng.IntN(len(confIDs))], by)
				case 6:
					if rng.IntN(6) == 0 {
						_, _ = f.DeleteConnection("", confIDs[rng.IntN(len(confIDs))], by)
					} else {
						_, _ = f.ModifyConnection(pick(), ConnectionParams{Codec: codecs[rng.IntN(len(codecs))]})
					}
				case 7:
					if err := f.checkInvariants(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}(uint64(g))
	}
	wg.Wait()
	if err := f.checkInvariants(); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Connections() {
		_, _ = f.DeleteConnection(c.ID, "", Release{})
	}
	if got := f.inUse(); got != [3]int{} {
		t.Fatalf("pools not back to zero: %v", got)
	}
	if n := len(f.Conferences()); n != 0 {
		t.Fatalf("%d conferences left", n)
	}
	if f.pool.FreePairs() != f.pool.Pairs() {
		t.Fatalf("%d of %d pairs free", f.pool.FreePairs(), f.pool.Pairs())
	}
	assertBindable(t, f.pool, lo, hi)
	total := 0
	for _, n := range ops {
		total += n
	}
	t.Logf("%d operations in %s", total, dur)
}

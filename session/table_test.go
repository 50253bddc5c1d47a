package session

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mediagw/mediagw/confbridge"
	"github.com/mediagw/mediagw/rtpproxy"
)

// Tests here bind RTP ports in 31000-31999 only (docs/contracts.md).
const (
	testPortMin = 31000
	testPortMax = 31999
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type fixture struct {
	*Table
	pool   *rtpproxy.Pool
	engine *confbridge.Engine
	events chan Event
}

// newPool is a pool of real loopback ports in [lo, hi], closed when the test
// ends (it unbinds the pairs it keeps bound for reuse and stops its pollers).
func newPool(t testing.TB, lo, hi int) *rtpproxy.Pool {
	t.Helper()
	cfg := rtpproxy.DefaultConfig()
	cfg.Bind, cfg.ExternalIP = "127.0.0.1", ""
	cfg.PortMin, cfg.PortMax = lo, hi
	pool, err := rtpproxy.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

// newFixture builds a table over real ports in [lo, hi].
func newFixture(t testing.TB, res Resources, lo, hi int) *fixture {
	t.Helper()
	pool := newPool(t, lo, hi)
	engine := confbridge.NewEngine(confbridge.Config{Ptime: 20 * time.Millisecond})
	tab := New(Config{Resources: res, Conference: DefaultConferenceConfig()}, pool, engine, nil)
	f := &fixture{Table: tab, pool: pool, engine: engine, events: make(chan Event, 4096)}
	tab.Subscribe(func(ev Event) {
		select { // a subscriber must never block the releasing goroutine
		case f.events <- ev:
		default:
		}
	})
	t.Cleanup(func() {
		tab.Shutdown()
		engine.Close()
		if n := pool.FreePairs(); n != pool.Pairs() {
			t.Errorf("after shutdown %d of %d port pairs are free", n, pool.Pairs())
		}
	})
	return f
}

var remote = netip.MustParseAddrPort("127.0.0.1:9") // discard port: nothing listens

func (f *fixture) conn(t testing.TB, codec string) Connection {
	t.Helper()
	c, err := f.CreateConnection(ConnectionParams{Remote: remote, Codec: codec, Owner: FrontHTTP})
	if err != nil {
		t.Fatalf("CreateConnection(%s): %v", codec, err)
	}
	return c
}

func (f *fixture) inUse() [3]int {
	return [3]int{f.InUse("rtp"), f.InUse("enhanced_rtp"), f.InUse("conference")}
}

// conference builds a conference of n new PCMU connections.
func (f *fixture) conference(t testing.TB, id string, n int) (string, []string) {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = f.conn(t, "PCMU").ID
	}
	cf, err := f.CreateConference(id, KindConference, ids[0], MemberAttrs{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[1:] {
		if _, err := f.JoinConference(cf.ID, id, MemberAttrs{}); err != nil {
			t.Fatal(err)
		}
	}
	return cf.ID, ids
}

func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	if got := ResultCode(err); got != code {
		t.Fatalf("ResultCode = %d (%v), want %d", got, err, code)
	}
}

// TestDeleteConnection walks every row of the DeleteConnection table of
// DESIGN §2 and the ResultCodes it can return.
func TestDeleteConnection(t *testing.T) {
	by := Release{By: FrontHTTP}
	tests := []struct {
		name string
		run  func(t *testing.T, f *fixture)
	}{
		{"connection only releases it; twice is 23", func(t *testing.T, f *fixture) {
			c := f.conn(t, "PCMU")
			free := f.pool.FreePairs()
			d, err := f.DeleteConnection(c.ID, "", by)
			wantCode(t, err, 0)
			if d.Scope != ScopeConnection || len(d.Connections) != 1 || d.Connections[0].ID != c.ID {
				t.Fatalf("deleted %+v", d)
			}
			if f.pool.FreePairs() != free+1 || f.inUse() != [3]int{} {
				t.Fatalf("pairs free %d (was %d), in use %v", f.pool.FreePairs(), free, f.inUse())
			}
			_, err = f.DeleteConnection(c.ID, "", by)
			wantCode(t, err, 23)
		}},
		{"connection in conference frees rtp and its conference slot", func(t *testing.T, f *fixture) {
			cid, ids := f.conference(t, "c1", 3)
			if got := f.inUse(); got != [3]int{3, 0, 3} {
				t.Fatalf("in use %v, want [3 0 3]", got)
			}
			d, err := f.DeleteConnection(ids[0], "", by)
			wantCode(t, err, 0)
			if d.ConferenceID != cid || d.ConferenceReleased {
				t.Fatalf("deleted %+v", d)
			}
			cf, err := f.Conference(cid)
			wantCode(t, err, 0)
			if len(cf.Members) != 2 {
				t.Fatalf("members %+v", cf.Members)
			}
			want := [3]int{2, 0, 0} // two PCMU members hairpin: no conference resources
			if got := f.inUse(); got != want || cf.Mixing {
				t.Fatalf("in use %v, want %v", got, want)
			}
		}},
		{"conference only releases it and every member", func(t *testing.T, f *fixture) {
			cid, ids := f.conference(t, "c2", 3)
			lone := f.conn(t, "PCMA")
			d, err := f.DeleteConnection("", cid, by)
			wantCode(t, err, 0)
			if d.Scope != ScopeConference || len(d.Connections) != 3 || !d.ConferenceReleased {
				t.Fatalf("deleted %+v", d)
			}
			for _, id := range ids {
				_, err := f.Connection(id)
				wantCode(t, err, 23)
			}
			_, err = f.Conference(cid)
			wantCode(t, err, 24)
			_, err = f.DeleteConnection("", cid, by)
			wantCode(t, err, 24)
			if got := f.inUse(); got != [3]int{1, 0, 0} {
				t.Fatalf("in use %v, want only the lone connection", got)
			}
			_, err = f.Connection(lone.ID)
			wantCode(t, err, 0)
		}},
		{"both removes the member and keeps the connection", func(t *testing.T, f *fixture) {
			cid, ids := f.conference(t, "c3", 3)
			d, err := f.DeleteConnection(ids[1], cid, by)
			wantCode(t, err, 0)
			if d.Scope != ScopeMember || len(d.Connections) != 0 {
				t.Fatalf("deleted %+v", d)
			}
			c, err := f.Connection(ids[1])
			wantCode(t, err, 0)
			if c.ConferenceID != "" {
				t.Fatalf("connection still in %q", c.ConferenceID)
			}
			cf, _ := f.Conference(cid)
			for _, m := range cf.Members {
				if m.ConnectionID == ids[1] {
					t.Fatal("connection still listed as member")
				}
			}
			if got := f.InUse("rtp"); got != 3 {
				t.Fatalf("rtp in use %d, want 3", got)
			}
			_, err = f.DeleteConnection(ids[1], cid, by)
			wantCode(t, err, 24) // no longer a member
			// and it can join again
			_, err = f.JoinConference(cid, ids[1], MemberAttrs{})
			wantCode(t, err, 0)
		}},
		{"neither is 26", func(t *testing.T, f *fixture) {
			_, err := f.DeleteConnection("", "", by)
			wantCode(t, err, 26)
		}},
		{"malformed ConnectionId is 22", func(t *testing.T, f *fixture) {
			for _, id := range []string{"abc", "0", "-1", "007", "1.5", " 1", "99999999999999999999999"} {
				_, err := f.DeleteConnection(id, "", by)
				wantCode(t, err, 22)
				_, err = f.DeleteConnection(id, "x", by)
				wantCode(t, err, 22)
			}
		}},
		{"unknown connection is 23, unknown conference 24", func(t *testing.T, f *fixture) {
			_, err := f.DeleteConnection("4242", "", by)
			wantCode(t, err, 23)
			_, err = f.DeleteConnection("", "nope", by)
			wantCode(t, err, 24)
			c := f.conn(t, "PCMU")
			_, err = f.DeleteConnection(c.ID, "nope", by)
			wantCode(t, err, 24)
			_, err = f.DeleteConnection("4242", "nope", by)
			wantCode(t, err, 24)
		}},
		{"connection not in that conference is 24", func(t *testing.T, f *fixture) {
			cid, _ := f.conference(t, "c4", 2)
			other := f.conn(t, "PCMU")
			_, err := f.DeleteConnection(other.ID, cid, by)
			wantCode(t, err, 24)
			if !errors.Is(err, ErrNotMember) {
				t.Fatalf("err %v, want ErrNotMember", err)
			}
		}},
		{"low-bitrate codec holds and frees enhanced_rtp", func(t *testing.T, f *fixture) {
			c := f.conn(t, "G729")
			if got := f.inUse(); got != [3]int{1, 1, 0} {
				t.Fatalf("in use %v", got)
			}
			_, err := f.CreateConference("", KindConference, c.ID, MemberAttrs{})
			wantCode(t, err, 8) // the mixer cannot take G.729
			if !errors.Is(err, ErrCodecUnsupported) {
				t.Fatalf("err %v", err)
			}
			_, err = f.DeleteConnection(c.ID, "", by)
			wantCode(t, err, 0)
			if got := f.inUse(); got != [3]int{} {
				t.Fatalf("in use %v", got)
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo := testPortMin + i*20
			f := newFixture(t, DefaultResources(), lo, lo+19)
			tc.run(t, f)
		})
	}
}

// TestLastMemberReleasesConference checks each of the three routes.
func TestLastMemberReleasesConference(t *testing.T) {
	by := Release{By: FrontMGCP}
	routes := map[string]func(f *fixture, cid, conn string) error{
		"connection only": func(f *fixture, _, conn string) error {
			_, err := f.DeleteConnection(conn, "", by)
			return err
		},
		"both": func(f *fixture, cid, conn string) error {
			_, err := f.DeleteConnection(conn, cid, by)
			return err
		},
		"conference only": func(f *fixture, cid, _ string) error {
			_, err := f.DeleteConnection("", cid, by)
			return err
		},
	}
	i := 0
	for name, route := range routes {
		for _, kind := range []Kind{KindConference, KindBridge} {
			t.Run(name+"/"+string(kind), func(t *testing.T) {
				lo := testPortMin + 200 + i*10
				i++
				f := newFixture(t, DefaultResources(), lo, lo+9)
				a, b := f.conn(t, "PCMU"), f.conn(t, "PCMA")
				cf, err := f.CreateConference("", kind, a.ID, MemberAttrs{})
				wantCode(t, err, 0)
				_, err = f.JoinConference(cf.ID, b.ID, MemberAttrs{})
				wantCode(t, err, 0)
				_, err = f.DeleteConnection(a.ID, "", by)
				wantCode(t, err, 0)
				if _, err := f.Conference(cf.ID); err != nil {
					t.Fatalf("conference gone with one member left: %v", err)
				}
				wantCode(t, route(f, cf.ID, b.ID), 0)
				_, err = f.Conference(cf.ID)
				wantCode(t, err, 24)
				_, err = f.JoinConference(cf.ID, b.ID, MemberAttrs{})
				if name != "conference only" {
					wantCode(t, err, 24)
				}
				if got := f.InUse("conference"); got != 0 {
					t.Fatalf("conference resources %d after release", got)
				}
				var sawConf bool
				for len(f.events) > 0 {
					ev := <-f.events
					if ev.Type == ConferenceReleased && ev.ConferenceID == cf.ID {
						if sawConf {
							t.Fatal("conference released twice")
						}
						sawConf = true
					}
				}
				if !sawConf {
					t.Fatal("no ConferenceReleased event")
				}
			})
		}
	}
}

func TestResourceExhaustion(t *testing.T) {
	f := newFixture(t, Resources{RTP: 3, EnhancedRTP: 1, Conference: 3}, testPortMin+300, testPortMin+339)
	a, b, c := f.conn(t, "PCMU"), f.conn(t, "PCMU"), f.conn(t, "PCMU")
	_, err := f.CreateConnection(ConnectionParams{Remote: remote, Owner: FrontHTTP})
	wantCode(t, err, 8)
	if !errors.Is(err, ErrNoResources) {
		t.Fatalf("err %v", err)
	}
	cid, err := f.CreateConference("big", KindConference, a.ID, MemberAttrs{})
	wantCode(t, err, 0)
	for _, id := range []string{b.ID, c.ID} {
		_, err = f.JoinConference(cid.ID, id, MemberAttrs{})
		wantCode(t, err, 0)
	}
	if got := f.inUse(); got != [3]int{3, 0, 3} {
		t.Fatalf("in use %v", got)
	}
	_, err = f.DeleteConnection(c.ID, "", Release{})
	wantCode(t, err, 0)
	g := f.conn(t, "G729")
	if got := f.InUse("enhanced_rtp"); got != 1 {
		t.Fatalf("enhanced_rtp in use %d", got)
	}
	_, err = f.DeleteConnection(g.ID, "", Release{})
	wantCode(t, err, 0)
	f.conn(t, "PCMU")
	_, err = f.CreateConnection(ConnectionParams{Remote: remote, Codec: "G729", Owner: FrontHTTP})
	wantCode(t, err, 8) // rtp is full again
}

func TestEnhancedPoolExhaustion(t *testing.T) {
	f := newFixture(t, Resources{EnhancedRTP: 1}, testPortMin+540, testPortMin+559)
	f.conn(t, "G729")
	_, err := f.CreateConnection(ConnectionParams{Remote: remote, Codec: "G723", Owner: FrontHTTP})
	wantCode(t, err, 8)
	if got := f.inUse(); got != [3]int{1, 1, 0} {
		t.Fatalf("a refused creation must hold nothing: in use %v", got)
	}
}

func TestConferencePoolLimitsPromotion(t *testing.T) {
	f := newFixture(t, Resources{Conference: 2}, testPortMin+340, testPortMin+379)
	cid, _ := f.conference(t, "duo", 2)
	if cf, _ := f.Conference(cid); cf.Mixing || f.InUse("conference") != 0 {
		t.Fatalf("two PCMU members must hairpin without conference resources: %+v", cf)
	}
	third := f.conn(t, "PCMU")
	_, err := f.JoinConference(cid, third.ID, MemberAttrs{})
	wantCode(t, err, 8)
	cf, _ := f.Conference(cid)
	if len(cf.Members) != 2 || f.InUse("conference") != 0 {
		t.Fatalf("after refused join: members %d, conference in use %d", len(cf.Members), f.InUse("conference"))
	}
	if c, _ := f.Connection(third.ID); c.ConferenceID != "" {
		t.Fatalf("refused connection is in %q", c.ConferenceID)
	}
}

func TestBridgeKind(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+380, testPortMin+399)
	a, b, c := f.conn(t, "PCMU"), f.conn(t, "G729"), f.conn(t, "PCMU")
	cf, err := f.Bridge(a.ID, b.ID)
	wantCode(t, err, 0)
	if cf.Kind != KindBridge || cf.Mixing || len(cf.Members) != 2 {
		t.Fatalf("bridge %+v", cf)
	}
	_, err = f.JoinConference(cf.ID, c.ID, MemberAttrs{})
	wantCode(t, err, 8)
	if !errors.Is(err, ErrBridgeFull) {
		t.Fatalf("err %v", err)
	}
	_, err = f.Bridge(a.ID, c.ID)
	wantCode(t, err, 15) // a is already bridged
	if got := f.inUse(); got != [3]int{3, 1, 0} {
		t.Fatalf("in use %v", got)
	}
	_, err = f.Bridge(c.ID, c.ID)
	wantCode(t, err, 27)
}

func TestEventsSayWhoAndWhy(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+400, testPortMin+419)
	c, err := f.CreateConnection(ConnectionParams{Remote: remote, Owner: FrontSIP, CallID: "abc@host", Tag: "to-tag-1"})
	wantCode(t, err, 0)
	_, err = f.DeleteConnection(c.ID, "", Release{By: FrontMGCP, Reason: "dlcx"})
	wantCode(t, err, 0)
	ev := <-f.events
	if ev.Type != ConnectionReleased || ev.Connection.ID != c.ID || ev.Connection.Owner != FrontSIP ||
		ev.Connection.Tag != "to-tag-1" || ev.By != FrontMGCP || ev.Connection.CallID != "abc@host" {
		t.Fatalf("event %+v", ev)
	}
}

func TestModifyConnection(t *testing.T) {
	f := newFixture(t, Resources{EnhancedRTP: 1}, testPortMin+420, testPortMin+439)
	c := f.conn(t, "PCMU")
	newRemote := netip.MustParseAddrPort("127.0.0.1:4000")
	m, err := f.ModifyConnection(c.ID, ConnectionParams{Remote: newRemote, Mode: ModeRecvOnly, Codec: "g729"})
	wantCode(t, err, 0)
	if m.Remote != newRemote || m.Mode != ModeRecvOnly || m.Codec != "G729" || !m.Enhanced {
		t.Fatalf("modified %+v", m)
	}
	if f.InUse("enhanced_rtp") != 1 {
		t.Fatal("enhanced_rtp not taken")
	}
	d := f.conn(t, "PCMU")
	_, err = f.ModifyConnection(d.ID, ConnectionParams{Codec: "G723"})
	wantCode(t, err, 8)
	_, err = f.ModifyConnection(c.ID, ConnectionParams{Codec: "PCMA"})
	wantCode(t, err, 0)
	if f.InUse("enhanced_rtp") != 0 {
		t.Fatal("enhanced_rtp not returned")
	}
	_, err = f.ModifyConnection(c.ID, ConnectionParams{Mode: "bogus"})
	wantCode(t, err, 27)
	_, err = f.ModifyConnection("77", ConnectionParams{})
	wantCode(t, err, 23)
	_, err = f.ModifyConnection("x", ConnectionParams{})
	wantCode(t, err, 22)
}

func TestConferenceIDs(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+440, testPortMin+459)
	a, b := f.conn(t, "PCMU"), f.conn(t, "PCMU")
	_, err := f.CreateConference("bad id!", KindConference, a.ID, MemberAttrs{})
	wantCode(t, err, 27)
	cf, err := f.CreateConference("", KindConference, a.ID, MemberAttrs{})
	wantCode(t, err, 0)
	if !ValidConnectionID(cf.ID) {
		t.Fatalf("numeric conference ID expected, got %q", cf.ID)
	}
	_, err = f.CreateConference(cf.ID, KindConference, b.ID, MemberAttrs{})
	wantCode(t, err, 15)
	_, err = f.JoinConference(cf.ID, a.ID, MemberAttrs{})
	wantCode(t, err, 15) // already a member
	_, err = f.JoinOrCreate("sales", KindConference, b.ID, MemberAttrs{})
	wantCode(t, err, 0)
	_, err = f.JoinOrCreate("sales", KindBridge, f.conn(t, "PCMU").ID, MemberAttrs{})
	wantCode(t, err, 27)
}

func TestMediaTimeout(t *testing.T) {
	pool := newPool(t, testPortMin+460, testPortMin+479)
	engine := confbridge.NewEngine(confbridge.Config{Ptime: 20 * time.Millisecond})
	defer engine.Close()
	tab := New(Config{MediaTimeout: 150 * time.Millisecond}, pool, engine, nil)
	events := make(chan Event, 16)
	tab.Subscribe(func(ev Event) { events <- ev })
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		ctx := contextFromChan(stop)
		tab.Run(ctx)
	}()
	defer func() { close(stop); <-done }()
	c, err := tab.CreateConnection(ConnectionParams{Remote: remote, Owner: FrontSIP})
	wantCode(t, err, 0)
	hold, err := tab.CreateConnection(ConnectionParams{Remote: remote, Owner: FrontSIP, Mode: ModeSendOnly})
	wantCode(t, err, 0)
	select {
	case ev := <-events:
		if ev.Connection.ID != c.ID || ev.Code != CodeInactivity || ev.By != FrontSystem {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no media timeout")
	}
	if _, err := tab.Connection(hold.ID); err != nil {
		t.Fatalf("a held (sendonly) connection must not time out: %v", err)
	}
	tab.Shutdown()
	if pool.FreePairs() != pool.Pairs() {
		t.Fatal("ports leaked")
	}
}

func TestShutdownRefusesNewWork(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+480, testPortMin+499)
	f.conference(t, "x", 3)
	f.conn(t, "PCMU")
	f.Shutdown()
	if n := len(f.Connections()); n != 0 {
		t.Fatalf("%d connections after Shutdown", n)
	}
	_, err := f.CreateConnection(ConnectionParams{Remote: remote})
	wantCode(t, err, 5)
	got := 0
	for len(f.events) > 0 {
		if ev := <-f.events; ev.Type == ConnectionReleased {
			if ev.Code != CodeDraining || ev.By != FrontSystem {
				t.Fatalf("event %+v", ev)
			}
			got++
		}
	}
	if got != 4 {
		t.Fatalf("%d release events, want 4", got)
	}
}

func TestPortsRebindable(t *testing.T) {
	// Every port of a range can be bound again after a table used and released it all.
	lo, hi := testPortMin+500, testPortMin+519
	f := newFixture(t, DefaultResources(), lo, hi)
	var ids []string
	for {
		c, err := f.CreateConnection(ConnectionParams{Remote: remote})
		if err != nil {
			wantCode(t, err, 8)
			break
		}
		ids = append(ids, c.ID)
	}
	if len(ids) != 10 {
		t.Fatalf("allocated %d connections from 10 pairs", len(ids))
	}
	for _, id := range ids {
		if _, err := f.DeleteConnection(id, "", Release{}); err != nil {
			t.Fatal(err)
		}
	}
	assertBindable(t, f.pool, lo, hi)
}

// assertBindable checks that anyone can bind every port of lo..hi once the
// pool has let go of the pairs it keeps bound for reuse (pool.Close, which
// the gateway calls at exit).
func assertBindable(t *testing.T, pool *rtpproxy.Pool, lo, hi int) {
	t.Helper()
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	for p := lo; p <= hi; p++ {
		if err := bindUDP(p); err != nil {
			t.Errorf("port %d: %v", p, err)
		}
	}
}

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err == nil && n > 0 {
		return n
	}
	return def
}

func TestValidConnectionID(t *testing.T) {
	for id, want := range map[string]bool{
		"1": true, "42": true, "18446744073709551615": true,
		"": false, "0": false, "00": false, "01": false, "+1": false, "-1": false, "1_0": false,
		" 1": false, "1 ": false, "0x1": false, "18446744073709551616": false, "１": false,
	} {
		if got := ValidConnectionID(id); got != want {
			t.Errorf("ValidConnectionID(%q) = %v, want %v", id, got, want)
		}
	}
}

// conference.max_members: the next join is ResultCode 8 and changes
// nothing; a member leaving makes room again.
func TestConferenceMaxMembers(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+340, testPortMin+379)
	f.cfg.Conference.MaxMembers = 3
	a, b, c, d := f.conn(t, "PCMU"), f.conn(t, "PCMU"), f.conn(t, "PCMU"), f.conn(t, "PCMU")
	cf, err := f.CreateConference("capped", KindConference, a.ID, MemberAttrs{})
	wantCode(t, err, 0)
	for _, id := range []string{b.ID, c.ID} {
		_, err = f.JoinConference(cf.ID, id, MemberAttrs{})
		wantCode(t, err, 0)
	}
	before := f.inUse()
	_, err = f.JoinConference(cf.ID, d.ID, MemberAttrs{})
	wantCode(t, err, 8)
	if !errors.Is(err, ErrConferenceFull) {
		t.Fatalf("err %v", err)
	}
	if got, _ := f.Conference(cf.ID); len(got.Members) != 3 || f.inUse() != before {
		t.Fatalf("the refused join changed the conference: %d members, in use %v", len(got.Members), f.inUse())
	}
	_, err = f.DeleteConnection(c.ID, "", Release{})
	wantCode(t, err, 0)
	_, err = f.JoinConference(cf.ID, d.ID, MemberAttrs{})
	wantCode(t, err, 0)
}

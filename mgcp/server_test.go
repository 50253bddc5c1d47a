package mgcp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/session"
)

// A command that takes longer than slowAfter gets a provisional 100; the
// final response then carries an empty K: and is repeated until the call
// agent's 000 arrives.
func TestProvisionalAndResponseAck(t *testing.T) {
	release := make(chan struct{})
	r := newRig(t, rigOption{srv: func(s *Server) {
		s.slowAfter = time.Millisecond
		s.hook = func(c *Command) {
			if c.Verb == "CRCX" {
				<-release
			}
		}
	}})
	r.send(r.ca, "CRCX 500 cnf/$@mgw MGCP 1.0\r\nC: slow\r\nM: confrnce\r\n")
	if got := r.read(); got != "100 500 In progress\r\n" {
		t.Fatalf("provisional: %q", got)
	}
	close(release)
	final := r.read()
	resp, err := ParseResponse([]byte(final))
	if err != nil || resp.Code != 200 {
		t.Fatalf("final: %q %v", final, err)
	}
	if k, ok := resp.Params.Get("K"); !ok || k != "" {
		t.Fatalf("final response after a provisional needs an empty K:, got %q", final)
	}
	if again := r.read(); again != final {
		t.Fatalf("final not retransmitted before 000: %q", again)
	}
	r.send(r.ca, "000 500\r\n")
	for _, dg := range r.drain() {
		if dg != final {
			t.Fatalf("unexpected datagram after 000: %q", dg)
		}
	}
	e := r.srv.cache.lookup(txKey{addrPort(r.ca.LocalAddr()), 500})
	r.srv.cache.mu.Lock()
	waiting := e.awaitAck
	r.srv.cache.mu.Unlock()
	if waiting {
		t.Fatal("still waiting for 000 after it arrived")
	}
	// The command was executed once.
	if n := len(r.table.Connections()); n != 1 {
		t.Fatalf("%d connections", n)
	}
}

// Responses are kept 30 s; after that the same transaction ID is a new command.
func TestResponseCacheExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTxCache(func() time.Time { return now }, 0, 0)
	src := netip.MustParseAddrPort("127.0.0.1:2727")
	e := c.begin(txKey{src, 1})
	want := c.finish(e, &Response{Code: 200, TransID: 1, Comment: "OK"}, nil)
	now = now.Add(29 * time.Second)
	if e := c.lookup(txKey{src, 1}); e == nil || string(c.replay(e)) != string(want) {
		t.Fatal("response forgotten before 30 s")
	}
	if c.lookup(txKey{netip.MustParseAddrPort("127.0.0.1:2728"), 1}) != nil {
		t.Fatal("another source shares the transaction")
	}
	now = now.Add(time.Second)
	if c.lookup(txKey{src, 1}) != nil || c.len() != 0 {
		t.Fatal("response kept after 30 s")
	}
}

func TestAcknowledgeRanges(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTxCache(func() time.Time { return now }, 0, 0)
	src := netip.MustParseAddrPort("127.0.0.1:2727")
	for tid := uint32(1); tid <= 3000; tid++ {
		c.finish(c.begin(txKey{src, tid}), &Response{Code: 200, TransID: tid}, nil)
	}
	ranges, err := parseAcks("1-2, 5, 10-2999")
	if err != nil {
		t.Fatal(err)
	}
	c.acknowledge(src, ranges)
	for tid, acked := range map[uint32]bool{1: true, 2: true, 3: false, 5: true, 9: false, 10: true, 2999: true, 3000: false} {
		e := c.lookup(txKey{src, tid})
		if got := c.replay(e) == nil; got != acked {
			t.Errorf("tid %d: forgotten=%v, want %v", tid, got, acked)
		}
	}
	for _, bad := range []string{"x", "5-3", "0", "1-", "1234567890"} {
		if _, err := parseAcks(bad); err == nil {
			t.Errorf("K: %q accepted", bad)
		}
	}
}

func TestOutsiderDroppedAndCounted(t *testing.T) {
	r := newRig(t)
	r.exchange(r.outsider, "CRCX 1 cnf/$@mgw MGCP 1.0\r\nC: x\r\nM: confrnce\r\n")
	if n := len(r.table.Connections()); n != 0 {
		t.Fatalf("outsider's CRCX executed: %d connections", n)
	}
	if got := counter(t, r.srv.met.dropped.WithLabelValues("call_agent")); got != 1 {
		t.Fatalf("dropped{call_agent} = %v", got)
	}
	_ = r.outsider.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _, err := r.outsider.ReadFrom(make([]byte, 100)); err == nil {
		t.Fatalf("outsider got an answer of %d bytes", n)
	}
}

func TestCommandsMetric(t *testing.T) {
	r := newRig(t)
	resp := r.command("CRCX 1 rtpbridge/$@mgw MGCP 1.0\r\nC: m\r\nM: recvonly\r\n")
	r.command("CRCX 1 rtpbridge/$@mgw MGCP 1.0\r\nC: m\r\nM: recvonly\r\n") // a repeat is not a new command
	r.command(fmt.Sprintf("DLCX 2 rtpbridge/1@mgw MGCP 1.0\r\nC: m\r\nI: %s\r\n", resp.Params.Value("I")))
	r.command("HELO 3 x MGCP 1.0\r\n")
	for _, c := range []struct {
		verb, code string
		want       float64
	}{{"CRCX", "200", 1}, {"DLCX", "250", 1}, {"unknown", "504", 1}} {
		if got := counter(t, r.srv.met.commands.WithLabelValues(c.verb, c.code)); got != c.want {
			t.Errorf("commands{%s,%s} = %v, want %v", c.verb, c.code, got, c.want)
		}
	}
	if got := counter(t, r.srv.met.retransmissions); got != 1 {
		t.Errorf("retransmissions = %v", got)
	}
}

// At shutdown the table releases every connection (the call agent hears a
// DLCX with E: 901 for each of its own) and Shutdown sends RSIP graceful and
// waits for the answers.
func TestShutdown(t *testing.T) {
	r := newRig(t)
	resp := r.command("CRCX 1 cnf/$@mgw MGCP 1.0\r\nC: s\r\nM: confrnce\r\n")
	r.table.Shutdown()
	dlcx, err := ParseCommand([]byte(r.read()))
	if err != nil || dlcx.Verb != "DLCX" || dlcx.Params.Value("I") != resp.Params.Value("I") ||
		!strings.HasPrefix(dlcx.Params.Value("E"), "901") || dlcx.Params.Value("P") == "" {
		t.Fatalf("DLCX at shutdown: %#v %v", dlcx, err)
	}
	done := make(chan struct{})
	go func() {
		r.srv.Shutdown(context.Background())
		close(done)
	}()
	rsip, err := ParseCommand([]byte(r.read()))
	if err != nil || rsip.Verb != "RSIP" || rsip.Params.Value("RM") != "graceful" {
		t.Fatalf("RSIP at shutdown: %#v %v", rsip, err)
	}
	r.send(r.ca, fmt.Sprintf("200 %d OK\r\n", dlcx.TransID))
	select {
	case <-done:
		t.Fatal("Shutdown returned before the RSIP was answered")
	case <-time.After(20 * time.Millisecond):
	}
	r.send(r.ca, fmt.Sprintf("200 %d OK\r\n", rsip.TransID))
	<-done
	// New work is refused while draining.
	if resp := r.command("CRCX 2 cnf/$@mgw MGCP 1.0\r\nC: s\r\nM: confrnce\r\n"); resp.Code != codeNotReady {
		t.Fatalf("CRCX while draining: %d", resp.Code)
	}
}

// Shutdown gives up when the context ends.
func TestShutdownBounded(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	r.srv.Shutdown(ctx)
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("Shutdown returned before the RSIP was answered or the context ended")
	}
}

// A connection created by another front is never announced to the call agent.
func TestOtherFrontsConnectionsNotAnnounced(t *testing.T) {
	r := newRig(t)
	c, err := r.table.CreateConnection(session.ConnectionParams{Owner: session.FrontSIP, CallID: "sip"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.table.JoinOrCreate("42", session.KindConference, c.ID, session.MemberAttrs{}); err != nil {
		t.Fatal(err)
	}
	// An MGCP DLCX of the conference releases the SIP leg too.
	if resp := r.command("DLCX 1 cnf/42@mgw MGCP 1.0\r\n"); resp.Code != 200 {
		t.Fatalf("DLCX cnf/42: %d", resp.Code)
	}
	if _, err := r.table.Connection(c.ID); !errors.Is(err, session.ErrUnknownConnection) {
		t.Fatalf("SIP leg still there: %v", err)
	}
	if got := r.drain(); len(got) != 0 {
		t.Fatalf("call agent told about a SIP leg: %q", got)
	}
}

func TestNewValidates(t *testing.T) {
	table := newTable(t)
	for name, mod := range map[string]func(*Config){
		"bad cidr":     func(c *Config) { c.CallAgents = []string{"300.0.0.0/8"} },
		"empty domain": func(c *Config) { c.Domain = "" },
		"tcp listen":   func(c *Config) { c.Listen = "tcp://0.0.0.0:2427" },
		"bad notify":   func(c *Config) { c.NotifiedEntity = "127.0.0.1" },
	} {
		cfg := DefaultConfig()
		mod(&cfg)
		if _, err := New(cfg, table, nil, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if addr, err := ListenAddr(DefaultConfig().Listen); err != nil || addr != "0.0.0.0:2427" {
		t.Fatalf("ListenAddr: %q %v", addr, err)
	}
}

// An audit of `*` that would not fit in a datagram is 533.
func TestAuditTooLarge(t *testing.T) {
	r := newRig(t)
	for i := 0; i < 200; i++ {
		c, err := r.table.CreateConnection(session.ConnectionParams{Owner: session.FrontHTTP})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.table.CreateConference(fmt.Sprintf("conference-with-a-long-name-%03d", i), session.KindConference, c.ID, session.MemberAttrs{}); err != nil {
			t.Fatal(err)
		}
	}
	if resp := r.command("AUEP 1 *@mgw MGCP 1.0\r\n"); resp.Code != 533 {
		t.Fatalf("AUEP *: %d", resp.Code)
	}
	if resp := r.command("AUEP 2 rtpbridge/*@mgw MGCP 1.0\r\n"); resp.Code != 200 {
		t.Fatalf("AUEP rtpbridge/*: %d", resp.Code)
	}
}

// On the default listen address (0.0.0.0: a dual-stack socket) an IPv4 call
// agent arrives as ::ffff:127.0.0.1; it is still the 127.0.0.1/32 of
// call_agents, and its answers go back to it.
func TestServeOnWildcardAnswersIPv4CallAgent(t *testing.T) {
	r := newRig(t, rigOption{listen: "0.0.0.0"})
	if resp := r.command("AUEP 77 rtpbridge/1@mgw MGCP 1.0\r\n"); resp.Code != 200 {
		t.Fatalf("AUEP from 127.0.0.1 on a wildcard socket: %d", resp.Code)
	}
	if d := counter(t, r.srv.met.dropped.WithLabelValues("call_agent")); d != 0 {
		t.Fatalf("%v datagrams dropped as from outside call_agents", d)
	}
}

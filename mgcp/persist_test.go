package mgcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mediagw/mediagw/internal/memstate"
	"github.com/mediagw/mediagw/session"
)

// A front restored from the state takes over the connections and the
// notification request of the one before it: it announces itself with
// RSIP disconnected (the connections are in place: not restart, which
// makes call agents drop their calls), a digit on a restored connection is
// notified under the restored request's X: and N:, the MGCP connection no
// record claims is released, and a DLCX removes the records.
func TestFrontRestore(t *testing.T) {
	st := memstate.New()
	r := newRig(t, rigOption{srv: func(s *Server) { s.state = st }})
	cc := newConfCall(t, r, 2)
	agent, notified := listenUDP(t, "127.0.0.1"), listenUDP(t, "127.0.0.1") // the restored front's notified entity, and the request's N:
	agentPort := notified.LocalAddr().(*net.UDPAddr).Port
	if resp := r.command(fmt.Sprintf("RQNT 10 %s MGCP 1.0\r\nN: ca@[127.0.0.1]:%d\r\nX: 77a\r\nR: D/[0-9#*](N)\r\nS: D/1\r\n", cc.ep, agentPort)); resp.Code != 200 {
		t.Fatalf("RQNT: %d", resp.Code)
	}
	if st.Count(StateConn) != 2 || st.Count(StateEndpoint) != 1 {
		t.Fatalf("state: %d connections, %d endpoints; want 2 and 1", st.Count(StateConn), st.Count(StateEndpoint))
	}
	// A connection of the front whose record was lost (made before the crash, never written).
	stray, err := r.table.CreateConnection(session.ConnectionParams{Codec: "PCMU", Owner: session.FrontMGCP})
	if err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.CallAgents = []string{"127.0.0.1/32"}
	cfg.NotifiedEntity = agent.LocalAddr().String()
	s2, err := New(cfg, r.table, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s2.Restore(st)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connections != 2 || rep.Requests != 1 || rep.Released != 1 || rep.Dropped != 0 {
		t.Fatalf("restore: %+v, want 2 connections, 1 request, 1 released", rep)
	}
	if _, err := r.table.Connection(stray.ID); err == nil {
		t.Fatal("the connection without a record is still there")
	}
	pc := listenUDP(t, "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s2.Serve(ctx, pc) }()
	defer func() { cancel(); <-done }()
	read := func(agent *net.UDPConn) string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = agent.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			n, from, err := agent.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("at the restored front's call agent: %v", err)
			}
			dg := string(buf[:n])
			if c, err := ParseCommand(buf[:n]); err == nil {
				_, _ = agent.WriteToUDP([]byte(fmt.Sprintf("200 %d OK\r\n", c.TransID)), from)
			}
			return dg
		}
	}
	if rsip := read(agent); !strings.HasPrefix(rsip, "RSIP") || !strings.Contains(rsip, "RM: disconnected") {
		t.Fatalf("first datagram of the restored front: %q, want RSIP with RM: disconnected", rsip)
	}
	cc.phones[1].digit('5')
	ntfy := read(notified) // to the N: of the restored request
	if !strings.HasPrefix(ntfy, "NTFY") || !strings.Contains(ntfy, "X: 77a") || !strings.Contains(ntfy, "O: D/5") {
		t.Fatalf("the restored request's notification: %q", ntfy)
	}
	// The request ended with its notification (step mode): the record says so.
	deadline := time.Now().Add(2 * time.Second)
	for {
		var active bool
		_ = st.ForEach(StateEndpoint, func(_ string, v []byte) error {
			active = strings.Contains(string(v), `"active":true`)
			return nil
		})
		if !active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the endpoint record still says the request is armed after its notification")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := r.table.DeleteConnection("", strings.TrimSuffix(strings.TrimPrefix(cc.ep, "cnf/"), "@mgw"), session.Release{By: session.FrontMGCP}); err != nil {
		t.Fatal(err)
	}
	if st.Count(StateConn) != 0 || st.Count(StateEndpoint) != 0 {
		t.Fatalf("after the release: %d connection and %d endpoint records left", st.Count(StateConn), st.Count(StateEndpoint))
	}
}

// N: names the notified entity as RFC 3435 §3.2.1.3 writes it: an address
// in brackets, with or without a port; names that need DNS are not used.
func TestParseNotifiedEntity(t *testing.T) {
	for in, want := range map[string]string{
		"ca@[127.0.0.1]:5678": "127.0.0.1:5678",
		"ca@[127.0.0.1]":      "127.0.0.1:2727",
		"ca@127.0.0.1:5678":   "127.0.0.1:5678",
		"ca@[::1]:5678":       "[::1]:5678",
		"ca@[::1]":            "[::1]:2727",
		"ca@[127.0.0.1]:0":    "invalid AddrPort",
		"ca@agent.example":    "invalid AddrPort",
	} {
		if got := parseNotifiedEntity(in).String(); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// The hand-written connection record reads back through encoding/json.
func TestConnRecordEncoding(t *testing.T) {
	st := memstate.New()
	s := &Server{state: st}
	info := connInfo{endpoint: "cnf/7", notify: netip.MustParseAddrPort("127.0.0.1:2727"), src: netip.MustParseAddrPort("[::1]:4000")}
	s.saveConnLocked("42", `call"1\`, info)
	s.saveConnLocked("43", "", connInfo{endpoint: "rtpbridge/1"})
	for id, want := range map[string]connRecord{
		"42": {V: recordVersion, ID: "42", CallID: `call"1\`, Endpoint: "cnf/7", Notify: "127.0.0.1:2727", Src: "[::1]:4000"},
		"43": {V: recordVersion, ID: "43", Endpoint: "rtpbridge/1"},
	} {
		var got connRecord
		v, _ := st.Get(StateConn, id)
		if err := json.Unmarshal(v, &got); err != nil || got != want {
			t.Fatalf("%s read back as %+v (%v), want %+v", v, got, err, want)
		}
	}
}

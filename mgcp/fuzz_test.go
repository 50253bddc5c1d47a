package mgcp

import (
	"net/netip"
	"testing"
)

// FuzzHandle feeds datagrams to the whole pipeline with a real session
// table: it must never panic, and whatever it answers must be well-formed
// responses, one per command at most.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		benchCRCX,
		"CRCX 1 cnf/$@mgw MGCP 1.0\nC: 1\nM: confrnce\nL: a:PCMA;PCMU, p:10-30, x-a:1\n\nv=0\nc=IN IP4 127.0.0.1\nm=audio 4000 RTP/AVP 8 0 101\na=rtpmap:101 telephone-event/8000\n",
		"DLCX 2 cnf/1@mgw MGCP 1.0\nC: 1\nI: 1\nK: 1-5, 7\n.\nDLCX 3 *@mgw MGCP 1.0\n",
		"000 9\r\n.\r\nAUEP 10 *@mgw MGCP 1.0\r\nF: A, I, N\r\n",
		"MDCX 4 rtpbridge/1@mgw MGCP 1.0\r\nC: 5a1\r\nI: 1\r\nM: sendrecv\r\n\r\nv=0\r\nc=IN IP6 ::1\r\nm=audio 4002 RTP/AVP 0\r\n",
		"AUCX 5 rtpbridge/1@mgw MGCP 1.0\r\nI: 1\r\nF: C, N, L, M, P, LC, RC\r\n",
		"RQNT 6 cnf/7@mgw MGCP 1.0\r\nN: ca@[127.0.0.1]:2727\r\nX: 1\r\nR: D/[0-9]\r\n.\r\nEPCF 7 *@mgw MGCP 1.0\r\nB: e:mu\r\n",
		"CRCX 11 cnf/$@mgw MGCP 1.0\r\nC: 1\r\nM: confrnce\r\nX: s\r\nR: A/oc(N), A/of(N), G/oc(N)\r\nS: A/ann(file:x.wav), G/rt(to=20), G/cf@$\r\n",
		"CRCX 8 cnf/$@mgw MGCP 1.0\r\nC: 1\r\nM: confrnce\r\nX: a1\r\nR: D/[0-9#*T]@$(D), D/A(N,E(R(D/x(N)),D(xx)))\r\nD: (xxxx|*xx|9011x.T)\r\nQ: loop\r\n.\r\nRQNT 9 cnf/1@mgw MGCP 1.0\r\nX: 2\r\nR: D/#(A,E(R(D/[0-9](N))))\r\nS: D/5\r\n.\r\nAUEP 10 cnf/1@mgw MGCP 1.0\r\nF: R, S, X, N, D\r\n",
	} {
		f.Add([]byte(s))
	}
	table := newTable(f)
	s, err := New(DefaultConfig(), table, testLogger(f), nil)
	if err != nil {
		f.Fatal(err)
	}
	src := netip.MustParseAddrPort("127.0.0.1:2727")
	f.Fuzz(func(t *testing.T, data []byte) {
		commands := 0
		for _, m := range Split(data) {
			if !IsResponse(m) {
				commands++
			}
		}
		out := s.handle(src, data)
		if out == nil {
			return
		}
		parts := Split(out)
		if len(parts) > commands {
			t.Fatalf("%d answers to %d commands: %q", len(parts), commands, out)
		}
		for _, p := range parts {
			if _, err := ParseResponse(p); err != nil {
				t.Fatalf("answer %q does not parse: %v", p, err)
			}
		}
	})
}

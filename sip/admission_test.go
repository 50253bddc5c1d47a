package sip

import (
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"hash"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// authUA is a SIP user agent over one UDP socket that writes its requests
// by hand, so that a test controls every header (digest included).
type authUA struct {
	t     testing.TB
	c     *net.UDPConn
	local string
	seq   int
	last  []byte // the last request sent
}

func newAuthUA(t testing.TB, gw string) *authUA { return newAuthUAFrom(t, gw, "") }

// newAuthUAFrom is newAuthUA sending from ip ("" = the system's choice).
func newAuthUAFrom(t testing.TB, gw, ip string) *authUA {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", gw)
	if err != nil {
		t.Fatal(err)
	}
	var laddr *net.UDPAddr
	if ip != "" {
		laddr = &net.UDPAddr{IP: net.ParseIP(ip)}
	}
	c, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &authUA{t: t, c: c, local: c.LocalAddr().String(), seq: 1}
}

// sipReq is one request of a authUA.
type sipReq struct {
	method, user, callID, fromTag, toTag string
	hdrs                                 []string // extra "Name: value" lines
	body                                 string
	version                              string // "SIP/2.0" when empty
	maxForwards                          int    // 70 when 0; -1 writes 0
}

// send writes r and returns the first final response (and its headers).
func (u *authUA) send(gw string, r sipReq) (int, string) {
	u.t.Helper()
	u.seq++
	if r.version == "" {
		r.version = "SIP/2.0"
	}
	mf := 70
	if r.maxForwards == -1 {
		mf = 0
	}
	to := fmt.Sprintf("<sip:%s@%s>", r.user, gw)
	if r.toTag != "" {
		to += ";tag=" + r.toTag
	}
	cseq := u.seq
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:%s@%s %s\r\n", r.method, r.user, gw, r.version)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s-%d;rport\r\n", u.local, r.callID, u.seq)
	fmt.Fprintf(&b, "Max-Forwards: %d\r\nFrom: <sip:alice@%s>;tag=%s\r\nTo: %s\r\n", mf, u.local, r.fromTag, to)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\nContact: <sip:alice@%s>\r\n", r.callID, cseq, r.method, u.local)
	for _, h := range r.hdrs {
		b.WriteString(h + "\r\n")
	}
	if r.body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(r.body), r.body)
	u.last = []byte(b.String())
	if _, err := u.c.Write(u.last); err != nil {
		u.t.Fatal(err)
	}
	if r.method == "ACK" {
		return 0, ""
	}
	return u.read(cseq, r.method)
}

// read returns the next final response to the request with cseq.
func (u *authUA) read(cseq int, method string) (int, string) {
	u.t.Helper()
	buf := make([]byte, 8192)
	for {
		_ = u.c.SetReadDeadline(time.Now().Add(waitFor))
		n, err := u.c.Read(buf)
		if err != nil {
			u.t.Fatalf("no final response to %s: %v", method, err)
		}
		res := string(buf[:n])
		if !strings.Contains(res, fmt.Sprintf("CSeq: %d %s", cseq, method)) {
			continue // a retransmission of an earlier answer
		}
		var code int
		fmt.Sscanf(res, "SIP/2.0 %d", &code)
		if code >= 200 {
			return code, res
		}
	}
}

// header returns the values of the header name in a response.
func header(res, name string) []string {
	var out []string
	for _, line := range strings.Split(res, "\r\n") {
		if n, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(n), name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// headerNames is the shape of a response: its status line and the names of
// its headers in order.
func headerNames(res string) []string {
	lines := strings.Split(strings.SplitN(res, "\r\n\r\n", 2)[0], "\r\n")
	out := []string{lines[0]}
	for _, l := range lines[1:] {
		n, _, _ := strings.Cut(l, ":")
		out = append(out, n)
	}
	return out
}

var challengeParam = regexp.MustCompile(`(\w+)=(?:"([^"]*)"|([^,\s]+))`)

// authorize answers a digest challenge for method and user@gw with nc.
func authorize(challenge, method, uri, user, pass string, nc int) string {
	p := map[string]string{}
	for _, m := range challengeParam.FindAllStringSubmatch(challenge, -1) {
		p[m[1]] = m[2] + m[3]
	}
	var h hash.Hash = md5.New()
	if p["algorithm"] == "SHA-256" {
		h = sha256.New()
	}
	cnonce := "0a4f113b"
	ncs := fmt.Sprintf("%08x", nc)
	ha1 := hexHash(h, user, p["realm"], pass)
	resp := hexHash(h, ha1, p["nonce"], ncs, cnonce, "auth", hexHash(h, method, uri))
	return fmt.Sprintf(`Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, cnonce="%s", qop=auth, nc=%s`,
		user, p["realm"], p["nonce"], uri, resp, p["algorithm"], cnonce, ncs)
}

const testOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// untrustedGateway is a gateway that trusts only 192.0.2.0/24, so the
// tests' 127.0.0.1 is a stranger; users is the users file ("" = none).
func untrustedGateway(t *testing.T, users string, routes []Route) *gateway {
	t.Helper()
	cfg := Config{Trusted: []string{"192.0.2.0/24"}}
	if users != "" {
		cfg.UsersFile = filepath.Join(t.TempDir(), "users")
		if err := os.WriteFile(cfg.UsersFile, []byte(users), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return startGatewayConfig(t, cfg, routes)
}

// nothingAllocated checks that the gateway holds no call, connection or port.
func nothingAllocated(t *testing.T, g *gateway) {
	t.Helper()
	if g.s.Calls() != 0 || len(g.table.Connections()) != 0 || len(g.table.Conferences()) != 0 || g.pool.FreePairs() != g.pool.Pairs() {
		t.Fatalf("refused requests allocated: calls %d, connections %d, conferences %d, free pairs %d of %d",
			g.s.Calls(), len(g.table.Connections()), len(g.table.Conferences()), g.pool.FreePairs(), g.pool.Pairs())
	}
}

// Without a users file, a stranger gets 403 for every out-of-dialog
// request, the same for a route that exists and one that does not.
func TestUntrustedWithoutUsersFile(t *testing.T) {
	g := untrustedGateway(t, "", nil)
	u := newAuthUA(t, g.udp)
	var shapes [][]string
	for i, user := range []string{"conf-1", "nosuchroute", "echo"} {
		code, res := u.send(g.udp, sipReq{method: "INVITE", user: user, callID: fmt.Sprintf("c%d", i), fromTag: "f", body: testOffer})
		if code != 403 {
			t.Fatalf("INVITE %s from a stranger: %d, want 403\n%s", user, code, res)
		}
		u.send(g.udp, sipReq{method: "ACK", user: user, callID: fmt.Sprintf("c%d", i), fromTag: "f", toTag: "x"})
		shapes = append(shapes, headerNames(res))
	}
	for _, s := range shapes[1:] {
		if !slices.Equal(s, shapes[0]) {
			t.Errorf("answers differ between routes:\n%v\n%v", shapes[0], s)
		}
	}
	// In-dialog requests pass admission and match no dialog: 481, nothing made.
	for _, m := range []string{"INVITE", "BYE", "REFER"} {
		if code, res := u.send(g.udp, sipReq{method: m, user: "conf-1", callID: "d" + m, fromTag: "f", toTag: "guessed", body: testOffer,
			hdrs: []string{"Refer-To: <sip:conf-2@" + g.udp + ">"}}); code != 481 {
			t.Errorf("in-dialog %s from a stranger matching no dialog: %d, want 481\n%s", m, code, res)
		}
	}
	for _, m := range []string{"OPTIONS", "REFER", "MESSAGE", "REGISTER"} {
		if code, res := u.send(g.udp, sipReq{method: m, user: "conf-1", callID: "o" + m, fromTag: "f"}); code != 403 {
			t.Errorf("%s from a stranger: %d, want 403\n%s", m, code, res)
		}
	}
	nothingAllocated(t, g)
	if n := g.metric("mediagw_sip_refused_total", "reason", RefusedUntrusted); n != 7 {
		t.Errorf("refused{untrusted} = %v, want 7", n)
	}
}

// With a users file: 401 with SHA-256 and MD5 challenges (the same for any
// route), then an authenticated INVITE joins; wrong passwords, replayed
// nonce-counts and forged nonces get 403, an expired nonce a stale 401.
func TestDigestAdmission(t *testing.T) {
	g := untrustedGateway(t, "# test users\nalice:s3cret:with:colons\nbob:other\n", nil)
	u := newAuthUA(t, g.udp)
	uri := "sip:conf-auth@" + g.udp

	var shapes [][]string
	for i, user := range []string{"conf-auth", "nosuchroute"} {
		code, res := u.send(g.udp, sipReq{method: "INVITE", user: user, callID: fmt.Sprintf("shape%d", i), fromTag: "f", body: testOffer})
		if code != 401 {
			t.Fatalf("INVITE %s without credentials: %d, want 401\n%s", user, code, res)
		}
		ch := header(res, "WWW-Authenticate")
		if len(ch) != 2 || !strings.Contains(ch[0], "algorithm=SHA-256") || !strings.Contains(ch[1], "algorithm=MD5") ||
			!strings.Contains(ch[0], `qop="auth"`) || !strings.Contains(ch[0], `realm="mediagw"`) {
			t.Fatalf("challenges: %q", ch)
		}
		shapes = append(shapes, headerNames(res))
	}
	if !slices.Equal(shapes[0], shapes[1]) {
		t.Errorf("401s differ between an existing and a missing route:\n%v\n%v", shapes[0], shapes[1])
	}
	nothingAllocated(t, g)

	for i, alg := range []int{0, 1} { // SHA-256, MD5
		callID := fmt.Sprintf("auth%d", i)
		_, res := u.send(g.udp, sipReq{method: "INVITE", user: "conf-auth", callID: callID, fromTag: "f", body: testOffer})
		ch := header(res, "WWW-Authenticate")[alg]
		auth := authorize(ch, "INVITE", uri, "alice", "s3cret:with:colons", 1)
		code, res := u.send(g.udp, sipReq{method: "INVITE", user: "conf-auth", callID: callID, fromTag: "f", body: testOffer, hdrs: []string{auth}})
		if code != 200 {
			t.Fatalf("authenticated INVITE (%s): %d\n%s", ch, code, res)
		}
		toTag := regexp.MustCompile(`To: .*;tag=([^;\r\n]+)`).FindStringSubmatch(res)[1]
		u.send(g.udp, sipReq{method: "ACK", user: "conf-auth", callID: callID, fromTag: "f", toTag: toTag})
		eventually(t, "call up", func() bool { return g.s.Calls() == 1 })

		// The same credentials again (a captured request played back): refused.
		code, res = u.send(g.udp, sipReq{method: "INVITE", user: "conf-auth", callID: callID + "r", fromTag: "f", body: testOffer, hdrs: []string{auth}})
		if code != 403 {
			t.Fatalf("replayed nonce-count: %d, want 403\n%s", code, res)
		}
		// The next nonce-count with a correct response is a new use: fine
		// (a client reusing its nonce), checked here on an OPTIONS.
		auth2 := authorize(ch, "OPTIONS", uri, "alice", "s3cret:with:colons", 2)
		if code, res := u.send(g.udp, sipReq{method: "OPTIONS", user: "conf-auth", callID: callID + "o", fromTag: "f", hdrs: []string{auth2}}); code != 200 {
			t.Fatalf("nonce-count 2: %d\n%s", code, res)
		}
		if code, _ := u.send(g.udp, sipReq{method: "BYE", user: "conf-auth", callID: callID, fromTag: "f", toTag: toTag}); code != 200 {
			t.Fatalf("BYE: %d", code)
		}
		g.idle(t)
	}

	refusedAuth := g.metric("mediagw_sip_refused_total", "reason", RefusedAuth)
	_, res := u.send(g.udp, sipReq{method: "INVITE", user: "conf-auth", callID: "wrong", fromTag: "f", body: testOffer})
	for i, c := range []struct{ user, pass string }{{"alice", "wrong"}, {"nobody", "s3cret:with:colons"}, {"bob", "s3cret:with:colons"}} {
		auth := authorize(header(res, "WWW-Authenticate")[0], "INVITE", uri, c.user, c.pass, i+1)
		if code, res := u.send(g.udp, sipReq{method: "INVITE", user: "conf-auth", callID: "wrong", fromTag: "f", body: testOffer, hdrs: []string{auth}}); code != 403 {
			t.Fatalf("%s/%s: %d, want 403\n%s", c.user, c.pass, code, res)
		}
	}
	// A nonce we did not issue, and one issued to another address.
	ip := netip.MustParseAddr("127.0.0.1")
	forged := strings.Replace(header(res, "WWW-Authenticate")[0], "nonce=\"", "nonce=\"AAAA", 1)
	other := regexp.MustCompile(`nonce="[^"]*"`).ReplaceAllString(header(res, "WWW-Authenticate")[0],
		`nonce="`+g.s.adm.auth.nonces.issue(netip.MustParseAddr("192.0.2.9"))+`"`)
	for _, ch := range []string{forged, other} {
		auth := authorize(ch, "INVITE", uri, "alice", "s3cret:with:colons", 1)
		if code, res := u.send(g.udp, sipReq{method: "INVITE", user: "conf-auth", callID: "forged", fromTag: "f", body: testOffer, hdrs: []string{auth}}); code != 403 {
			t.Fatalf("nonce not ours: %d, want 403\n%s", code, res)
		}
	}
	if n := g.metric("mediagw_sip_refused_total", "reason", RefusedAuth) - refusedAuth; n != 5 {
		t.Errorf("refused{auth} moved by %v, want 5", n)
	}

	// An expired nonce: a fresh challenge with stale=true.
	old := regexp.MustCompile(`nonce="[^"]*"`).ReplaceAllString(header(res, "WWW-Authenticate")[1],
		`nonce="`+g.s.adm.auth.nonces.issueAt(ip, time.Now().Add(-DefaultNonceTTL-time.Second))+`"`)
	auth := authorize(old, "INVITE", uri, "alice", "s3cret:with:colons", 1)
	code, res := u.send(g.udp, sipReq{method: "INVITE", user: "conf-auth", callID: "stale", fromTag: "f", body: testOffer, hdrs: []string{auth}})
	if ch := header(res, "WWW-Authenticate"); code != 401 || len(ch) != 2 || !strings.Contains(ch[0], "stale=true") {
		t.Fatalf("expired nonce: %d %q, want 401 with stale=true", code, ch)
	}
	// An expired nonce with a wrong password is a wrong password.
	auth = authorize(old, "INVITE", uri, "alice", "wrong", 1)
	if code, res := u.send(g.udp, sipReq{method: "INVITE", user: "conf-auth", callID: "stale2", fromTag: "f", body: testOffer, hdrs: []string{auth}}); code != 403 {
		t.Fatalf("expired nonce, wrong password: %d, want 403\n%s", code, res)
	}
	nothingAllocated(t, g)
}

// A route's allow list: an admitted source outside it gets the answer of
// a route that does not exist.
func TestRouteAllow(t *testing.T) {
	routes := []Route{
		{Match: `^conf-(?P<id>[a-z0-9]+)$`, Action: ActionConference, Allow: []string{"192.0.2.0/24"}},
		{Match: `^echo$`, Action: ActionEcho, Allow: []string{"127.0.0.1"}},
	}
	g := startGateway(t, routes)
	u := newAuthUA(t, g.udp)
	codeA, resA := u.send(g.udp, sipReq{method: "INVITE", user: "conf-1", callID: "acl1", fromTag: "f", body: testOffer})
	codeB, resB := u.send(g.udp, sipReq{method: "INVITE", user: "nosuchroute", callID: "acl2", fromTag: "f", body: testOffer})
	if codeA != 404 || codeB != 404 || !slices.Equal(headerNames(resA), headerNames(resB)) {
		t.Fatalf("route outside its allow list: %d %v; no route: %d %v", codeA, headerNames(resA), codeB, headerNames(resB))
	}
	nothingAllocated(t, g)
	if n := g.metric("mediagw_sip_refused_total", "reason", RefusedRouteACL); n != 1 {
		t.Errorf("refused{route_acl} = %v, want 1", n)
	}
	code, res := u.send(g.udp, sipReq{method: "INVITE", user: "echo", callID: "acl3", fromTag: "f", body: testOffer})
	if code != 200 {
		t.Fatalf("allowed route: %d\n%s", code, res)
	}
	toTag := regexp.MustCompile(`To: .*;tag=([^;\r\n]+)`).FindStringSubmatch(res)[1]
	u.send(g.udp, sipReq{method: "ACK", user: "echo", callID: "acl3", fromTag: "f", toTag: toTag})
	u.send(g.udp, sipReq{method: "BYE", user: "echo", callID: "acl3", fromTag: "f", toTag: toTag})
	g.idle(t)
}

// Finding 8: another SIP version gets 505 (in SIP/2.0), Max-Forwards 0 gets
// 483 except on OPTIONS, which we answer as its final recipient.
func TestVersionAndMaxForwards(t *testing.T) {
	g := startGateway(t, nil)
	u := newAuthUA(t, g.udp)
	for _, m := range []string{"INVITE", "OPTIONS"} {
		_, res := u.send(g.udp, sipReq{method: m, user: "conf-v", callID: "v" + m, fromTag: "f", version: "SIP/9.9", body: testOffer})
		if !strings.HasPrefix(res, "SIP/2.0 505 Version Not Supported\r\n") {
			t.Errorf("%s SIP/9.9: %q", m, strings.SplitN(res, "\r\n", 2)[0])
		}
	}
	if code, res := u.send(g.udp, sipReq{method: "OPTIONS", user: "conf-v", callID: "vlower", fromTag: "f", version: "sip/2.0"}); code != 200 {
		t.Errorf("OPTIONS sip/2.0 (the version is case-insensitive): %d\n%s", code, res)
	}
	if code, res := u.send(g.udp, sipReq{method: "INVITE", user: "conf-mf", callID: "mf", fromTag: "f", maxForwards: -1, body: testOffer}); code != 483 {
		t.Errorf("INVITE Max-Forwards 0: %d\n%s", code, res)
	}
	if code, res := u.send(g.udp, sipReq{method: "OPTIONS", user: "conf-mf", callID: "mfo", fromTag: "f", maxForwards: -1}); code != 200 {
		t.Errorf("OPTIONS Max-Forwards 0: %d\n%s", code, res)
	}
	nothingAllocated(t, g)
	if n := g.metric("mediagw_sip_refused_total", "reason", RefusedVersion); n != 2 {
		t.Errorf("refused{version} = %v, want 2", n)
	}
	if n := g.metric("mediagw_sip_refused_total", "reason", RefusedHops); n != 1 {
		t.Errorf("refused{max_forwards} = %v, want 1", n)
	}
}

// sip.auth_algorithms limits what is offered and accepted; a refusal on UDP
// is stateless: a retransmitted INVITE gets the same bytes again and its
// ACK is taken without a transaction.
func TestAuthAlgorithmsAndStatelessRefusal(t *testing.T) {
	g := startGatewayConfig(t, Config{Trusted: []string{"192.0.2.0/24"}, AuthAlgorithms: []string{"md5"},
		UsersFile: func() string {
			p := filepath.Join(t.TempDir(), "users")
			_ = os.WriteFile(p, []byte("alice:pw\n"), 0o600)
			return p
		}()}, nil)
	u := newAuthUA(t, g.udp)
	uri := "sip:conf-md5@" + g.udp
	code, res := u.send(g.udp, sipReq{method: "INVITE", user: "conf-md5", callID: "alg", fromTag: "f", body: testOffer})
	ch := header(res, "WWW-Authenticate")
	if code != 401 || len(ch) != 1 || !strings.Contains(ch[0], "algorithm=MD5") {
		t.Fatalf("MD5-only challenge: %d %q", code, ch)
	}
	// The INVITE again, byte for byte: the same answer, from the ring.
	if _, err := u.c.Write(u.last); err != nil {
		t.Fatal(err)
	}
	if _, again := u.read(u.seq, "INVITE"); again != res {
		t.Fatalf("retransmission answered differently:\n%s\n%s", res, again)
	}
	u.send(g.udp, sipReq{method: "ACK", user: "conf-md5", callID: "alg", fromTag: "f", toTag: "x"})

	sha := strings.Replace(ch[0], "algorithm=MD5", "algorithm=SHA-256", 1)
	auth := authorize(sha, "INVITE", uri, "alice", "pw", 1)
	if code, res := u.send(g.udp, sipReq{method: "INVITE", user: "conf-md5", callID: "alg", fromTag: "f", body: testOffer, hdrs: []string{auth}}); code != 403 {
		t.Fatalf("SHA-256 answer to an MD5-only gateway: %d, want 403\n%s", code, res)
	}
	auth = authorize(ch[0], "INVITE", uri, "alice", "pw", 1)
	code, res = u.send(g.udp, sipReq{method: "INVITE", user: "conf-md5", callID: "alg", fromTag: "f", body: testOffer, hdrs: []string{auth}})
	if code != 200 {
		t.Fatalf("MD5 answer: %d\n%s", code, res)
	}
	toTag := regexp.MustCompile(`To: .*;tag=([^;\r\n]+)`).FindStringSubmatch(res)[1]
	u.send(g.udp, sipReq{method: "ACK", user: "conf-md5", callID: "alg", fromTag: "f", toTag: toTag})
	u.send(g.udp, sipReq{method: "BYE", user: "conf-md5", callID: "alg", fromTag: "f", toTag: toTag})
	g.idle(t)
}

// A REFER is admission for the target it names: an own route the source may
// not use and a missing route get 404 alike; a target elsewhere needs a
// trusted source, so a caller that only authenticated cannot make the
// gateway call out.
func TestReferAdmission(t *testing.T) {
	routes := append(DefaultRoutes(), Route{Match: `^secret$`, Action: ActionConference, Allow: []string{"192.0.2.0/24"}})
	usersPath := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(usersPath, []byte("alice:pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayConfig(t, Config{Trusted: []string{"192.0.2.0/24"}, UsersFile: usersPath}, routes)
	u := newAuthUA(t, g.udp)
	uri := "sip:conf-r@" + g.udp
	_, res := u.send(g.udp, sipReq{method: "INVITE", user: "conf-r", callID: "ref", fromTag: "f", body: testOffer})
	auth := authorize(header(res, "WWW-Authenticate")[0], "INVITE", uri, "alice", "pw", 1)
	code, res := u.send(g.udp, sipReq{method: "INVITE", user: "conf-r", callID: "ref", fromTag: "f", body: testOffer, hdrs: []string{auth}})
	if code != 200 {
		t.Fatalf("authenticated INVITE: %d\n%s", code, res)
	}
	toTag := regexp.MustCompile(`To: .*;tag=([^;\r\n]+)`).FindStringSubmatch(res)[1]
	u.send(g.udp, sipReq{method: "ACK", user: "conf-r", callID: "ref", fromTag: "f", toTag: toTag})
	eventually(t, "call confirmed", func() bool { return g.s.Calls() == 1 })
	for target, want := range map[string]int{
		"<sip:secret@" + g.udp + ">":      404,
		"<sip:nosuchroute@" + g.udp + ">": 404,
		"<sip:900123@192.0.2.55:5060>":    403,
	} {
		code, res := u.send(g.udp, sipReq{method: "REFER", user: "conf-r", callID: "ref", fromTag: "f", toTag: toTag, hdrs: []string{"Refer-To: " + target}})
		if code != want {
			t.Errorf("REFER to %s: %d, want %d\n%s", target, code, want, res)
		}
	}
	if n := g.metric("mediagw_sip_refused_total", "reason", RefusedRouteACL); n != 3 {
		t.Errorf("refused{route_acl} = %v, want 3", n)
	}
	if len(g.table.Connections()) != 1 {
		t.Errorf("refused REFERs allocated: %d connections", len(g.table.Connections()))
	}
	u.send(g.udp, sipReq{method: "BYE", user: "conf-r", callID: "ref", fromTag: "f", toTag: toTag})
	g.idle(t)
}

// Over TCP the refusals go through sipgo's transactions: the same codes.
func TestAdmissionOverTCP(t *testing.T) {
	g := untrustedGateway(t, "alice:pw\n", nil)
	c, err := net.Dial("tcp", g.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	req := func(version, callID string) string {
		return fmt.Sprintf("INVITE sip:conf-1@%s %s\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-%s\r\nMax-Forwards: 70\r\n"+
			"From: <sip:a@%s>;tag=f\r\nTo: <sip:conf-1@%s>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:a@%s;transport=tcp>\r\n"+
			"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
			g.tcp, version, local, callID, local, g.tcp, callID, local, len(testOffer), testOffer)
	}
	buf := make([]byte, 8192)
	for _, tc := range []struct {
		version string
		want    string
	}{{"SIP/2.0", "SIP/2.0 401 Unauthorized\r\n"}, {"SIP/3.0", "SIP/2.0 505 Version Not Supported\r\n"}} {
		if _, err := c.Write([]byte(req(tc.version, "tcp"+tc.version))); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(waitFor))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%s over TCP: %v", tc.version, err)
		}
		if res := string(buf[:n]); !strings.HasPrefix(res, tc.want) {
			t.Errorf("%s over TCP: %q, want %q", tc.version, strings.SplitN(res, "\r\n", 2)[0], tc.want)
		} else if tc.want[8:11] == "401" && len(header(res, "WWW-Authenticate")) != 2 {
			t.Errorf("401 over TCP without two challenges:\n%s", res)
		}
	}
	nothingAllocated(t, g)
}

// ReloadUsers swaps the users file in at once; a bad file keeps the old users.
func TestReloadUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte("alice:pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayConfig(t, Config{Trusted: []string{"192.0.2.0/24"}, UsersFile: path}, nil)
	u := newAuthUA(t, g.udp)
	uri := "sip:conf-rl@" + g.udp
	login := func(user, pass string) int {
		t.Helper()
		_, res := u.send(g.udp, sipReq{method: "OPTIONS", user: "conf-rl", callID: "rl" + user + pass, fromTag: "f"})
		auth := authorize(header(res, "WWW-Authenticate")[0], "OPTIONS", uri, user, pass, 1)
		code, _ := u.send(g.udp, sipReq{method: "OPTIONS", user: "conf-rl", callID: "rl" + user + pass, fromTag: "f", hdrs: []string{auth}})
		return code
	}
	if login("alice", "pw") != 200 || login("carol", "new") != 403 {
		t.Fatal("before the reload")
	}
	if err := os.WriteFile(path, []byte("carol:new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := g.s.ReloadUsers(); n != 1 || err != nil {
		t.Fatalf("ReloadUsers: %d, %v", n, err)
	}
	if login("alice", "pw") != 403 || login("carol", "new") != 200 {
		t.Fatal("after the reload")
	}
	if err := os.WriteFile(path, []byte("no colon here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := g.s.ReloadUsers(); err == nil || !strings.Contains(err.Error(), "sip.users_file") {
		t.Fatalf("bad users file: %v", err)
	}
	if login("carol", "new") != 200 {
		t.Fatal("a bad file replaced the users")
	}
}

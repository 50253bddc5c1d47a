package sip

import (
	"crypto/md5"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseAuthParams(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string // nil: malformed
	}{
		{"quoted and token", `username="alice", nc=00000001, qop=auth`, map[string]string{"username": "alice", "nc": "00000001", "qop": "auth"}},
		{"escapes and commas", `realm="a \"b\", c", uri="sip:x@y"`, map[string]string{"realm": `a "b", c`, "uri": "sip:x@y"}},
		{"case of names", `UserName="x"`, map[string]string{"username": "x"}},
		{"blanks", "  a = \"1\" ,\tb=2  ", map[string]string{"a": "1", "b": "2"}},
		{"empty", "", map[string]string{}},
		{"unterminated", `a="1`, nil},
		{"no value", `a`, nil},
		{"junk after quote", `a="1"x, b=2`, nil},
		{"duplicate", `a=1, A=2`, nil},
		{"blank in token", `a=1 2`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseAuthParams(tt.in)
			if tt.want == nil {
				if ok {
					t.Fatalf("parsed %q as %v, want malformed", tt.in, got)
				}
				return
			}
			if !ok || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("parseAuthParams(%q) = %v, %v; want %v", tt.in, got, ok, tt.want)
			}
		})
	}
	many := strings.Repeat("a=1, ", maxAuthParams+1)
	if _, ok := parseAuthParams(many); ok {
		t.Error("more than maxAuthParams parameters accepted")
	}
}

// RFC 2617 §3.5's example, with a SIP method: the request-digest matches a
// value computed independently (python3 hashlib).
func TestDigestResponseKnownAnswer(t *testing.T) {
	h := md5.New()
	ha1 := hexHash(h, "Mufasa", "testrealm@host.com", "Circle Of Life")
	got := digestResponse(h, ha1, "GET", "/dir/index.html", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b")
	if want := "6629fae49393a05397450978507c4ef1"; got != want {
		t.Fatalf("response %s, want %s", got, want)
	}
}

func TestNonces(t *testing.T) {
	n, err := newNonces(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("198.51.100.7")
	now := time.Now()
	fresh := n.issueAt(ip, now)
	if _, err := n.check(fresh, ip); err != nil {
		t.Fatalf("fresh nonce: %v", err)
	}
	if _, err := n.check(fresh, netip.MustParseAddr("198.51.100.8")); !errors.Is(err, errBadCredentials) {
		t.Fatalf("nonce from another address: %v", err)
	}
	if _, err := n.check(n.issueAt(ip, now.Add(-time.Minute-time.Second)), ip); !errors.Is(err, errStaleNonce) {
		t.Fatalf("old nonce: %v", err)
	}
	other, _ := newNonces(time.Minute)
	if _, err := other.check(fresh, ip); !errors.Is(err, errBadCredentials) {
		t.Fatalf("nonce of another process: %v", err)
	}
	for _, bad := range []string{"", "!!", "AAAA", fresh[:len(fresh)-2], fresh + "AA"} {
		if _, err := n.check(bad, ip); !errors.Is(err, errBadCredentials) {
			t.Errorf("check(%q) = %v, want errBadCredentials", bad, err)
		}
	}
}

// The book refuses a nonce-count that does not grow, stays bounded, and a
// nonce pushed out while still valid turns stale rather than replayable.
func TestNonceBook(t *testing.T) {
	b := newNonceBook(4)
	now := time.Now()
	issued := func(i int) time.Time { return now.Add(time.Duration(i) * time.Millisecond) }
	if err := b.use("n0", issued(0), 1, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.use("n0", issued(0), 1, now, time.Minute); !errors.Is(err, errReplayed) {
		t.Fatalf("same nc: %v", err)
	}
	if err := b.use("n0", issued(0), 2, now, time.Minute); err != nil {
		t.Fatalf("nc 2: %v", err)
	}
	for i := 1; i <= 4; i++ { // pushes n0 out
		if err := b.use(fmt.Sprintf("n%d", i), issued(i), 1, now, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if b.len() != 4 {
		t.Fatalf("book holds %d, want 4", b.len())
	}
	if err := b.use("n0", issued(0), 1, now, time.Minute); !errors.Is(err, errStaleNonce) {
		t.Fatalf("replay of a nonce pushed out: %v, want stale", err)
	}
	if err := b.use("n4", issued(4), 2, now, time.Minute); err != nil {
		t.Fatalf("nonce still in the book: %v", err)
	}
}

func TestParseUsers(t *testing.T) {
	users, err := parseUsers("# c\n\nalice:pw:x\r\n bob :y\n", "r")
	if err != nil || len(users) != 2 {
		t.Fatalf("%v %v", users, err)
	}
	if users["alice"].md5 != hexHash(md5.New(), "alice", "r", "pw:x") {
		t.Error("password is everything after the first colon")
	}
	for _, bad := range []string{"alice\n", ":pw\n", "alice:\n", "a b:pw\n", "a:1\na:2\n"} {
		if _, err := parseUsers(bad, "r"); err == nil {
			t.Errorf("parseUsers(%q) accepted", bad)
		}
	}
}

// Whatever parses as credentials formats back to the same credentials.
func FuzzParseCredentials(f *testing.F) {
	f.Add(`Digest username="alice", realm="mediagw", nonce="abc", uri="sip:conf-1@h", response="00", algorithm=SHA-256, cnonce="x", qop=auth, nc=00000001`)
	f.Add(`Digest realm="a \"b\", c", x=1`)
	f.Add(`Basic abc`)
	f.Add(`Digest a="`)
	f.Fuzz(func(t *testing.T, in string) {
		c, ok := parseCredentials(in)
		if !ok {
			return
		}
		fields := []struct{ name, val string }{{"username", c.username}, {"realm", c.realm}, {"nonce", c.nonce}, {"uri", c.uri},
			{"response", c.response}, {"algorithm", c.algorithm}, {"cnonce", c.cnonce}, {"opaque", c.opaque}, {"qop", c.qop}, {"nc", c.nc}}
		var parts []string
		for _, f := range fields {
			if f.val != "" {
				parts = append(parts, f.name+"="+quote(f.val))
			}
		}
		again, ok := parseCredentials("Digest " + strings.Join(parts, ", "))
		if !ok || again != c {
			t.Fatalf("round trip of %q: %+v -> %+v (ok %v)", in, c, again, ok)
		}
	})
}

// Whatever an Authorization header holds, verify answers without panicking
// and admits nobody without the password.
func FuzzVerify(f *testing.F) {
	n, err := newNonces(time.Minute)
	if err != nil {
		f.Fatal(err)
	}
	ip := netip.MustParseAddr("198.51.100.7")
	users, _ := parseUsers("alice:pw\n", "mediagw")
	v := &verifier{algs: DefaultAuthAlgorithms, realm: "mediagw", nonces: n, book: newNonceBook(64)}
	v.users.Store(&users)
	nonce := n.issue(ip)
	f.Add(`Digest username="alice", realm="mediagw", nonce="` + nonce + `", uri="sip:conf-1@h", response="00", algorithm=SHA-256, cnonce="x", qop=auth, nc=00000001`)
	f.Add(`Digest username="alice", realm="mediagw", nonce="` + nonce + `", uri="sip:x@h", response="0", cnonce="c", qop=auth, nc=ffffffff`)
	f.Add(`Digest realm="mediagw"`)
	f.Fuzz(func(t *testing.T, h string) {
		if user, err := v.verify([]string{h}, "INVITE", ip); err == nil {
			t.Fatalf("admitted %q without the password: %q", user, h)
		}
	})
}

// The cost of a challenge (two nonces) and of checking an answer to one.
func BenchmarkDigest(b *testing.B) {
	n, _ := newNonces(time.Minute)
	ip := netip.MustParseAddr("198.51.100.7")
	users, _ := parseUsers("alice:pw\n", "mediagw")
	v := &verifier{algs: DefaultAuthAlgorithms, realm: "mediagw", nonces: n, book: newNonceBook(nonceBookSize)}
	v.users.Store(&users)
	b.Run("challenge", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_ = v.challenges(ip, false)
		}
	})
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ch := v.challenges(ip, false)[0]
			h := strings.Replace(ch, "Digest ", "", 1)
			p, _ := parseAuthParams(h)
			ha1 := users["alice"].sha256
			resp := digestResponse(newDigestHash("SHA-256"), ha1, "INVITE", "sip:conf-1@h", p["nonce"], "00000001", "c")
			auth := fmt.Sprintf(`Digest username="alice", realm="mediagw", nonce="%s", uri="sip:conf-1@h", response="%s", algorithm=SHA-256, cnonce="c", qop=auth, nc=00000001`, p["nonce"], resp)
			if _, err := v.verify([]string{auth}, "INVITE", ip); err != nil {
				b.Fatal(err)
			}
		}
	})
}

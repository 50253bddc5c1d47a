package sip

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Digest authentication (RFC 3261 §22, RFC 7616 as RFC 8760 applies it to
// SIP): the gateway challenges with SHA-256 first and MD5 second, both with
// qop=auth. A nonce is stateless: its issue time and an HMAC over that time
// and the client's IP address under a per-process secret, so a challenge
// costs no memory and a nonce works only from the address it was issued to
// and only for sip.nonce_ttl. What a nonce has been used for is remembered once
// it is used (nonceBook): each use must carry a higher nonce-count than the
// last, so a captured request cannot be played again.

// Digest algorithms we offer and accept (RFC 8760 §2.1 names).
const (
	algSHA256 = "SHA-256"
	algMD5    = "MD5"
)

// DefaultAuthAlgorithms is sip.auth_algorithms' default: the challenges
// offered, in this order (RFC 8760 §2.4: most preferred first).
var DefaultAuthAlgorithms = []string{algSHA256, algMD5}

// Credential verdicts.
var (
	errNoCredentials  = errors.New("no credentials for this realm")
	errStaleNonce     = errors.New("nonce expired")
	errBadCredentials = errors.New("credentials refused")
	errReplayed       = errors.New("nonce-count not above the last one used (replay)")
)

// credentials are the parameters of an Authorization header (digest).
type credentials struct {
	username, realm, nonce, uri, response, algorithm, cnonce, opaque, qop, nc string
}

// parseCredentials reads the value of an Authorization header. ok is false
// when it is not a Digest header or a parameter is malformed.
func parseCredentials(v string) (c credentials, ok bool) {
	v = strings.TrimSpace(v)
	scheme, rest := v, ""
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		scheme, rest = v[:i], v[i+1:]
	}
	if !strings.EqualFold(scheme, "Digest") {
		return c, false
	}
	params, ok := parseAuthParams(rest)
	if !ok {
		return c, false
	}
	for name, val := range params {
		switch name {
		case "username":
			c.username = val
		case "realm":
			c.realm = val
		case "nonce":
			c.nonce = val
		case "uri":
			c.uri = val
		case "response":
			c.response = val
		case "algorithm":
			c.algorithm = val
		case "cnonce":
			c.cnonce = val
		case "opaque":
			c.opaque = val
		case "qop":
			c.qop = val
		case "nc":
			c.nc = val
		}
	}
	return c, true
}

// maxAuthParams bounds the parameters of one Authorization header.
const maxAuthParams = 32

// parseAuthParams splits `name=value, name="quoted value", ...` (RFC 7235
// auth-param) into lower-case names and unquoted values. A name given twice
// makes the header malformed.
func parseAuthParams(s string) (map[string]string, bool) {
	out := make(map[string]string, 10)
	for {
		s = strings.TrimLeft(s, " \t\r\n,")
		if s == "" {
			return out, true
		}
		if len(out) == maxAuthParams {
			return nil, false
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, false
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		if name == "" || strings.ContainsAny(name, " \t\",") {
			return nil, false
		}
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					break
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, false // unterminated
			}
			val, s = b.String(), s[i+1:]
			s = strings.TrimLeft(s, " \t")
			if s != "" && s[0] != ',' {
				return nil, false
			}
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
			if strings.ContainsAny(val, " \t\"") {
				return nil, false
			}
		}
		if _, dup := out[name]; dup {
			return nil, false
		}
		out[name] = val
	}
}

// quote is s as an RFC 3261 quoted-string.
func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// newDigestHash returns the hash of an algorithm we accept, nil otherwise.
func newDigestHash(alg string) hash.Hash {
	switch {
	case alg == "" || strings.EqualFold(alg, algMD5):
		return md5.New()
	case strings.EqualFold(alg, algSHA256):
		return sha256.New()
	}
	return nil
}

// hexHash is the lower-case hex digest of the parts joined by ':'.
func hexHash(h hash.Hash, parts ...string) string {
	h.Reset()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{':'})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// digestResponse is the request-digest of RFC 7616 §3.4.1 with qop=auth.
func digestResponse(h hash.Hash, ha1, method, uri, nonce, nc, cnonce string) string {
	ha2 := hexHash(h, method, uri)
	return hexHash(h, ha1, nonce, nc, cnonce, "auth", ha2)
}

// userSecrets are a user's HA1 values, H(username:realm:password), one per
// algorithm: the passwords themselves are not kept.
type userSecrets struct {
	md5, sha256 string
}

func (u userSecrets) ha1(alg string) string {
	if strings.EqualFold(alg, algSHA256) {
		return u.sha256
	}
	return u.md5
}

// parseUsers reads a users file: one "user:password" a line; blank lines
// and lines starting with # are ignored. The password is everything after
// the first colon.
func parseUsers(data, realm string) (map[string]userSecrets, error) {
	users := make(map[string]userSecrets)
	for i, line := range strings.Split(data, "\n") {
		line = strings.TrimRight(line, "\r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, pass, ok := strings.Cut(line, ":")
		user = strings.TrimSpace(user)
		switch {
		case !ok || user == "" || pass == "":
			return nil, fmt.Errorf("line %d: want user:password", i+1)
		case strings.ContainsAny(user, " \t\"\\"):
			return nil, fmt.Errorf("line %d: user %q has a blank, quote or backslash", i+1, user)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q given twice", i+1, user)
		}
		users[user] = userSecrets{
			md5:    hexHash(md5.New(), user, realm, pass),
			sha256: hexHash(sha256.New(), user, realm, pass),
		}
	}
	return users, nil
}

// DefaultNonceTTL is sip.nonce_ttl's default: how long a nonce is accepted
// after it was issued (Kamailio's auth nonce_expire has the same); a request
// with an older one gets a fresh challenge with stale=true.
const DefaultNonceTTL = 5 * time.Minute

// nonceMAC is how many bytes of the HMAC a nonce carries.
const nonceMAC = 16

// nonces issues and checks stateless nonces: base64url of the issue time
// (unix nanoseconds, 8 bytes) followed by HMAC-SHA256(secret, time || IP)
// truncated to nonceMAC bytes.
type nonces struct {
	secret [32]byte
	ttl    time.Duration
	now    func() time.Time
}

func newNonces(ttl time.Duration) (*nonces, error) {
	n := &nonces{now: time.Now, ttl: ttl}
	if _, err := rand.Read(n.secret[:]); err != nil {
		return nil, fmt.Errorf("nonce secret: %w", err)
	}
	return n, nil
}

func (n *nonces) mac(ts []byte, ip netip.Addr) []byte {
	m := hmac.New(sha256.New, n.secret[:])
	m.Write(ts)
	b := ip.As16()
	m.Write(b[:])
	return m.Sum(nil)[:nonceMAC]
}

// issue returns a nonce for a client at ip.
func (n *nonces) issue(ip netip.Addr) string { return n.issueAt(ip, n.now()) }

// issueAt returns a nonce for a client at ip issued at t.
func (n *nonces) issueAt(ip netip.Addr, t time.Time) string {
	var raw [8 + nonceMAC]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(t.UnixNano()))
	copy(raw[8:], n.mac(raw[:8], ip))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// check verifies that nonce is ours and was issued to ip; it returns the
// issue time. errStaleNonce when it is ours but older than its ttl;
// errBadCredentials when it is not ours (forged, or issued to another
// address).
func (n *nonces) check(nonce string, ip netip.Addr) (time.Time, error) {
	raw, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(raw) != 8+nonceMAC {
		return time.Time{}, errBadCredentials
	}
	if !hmac.Equal(raw[8:], n.mac(raw[:8], ip)) {
		return time.Time{}, errBadCredentials
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(raw[:8])))
	if age := n.now().Sub(issued); age > n.ttl || age < -time.Second {
		return issued, errStaleNonce
	}
	return issued, nil
}

// nonceBookSize bounds the used nonces remembered.
const nonceBookSize = 1 << 16

// nonceBook remembers the last nonce-count used with each nonce still
// valid. It is bounded: when full, expired entries go first, then the
// oldest used; a nonce issued no later than one pushed out early is
// stale from then on (floor), so dropping an entry never lets a replay in.
type nonceBook struct {
	mu    sync.Mutex // guards the fields below
	last  map[string]uint32
	order []bookEntry // in order of first use: a ring of len size
	head  int         // index of the oldest entry in order
	floor time.Time   // nonces issued at or before this are stale
	size  int
}

type bookEntry struct {
	nonce  string
	issued time.Time
}

func newNonceBook(size int) *nonceBook {
	return &nonceBook{last: make(map[string]uint32, size), size: size}
}

// use records nonce-count nc for nonce (issued at issued, checked fresh at
// now). errReplayed when nc is not above the last count used with it;
// errStaleNonce when the nonce was issued before the floor.
func (b *nonceBook) use(nonce string, issued time.Time, nc uint32, now time.Time, ttl time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !issued.After(b.floor) {
		return errStaleNonce
	}
	if last, ok := b.last[nonce]; ok {
		if nc <= last {
			return errReplayed
		}
		b.last[nonce] = nc
		return nil
	}
	if len(b.order) == b.size {
		old := b.order[b.head]
		delete(b.last, old.nonce)
		if now.Sub(old.issued) <= ttl && old.issued.After(b.floor) {
			b.floor = old.issued // pushed out while still valid
		}
		b.order[b.head] = bookEntry{nonce: nonce, issued: issued}
		b.head = (b.head + 1) % b.size
	} else {
		b.order = append(b.order, bookEntry{nonce: nonce, issued: issued})
	}
	b.last[nonce] = nc
	return nil
}

// len is how many nonces are remembered (tests).
func (b *nonceBook) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.last)
}

// verifier checks digest credentials against the users file.
type verifier struct {
	algs   []string // offered in this order; only these are accepted
	realm  string
	users  atomic.Pointer[map[string]userSecrets] // swapped whole by a reload
	nonces *nonces
	book   *nonceBook
}

// dummySecrets stand in for an unknown user, so that the work done (and
// its time) does not tell known user names from unknown ones.
var dummySecrets = userSecrets{md5: strings.Repeat("0", 32), sha256: strings.Repeat("0", 64)}

// verify checks the Authorization values hdrs (one may be for another
// realm) of a request with method from ip. nil: authenticated as user.
// errNoCredentials: none for our realm (challenge). errStaleNonce:
// challenge again with stale=true. errBadCredentials, errReplayed: 403.
func (v *verifier) verify(hdrs []string, method string, ip netip.Addr) (user string, err error) {
	var c credentials
	found := false
	for _, h := range hdrs {
		cc, ok := parseCredentials(h)
		if !ok {
			return "", fmt.Errorf("%w: malformed Authorization", errBadCredentials)
		}
		if cc.realm == v.realm {
			c, found = cc, true
			break
		}
	}
	if !found {
		return "", errNoCredentials
	}
	alg := c.algorithm
	if alg == "" {
		alg = algMD5 // RFC 7616 §3.3
	}
	h := newDigestHash(alg)
	switch {
	case h == nil || !slices.ContainsFunc(v.algs, func(a string) bool { return strings.EqualFold(a, alg) }):
		return "", fmt.Errorf("%w: algorithm %q", errBadCredentials, c.algorithm)
	case c.qop != "auth":
		return "", fmt.Errorf("%w: qop %q (want auth)", errBadCredentials, c.qop)
	case c.username == "" || c.uri == "" || c.cnonce == "" || len(c.nc) != 8:
		return "", fmt.Errorf("%w: username, uri, cnonce or nc missing", errBadCredentials)
	}
	nc, err := strconv.ParseUint(c.nc, 16, 32)
	if err != nil || nc == 0 {
		return "", fmt.Errorf("%w: nc %q", errBadCredentials, c.nc)
	}
	issued, nonceErr := v.nonces.check(c.nonce, ip)
	if nonceErr != nil && !errors.Is(nonceErr, errStaleNonce) {
		return "", nonceErr
	}
	secrets, known := (*v.users.Load())[c.username]
	if !known {
		secrets = dummySecrets
	}
	want := digestResponse(h, secrets.ha1(c.algorithm), method, c.uri, c.nonce, c.nc, c.cnonce)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(c.response))) != 1 || !known {
		return "", fmt.Errorf("%w: user %q", errBadCredentials, c.username)
	}
	if nonceErr != nil {
		// Stale only when the response was right for the old nonce (RFC
		// 7616 §3.3): the client may retry without asking its user again.
		return "", nonceErr
	}
	// Only a correct response counts as a use of the nonce: a forged one
	// must not push real entries out of the book.
	if err := v.book.use(c.nonce, issued, uint32(nc), v.nonces.now(), v.nonces.ttl); err != nil {
		return "", err
	}
	return c.username, nil
}

// challenges are the WWW-Authenticate values for ip: one per algorithm,
// SHA-256 first, each with its own nonce.
func (v *verifier) challenges(ip netip.Addr, stale bool) []string {
	out := make([]string, 0, len(v.algs))
	for _, alg := range v.algs {
		var b strings.Builder
		b.WriteString("Digest realm=")
		b.WriteString(quote(v.realm))
		b.WriteString(`, qop="auth", algorithm=`)
		b.WriteString(alg)
		b.WriteString(`, nonce="`)
		b.WriteString(v.nonces.issue(ip))
		b.WriteByte('"')
		if stale {
			b.WriteString(", stale=true")
		}
		out = append(out, b.String())
	}
	return out
}

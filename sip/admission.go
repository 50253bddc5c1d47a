package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	gosip "github.com/emiago/sipgo/sip"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/ratelog"
)

// Admission: who may use the gateway. It is decided for every request in
// counted, before a handler runs, so before anything is allocated (no port,
// no table entry, no dialog) and before routing, so that a caller that is
// not admitted learns nothing about which routes exist: `conf-1` and
// `nosuchroute` get the same answer.
//
//   - ACK is never answered and passes (it matches a leg or is dropped).
//   - A request that is not SIP/2.0 gets 505 (RFC 3261 §21.5.21).
//   - In-dialog requests (To-tag) and CANCEL pass: the handlers match them
//     to a dialog or transaction of a caller that was admitted, and answer
//     481 otherwise, which creates nothing and reveals nothing.
//   - Every other request is out of dialog (INVITE, OPTIONS, REFER,
//     REGISTER, MESSAGE, ...): with Max-Forwards 0 it gets 483 (except
//     OPTIONS, which we answer as its final recipient, RFC 3261 §16.3).
//     A source in sip.trusted passes; any other is held to sip.rate (503
//     with Retry-After over it, no answer at all past twice its burst)
//     and must authenticate with
//     digest against sip.users_file (401 challenge, SHA-256 and MD5), and
//     without a users file it gets 403. Wrong user or password, a forged
//     nonce or a replayed nonce-count get 403; an expired nonce gets a new
//     challenge with stale=true.
//
// A route's allow list is checked after routing (onInvite): an admitted
// source outside it gets 404, the answer for a user no route matches.
type admission struct {
	trusted []netip.Prefix
	auth    *verifier // nil without sip.users_file: untrusted sources are refused
}

// DefaultTrusted is sip.trusted's default: loopback and the private ranges.
var DefaultTrusted = []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}

// DefaultRealm is sip.realm's default.
const DefaultRealm = "mediagw"

// parsePrefixes parses CIDRs (or single addresses) under a config key.
func parsePrefixes(key string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range list {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			a, aerr := netip.ParseAddr(strings.TrimSpace(s))
			if aerr != nil {
				return nil, fmt.Errorf("%s[%d]: %q is not a CIDR or an address", key, i, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// validateAdmission checks sip.trusted, sip.realm and sip.users_file.
func (c Config) validateAdmission() error {
	if _, err := parsePrefixes("sip.trusted", c.Trusted); err != nil {
		return err
	}
	if strings.ContainsAny(c.Realm, "\"\\\r\n") {
		return fmt.Errorf("sip.realm: %q has a quote, backslash or line break", c.Realm)
	}
	for i, a := range c.AuthAlgorithms {
		if !strings.EqualFold(a, algSHA256) && !strings.EqualFold(a, algMD5) {
			return fmt.Errorf("sip.auth_algorithms[%d]: %q (want SHA-256 or MD5)", i, a)
		}
		for _, b := range c.AuthAlgorithms[:i] {
			if strings.EqualFold(a, b) {
				return fmt.Errorf("sip.auth_algorithms[%d]: %q given twice", i, a)
			}
		}
	}
	if c.NonceTTL < 0 {
		return fmt.Errorf("sip.nonce_ttl: %v is negative", c.NonceTTL)
	}
	if c.UsersFile != "" {
		if _, err := loadUsers(c.UsersFile, c.realm()); err != nil {
			return err
		}
	}
	return nil
}

// nonceTTL is sip.nonce_ttl, DefaultNonceTTL when 0.
func (c Config) nonceTTL() time.Duration {
	if c.NonceTTL == 0 {
		return DefaultNonceTTL
	}
	return c.NonceTTL
}

// authAlgorithms is sip.auth_algorithms in canonical spelling,
// DefaultAuthAlgorithms when empty.
func (c Config) authAlgorithms() []string {
	if len(c.AuthAlgorithms) == 0 {
		return DefaultAuthAlgorithms
	}
	out := make([]string, len(c.AuthAlgorithms))
	for i, a := range c.AuthAlgorithms {
		out[i] = algMD5
		if strings.EqualFold(a, algSHA256) {
			out[i] = algSHA256
		}
	}
	return out
}

// realm is sip.realm, DefaultRealm when empty.
func (c Config) realm() string {
	if c.Realm == "" {
		return DefaultRealm
	}
	return c.Realm
}

func loadUsers(path, realm string) (map[string]userSecrets, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sip.users_file: %v", err)
	}
	users, err := parseUsers(string(data), realm)
	if err != nil {
		return nil, fmt.Errorf("sip.users_file: %s: %v", path, err)
	}
	return users, nil
}

func newAdmission(cfg Config) (*admission, error) {
	trusted, err := parsePrefixes("sip.trusted", cfg.Trusted)
	if err != nil {
		return nil, err
	}
	a := &admission{trusted: trusted}
	if cfg.UsersFile == "" {
		return a, nil
	}
	users, err := loadUsers(cfg.UsersFile, cfg.realm())
	if err != nil {
		return nil, err
	}
	n, err := newNonces(cfg.nonceTTL())
	if err != nil {
		return nil, fmt.Errorf("sip: %w", err)
	}
	a.auth = &verifier{algs: cfg.authAlgorithms(), realm: cfg.realm(), nonces: n, book: newNonceBook(nonceBookSize)}
	a.auth.users.Store(&users)
	return a, nil
}

func contains(list []netip.Prefix, ip netip.Addr) bool {
	for _, p := range list {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// sourceIP is the address a request came from (zero when unknown).
func sourceIP(req *gosip.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// admit decides whether req goes on to its handler. When it does not, req
// has been answered, counted and (rate-limited) logged.
func (s *Server) admit(req *gosip.Request, tx gosip.ServerTransaction) bool {
	if req.IsAck() {
		return true
	}
	if !strings.EqualFold(req.SipVersion, sipVersion) { // case-insensitive (RFC 3261 §7.1)
		s.refuse(tx, req, RefusedVersion, 505, "SIP version not supported")
		return false
	}
	if len(req.Headers()) > maxHeaderCount {
		s.refuse(tx, req, RefusedSize, 513, "too many header fields")
		return false
	}
	if to := req.To(); to != nil && to.Params.Has("tag") || req.Method == gosip.CANCEL {
		return true
	}
	if mf := req.MaxForwards(); mf != nil && *mf == 0 && req.Method != gosip.OPTIONS {
		s.refuse(tx, req, RefusedHops, 483, "Max-Forwards exhausted")
		return false
	}
	ip := sourceIP(req)
	if contains(s.adm.trusted, ip) {
		return true
	}
	if s.rate != nil {
		switch s.rate.take(ip) {
		case rateRefuse:
			s.refuse(tx, req, RefusedRate, 503, "over sip.rate", retryAfter(s.rate.retryAfter()))
			return false
		case rateSilence:
			s.reject(RefusedRateSilent, req.Source(), func() *logrus.Entry {
				return s.log.WithField("method", ratelog.Truncate(string(req.Method), 32))
			}, "far over sip.rate: not answered")
			tx.Terminate()
			return false
		}
	}
	if s.adm.auth == nil {
		s.refuse(tx, req, RefusedUntrusted, 403, "untrusted source (no sip.users_file)")
		return false
	}
	var creds []string
	for _, h := range req.GetHeaders("Authorization") {
		creds = append(creds, h.Value())
	}
	user, err := s.adm.auth.verify(creds, string(req.Method), ip)
	switch {
	case err == nil:
		if s.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
			s.log.WithFields(logrus.Fields{"call_id": ratelog.Truncate(callID(req), 64), "user": user,
				"remote": ip.String(), "method": string(req.Method)}).Debug("authenticated")
		}
		return true
	case errors.Is(err, errNoCredentials):
		s.refuse(tx, req, RefusedUntrusted, 401, "untrusted source challenged", s.challenge(ip, false)...)
	case errors.Is(err, errStaleNonce):
		s.refuse(tx, req, RefusedAuth, 401, err.Error(), s.challenge(ip, true)...)
	default:
		s.refuse(tx, req, RefusedAuth, 403, err.Error())
	}
	return false
}

// challenge is the WWW-Authenticate headers of a 401 to ip.
func (s *Server) challenge(ip netip.Addr, stale bool) []gosip.Header {
	vals := s.adm.auth.challenges(ip, stale)
	hdrs := make([]gosip.Header, len(vals))
	for i, v := range vals {
		hdrs[i] = gosip.NewHeader("WWW-Authenticate", v)
	}
	return hdrs
}

// refuse answers req with code, counts it under reason and logs it (once
// per source per interval). On UDP the answer is stateless, an INVITE's
// too (as Kamailio's sl_send_reply answers challenges): no transaction is
// kept for a request we refuse, a retransmission of the request is
// answered again from s.answered, and the ACK of a refused INVITE finds no
// transaction and is dropped. A scanner then costs a few bytes in the
// answered ring per request, not a sipgo transaction for 32 s.
func (s *Server) refuse(tx gosip.ServerTransaction, req *gosip.Request, reason string, code int, msg string, hdrs ...gosip.Header) {
	s.reject(reason, req.Source(), func() *logrus.Entry {
		return s.log.WithFields(logrus.Fields{"call_id": ratelog.Truncate(callID(req), 64), "method": ratelog.Truncate(string(req.Method), 32), "code": code})
	}, ratelog.Truncate(msg, 160)) // msg may quote what the remote sent (a user name, an algorithm)
	r := response{code: code, hdrs: hdrs}
	if !gosip.IsReliable(req.Transport()) {
		if sent, err := s.sendDirect(tx, req, r); sent {
			s.met.response(code)
			if err != nil {
				s.log.WithError(err).WithField("call_id", callID(req)).Debug("sending a refusal failed")
			}
			return
		}
	}
	s.reply(tx, req, code, hdrs...)
}

// routeAllows reports whether the route m may be used from ip.
func routeAllows(m match, ip netip.Addr) bool {
	return len(m.allow) == 0 || contains(m.allow, ip)
}

// referAllowed applies admission to a REFER's target, which the gateway
// would call on the referrer's behalf (0: allowed, else the status that
// refuses the REFER). A target at this gateway goes through the routes as
// if the REFER's source had dialled it: no route, or a route whose allow
// list excludes the source, is 404 alike. Any other target needs a trusted
// source (403): a caller that only authenticated must not make the gateway
// call out wherever it likes (an open relay by another door).
func (s *Server) referAllowed(req *gosip.Request, target gosip.Uri) int {
	ip := sourceIP(req)
	if s.isOurAddress(target.Host, target.Port) {
		m, ok, err := route(s.rules, target.User)
		if !ok || err != nil || !routeAllows(m, ip) {
			return 404
		}
		return 0
	}
	if !contains(s.adm.trusted, ip) {
		return 403
	}
	return 0
}

// ReloadUsers reads sip.users_file again and puts its users in place of the
// old ones at once (calls up stay; nonces stay good). On an error the old
// users stay. Without a users file at start it does nothing: turning
// authentication on needs a restart.
func (s *Server) ReloadUsers() (int, error) {
	if s.adm.auth == nil {
		return 0, nil
	}
	users, err := loadUsers(s.cfg.UsersFile, s.cfg.realm())
	if err != nil {
		return 0, err
	}
	s.adm.auth.users.Store(&users)
	return len(users), nil
}

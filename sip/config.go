package sip

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/mediagw/mediagw/session"
)

// Config is the yaml section `sip`.
type Config struct {
	Listen       []string      `yaml:"listen"`        // ["udp://0.0.0.0:5060", "tcp://0.0.0.0:5060"]
	ExternalHost string        `yaml:"external_host"` // host for Contact/Via; "" = listen address or primary IP
	Trusted      []string      `yaml:"trusted"`       // CIDRs that need no authentication (admission.go)
	UsersFile    string        `yaml:"users_file"`    // "user:password" lines for digest; "" = untrusted sources get 403
	Realm        string        `yaml:"realm"`         // digest realm
	NonceTTL     time.Duration `yaml:"nonce_ttl"`     // how long a digest nonce is good for
	// AuthAlgorithms are the digest challenges offered, most preferred
	// first (SHA-256, MD5); only these are accepted.
	AuthAlgorithms []string `yaml:"auth_algorithms"`

	Rate        RateConfig        `yaml:"rate"`        // new requests per second per untrusted source (limits.go)
	MaxCalls    int               `yaml:"max_calls"`   // concurrent inbound SIP calls; 0 = bounded by ports
	Unconfirmed UnconfirmedConfig `yaml:"unconfirmed"` // answered INVITEs waiting for their ACK
	Overload    OverloadConfig    `yaml:"overload"`    // new INVITEs shed at the socket when behind (overload.go)
	TCP         TCPConfig         `yaml:"tcp"`         // idle timeout and connection caps (tcplimit.go)
	TLS         TLSConfig         `yaml:"tls"`         // required by a tls:// listener (tls.go)
	// Trying is when a new INVITE gets 100 Trying: TryingAlways (at once,
	// before anything else: DESIGN §3) or TryingWhenNeeded (only before an
	// answer that is not given at once, a bridge's; an answer given at once
	// goes alone, RFC 3261 17.2.1, one datagram less per call).
	Trying string `yaml:"trying"`
	// Menu maps DTMF key sequences of SIP conference members to actions:
	// mute (toggle the member's own mute) or leave (hang up) (menu.go).
	Menu map[string]string `yaml:"menu"`
}

// Route is one entry of the yaml top-level `routes`, tried in order on the
// Request-URI user; the first match wins.
type Route struct {
	Match  string   `yaml:"match"`  // regexp on the Request-URI user; named groups (?P<id>) (?P<user>)
	Action string   `yaml:"action"` // conference | bridge | echo | reject
	Target string   `yaml:"target"` // bridge: URI template with ${user} etc.
	Code   int      `yaml:"code"`   // reject: SIP status (default 403)
	Allow  []string `yaml:"allow"`  // CIDRs that may use the route; empty = any admitted source
	// Pin (conference only): callers are answered but stay outside the
	// conference until they key it (RFC 4733 or in-band; '#' ends an
	// entry); three wrong entries end the call (pin.go).
	Pin string `yaml:"pin"`
	// Prompt (with Pin): a WAV under media.dir asking for the PIN; "" = a
	// short tone.
	Prompt string `yaml:"prompt"`
}

// sip.trying values.
const (
	TryingAlways     = "always"
	TryingWhenNeeded = "when_needed"
)

// Route actions.
const (
	ActionConference = "conference"
	ActionBridge     = "bridge"
	ActionEcho       = "echo"
	ActionReject     = "reject"
)

// DefaultConfig is the built-in `sip` section.
func DefaultConfig() Config {
	return Config{Listen: []string{"udp://0.0.0.0:5060", "tcp://0.0.0.0:5060"},
		Trusted: append([]string(nil), DefaultTrusted...), Realm: DefaultRealm, NonceTTL: DefaultNonceTTL,
		AuthAlgorithms: append([]string(nil), DefaultAuthAlgorithms...),
		Rate:           DefaultRate, Unconfirmed: DefaultUnconfirmed, Overload: DefaultOverload, TCP: DefaultTCP, Menu: map[string]string{},
		Trying: TryingAlways}
}

// DefaultRoutes are the built-in routes: conf-<id> joins conference <id>,
// echo loops media back.
func DefaultRoutes() []Route {
	return []Route{
		{Match: `^conf-(?P<id>[A-Za-z0-9._-]{1,64})$`, Action: ActionConference},
		{Match: `^echo$`, Action: ActionEcho},
	}
}

// Validate reports the first bad value of the section, naming its key.
func (c Config) Validate() error {
	if c.Overload.Delay < 0 {
		return fmt.Errorf("sip.overload.delay: %s is negative", c.Overload.Delay)
	}
	if c.Overload.QueueDelay < 0 {
		return fmt.Errorf("sip.overload.queue_delay: %s is negative", c.Overload.QueueDelay)
	}
	for keys, action := range c.Menu {
		if err := checkMenuEntry(keys, action); err != nil {
			return fmt.Errorf("sip.menu[%q]: %w", keys, err)
		}
	}
	for i, l := range c.Listen {
		if _, _, err := ParseListen(l); err != nil {
			return fmt.Errorf("sip.listen[%d]: %w", i, err)
		}
	}
	if strings.ContainsAny(c.ExternalHost, " \t;,<>\"") {
		return fmt.Errorf("sip.external_host: invalid host %q", c.ExternalHost)
	}
	if err := c.Rate.validate(); err != nil {
		return err
	}
	if err := c.Unconfirmed.validate(); err != nil {
		return err
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	if err := c.TCP.validate(); err != nil {
		return err
	}
	if c.MaxCalls < 0 {
		return fmt.Errorf("sip.max_calls: must be >= 0")
	}
	switch c.Trying {
	case TryingAlways, TryingWhenNeeded:
	case "":
		c.Trying = TryingAlways
	default:
		return fmt.Errorf("sip.trying: %q is neither %q nor %q", c.Trying, TryingAlways, TryingWhenNeeded)
	}
	return c.validateAdmission()
}

// ParseListen splits a listen URL such as "udp://0.0.0.0:5060" into its
// network ("udp", "tcp" or "tls") and host:port.
func ParseListen(s string) (network, addr string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("listen %q: %v", s, err)
	}
	switch u.Scheme {
	case "udp", "tcp", "tls":
	default:
		return "", "", fmt.Errorf("listen %q: scheme must be udp, tcp or tls", s)
	}
	if u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", "", fmt.Errorf("listen %q: want scheme://host:port", s)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return "", "", fmt.Errorf("listen %q: %v", s, err)
	}
	return u.Scheme, u.Host, nil
}

// rule is a compiled Route.
type rule struct {
	Route
	re    *regexp.Regexp
	allow []netip.Prefix
}

// compileRoutes checks and compiles the routes in order.
func compileRoutes(routes []Route) ([]rule, error) {
	out := make([]rule, 0, len(routes))
	for i, r := range routes {
		re, err := regexp.Compile(r.Match)
		if err != nil {
			return nil, fmt.Errorf("routes[%d].match: %v", i, err)
		}
		switch r.Action {
		case ActionConference, ActionEcho:
			// A conference rule without an (?P<id>) group names the
			// conference after the whole user.
		case ActionBridge:
			if r.Target == "" {
				return nil, fmt.Errorf("routes[%d].target: required for action bridge", i)
			}
			if !strings.Contains(r.Target, "$") {
				if _, err := parseTargetURI(r.Target); err != nil {
					return nil, fmt.Errorf("routes[%d].target: %v", i, err)
				}
			}
		case ActionReject:
			if r.Code == 0 {
				r.Code = 403
			}
			if r.Code < 300 || r.Code > 699 {
				return nil, fmt.Errorf("routes[%d].code: %d is not a SIP failure status (300-699)", i, r.Code)
			}
		default:
			return nil, fmt.Errorf("routes[%d].action: %q (want conference, bridge, echo or reject)", i, r.Action)
		}
		if r.Pin != "" || r.Prompt != "" {
			if r.Action != ActionConference {
				return nil, fmt.Errorf("routes[%d].pin: only a conference route takes a PIN", i)
			}
			if !validPin(r.Pin) {
				return nil, fmt.Errorf("routes[%d].pin: %q must be 1-16 keys of 0-9, *, A-D (# ends an entry)", i, r.Pin)
			}
		}
		allow, err := parsePrefixes(fmt.Sprintf("routes[%d].allow", i), r.Allow)
		if err != nil {
			return nil, err
		}
		out = append(out, rule{Route: r, re: re, allow: allow})
	}
	return out, nil
}

// match is a route decision for one Request-URI user.
type match struct {
	Action string
	ConfID string // conference: the conference to join
	Pin    string // conference: the PIN callers must key first ("" = none)
	Prompt string // conference with a PIN: the prompt asking for it
	Target string // bridge: the expanded target URI
	Code   int    // reject: the status
	allow  []netip.Prefix
}

// route finds the first rule matching user. ok is false when none does.
func route(rules []rule, user string) (m match, ok bool, err error) {
	for _, r := range rules {
		idx := r.re.FindStringSubmatchIndex(user)
		if idx == nil {
			continue
		}
		m = match{Action: r.Action, Code: r.Code, allow: r.allow, Pin: r.Pin, Prompt: r.Prompt}
		switch r.Action {
		case ActionConference:
			m.ConfID = user
			if i := r.re.SubexpIndex("id"); i >= 0 && idx[2*i] >= 0 {
				m.ConfID = user[idx[2*i]:idx[2*i+1]]
			}
			if !session.ValidConferenceID(m.ConfID) {
				return m, true, fmt.Errorf("%w: conference id %q", session.ErrInvalidParam, m.ConfID)
			}
		case ActionBridge:
			m.Target = string(r.re.ExpandString(nil, r.Target, user, idx))
		}
		return m, true, nil
	}
	return match{}, false, nil
}

// parseTargetURI parses a bridge or transfer target.
func parseTargetURI(s string) (gosip.Uri, error) {
	var u gosip.Uri
	s = strings.TrimSpace(s)
	if err := gosip.ParseUri(s, &u); err != nil {
		return u, fmt.Errorf("target %q: %v", s, err)
	}
	if u.Scheme != "sip" || u.Host == "" {
		return u, fmt.Errorf("target %q: want a sip: URI with a host", s)
	}
	return u, nil
}

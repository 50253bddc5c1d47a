package mgcp

import (
	"errors"
	"strconv"
	"strings"

	"github.com/mediagw/mediagw/session"
)

// endpointKind describes one family of endpoints as data (as osmo-mgw's
// endpoint type table does): how names map to session conferences, how many
// connections an endpoint takes and which modes make sense on it.
type endpointKind struct {
	prefix   string       // "cnf/", "rtpbridge/" (matched case-insensitively)
	conf     session.Kind // the session conference kind behind an endpoint
	confrnce bool         // mode confrnce accepted (the audio is mixed)
	starAny  bool         // `*` in CRCX means "any free one", like `$` (osmo-mgw habit)
	// confID maps the part after the prefix to a session ConferenceId.
	confID func(id string) (string, bool)
	// local maps a ConferenceId back to the part after the prefix.
	local func(confID string) (string, bool)
}

var (
	kindCnf = &endpointKind{
		prefix:   "cnf/",
		conf:     session.KindConference,
		confrnce: true,
		confID: func(id string) (string, bool) {
			return id, session.ValidConferenceID(id) && !isBridgeConf(id)
		},
		local: func(confID string) (string, bool) {
			return confID, !isBridgeConf(confID)
		},
	}
	kindBridge = &endpointKind{
		prefix:  "rtpbridge/",
		conf:    session.KindBridge,
		starAny: true,
		confID: func(id string) (string, bool) {
			n, ok := parseBridgeNum(strings.ToLower(id))
			if !ok {
				return "", false
			}
			return bridgeConfID(n), true
		},
		local: func(confID string) (string, bool) {
			if !isBridgeConf(confID) {
				return "", false
			}
			return confID[len(bridgeConfPrefix):], true
		},
	}
	endpointKinds = []*endpointKind{kindCnf, kindBridge}
)

// rtpbridge/<n> endpoints are numbered in hex (as osmo-mgw does) from 1 to
// maxBridge; endpoint n is the session conference "rtpbridge-<n>".
const (
	maxBridge        = 0xffff
	bridgeConfPrefix = "rtpbridge-"
)

func bridgeConfID(n uint32) string { return bridgeConfPrefix + strconv.FormatUint(uint64(n), 16) }

func parseBridgeNum(s string) (uint32, bool) {
	if len(s) == 0 || len(s) > 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 16, 32)
	if err != nil || n == 0 || n > maxBridge {
		return 0, false
	}
	return uint32(n), true
}

func isBridgeConf(confID string) bool {
	rest, ok := strings.CutPrefix(confID, bridgeConfPrefix)
	if !ok {
		return false
	}
	n, ok := parseBridgeNum(rest)
	return ok && bridgeConfID(n) == confID
}

// endpoint is a resolved endpoint name.
type endpoint struct {
	kind   *endpointKind // nil for "*@domain" (every kind)
	any    bool          // `$`: the gateway picks one (CRCX only)
	all    bool          // `*`: every matching endpoint
	confID string        // the session conference of a specific endpoint
}

var errEndpoint = errors.New("endpoint unknown")

// parseEndpoint resolves local@domain; names and domain are case-insensitive,
// conference IDs keep their case.
func parseEndpoint(name, domain string) (endpoint, error) {
	at := strings.LastIndexByte(name, '@')
	if at < 0 || !strings.EqualFold(name[at+1:], domain) {
		return endpoint{}, errEndpoint
	}
	local := name[:at]
	if local == "*" {
		return endpoint{all: true}, nil
	}
	for _, k := range endpointKinds {
		if len(local) <= len(k.prefix) || !strings.EqualFold(local[:len(k.prefix)], k.prefix) {
			continue
		}
		id := local[len(k.prefix):]
		switch id {
		case "$":
			return endpoint{kind: k, any: true}, nil
		case "*":
			return endpoint{kind: k, all: true}, nil
		}
		confID, ok := k.confID(id)
		if !ok {
			return endpoint{}, errEndpoint
		}
		return endpoint{kind: k, confID: confID}, nil
	}
	return endpoint{}, errEndpoint
}

// endpointOf names the endpoint of a session conference ("cnf/7",
// "rtpbridge/1"); "" for none.
func endpointOf(confID string) (string, *endpointKind) {
	if confID == "" {
		return "", nil
	}
	for _, k := range endpointKinds {
		if id, ok := k.local(confID); ok {
			return k.prefix + id, k
		}
	}
	return "", nil
}

// local is the endpoint's local name without the domain.
func (e endpoint) local() string {
	switch {
	case e.kind == nil:
		return "*"
	case e.any:
		return e.kind.prefix + "$"
	case e.all:
		return e.kind.prefix + "*"
	}
	l, _ := endpointOf(e.confID)
	return l
}

// wild reports a `$` or `*` name.
func (e endpoint) wild() bool { return e.any || e.all }

// matches reports whether the conference confID is (one of) this endpoint.
func (e endpoint) matches(confID string) bool {
	if confID == "" {
		return false
	}
	if !e.all {
		return !e.any && confID == e.confID
	}
	_, k := endpointOf(confID)
	return e.kind == nil || e.kind == k
}

// allowsMode reports whether a connection mode makes sense on the endpoint.
func (e endpoint) allowsMode(m session.Mode) bool {
	if m == session.ModeConference {
		return e.kind != nil && e.kind.confrnce
	}
	return true
}

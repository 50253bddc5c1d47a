package control

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mediagw/mediagw/session"
)

// params are an action's parameters by Media Control name. Values may be
// JSON strings, numbers or booleans ("MediaTxPort": "4000" or 4000).
type params map[string]json.RawMessage

// str returns a parameter as text; ok is false when it is absent or null.
func (p params) str(name string) (string, bool, error) {
	raw, ok := p[name]
	if !ok {
		return "", false, nil
	}
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "null":
		return "", false, nil
	case strings.HasPrefix(s, `"`):
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", false, fmt.Errorf("%w: %s", session.ErrInvalidParam, name)
		}
		return strings.TrimSpace(v), v != "", nil
	case strings.HasPrefix(s, "{") || strings.HasPrefix(s, "["):
		return "", false, fmt.Errorf("%w: %s must be a string, number or boolean", session.ErrInvalidParam, name)
	}
	return s, true, nil // number or boolean literal
}

func (p params) required(name string) (string, error) {
	v, ok, err := p.str(name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%w: %s is required", session.ErrInsufficientParams, name)
	}
	return v, nil
}

func (p params) optional(name string) (string, error) {
	v, _, err := p.str(name)
	return v, err
}

// boolean reads a flag ("true"/"false", 1/0); absent is def.
func (p params) boolean(name string, def bool) (bool, error) {
	v, ok, err := p.str(name)
	if err != nil || !ok {
		return def, err
	}
	b, perr := strconv.ParseBool(strings.ToLower(v))
	if perr != nil {
		return def, fmt.Errorf("%w: %s=%q is not a boolean", session.ErrInvalidParam, name, v)
	}
	return b, nil
}

// millis reads a non-negative number of milliseconds; absent is 0.
func (p params) millis(name string) (time.Duration, error) {
	v, ok, err := p.str(name)
	if err != nil || !ok {
		return 0, err
	}
	n, perr := strconv.ParseUint(v, 10, 32)
	if perr != nil {
		return 0, fmt.Errorf("%w: %s=%q is not a number of milliseconds", session.ErrInvalidParam, name, v)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// remote reads MediaTxIP and MediaTxPort. Both absent is a zero address;
// one without the other is insufficient.
func (p params) remote(required bool) (netip.AddrPort, error) {
	ipS, hasIP, err := p.str("MediaTxIP")
	if err != nil {
		return netip.AddrPort{}, err
	}
	portS, hasPort, err := p.str("MediaTxPort")
	if err != nil {
		return netip.AddrPort{}, err
	}
	if !hasIP && !hasPort && !required {
		return netip.AddrPort{}, nil
	}
	if !hasIP || !hasPort {
		return netip.AddrPort{}, fmt.Errorf("%w: MediaTxIP and MediaTxPort are required", session.ErrInsufficientParams)
	}
	ip, perr := netip.ParseAddr(ipS)
	if perr != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: MediaTxIP=%q", session.ErrInvalidParam, ipS)
	}
	port, perr := strconv.ParseUint(portS, 10, 16)
	if perr != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: MediaTxPort=%q", session.ErrInvalidParam, portS)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}

// codecAliases maps Media Control codec names to RTP encoding names.
var codecAliases = map[string]string{
	"PCMU": "PCMU", "G711U": "PCMU", "G711ULAW": "PCMU", "G711_ULAW": "PCMU", "ULAW": "PCMU",
	"PCMA": "PCMA", "G711A": "PCMA", "G711ALAW": "PCMA", "G711_ALAW": "PCMA", "ALAW": "PCMA",
	"G729": "G729", "G729A": "G729", "G723": "G723", "G723.1": "G723", "G722": "G722",
	"ILBC": "iLBC", "GSM": "GSM",
}

// connParams reads the media parameters of Create/ModifyConnection.
func (p params) connParams(remoteRequired bool) (session.ConnectionParams, error) {
	var cp session.ConnectionParams
	remote, err := p.remote(remoteRequired)
	if err != nil {
		return cp, err
	}
	cp.Remote = remote
	tx, err := p.optional("MediaTxCodec")
	if err != nil {
		return cp, err
	}
	rx, err := p.optional("MediaRxCodec")
	if err != nil {
		return cp, err
	}
	if tx == "" {
		tx = rx
	}
	if tx != "" {
		name, ok := codecAliases[strings.ToUpper(tx)]
		if !ok {
			return cp, fmt.Errorf("%w: MediaTxCodec=%q", session.ErrInvalidParam, tx)
		}
		if rx != "" && codecAliases[strings.ToUpper(rx)] != name {
			return cp, fmt.Errorf("%w: MediaRxCodec %q differs from MediaTxCodec %q (no transcoding)", session.ErrInvalidParam, rx, tx)
		}
		cp.Codec = name
	}
	for _, name := range []string{"MediaTxFramesize", "MediaRxFramesize"} {
		ms, err := p.millis(name)
		if err != nil {
			return cp, err
		}
		if ms != 0 {
			cp.Ptime = ms
			break
		}
	}
	mode, err := p.optional("Mode")
	if err != nil {
		return cp, err
	}
	if mode != "" {
		m, err := session.ParseMode(mode)
		if err != nil {
			return cp, err
		}
		cp.Mode = m
	}
	te, err := p.number("TelephoneEvent", 0, 96, 127)
	if err != nil {
		return cp, err
	}
	cp.TelephoneEvent = uint8(te) // RFC 4733 payload type the remote sends and takes; 0 = none (in-band DTMF)
	cp.CallID, err = p.optional("CallId")
	return cp, err
}

// attrs reads conferee attributes, starting from base.
func (p params) attrs(base session.MemberAttrs) (session.MemberAttrs, error) {
	var err error
	a := base
	for _, f := range []struct {
		name string
		v    *bool
	}{{"Mute", &a.Muted}, {"ReceiveOnly", &a.ReceiveOnly}, {"Monitor", &a.ReceiveOnly}, {"Coach", &a.Coach}, {"Pupil", &a.Pupil}} {
		if *f.v, err = p.boolean(f.name, *f.v); err != nil {
			return a, err
		}
	}
	return a, nil
}

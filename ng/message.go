package ng

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Request is one parsed ng command: the keys and flags this front acts on.
// Keys and flags it does not act on are collected in Ignored (for a debug
// log line), never refused: the proxy module would retry a refusal forever.
type Request struct {
	Command   string // canonical lower-case name, e.g. "offer", "play media"
	CallID    string
	FromTag   string
	ToTag     string
	ViaBranch string
	SDP       []byte // aliases the datagram

	TrustAddress   bool       // take media addresses from the SDP (our default)
	SIPSource      bool       // take the media address from ReceivedFrom
	ReceivedFrom   netip.Addr // "received from": ["IP4", "192.0.2.1"]
	Asymmetric     bool       // asked not to latch (we always latch; logged)
	NoRTCPAttr     bool       // do not add a=rtcp
	Fatal          bool       // delete: an unknown call is an error
	ReplaceOrigin  bool
	ICERemove      bool   // ICE=remove (we always remove: see doc.go)
	ICE            string // the ICE key as sent
	Transport      string // "transport-protocol"
	DeleteDelay    time.Duration
	HasDeleteDelay bool
	Limit          int  // list: most call-ids to return; 0 = default
	LoadLimit      bool // the client understands result "load limit" (tries another relay)
	CodecStrip     []string
	CodecMask      []string
	CodecOffer     []string

	// Media commands (media.go).
	All         bool   // every participant ("all" key or flag)
	File        string // play media
	MediaBlob   bool   // play media "blob" (refused)
	MediaDBID   bool   // play media "db-id" (refused)
	RepeatTimes int
	Code        byte // play DTMF: the key ('0'-'9', '*', '#', 'A'-'D')
	HasCode     bool
	Duration    int // play DTMF, ms
	Pause       int // ms
	Volume      int // dB
	HasVolume   bool

	Ignored []string
}

// dtmfKeys are the keys of RFC 4733 codes 0-15.
const dtmfKeys = "0123456789*#ABCD"

// setCode reads play DTMF's code (or digit): 0-15 or one key.
func (r *Request) setCode(key string, v Value) error {
	if n, ok := v.Int(); ok && v.Kind() == KindInt {
		if n < 0 || n > 15 {
			return &fieldError{key, "0-15 or one of 0-9*#A-D"}
		}
		r.Code, r.HasCode = dtmfKeys[n], true
		return nil
	}
	b := v.Bytes()
	if v.Kind() != KindString || len(b) != 1 || !strings.ContainsRune(dtmfKeys, rune(upper(b[0]))) {
		return &fieldError{key, "0-15 or one of 0-9*#A-D"}
	}
	r.Code, r.HasCode = upper(b[0]), true
	return nil
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// intKey reads a non-negative integer key (an integer or its decimal string).
func intKey(key string, v Value, max int) (int, error) {
	n, ok := v.Int()
	if !ok && v.Kind() == KindString {
		var err error
		var m int
		if m, err = strconv.Atoi(string(v.Bytes())); err == nil {
			n, ok = int64(m), true
		}
	}
	if !ok || n < -int64(max) || n > int64(max) {
		return 0, &fieldError{key, fmt.Sprintf("an integer (at most %d)", max)}
	}
	return int(n), nil
}

// fieldError is a key of the wrong type or value (answered with result error).
type fieldError struct{ key, want string }

func (e *fieldError) Error() string { return fmt.Sprintf("key %q must be %s", e.key, e.want) }

// SplitDatagram splits an ng datagram into its cookie and bencoded body.
func SplitDatagram(b []byte) (cookie, body []byte, ok bool) {
	sp := bytes.IndexByte(b, ' ')
	if sp <= 0 || sp > 128 {
		return nil, nil, false
	}
	return b[:sp], b[sp+1:], true
}

// normKey writes s lower-cased with '_' and ' ' as '-' into buf (rtpengine
// treats "delete delay", "delete-delay" and "delete_delay" alike).
func normKey(buf []byte, s []byte) []byte {
	buf = buf[:0]
	for _, c := range s {
		switch {
		case c == '_' || c == ' ':
			c = '-'
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	return buf
}

// commandName canonicalizes a command ("Play_Media" → "play media").
func commandName(b []byte) string {
	var tmp [32]byte
	k := normKey(tmp[:0], b)
	for i, c := range k {
		if c == '-' {
			k[i] = ' '
		}
	}
	if name, ok := commandNames[string(k)]; ok {
		return name // interned: no allocation for known commands
	}
	return string(k)
}

// ParseRequest reads the dictionary of one ng command.
func ParseRequest(d Value) (*Request, error) {
	if d.Kind() != KindDict {
		return nil, fmt.Errorf("message is not a dictionary")
	}
	r := &Request{}
	var kb [48]byte
	for i := 0; i < d.Len(); i++ {
		key, v := d.Entry(i)
		k := normKey(kb[:0], key)
		switch string(k) {
		case "command":
			if v.Kind() != KindString {
				return nil, &fieldError{"command", "a string"}
			}
			r.Command = commandName(v.Bytes())
		case "call-id":
			if v.Kind() != KindString && v.Kind() != KindInt {
				return nil, &fieldError{"call-id", "a string"}
			}
			r.CallID = v.Str()
		case "from-tag":
			r.FromTag = v.Str()
		case "to-tag":
			r.ToTag = v.Str()
		case "via-branch":
			r.ViaBranch = v.Str()
		case "sdp":
			if v.Kind() != KindString {
				return nil, &fieldError{"sdp", "a string"}
			}
			r.SDP = v.Bytes()
		case "flags":
			if v.Kind() != KindList {
				return nil, &fieldError{"flags", "a list"}
			}
			for j := 0; j < v.Len(); j++ {
				r.flag(v.Index(j).Bytes())
			}
		case "replace":
			if v.Kind() != KindList {
				return nil, &fieldError{"replace", "a list"}
			}
			for j := 0; j < v.Len(); j++ {
				r.replace(v.Index(j).Bytes())
			}
		case "ice":
			r.setICE(v.Str())
		case "transport-protocol":
			r.Transport = v.Str()
		case "received-from":
			// ["IP4", "192.0.2.1"]
			if v.Kind() == KindList && v.Len() == 2 {
				if a, err := netip.ParseAddr(string(v.Index(1).Bytes())); err == nil {
					r.ReceivedFrom = a.Unmap()
					continue
				}
			}
			r.Ignored = append(r.Ignored, "received-from (not [family, address])")
		case "delete-delay":
			n, ok := v.Int()
			if !ok || n < 0 {
				return nil, &fieldError{"delete delay", "a non-negative integer"}
			}
			r.DeleteDelay, r.HasDeleteDelay = time.Duration(n)*time.Second, true
		case "limit":
			n, ok := v.Int()
			if !ok || n < 0 {
				return nil, &fieldError{"limit", "a non-negative integer"}
			}
			r.Limit = int(min(n, 1<<20))
		case "codec":
			if v.Kind() != KindDict {
				return nil, &fieldError{"codec", "a dictionary"}
			}
			r.codecs(v)
		case "supports":
			// The client's capabilities: Kamailio sends ["load limit"].
			for j := 0; j < v.Len(); j++ {
				if strings.EqualFold(string(v.Index(j).Bytes()), "load limit") {
					r.LoadLimit = true
				}
			}
		case "all":
			// rtpengine: "all": "all" (or any value but "none") selects everyone.
			r.All = !strings.EqualFold(v.Str(), "none")
		case "file":
			if v.Kind() != KindString {
				return nil, &fieldError{"file", "a string"}
			}
			r.File = v.Str()
		case "blob":
			r.MediaBlob = true
		case "db-id":
			r.MediaDBID = true
		case "repeat-times":
			n, err := intKey("repeat-times", v, 1000)
			if err != nil || n < 0 {
				return nil, &fieldError{"repeat-times", "an integer 0-1000"}
			}
			r.RepeatTimes = n
		case "code", "digit":
			if err := r.setCode(string(k), v); err != nil {
				return nil, err
			}
		case "duration", "pause":
			n, err := intKey(string(k), v, 1<<20)
			if err != nil || n < 0 {
				return nil, &fieldError{string(k), "a non-negative integer (ms)"}
			}
			if string(k) == "duration" {
				r.Duration = n
			} else {
				r.Pause = n
			}
		case "volume":
			n, err := intKey("volume", v, 1<<20)
			if err != nil {
				return nil, err
			}
			r.Volume, r.HasVolume = n, true
		case "direction", "interface":
			// Logical interface names: this gateway has one (rtp.external_ip).
			r.Ignored = append(r.Ignored, string(k))
		default:
			r.Ignored = append(r.Ignored, string(k))
		}
	}
	if r.Command == "" {
		return nil, &fieldError{"command", "present"}
	}
	return r, nil
}

func (r *Request) setICE(v string) {
	r.ICE = v
	if strings.EqualFold(v, "remove") {
		r.ICERemove = true
	}
}

func (r *Request) replace(b []byte) {
	var kb [48]byte
	switch k := normKey(kb[:0], b); string(k) {
	case "origin":
		r.ReplaceOrigin = true
	case "session-connection", "session connection":
		// c= lines always name this gateway: nothing to do.
	default:
		r.Ignored = append(r.Ignored, "replace "+string(k))
	}
}

// flag applies one entry of the "flags" list, including rtpengine's
// "key=value" and "codec-strip-NAME" forms that Kamailio passes through.
func (r *Request) flag(b []byte) {
	var kb [64]byte
	k := normKey(kb[:0], b)
	switch string(k) {
	case "trust-address":
		r.TrustAddress = true
		return
	case "sip-source-address":
		r.SIPSource = true
		return
	case "symmetric", "port-latching":
		return // we always latch
	case "asymmetric":
		r.Asymmetric = true
		r.Ignored = append(r.Ignored, "asymmetric (media is always latched)")
		return
	case "no-rtcp-attribute":
		r.NoRTCPAttr = true
		return
	case "fatal":
		r.Fatal = true
		return
	case "all":
		r.All = true
		return
	}
	s := string(k)
	name := string(b)
	switch {
	case strings.HasPrefix(s, "codec-strip-"):
		r.CodecStrip = append(r.CodecStrip, name[len("codec-strip-"):])
	case strings.HasPrefix(s, "codec-mask-"):
		r.CodecMask = append(r.CodecMask, name[len("codec-mask-"):])
	case strings.HasPrefix(s, "codec-offer-"):
		r.CodecOffer = append(r.CodecOffer, name[len("codec-offer-"):])
	case strings.HasPrefix(s, "replace-"):
		r.replace(b[len("replace-"):])
	case strings.HasPrefix(s, "ice="):
		r.setICE(name[len("ice="):])
	case strings.HasPrefix(s, "transport-protocol="):
		r.Transport = name[len("transport-protocol="):]
	case strings.HasPrefix(s, "delete-delay="):
		var n int
		if _, err := fmt.Sscanf(s[len("delete-delay="):], "%d", &n); err == nil && n >= 0 {
			r.DeleteDelay, r.HasDeleteDelay = time.Duration(n)*time.Second, true
		} else {
			r.Ignored = append(r.Ignored, "flag "+s)
		}
	case s == "rtp/avp" || s == "rtp/savp" || s == "rtp/avpf" || s == "rtp/savpf":
		r.Transport = name
	default:
		r.Ignored = append(r.Ignored, "flag "+s)
	}
}

// codecs reads the "codec" dictionary: strip, mask, offer (lists of names).
func (r *Request) codecs(d Value) {
	var kb [48]byte
	for i := 0; i < d.Len(); i++ {
		key, v := d.Entry(i)
		k := normKey(kb[:0], key)
		var dst *[]string
		switch string(k) {
		case "strip":
			dst = &r.CodecStrip
		case "mask":
			dst = &r.CodecMask
		case "offer":
			dst = &r.CodecOffer
		default:
			r.Ignored = append(r.Ignored, "codec "+string(k))
			continue
		}
		for j := 0; j < v.Len(); j++ {
			*dst = append(*dst, string(v.Index(j).Bytes()))
		}
	}
}

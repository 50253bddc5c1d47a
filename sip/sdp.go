package sip

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
)

var (
	// errSDPMalformed is a body that is not valid SDP (400).
	errSDPMalformed = errors.New("malformed SDP")
	// errSDPNotAcceptable is valid SDP that offers nothing we can use (488).
	errSDPNotAcceptable = errors.New("SDP not acceptable")
	// errBadRequest is a request missing or garbling what we need (400).
	errBadRequest = errors.New("bad request")
)

// maxSDP bounds the SDP bodies we parse.
const maxSDP = 16 << 10

// format is one RTP payload format of an m= line.
type format struct {
	PT       uint8
	Name     string // encoding name as given ("PCMU", "telephone-event")
	Rate     int
	Channels int
	Fmtp     string
}

func (f format) is(name string) bool { return strings.EqualFold(f.Name, name) }

// direction is an SDP media direction attribute.
type direction uint8

const (
	dirSendRecv direction = iota
	dirSendOnly
	dirRecvOnly
	dirInactive
)

func (d direction) String() string {
	return [...]string{"sendrecv", "sendonly", "recvonly", "inactive"}[d]
}

// reverse is the direction an answerer mirrors: sendonly ↔ recvonly.
func (d direction) reverse() direction {
	switch d {
	case dirSendOnly:
		return dirRecvOnly
	case dirRecvOnly:
		return dirSendOnly
	}
	return d
}

func (d direction) sends() bool    { return d == dirSendRecv || d == dirSendOnly }
func (d direction) receives() bool { return d == dirSendRecv || d == dirRecvOnly }

// mline is the shape of one m= line (kept to answer every line of an offer).
type mline struct {
	Media   string
	Proto   string
	Formats []string
}

// description is a parsed and validated SDP offer or answer.
type description struct {
	Lines      []mline
	AudioIndex int        // the audio line we use
	Addr       netip.Addr // its connection address; unspecified (0.0.0.0) means hold (RFC 2543)
	Port       int
	Formats    []format // in the sender's order of preference
	Dir        direction
	Ptime      time.Duration // 0 when not given
	Secure     bool          // RTP/SAVP or RTP/SAVPF (sdes.go)
	Cryptos    []crypto      // its usable a=crypto lines, in the sender's order
}

// remote is the media address to send to; invalid when on hold.
func (d *description) remote() netip.AddrPort {
	if d.Addr.IsUnspecified() || !d.Addr.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(d.Addr, uint16(d.Port))
}

// effectiveDir folds an RFC 2543 hold (c=0.0.0.0) into the direction: the
// sender receives nothing.
func (d *description) effectiveDir() direction {
	if d.Addr.IsUnspecified() {
		switch d.Dir {
		case dirSendRecv:
			return dirSendOnly
		case dirRecvOnly:
			return dirInactive
		}
	}
	return d.Dir
}

// staticFormats names the static payload types of RFC 3551 that phones use.
var staticFormats = map[uint8]format{
	0:  {PT: 0, Name: "PCMU", Rate: 8000, Channels: 1},
	3:  {PT: 3, Name: "GSM", Rate: 8000, Channels: 1},
	4:  {PT: 4, Name: "G723", Rate: 8000, Channels: 1},
	8:  {PT: 8, Name: "PCMA", Rate: 8000, Channels: 1},
	9:  {PT: 9, Name: "G722", Rate: 8000, Channels: 1},
	13: {PT: 13, Name: "CN", Rate: 8000, Channels: 1},
	18: {PT: 18, Name: "G729", Rate: 8000, Channels: 1},
}

// parseSDP parses and validates an SDP body. Errors wrap errSDPMalformed
// (the body is not SDP) or errSDPNotAcceptable (nothing usable in it).
func parseSDP(body []byte) (*description, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty body", errSDPMalformed)
	}
	if len(body) > maxSDP {
		return nil, fmt.Errorf("%w: %d bytes", errSDPMalformed, len(body))
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("%w: %v", errSDPMalformed, err)
	}
	if sd.Version != 0 {
		return nil, fmt.Errorf("%w: v=%d", errSDPMalformed, sd.Version)
	}
	if len(sd.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no media", errSDPNotAcceptable)
	}
	if len(sd.MediaDescriptions) > 16 {
		return nil, fmt.Errorf("%w: %d media lines", errSDPMalformed, len(sd.MediaDescriptions))
	}
	d := &description{AudioIndex: -1}
	var why error
	for i, md := range sd.MediaDescriptions {
		mn := md.MediaName
		if mn.Port.Value < 0 || mn.Port.Value > 65535 {
			return nil, fmt.Errorf("%w: port %d", errSDPMalformed, mn.Port.Value)
		}
		if len(mn.Formats) == 0 || len(mn.Protos) == 0 || mn.Media == "" {
			return nil, fmt.Errorf("%w: incomplete m= line %d", errSDPMalformed, i)
		}
		d.Lines = append(d.Lines, mline{Media: mn.Media, Proto: strings.Join(mn.Protos, "/"), Formats: mn.Formats})
		if d.AudioIndex >= 0 || mn.Media != "audio" || mn.Port.Value == 0 {
			continue
		}
		proto := d.Lines[i].Proto
		secure := proto == "RTP/SAVP" || proto == "RTP/SAVPF"
		if proto != "RTP/AVP" && proto != "RTP/AVPF" && !secure {
			why = fmt.Errorf("%w: audio over %s", errSDPNotAcceptable, proto)
			continue
		}
		d.Secure, d.Cryptos = secure, nil
		if err := d.audio(&sd, md); err != nil {
			if errors.Is(err, errSDPMalformed) {
				return nil, err
			}
			why = err
			continue
		}
		d.AudioIndex = i
	}
	if d.AudioIndex < 0 {
		if why == nil {
			why = fmt.Errorf("%w: no audio stream", errSDPNotAcceptable)
		}
		return nil, why
	}
	return d, nil
}

// audio fills d from one RTP audio m= line.
func (d *description) audio(sd *sdp.SessionDescription, md *sdp.MediaDescription) error {
	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return fmt.Errorf("%w: no c= line for audio", errSDPMalformed)
	}
	if ci.NetworkType != "IN" || (ci.AddressType != "IP4" && ci.AddressType != "IP6") {
		return fmt.Errorf("%w: c=%s %s", errSDPNotAcceptable, ci.NetworkType, ci.AddressType)
	}
	addr, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		return fmt.Errorf("%w: connection address %q is not an IP address", errSDPNotAcceptable, ci.Address.Address)
	}
	if addr.Is4() != (ci.AddressType == "IP4") || addr.IsMulticast() || addr.Zone() != "" {
		return fmt.Errorf("%w: connection address %s", errSDPNotAcceptable, addr)
	}
	d.Addr = addr.Unmap()
	d.Port = md.MediaName.Port.Value

	byPT := make(map[uint8]int, len(md.MediaName.Formats))
	for _, f := range md.MediaName.Formats {
		n, err := strconv.ParseUint(f, 10, 8)
		if err != nil || n > 127 {
			return fmt.Errorf("%w: RTP payload type %q", errSDPMalformed, f)
		}
		pt := uint8(n)
		if _, dup := byPT[pt]; dup {
			continue
		}
		ff, ok := staticFormats[pt]
		if !ok {
			ff = format{PT: pt}
		}
		byPT[pt] = len(d.Formats)
		d.Formats = append(d.Formats, ff)
	}
	d.Dir = dirSendRecv
	dirSet := false
	for _, a := range sd.Attributes {
		if dir, ok := parseDirection(a.Key); ok {
			d.Dir = dir
		}
	}
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			pt, name, rate, ch, err := parseRtpmap(a.Value)
			if err != nil {
				return err
			}
			if i, ok := byPT[pt]; ok {
				d.Formats[i].Name, d.Formats[i].Rate, d.Formats[i].Channels = name, rate, ch
			}
		case "fmtp":
			pt, params, ok := strings.Cut(a.Value, " ")
			n, err := strconv.ParseUint(pt, 10, 8)
			if !ok || err != nil {
				return fmt.Errorf("%w: a=fmtp:%s", errSDPMalformed, a.Value)
			}
			if i, ok := byPT[uint8(n)]; ok {
				d.Formats[i].Fmtp = strings.TrimSpace(params)
			}
		case "crypto":
			c, usable, err := parseCrypto(a.Value)
			if err != nil {
				return err
			}
			if usable && len(d.Cryptos) < 16 {
				d.Cryptos = append(d.Cryptos, c)
			}
		case "ptime":
			if ms, err := strconv.Atoi(strings.TrimSpace(a.Value)); err == nil && ms >= 10 && ms <= 200 {
				d.Ptime = time.Duration(ms) * time.Millisecond
			}
		default:
			if dir, ok := parseDirection(a.Key); ok {
				if dirSet && dir != d.Dir {
					return fmt.Errorf("%w: conflicting direction attributes", errSDPMalformed)
				}
				d.Dir, dirSet = dir, true
			}
		}
	}
	return nil
}

func parseDirection(key string) (direction, bool) {
	switch key {
	case "sendrecv":
		return dirSendRecv, true
	case "sendonly":
		return dirSendOnly, true
	case "recvonly":
		return dirRecvOnly, true
	case "inactive":
		return dirInactive, true
	}
	return 0, false
}

// parseRtpmap parses "<pt> <name>/<rate>[/<channels>]".
func parseRtpmap(v string) (pt uint8, name string, rate, channels int, err error) {
	ptS, enc, ok := strings.Cut(strings.TrimSpace(v), " ")
	n, perr := strconv.ParseUint(ptS, 10, 8)
	if !ok || perr != nil || n > 127 {
		return 0, "", 0, 0, fmt.Errorf("%w: a=rtpmap:%s", errSDPMalformed, v)
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return 0, "", 0, 0, fmt.Errorf("%w: a=rtpmap:%s", errSDPMalformed, v)
	}
	rate, rerr := strconv.Atoi(parts[1])
	if rerr != nil || rate <= 0 || rate > 1000000 {
		return 0, "", 0, 0, fmt.Errorf("%w: a=rtpmap:%s", errSDPMalformed, v)
	}
	channels = 1
	if len(parts) == 3 {
		if channels, err = strconv.Atoi(parts[2]); err != nil || channels < 1 || channels > 8 {
			return 0, "", 0, 0, fmt.Errorf("%w: a=rtpmap:%s", errSDPMalformed, v)
		}
	}
	for _, r := range parts[0] {
		if r <= ' ' || r > '~' {
			return 0, "", 0, 0, fmt.Errorf("%w: a=rtpmap:%s", errSDPMalformed, v)
		}
	}
	return uint8(n), parts[0], rate, channels, nil
}

// pickCodec returns the first format of offered (the offerer's preference)
// that is an 8 kHz mono codec named in allowed.
func pickCodec(offered []format, allowed []string) (format, bool) {
	for _, f := range offered {
		if f.Rate != 8000 || f.Channels > 1 {
			continue
		}
		for _, name := range allowed {
			if f.is(name) {
				return f, true
			}
		}
	}
	return format{}, false
}

// telephoneEventPT is the payload type the remote of d sends RFC 4733
// telephone-events with; 0 = none (or no description).
func telephoneEventPT(d *description) uint8 {
	if d == nil {
		return 0
	}
	if t, ok := telephoneEvent(d.Formats); ok {
		return t.PT
	}
	return 0
}

// telephoneEvent returns the RFC 4733 telephone-event format of offered.
func telephoneEvent(offered []format) (format, bool) {
	for _, f := range offered {
		if f.is("telephone-event") && f.Rate == 8000 {
			return f, true
		}
	}
	return format{}, false
}

// audioCodecs are the formats of offered that carry audio (no comfort noise
// or events), for passing through a bridge.
func audioCodecs(offered []format) []format {
	var out []format
	for _, f := range offered {
		if f.Name == "" || f.is("telephone-event") || f.is("CN") {
			continue
		}
		out = append(out, f)
	}
	return out
}

// localMedia is what we put in our own SDP.
type localMedia struct {
	SessID  uint64
	Version uint64
	Addr    netip.AddrPort // our RTP address
	Formats []format       // codec first, then telephone-event
	Dir     direction
	Ptime   time.Duration
	Crypto  []crypto // a=crypto lines: RTP/SAVP when any (sdes.go)
}

// buildSDP writes our SDP. When answering, offer is the offer being
// answered: every one of its m= lines is answered, the unused ones with
// port 0. It writes the text pion/sdp's Marshal writes for the same
// description (TestBuildSDPLikePion), in one allocation.
func buildSDP(m localMedia, offer *description) []byte {
	ip := m.Addr.Addr().Unmap()
	addrType := "IP4"
	if ip.Is6() {
		addrType = "IP6"
	}
	b := make([]byte, 0, 256)
	b = append(b, "v=0\r\no=mediagw "...)
	b = strconv.AppendUint(b, m.SessID, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, m.Version, 10)
	b = append(b, " IN "...)
	b = append(b, addrType...)
	b = append(b, ' ')
	b = ip.AppendTo(b)
	b = append(b, "\r\ns=mediagw\r\nc=IN "...)
	b = append(b, addrType...)
	b = append(b, ' ')
	b = ip.AppendTo(b)
	b = append(b, "\r\nt=0 0\r\n"...)
	if offer == nil {
		return appendAudio(b, m)
	}
	for i, l := range offer.Lines {
		if i == offer.AudioIndex {
			b = appendAudio(b, m)
			continue
		}
		b = append(b, "m="...)
		b = append(b, l.Media...)
		b = append(b, " 0 "...)
		b = append(b, l.Proto...)
		b = append(b, ' ')
		b = append(b, l.Formats[0]...)
		b = append(b, "\r\n"...)
	}
	return b
}

// appendAudio writes our audio m= line and its attributes.
func appendAudio(b []byte, m localMedia) []byte {
	b = append(b, "m=audio "...)
	b = strconv.AppendUint(b, uint64(m.Addr.Port()), 10)
	if len(m.Crypto) > 0 {
		b = append(b, " RTP/SAVP"...)
	} else {
		b = append(b, " RTP/AVP"...)
	}
	for _, f := range m.Formats {
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(f.PT), 10)
	}
	b = append(b, "\r\n"...)
	for _, f := range m.Formats {
		b = append(b, "a=rtpmap:"...)
		b = strconv.AppendUint(b, uint64(f.PT), 10)
		b = append(b, ' ')
		b = append(b, f.Name...)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(f.Rate), 10)
		if f.Channels > 1 {
			b = append(b, '/')
			b = strconv.AppendInt(b, int64(f.Channels), 10)
		}
		b = append(b, "\r\n"...)
		if f.Fmtp != "" {
			b = append(b, "a=fmtp:"...)
			b = strconv.AppendUint(b, uint64(f.PT), 10)
			b = append(b, ' ')
			b = append(b, f.Fmtp...)
			b = append(b, "\r\n"...)
		}
	}
	if m.Ptime > 0 {
		b = append(b, "a=ptime:"...)
		b = strconv.AppendInt(b, int64(m.Ptime/time.Millisecond), 10)
		b = append(b, "\r\n"...)
	}
	for _, c := range m.Crypto {
		b = appendCrypto(b, c)
	}
	b = append(b, "a="...)
	b = append(b, m.Dir.String()...)
	return append(b, "\r\n"...)
}

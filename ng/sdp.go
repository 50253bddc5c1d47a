package ng

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mediagw/mediagw/session"
)

var errSDP = errors.New("invalid SDP")

// sdpDoc is an SDP body split into lines, with what the relay needs of it.
// Every line is kept so the rewrite changes only what it must.
type sdpDoc struct {
	lines    []string // without line ends
	sessEnd  int      // index of the first m= line (len(lines) when none)
	sessConn netip.Addr
	sessDir  session.Mode // "" when the session level names none
	media    []sdpMedia
}

// sdpMedia is one m= section.
type sdpMedia struct {
	start, end int    // its lines: [start, end)
	kind       string // audio, video, ...
	port       int    // 0 = rejected or disabled
	proto      string
	formats    []string
	conn       netip.Addr // media-level c=, if any
	dir        session.Mode
	rtcpMux    bool
	rtpmap     map[string]string // payload type → encoding name
}

// parseSDP reads an SDP body (CRLF or LF line ends).
func parseSDP(b []byte) (*sdpDoc, error) {
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	text = strings.TrimRight(text, "\n")
	if !strings.HasPrefix(text, "v=") {
		return nil, fmt.Errorf("%w: does not start with v=", errSDP)
	}
	d := &sdpDoc{lines: strings.Split(text, "\n")}
	d.sessEnd = len(d.lines)
	var cur *sdpMedia
	for i, l := range d.lines {
		d.lines[i] = strings.TrimRight(l, "\r ")
		l = d.lines[i]
		if len(l) < 2 || l[1] != '=' {
			return nil, fmt.Errorf("%w: line %d %q", errSDP, i+1, clipS(l))
		}
		v := l[2:]
		switch l[0] {
		case 'm':
			if cur != nil {
				cur.end = i
			} else {
				d.sessEnd = i
			}
			f := strings.Fields(v)
			if len(f) < 3 {
				return nil, fmt.Errorf("%w: m= line %q", errSDP, clipS(l))
			}
			portStr, _, _ := strings.Cut(f[1], "/")
			port, err := strconv.Atoi(portStr)
			if err != nil || port < 0 || port > 65535 {
				return nil, fmt.Errorf("%w: m= port %q", errSDP, clipS(f[1]))
			}
			d.media = append(d.media, sdpMedia{start: i, kind: f[0], port: port, proto: f[2],
				formats: f[3:], rtpmap: map[string]string{}})
			cur = &d.media[len(d.media)-1]
		case 'c':
			a, err := parseConn(v)
			if err != nil {
				return nil, err
			}
			if cur == nil {
				d.sessConn = a
			} else {
				cur.conn = a
			}
		case 'a':
			name, val, _ := strings.Cut(v, ":")
			var dir session.Mode
			switch name {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				dir = session.Mode(name)
			}
			if cur == nil {
				if dir != "" {
					d.sessDir = dir
				}
				continue
			}
			switch {
			case dir != "":
				cur.dir = dir
			case name == "rtcp-mux":
				cur.rtcpMux = true
			case name == "rtpmap":
				pt, enc, _ := strings.Cut(val, " ")
				enc, _, _ = strings.Cut(enc, "/")
				cur.rtpmap[pt] = enc
			}
		}
		if cur != nil {
			cur.end = i + 1
		}
	}
	return d, nil
}

func clipS(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// parseConn reads "IN IP4 192.0.2.1" (a multicast TTL suffix is dropped).
func parseConn(v string) (netip.Addr, error) {
	f := strings.Fields(v)
	if len(f) != 3 || f[0] != "IN" {
		return netip.Addr{}, fmt.Errorf("%w: c=%s", errSDP, clipS(v))
	}
	host, _, _ := strings.Cut(f[2], "/")
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: c= address %q", errSDP, clipS(host))
	}
	return a.Unmap(), nil
}

// staticCodecs are RFC 3551's static payload types, for m= lines without
// an a=rtpmap.
var staticCodecs = map[string]string{"0": "PCMU", "3": "GSM", "4": "G723", "8": "PCMA", "9": "G722",
	"13": "CN", "15": "G728", "18": "G729", "26": "JPEG", "31": "H261", "34": "H263"}

// codecName is a payload type's encoding name in this section.
func (m *sdpMedia) codecName(pt string) string {
	if n, ok := m.rtpmap[pt]; ok {
		return n
	}
	if n, ok := staticCodecs[pt]; ok {
		return n
	}
	return "PT" + pt
}

// telephoneEvent is the payload type of the section's RFC 4733
// telephone-events (8 kHz); 0 = none.
func (m *sdpMedia) telephoneEvent() uint8 {
	for _, pt := range m.formats {
		if strings.EqualFold(m.codecName(pt), "telephone-event") {
			if n, err := strconv.Atoi(pt); err == nil && n > 0 && n < 128 {
				return uint8(n)
			}
		}
	}
	return 0
}

// codec is the first offered format's encoding name, for the session table.
func (m *sdpMedia) codec() string {
	for _, pt := range m.formats {
		n := m.codecName(pt)
		if !strings.EqualFold(n, "telephone-event") && !strings.EqualFold(n, "CN") {
			return sanitizeCodec(n)
		}
	}
	return "PCMU"
}

// sanitizeCodec keeps a codec name within the table's [A-Za-z0-9._-]{1,32}.
func sanitizeCodec(n string) string {
	var b strings.Builder
	for _, c := range n {
		if c < 128 && (c == '.' || c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b.WriteRune(c)
		}
		if b.Len() == 32 {
			break
		}
	}
	if b.Len() == 0 {
		return "PCMU"
	}
	return b.String()
}

// direction is the section's SDP direction (sendrecv when none is named).
func (d *sdpDoc) direction(m *sdpMedia) session.Mode {
	switch {
	case m.dir != "":
		return m.dir
	case d.sessDir != "":
		return d.sessDir
	}
	return session.ModeSendRecv
}

// address is where the section's media goes: its c= or the session's.
func (d *sdpDoc) address(m *sdpMedia) netip.Addr {
	if m.conn.IsValid() {
		return m.conn
	}
	return d.sessConn
}

// connMode is the mode of our connection facing the endpoint that wrote
// this SDP: the inverse of its direction (it sends only → we receive only).
// A c= of 0.0.0.0 (RFC 2543 hold) means "do not send to me".
func connMode(dir session.Mode, addr netip.Addr) session.Mode {
	if addr.IsValid() && addr.IsUnspecified() {
		switch dir {
		case session.ModeSendRecv, session.ModeSendOnly:
			dir = session.ModeSendOnly
		default:
			dir = session.ModeInactive
		}
	}
	switch dir {
	case session.ModeSendOnly:
		return session.ModeRecvOnly
	case session.ModeRecvOnly:
		return session.ModeSendOnly
	case session.ModeInactive:
		return session.ModeInactive
	}
	return session.ModeSendRecv
}

// rewriteOpts say how to rewrite one SDP for the other side.
type rewriteOpts struct {
	addr          netip.Addr // this gateway's media address
	ports         []int      // per m= section: our port toward the reader; 0 keeps the section's own 0
	replaceOrigin bool
	noRTCPAttr    bool
	strip         []string // codec names removed (strip and mask)
	transport     string   // requested m= protocol, when it can be honoured
}

// iceAttrs are removed from every SDP we send: we relay, we do not do ICE,
// and a candidate that bypasses us would leave the relay idle.
var iceAttrs = map[string]bool{"candidate": true, "ice-ufrag": true, "ice-pwd": true, "ice-options": true,
	"ice-lite": true, "ice-mismatch": true, "remote-candidates": true, "end-of-candidates": true}

// rewrite produces the SDP the other side reads: our address in o= (when
// asked) and every c=, our ports in m=, a=rtcp for our RTCP port, no ICE.
func (d *sdpDoc) rewrite(o rewriteOpts) []byte {
	var b bytes.Buffer
	b.Grow(len(d.lines) * 40)
	ipv := "IP4"
	if o.addr.Is6() {
		ipv = "IP6"
	}
	line := func(s string) { b.WriteString(s); b.WriteString("\r\n") }
	conn := func(orig string) {
		if a, err := parseConn(orig[2:]); err == nil && a.IsUnspecified() {
			line(orig) // RFC 2543 hold: keep 0.0.0.0
			return
		}
		line("c=IN " + ipv + " " + o.addr.String())
	}
	for i := 0; i < d.sessEnd; i++ {
		l := d.lines[i]
		switch {
		case strings.HasPrefix(l, "o=") && o.replaceOrigin:
			f := strings.Fields(l[2:])
			if len(f) == 6 {
				f[4], f[5] = ipv, o.addr.String()
				line("o=" + strings.Join(f, " "))
				continue
			}
			line(l)
		case strings.HasPrefix(l, "c="):
			conn(l)
		case strings.HasPrefix(l, "a="):
			name, _, _ := strings.Cut(l[2:], ":")
			if iceAttrs[name] {
				continue
			}
			line(l)
		default:
			line(l)
		}
	}
	for mi := range d.media {
		m := &d.media[mi]
		port := 0
		if mi < len(o.ports) {
			port = o.ports[mi]
		}
		drop := map[string]bool{}
		formats := m.formats
		if len(o.strip) > 0 && port != 0 {
			kept := make([]string, 0, len(formats))
			for _, pt := range formats {
				if stripped(o.strip, m.codecName(pt)) {
					drop[pt] = true
				} else {
					kept = append(kept, pt)
				}
			}
			if len(kept) > 0 {
				formats = kept
			} else {
				drop = map[string]bool{} // stripping everything would void the section
			}
		}
		proto := m.proto
		if o.transport != "" && port != 0 {
			proto = o.transport
		}
		for i := m.start; i < m.end; i++ {
			l := d.lines[i]
			switch {
			case i == m.start:
				mport := port
				if port == 0 {
					mport = m.port
				}
				if port == 0 {
					line(l)
					continue
				}
				f := strings.Fields(l[2:])
				line("m=" + f[0] + " " + strconv.Itoa(mport) + " " + proto + " " + strings.Join(formats, " "))
			case strings.HasPrefix(l, "c="):
				if port == 0 {
					line(l)
					continue
				}
				conn(l)
			case strings.HasPrefix(l, "a="):
				name, val, _ := strings.Cut(l[2:], ":")
				if port == 0 {
					line(l)
					continue
				}
				if iceAttrs[name] || name == "rtcp" {
					continue
				}
				if len(drop) > 0 && (name == "rtpmap" || name == "fmtp" || name == "rtcp-fb") {
					pt, _, _ := strings.Cut(val, " ")
					if drop[pt] {
						continue
					}
				}
				line(l)
			default:
				line(l)
			}
		}
		if port != 0 && !o.noRTCPAttr {
			rtcp := port + 1
			if m.rtcpMux {
				rtcp = port
			}
			line("a=rtcp:" + strconv.Itoa(rtcp))
		}
	}
	return b.Bytes()
}

func stripped(names []string, codec string) bool {
	for _, n := range names {
		if strings.EqualFold(n, codec) || strings.EqualFold(n, "all") {
			return true
		}
	}
	return false
}

// rtpProto reports whether a section's protocol is one we relay.
func rtpProto(p string) bool {
	switch strings.ToUpper(p) {
	case "RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF":
		return true
	}
	return false
}

// transportFor is the requested m= protocol when relaying honours it
// without touching the payload: RTP/AVP ↔ RTP/AVPF and RTP/SAVP ↔
// RTP/SAVPF (feedback profiles), or the same one. "" = leave it.
func transportFor(req, have string) (string, bool) {
	if req == "" {
		return "", true
	}
	r, h := strings.ToUpper(req), strings.ToUpper(have)
	secure := func(p string) bool { return strings.HasPrefix(p, "RTP/SAVP") || strings.Contains(p, "TLS") }
	if !rtpProto(r) || secure(r) != secure(h) {
		return "", false
	}
	return r, true
}

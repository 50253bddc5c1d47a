package mgcp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// staticPT are the RTP/AVP static payload types (RFC 3551) by codec name.
var staticPT = map[string]uint8{
	"PCMU": 0, "GSM": 3, "G723": 4, "DVI4": 5, "LPC": 7, "PCMA": 8, "G722": 9,
	"L16": 11, "QCELP": 12, "CN": 13, "MPA": 14, "G728": 15, "G729": 18,
}

func codecForPT(pt int) string {
	for name, p := range staticPT {
		if int(p) == pt {
			return name
		}
	}
	return ""
}

// remoteSDP is what the gateway needs of a call agent's session description:
// where to send media, the codecs offered in order, and their payload types.
type remoteSDP struct {
	Addr   netip.AddrPort // zero when the port is 0 (stream disabled)
	Codecs []string       // upper case, in offer order
	PT     map[string]uint8
	Ptime  time.Duration
	Events uint8 // payload type of RFC 4733 telephone-events; 0 = none
}

// errSDP is a remote descriptor we cannot read (MGCP 509) and
// errSDPUnsupported one we read but cannot use (MGCP 505).
type sdpError struct {
	code int
	msg  string
}

func (e *sdpError) Error() string { return e.msg }

// parseSDP reads the first audio stream of an SDP body.
func parseSDP(body string) (*remoteSDP, error) {
	bad := func(f string, a ...any) error { return &sdpError{509, fmt.Sprintf(f, a...)} }
	var sessAddr, mediaAddr netip.Addr
	var port int
	var fmts []string
	var inAudio, seenAudio bool
	rtpmap := map[int]string{}
	var ptime time.Duration
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if len(l) < 2 || l[1] != '=' {
			return nil, bad("SDP line %q is not type=value", clip(l))
		}
		typ, val := l[0], l[2:]
		switch typ {
		case 'm':
			if seenAudio {
				inAudio = false
				continue
			}
			f := strings.Fields(val)
			if len(f) < 3 {
				return nil, bad("bad m= line %q", clip(val))
			}
			if f[0] != "audio" {
				inAudio = false
				continue
			}
			p, err := strconv.Atoi(strings.SplitN(f[1], "/", 2)[0])
			if err != nil || p < 0 || p > 65535 {
				return nil, bad("bad media port %q", f[1])
			}
			if !strings.HasPrefix(f[2], "RTP/AVP") {
				return nil, &sdpError{505, fmt.Sprintf("transport %q not supported", f[2])}
			}
			port, fmts, inAudio, seenAudio = p, f[3:], true, true
		case 'c':
			f := strings.Fields(val)
			if len(f) < 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
				return nil, bad("bad c= line %q", clip(val))
			}
			a, err := netip.ParseAddr(strings.SplitN(f[2], "/", 2)[0])
			if err != nil {
				return nil, bad("bad connection address %q", f[2])
			}
			if inAudio {
				mediaAddr = a
			} else if !seenAudio {
				sessAddr = a
			}
		case 'a':
			if seenAudio && !inAudio {
				continue
			}
			name, arg, _ := strings.Cut(val, ":")
			switch name {
			case "rtpmap":
				pt, enc, ok := strings.Cut(arg, " ")
				n, err := strconv.Atoi(pt)
				if !ok || err != nil || n < 0 || n > 127 {
					return nil, bad("bad rtpmap %q", clip(arg))
				}
				rtpmap[n] = strings.ToUpper(strings.SplitN(strings.TrimSpace(enc), "/", 2)[0])
			case "ptime":
				ms, err := strconv.Atoi(strings.TrimSpace(arg))
				if err != nil || ms <= 0 {
					return nil, bad("bad ptime %q", arg)
				}
				ptime = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if !seenAudio {
		return nil, &sdpError{505, "no audio stream in remote descriptor"}
	}
	addr := mediaAddr
	if !addr.IsValid() {
		addr = sessAddr
	}
	if !addr.IsValid() {
		return nil, bad("no connection address")
	}
	r := &remoteSDP{PT: map[string]uint8{}, Ptime: ptime}
	if port != 0 {
		r.Addr = netip.AddrPortFrom(addr.Unmap(), uint16(port))
	}
	for _, f := range fmts {
		pt, err := strconv.Atoi(f)
		if err != nil || pt < 0 || pt > 127 {
			return nil, bad("bad payload type %q", f)
		}
		name := rtpmap[pt]
		if name == "" {
			name = codecForPT(pt)
		}
		if name == "TELEPHONE-EVENT" && r.Events == 0 && pt != 0 {
			r.Events = uint8(pt)
		}
		if name == "" || name == "TELEPHONE-EVENT" || name == "CN" {
			continue
		}
		if _, dup := r.PT[name]; !dup {
			r.Codecs = append(r.Codecs, name)
			r.PT[name] = uint8(pt)
		}
	}
	return r, nil
}

// localSDP is the gateway's answer: its own address, port and codec.
func localSDP(connID string, local netip.AddrPort, codec string, pt uint8, ptime time.Duration, mode string) string {
	ip := "IP4"
	if local.Addr().Is6() && !local.Addr().Is4In6() {
		ip = "IP6"
	}
	addr := local.Addr().Unmap().String()
	b := make([]byte, 0, 160)
	b = append(b, "v=0\r\no=- "...)
	b = append(b, connID...)
	b = append(b, " 23 IN "...)
	b = append(b, ip...)
	b = append(b, ' ')
	b = append(b, addr...)
	b = append(b, "\r\ns=-\r\nc=IN "...)
	b = append(b, ip...)
	b = append(b, ' ')
	b = append(b, addr...)
	b = append(b, "\r\nt=0 0\r\nm=audio "...)
	b = strconv.AppendUint(b, uint64(local.Port()), 10)
	b = append(b, " RTP/AVP "...)
	b = strconv.AppendUint(b, uint64(pt), 10)
	b = append(b, "\r\na=rtpmap:"...)
	b = strconv.AppendUint(b, uint64(pt), 10)
	b = append(b, ' ')
	b = append(b, codec...)
	b = append(b, "/8000\r\n"...)
	if ptime > 0 {
		b = append(b, "a=ptime:"...)
		b = strconv.AppendInt(b, ptime.Milliseconds(), 10)
		b = append(b, "\r\n"...)
	}
	switch mode {
	case "": // no direction attribute (the remote descriptor of AUCX)
	case "sendonly", "recvonly", "inactive", "sendrecv":
		b = append(b, "a="...)
		b = append(b, mode...)
		b = append(b, "\r\n"...)
	default: // confrnce, loopback: media flows both ways
		b = append(b, "a=sendrecv\r\n"...)
	}
	return string(b)
}

// lco are the local connection options of L: that the gateway acts on.
type lco struct {
	Codecs   []string      // a:, upper case, in preference order
	Ptime    time.Duration // p:, 0 when absent
	PtimeMax time.Duration // upper end of a p: range
}

// lcoError carries the MGCP code for a bad L: parameter.
type lcoError struct {
	code int
	msg  string
}

func (e *lcoError) Error() string { return e.msg }

// parseLCO reads `a:PCMU;PCMA, p:20, e:on, x-foo:1`.
func parseLCO(s string) (lco, error) {
	var o lco
	if strings.TrimSpace(s) == "" {
		return o, nil
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, ":")
		if !ok {
			return o, &lcoError{541, fmt.Sprintf("local connection option %q has no value", clip(item))}
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch {
		case k == "a":
			for _, c := range strings.Split(v, ";") {
				if c = strings.ToUpper(strings.TrimSpace(c)); c != "" {
					o.Codecs = append(o.Codecs, c)
				}
			}
			if len(o.Codecs) == 0 {
				return o, &lcoError{532, "empty codec list a:"}
			}
		case k == "p":
			lo, hi, isRange := strings.Cut(v, "-")
			a, err1 := strconv.Atoi(strings.TrimSpace(lo))
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.Atoi(strings.TrimSpace(hi))
			}
			if err1 != nil || err2 != nil || a < 0 || b < 0 || a > 100000 || b > 100000 {
				return o, &lcoError{532, fmt.Sprintf("packetization %q is not a number", v)}
			}
			if b < a {
				return o, &lcoError{524, fmt.Sprintf("packetization range %q is reversed", v)}
			}
			o.Ptime, o.PtimeMax = time.Duration(a)*time.Millisecond, time.Duration(b)*time.Millisecond
		case k == "b", k == "e", k == "gc", k == "s", k == "t", k == "r", k == "k", k == "nt",
			k == "fmtp", k == "es-cci", k == "es-ccd":
			// Understood and not acted on: bandwidth, echo cancellation,
			// gain, silence suppression, TOS, reservation, key, network type.
		case strings.HasPrefix(k, "x-"):
			// Extensions marked optional are ignored.
		case strings.HasPrefix(k, "x+"):
			return o, &lcoError{525, fmt.Sprintf("unknown mandatory extension %q", k)}
		default:
			return o, &lcoError{541, fmt.Sprintf("unsupported local connection option %q", k)}
		}
	}
	return o, nil
}

// choosePtime picks the packetization period from L: p: (a value or a
// range) or else the SDP a=ptime: 10 to 200 ms in steps of 10 (MGCP 535).
func choosePtime(o lco, sdp time.Duration) (time.Duration, error) {
	lo, hi := o.Ptime, o.PtimeMax
	if lo == 0 && hi == 0 {
		if sdp == 0 {
			return 0, nil
		}
		lo, hi = sdp, sdp
	}
	p := max(lo, 10*time.Millisecond)
	if r := p % (10 * time.Millisecond); r != 0 {
		p += 10*time.Millisecond - r
	}
	if p <= hi && p <= 200*time.Millisecond {
		return p, nil
	}
	return 0, &lcoError{535, fmt.Sprintf("packetization %s-%s not supported (10-200 ms in steps of 10)", lo, hi)}
}

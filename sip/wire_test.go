package sip

import (
	"bytes"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	gosip "github.com/emiago/sipgo/sip"
)

// writeResponse writes what sipgo builds and writes for the same response
// (up to the random To-tag sipgo and we add where the request had none).
func TestWireLikeSipgo(t *testing.T) {
	contact := &gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: "mediagw", Host: "127.0.0.1", Port: 5060}}
	sdpBody := []byte("v=0\r\no=mediagw 1 2 IN IP4 127.0.0.1\r\ns=mediagw\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 33000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")
	inv := request("INVITE", "echo", "127.0.0.1:5060", map[string]string{
		"Via":          "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-a;rport\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-b;received=10.9.9.9",
		"Record-Route": "<sip:p1.example.net;lr>\nRecord-Route: <sip:p2.example.net;lr>",
		"To":           "\"Echo\" <sip:echo@127.0.0.1:5060>;tag=ours",
	}, goodSDP)
	bye := request("BYE", "echo", "127.0.0.1:5060", map[string]string{"To": "<sip:echo@127.0.0.1>;tag=ours",
		"Via": "SIP/2.0/UDP [::1]:5070;rport=5071;branch=z9hG4bK-c"}, "")
	options := "OPTIONS sip:x@127.0.0.1 SIP/2.0\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d\nf: <sip:t@127.0.0.1>;tag=1\n" +
		"t: <sip:x@127.0.0.1>\ni: compact@test\nCSeq: 7 OPTIONS\nl: 0\n\n"
	cases := []struct {
		name string
		req  string
		src  string
		r    response
	}{
		{"2xx to INVITE with SDP, Record-Route, rport", inv, "192.0.2.1:6000", response{code: 200, hdrs: []gosip.Header{contact, sdpContentType}, body: sdpBody}},
		{"180 to INVITE", inv, "192.0.2.1:6000", response{code: 180, hdrs: []gosip.Header{contact}}},
		{"486 to INVITE (no Record-Route)", inv, "192.0.2.1:6000", response{code: 486}},
		{"200 to BYE, IPv6", bye, "[::1]:5071", response{code: 200}},
		{"481 to BYE", bye, "[::1]:5071", response{code: 481}},
		{"200 to compact OPTIONS, To-tag added", options, "127.0.0.1:5070", response{code: 200, hdrs: []gosip.Header{gosip.NewHeader("Accept", "application/sdp")}}},
	}
	tag := regexp.MustCompile(`(\r\nTo: [^\r]*;tag=)[0-9a-f-]{36}\r\n`)
	for _, c := range cases {
		req := parseRequest(t, c.req)
		req.SetSource(c.src)
		var got bytes.Buffer
		if !writeResponse(&got, req, c.r) {
			t.Fatalf("%s: not written", c.name)
		}
		res := c.r.build(req)
		decorate(res)
		want := res.String()
		g := tag.ReplaceAllString(got.String(), "${1}TAG\r\n")
		w := tag.ReplaceAllString(want, "${1}TAG\r\n")
		if g != w {
			t.Errorf("%s:\n%s\nwant\n%s", c.name, g, w)
		}
		if strings.Contains(c.name, "To-tag added") && g == got.String() {
			t.Errorf("%s: no To-tag added:\n%s", c.name, got.String())
		}
	}
}

// Responses go where sipgo sends them: the source address at the Via
// port, at rport's value, or with an empty rport at the source port.
func TestResponseDest(t *testing.T) {
	for _, c := range []struct{ via, src, want string }{
		{"SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-1", "192.0.2.1:6000", "192.0.2.1:5070"},
		{"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1", "192.0.2.1:6000", "192.0.2.1:5060"},
		{"SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bK-1", "192.0.2.1:6000", "192.0.2.1:6000"},
		{"SIP/2.0/UDP 10.0.0.1:5070;rport=7000;branch=z9hG4bK-1", "192.0.2.1:6000", "192.0.2.1:7000"},
		{"SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK-1", "[2001:db8::2]:6000", "[2001:db8::2]:5070"},
	} {
		req := parseRequest(t, request("BYE", "x", "127.0.0.1", map[string]string{"Via": c.via}, ""))
		req.SetSource(c.src)
		got, ok := responseDest(req)
		if !ok || got != netip.MustParseAddrPort(c.want) {
			t.Errorf("Via %s from %s: %v %v, want %s", c.via, c.src, got, ok, c.want)
		}
	}
}

// Whatever sipgo parses, writeResponse writes as sipgo would (or refuses).
func FuzzWire(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(strings.ReplaceAll(strings.ReplaceAll(s, "LOCAL", "127.0.0.1:5070"), "\n", "\r\n")), 200)
	}
	tag := regexp.MustCompile(`(\r\nTo: [^\r]*;tag=)[0-9a-f-]{36}\r\n`)
	f.Fuzz(func(t *testing.T, data []byte, code int) {
		msg, err := gosip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*gosip.Request)
		if !ok {
			return
		}
		req.SetSource("192.0.2.1:6000")
		// Any status but 100, which is never written here.
		r := response{code: 101 + (code%599+599)%599, hdrs: []gosip.Header{sdpContentType}, body: []byte("v=0\r\n")}
		var got bytes.Buffer
		if !writeResponse(&got, req, r) {
			return
		}
		res := r.build(req)
		decorate(res)
		if g, w := tag.ReplaceAllString(got.String(), "${1}T\r\n"), tag.ReplaceAllString(res.String(), "${1}T\r\n"); g != w {
			t.Fatalf("wrote\n%q\nsipgo writes\n%q", g, w)
		}
	})
}

package ng

import (
	"bytes"
	"errors"
	"testing"
)

func TestDecodeRoundTrip(t *testing.T) {
	for _, in := range []string{
		"i0e", "i-42e", "i9223372036854775807e", "0:", "4:spam", "le", "de",
		"l4:spami42ee", "d3:cow3:moo4:spaml1:a1:bee",
		"d7:command5:offer3:sdp10:v=0\r\no=- 1e",
		"d1:bi1e1:ai2ee", // unsorted keys are kept in their order
		"d1:ad1:bd1:cleeee",
	} {
		var d Decoder
		v, err := d.Decode([]byte(in))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if out := v.Append(nil); string(out) != in {
			t.Errorf("%q re-encoded as %q", in, out)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	deep := bytes.Repeat([]byte("l"), maxDepth+1)
	deep = append(deep, bytes.Repeat([]byte("e"), maxDepth+1)...)
	for _, in := range []string{
		"", "i", "ie", "i-0e", "i007e", "i1.5e", "i9223372036854775808e", "-1:a", "01:a", "5:abc",
		"l", "d", "di1ei2ee", "d1:a", "x", "4:spamX", "i1ei2e", string(deep),
	} {
		var d Decoder
		if v, err := d.Decode([]byte(in)); err == nil || !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: got %v, %v; want a syntax error", in, v, err)
		}
	}
}

func TestValueAccessors(t *testing.T) {
	var d Decoder
	v, err := d.Decode([]byte("d4:listl1:xi7ee3:num2:125:emptyde3:inti-3ee"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind() != KindDict || v.Len() != 4 {
		t.Fatalf("kind %c len %d", v.Kind(), v.Len())
	}
	if l := v.Get("list"); l.Len() != 2 || l.Index(0).Str() != "x" || l.Index(1).Str() != "7" {
		t.Errorf("list: %+v", l)
	}
	if n, ok := v.Get("num").Int(); !ok || n != 12 {
		t.Errorf("num from string: %d %v", n, ok)
	}
	if n, ok := v.Get("int").Int(); !ok || n != -3 {
		t.Errorf("int: %d %v", n, ok)
	}
	if v.Get("missing").Valid() || v.Get("list").Index(5).Valid() {
		t.Error("absent values report valid")
	}
}

func TestMarshalSortsKeys(t *testing.T) {
	out, err := Marshal(nil, Dict{"sdp": "x", "result": "ok", "a": List{int64(1), "b", Dict{}}, "l": []string{"p"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "d1:ali1e1:bdee1:ll1:pe6:result2:ok3:sdp1:xe"; string(out) != want {
		t.Fatalf("got %q want %q", out, want)
	}
	if _, err := Marshal(nil, Dict{"x": 1.5}); err == nil {
		t.Fatal("float encoded")
	}
}

// FuzzDecode: whatever decodes re-encodes to the same bytes (every accepted
// form is canonical), and the encoding decodes to an equal value again.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"d7:command4:pinge", "d3:sdp4:v=0\n5:flagsl13:trust-addressee", "li1ei-2e0:e",
		"d1:ad1:bl1:ceee", "i0e", "le",
		"d7:command9:play DTMF7:call-id1:x8:from-tag1:f4:code1:58:durationi160e6:volumei-12ee",
		"d7:command10:play media7:call-id1:x8:from-tag1:f4:file5:a.wav12:repeat-times1:33:all3:alle"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d Decoder
		v, err := d.Decode(in)
		if err != nil {
			return
		}
		out := v.Append(nil)
		if !bytes.Equal(out, in) {
			t.Fatalf("%q re-encoded as %q", in, out)
		}
		var d2 Decoder
		v2, err := d2.Decode(out)
		if err != nil {
			t.Fatalf("re-encoding %q does not decode: %v", out, err)
		}
		if !bytes.Equal(v2.Append(nil), out) {
			t.Fatal("second round trip differs")
		}
		// The request parser takes any dictionary without panicking.
		if v.Kind() == KindDict {
			_, _ = ParseRequest(v)
		}
	})
}

// FuzzSDP: the parser never panics, and a rewrite of what it accepts
// parses again with our ports in every relayed section.
func FuzzSDP(f *testing.F) {
	f.Add([]byte(sdpFor(mustAP("192.0.2.1:4000"), "a=sendonly", "a=candidate:1 1 UDP 1 192.0.2.1 4000 typ host")))
	f.Add([]byte("v=0\nc=IN IP6 ::1\nm=audio 0 RTP/AVP 0\nm=video 5000/2 RTP/AVPF 96\na=rtpmap:96 VP8/90000\na=rtcp-mux\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		doc, err := parseSDP(in)
		if err != nil {
			return
		}
		ports := make([]int, len(doc.media))
		for i := range ports {
			if relayable(&doc.media[i]) {
				ports[i] = 30000 + 2*i
			}
		}
		out := doc.rewrite(rewriteOpts{addr: mustAP("127.0.0.1:1").Addr(), ports: ports, replaceOrigin: true, strip: []string{"PCMU"}})
		doc2, err := parseSDP(out)
		if err != nil {
			t.Fatalf("rewrite of %q does not parse: %v\n%q", in, err, out)
		}
		if len(doc2.media) != len(doc.media) {
			t.Fatalf("rewrite changed the number of sections: %d → %d", len(doc.media), len(doc2.media))
		}
		for i := range ports {
			if ports[i] != 0 && doc2.media[i].port != ports[i] {
				t.Fatalf("section %d port %d, want %d", i, doc2.media[i].port, ports[i])
			}
		}
	})
}

func BenchmarkDecodeOffer(b *testing.B) {
	msg, _ := Marshal(nil, Dict{"command": "offer", "call-id": "a84b4c76e66710@pc33.example.com", "from-tag": "1928301774",
		"sdp": sdpFor(mustAP("192.0.2.1:4000")), "flags": []string{"trust-address"}, "replace": []string{"origin", "session-connection"},
		"received-from": []string{"IP4", "192.0.2.1"}, "ICE": "remove"})
	var d Decoder
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for i := 0; i < b.N; i++ {
		v, err := d.Decode(msg)
		if err != nil || string(v.Get("command").Bytes()) != "offer" {
			b.Fatal(err)
		}
	}
}

func BenchmarkReplyEncode(b *testing.B) {
	sdp := []byte(sdpFor(mustAP("192.0.2.1:4000")))
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r := reply{result: resultOK, sdp: sdp}
		buf = r.appendTo(append(buf[:0], "cookie "...))
	}
}

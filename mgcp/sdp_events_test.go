package mgcp

import "testing"

// The call agent's telephone-event payload type reaches the connection, so
// its leg reports RFC 4733 digits when no mixer reads it (an rtpbridge).
func TestSDPTelephoneEvent(t *testing.T) {
	r, err := parseSDP("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
	if err != nil || r.Events != 101 || len(r.Codecs) != 1 {
		t.Fatalf("%+v %v", r, err)
	}
	if p := (media{remote: r, codecs: r.Codecs}).params(); p.TelephoneEvent != 101 {
		t.Fatalf("params %+v", p)
	}
	r, _ = parseSDP("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n")
	if r.Events != 0 {
		t.Fatal("telephone-event without one offered")
	}
}

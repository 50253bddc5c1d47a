package ng

import "testing"

// The offerer's telephone-event payload type reaches its connection, so
// the relay leg reports its RFC 4733 digits.
func TestSDPTelephoneEvent(t *testing.T) {
	doc, err := parseSDP([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"))
	if err != nil || len(doc.media) != 1 {
		t.Fatalf("%v", err)
	}
	if pt := doc.media[0].telephoneEvent(); pt != 101 {
		t.Fatalf("telephone-event PT %d", pt)
	}
	doc, _ = parseSDP([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"))
	if pt := doc.media[0].telephoneEvent(); pt != 0 {
		t.Fatalf("none offered: %d", pt)
	}
}

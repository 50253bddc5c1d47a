package session

import (
	"bytes"
	"testing"
)

// A connection is keyed by ConnectionParams.SRTP on create and modify; bad
// keying is ResultCode 27 and allocates nothing; a zero SRTP makes it plain.
func TestConnectionSRTP(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+520, testPortMin+539)
	key := bytes.Repeat([]byte{7}, SRTPKeyLen)
	free := f.pool.FreePairs()
	_, err := f.CreateConnection(ConnectionParams{Remote: remote, SRTP: &SRTP{Suite: SuiteAES128SHA1_80, LocalKey: key, RemoteKey: key[:16]}})
	wantCode(t, err, 27)
	if len(f.Connections()) != 0 || f.pool.FreePairs() != free {
		t.Fatal("a refused keying allocated a connection")
	}
	c, err := f.CreateConnection(ConnectionParams{Remote: remote, SRTP: &SRTP{Suite: SuiteAES128SHA1_32, LocalKey: key, RemoteKey: key}})
	wantCode(t, err, 0)
	if c.SRTPSuite != SuiteAES128SHA1_32 {
		t.Fatalf("suite %q", c.SRTPSuite)
	}
	_, err = f.ModifyConnection(c.ID, ConnectionParams{SRTP: &SRTP{Suite: "NULL_HMAC_SHA1_80", LocalKey: key, RemoteKey: key}})
	wantCode(t, err, 27)
	if c, _ = f.Connection(c.ID); c.SRTPSuite != SuiteAES128SHA1_32 {
		t.Fatalf("a refused modify changed the suite to %q", c.SRTPSuite)
	}
	if c, err = f.ModifyConnection(c.ID, ConnectionParams{Mode: ModeSendOnly}); err != nil || c.SRTPSuite != SuiteAES128SHA1_32 {
		t.Fatalf("a modify without SRTP changed it: %q %v", c.SRTPSuite, err)
	}
	if c, err = f.ModifyConnection(c.ID, ConnectionParams{SRTP: &SRTP{}}); err != nil || c.SRTPSuite != "" {
		t.Fatalf("plain again: %q %v", c.SRTPSuite, err)
	}
	if !SRTPSuiteSupported(SuiteAES128SHA1_80) || SRTPSuiteSupported("F8_128_HMAC_SHA1_80") {
		t.Fatal("SRTPSuiteSupported")
	}
}

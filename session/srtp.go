package session

import "github.com/mediagw/mediagw/rtpproxy"

// SRTP is a connection's SDES keying (RFC 4568): Suite, LocalKey (we
// encrypt with it), RemoteKey (the remote encrypts with it). The zero value
// is plain RTP.
type SRTP = rtpproxy.SRTP

// SRTP suites, key length and rtp.srtp modes, for the fronts (which do not
// import rtpproxy).
const (
	SuiteAES128SHA1_80 = rtpproxy.SuiteAES128SHA1_80
	SuiteAES128SHA1_32 = rtpproxy.SuiteAES128SHA1_32
	SRTPKeyLen         = rtpproxy.SRTPKeyLen
	SRTPOff            = rtpproxy.SRTPOff
	SRTPOptional       = rtpproxy.SRTPOptional
	SRTPRequired       = rtpproxy.SRTPRequired
)

// SRTPSuiteSupported says whether suite (as named in a=crypto) can key a
// connection.
func SRTPSuiteSupported(suite string) bool { return rtpproxy.SuiteSupported(suite) }

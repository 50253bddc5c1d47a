package sip

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/mediagw/mediagw/session"
)

// SRTP with SDES (RFC 4568): an RTP/SAVP audio line carries a=crypto lines,
// "<tag> <suite> inline:<base64 key||salt>[|lifetime]". The answerer picks
// one line, answers with the same tag and suite and its own key; each side
// encrypts with its own key. rtp.srtp decides what we accept and offer:
//   - off:      SAVP offers get 488; we offer RTP/AVP.
//   - optional: SAVP is answered with SAVP, AVP with AVP; we offer RTP/AVP
//     (a plain offer is what every peer can answer).
//   - required: AVP offers get 488; we offer SAVP with both suites.

// crypto is one a=crypto line we can use.
type crypto struct {
	Tag   int
	Suite string
	Key   []byte // session.SRTPKeyLen octets
}

// parseCrypto reads the value of an a=crypto attribute. usable is false
// (and err nil) for a well-formed line we cannot use: an unknown suite, a
// key of the wrong size, an MKI, several keys or session parameters.
func parseCrypto(v string) (c crypto, usable bool, err error) {
	f := strings.Fields(v)
	if len(f) < 3 {
		return c, false, fmt.Errorf("%w: a=crypto:%s", errSDPMalformed, clipSDP(v))
	}
	tag, terr := strconv.Atoi(f[0])
	if terr != nil || tag < 0 || tag > 999999999 || len(f[0]) > 10 {
		return c, false, fmt.Errorf("%w: a=crypto tag %q", errSDPMalformed, clipSDP(f[0]))
	}
	c.Tag, c.Suite = tag, f[1]
	if len(f) > 3 || !session.SRTPSuiteSupported(c.Suite) {
		return c, false, nil // session parameters, or a suite we do not speak
	}
	params, ok := strings.CutPrefix(f[2], "inline:")
	if !ok || strings.Contains(params, ";") {
		return c, false, nil // another key method, or several keys
	}
	keyS, rest, _ := strings.Cut(params, "|")
	if rest != "" {
		// lifetime and/or MKI: a lifetime is fine, an MKI we do not do.
		for _, p := range strings.Split(rest, "|") {
			if strings.Contains(p, ":") {
				return c, false, nil
			}
		}
	}
	key, kerr := base64.StdEncoding.DecodeString(keyS)
	if kerr != nil {
		key, kerr = base64.RawStdEncoding.DecodeString(keyS)
	}
	if kerr != nil || len(key) != session.SRTPKeyLen {
		return c, false, nil
	}
	c.Key = key
	return c, true, nil
}

func clipSDP(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// appendCrypto writes an a=crypto line.
func appendCrypto(b []byte, c crypto) []byte {
	b = append(b, "a=crypto:"...)
	b = strconv.AppendInt(b, int64(c.Tag), 10)
	b = append(b, ' ')
	b = append(b, c.Suite...)
	b = append(b, " inline:"...)
	b = base64.StdEncoding.AppendEncode(b, c.Key)
	return append(b, "\r\n"...)
}

func newKey() []byte {
	k := make([]byte, session.SRTPKeyLen)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go 1.24+)
	return k
}

// answerSRTP decides the keying of a leg that answers offer under mode:
// the connection's SRTP (a zero SRTP for plain RTP) and the a=crypto line
// of our answer (none for plain). prev is our current line in the dialog:
// when the offer keeps its tag and suite we keep our key (and the leg its
// crypto context). Refusals wrap errSDPNotAcceptable (488).
func answerSRTP(mode string, offer *description, prev []crypto) (*session.SRTP, []crypto, error) {
	if !offer.Secure {
		if mode == session.SRTPRequired {
			return nil, nil, fmt.Errorf("%w: plain RTP offered, rtp.srtp is required", errSDPNotAcceptable)
		}
		return &session.SRTP{}, nil, nil
	}
	if mode == session.SRTPOff {
		return nil, nil, fmt.Errorf("%w: SRTP offered, rtp.srtp is off", errSDPNotAcceptable)
	}
	if len(offer.Cryptos) == 0 {
		return nil, nil, fmt.Errorf("%w: no usable a=crypto (AES_CM_128_HMAC_SHA1_80/32 with one inline key)", errSDPNotAcceptable)
	}
	theirs := offer.Cryptos[0]
	ours := crypto{Tag: theirs.Tag, Suite: theirs.Suite}
	if len(prev) == 1 && prev[0].Tag == theirs.Tag && prev[0].Suite == theirs.Suite {
		ours.Key = prev[0].Key
	} else {
		ours.Key = newKey()
	}
	return &session.SRTP{Suite: ours.Suite, LocalKey: ours.Key, RemoteKey: theirs.Key}, []crypto{ours}, nil
}

// offerSRTP is what we offer under mode: nothing (plain RTP/AVP), or under
// required one a=crypto line per suite, each with its own key.
func offerSRTP(mode string) []crypto {
	if mode != session.SRTPRequired {
		return nil
	}
	return []crypto{
		{Tag: 1, Suite: session.SuiteAES128SHA1_80, Key: newKey()},
		{Tag: 2, Suite: session.SuiteAES128SHA1_32, Key: newKey()},
	}
}

// takeSRTPAnswer applies an answer to what we offered (offered: our
// a=crypto lines, none for plain): the connection's keying and the line we
// keep. An answer that does not match the offer wraps errSDPNotAcceptable.
func takeSRTPAnswer(offered []crypto, ans *description) (*session.SRTP, []crypto, error) {
	if len(offered) == 0 {
		if ans.Secure {
			return nil, nil, fmt.Errorf("%w: SRTP answer to a plain RTP offer", errSDPNotAcceptable)
		}
		return &session.SRTP{}, nil, nil
	}
	if !ans.Secure {
		return nil, nil, fmt.Errorf("%w: plain RTP answer to an SRTP offer", errSDPNotAcceptable)
	}
	for _, theirs := range ans.Cryptos {
		for _, ours := range offered {
			if ours.Tag == theirs.Tag && ours.Suite == theirs.Suite {
				return &session.SRTP{Suite: ours.Suite, LocalKey: ours.Key, RemoteKey: theirs.Key}, []crypto{ours}, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("%w: the answer's a=crypto matches none offered", errSDPNotAcceptable)
}

package rtpproxy

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// SRTP per leg with SDES keys (RFC 4568): a leg decrypts what it receives
// before anything else sees it (handler, relay peer, echo) and encrypts what
// it sends, so legs of a conference or a relay may be SRTP or plain RTP
// independently. A leg without SRTP pays one atomic load per packet.

// SDES crypto suites (RFC 4568 §6.2) this proxy speaks.
const (
	SuiteAES128SHA1_80 = "AES_CM_128_HMAC_SHA1_80"
	SuiteAES128SHA1_32 = "AES_CM_128_HMAC_SHA1_32"
)

// SRTPKeyLen is the length of an SDES key of both suites: a 16-octet master
// key followed by a 14-octet master salt.
const SRTPKeyLen = 30

// srtpReplayWindow is the replay window of received SRTP and SRTCP (RFC 3711
// §3.3.2 asks for at least 64).
const srtpReplayWindow = 128

// SRTP is a leg's keying: LocalKey encrypts what the leg sends (the key in
// our a=crypto), RemoteKey decrypts what it receives (the remote's key). The
// zero value (no Suite) is plain RTP.
type SRTP struct {
	Suite     string
	LocalKey  []byte // SRTPKeyLen octets
	RemoteKey []byte // SRTPKeyLen octets
}

// ErrSRTP is returned by SetSRTP for an unknown suite or a bad key.
var ErrSRTP = errors.New("rtpproxy: bad SRTP keying")

// SuiteSupported says whether suite (as named in a=crypto) is one SetSRTP takes.
func SuiteSupported(suite string) bool {
	_, ok := srtpProfile(suite)
	return ok
}

func srtpProfile(suite string) (srtp.ProtectionProfile, bool) {
	switch suite {
	case SuiteAES128SHA1_80:
		return srtp.ProtectionProfileAes128CmHmacSha1_80, true
	case SuiteAES128SHA1_32:
		return srtp.ProtectionProfileAes128CmHmacSha1_32, true
	}
	return 0, false
}

// srtpState is one keying of a leg, replaced whole by SetSRTP.
type srtpState struct {
	suite               string
	localKey, remoteKey []byte
	// Receive side: rx is owned by the RTP reader, rxc by the RTCP reader
	// (one poll loop reads both sockets of a leg; goroutine readers have
	// one each).
	rx, rxc *srtp.Context
	rxHdr   rtp.Header
	rxcHdr  rtcp.Header

	// Send side, RTP and RTCP: shared with the next keying when the local
	// key stays (SetSRTP).
	tx, txc *srtpSender
}

// srtpSender encrypts for one direction. The mixer, a relay peer's reader
// and an echo may send through one leg; in practice one at a time, so the
// lock is uncontended.
type srtpSender struct {
	mu      sync.Mutex // guards everything below
	ctx     *srtp.Context
	rtpHdr  rtp.Header
	rtcpHdr rtcp.Header
	buf     []byte // tag, MKI and padding room: 2048 + 64 is more than any packet we read
}

// SetSRTP sets the leg's keying; the zero SRTP makes it plain RTP again.
// Packets already being handled finish with the keying they started with.
// A direction whose suite and key are unchanged keeps its crypto context
// (rollover counter, replay window: RFC 4568 §7.1.4), so a re-INVITE that
// keeps the keys of a long call does not lose the stream's index.
func (l *Leg) SetSRTP(s SRTP) error {
	if s.Suite == "" {
		l.srtp.Store(nil)
		return nil
	}
	st, err := newSRTPState(s)
	if err != nil {
		return err
	}
	if old := l.srtp.Load(); old != nil && old.suite == s.Suite {
		// rx/rxc are used by the readers only; tx/txc carry their lock.
		if bytes.Equal(old.remoteKey, s.RemoteKey) {
			st.rx, st.rxc = old.rx, old.rxc
		}
		if bytes.Equal(old.localKey, s.LocalKey) {
			st.tx, st.txc = old.tx, old.txc
		}
	}
	l.srtp.Store(st)
	return nil
}

// SRTPSuite is the leg's suite, "" for plain RTP.
func (l *Leg) SRTPSuite() string {
	if st := l.srtp.Load(); st != nil {
		return st.suite
	}
	return ""
}

// Validate reports what SetSRTP would refuse (wrapping ErrSRTP).
func (s SRTP) Validate() error {
	if s.Suite == "" {
		return nil
	}
	if _, ok := srtpProfile(s.Suite); !ok {
		return fmt.Errorf("%w: suite %q", ErrSRTP, s.Suite)
	}
	if len(s.LocalKey) != SRTPKeyLen || len(s.RemoteKey) != SRTPKeyLen {
		return fmt.Errorf("%w: keys of %d and %d octets, want %d", ErrSRTP, len(s.LocalKey), len(s.RemoteKey), SRTPKeyLen)
	}
	return nil
}

func newSRTPState(s SRTP) (*srtpState, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	profile, _ := srtpProfile(s.Suite)
	var err error
	ctx := func(key []byte, opts ...srtp.ContextOption) *srtp.Context {
		if err != nil {
			return nil
		}
		var c *srtp.Context
		c, err = srtp.CreateContext(key[:16], key[16:], profile, opts...)
		return c
	}
	st := &srtpState{suite: s.Suite, localKey: bytes.Clone(s.LocalKey), remoteKey: bytes.Clone(s.RemoteKey),
		tx: &srtpSender{buf: make([]byte, rtpBufSize+64)}, txc: &srtpSender{buf: make([]byte, rtpBufSize+64)}}
	st.rx = ctx(s.RemoteKey, srtp.SRTPReplayProtection(srtpReplayWindow))
	st.rxc = ctx(s.RemoteKey, srtp.SRTCPReplayProtection(srtpReplayWindow))
	st.tx.ctx = ctx(s.LocalKey)
	st.txc.ctx = ctx(s.LocalKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSRTP, err)
	}
	return st, nil
}

// errSRTPReplay is pion's (unexported) sentinel for a replayed packet,
// learnt once by replaying a packet (see srtpReplaySentinel).
var errSRTPReplay = srtpReplaySentinel()

func srtpReplaySentinel() error {
	key := make([]byte, SRTPKeyLen)
	st, err := newSRTPState(SRTP{Suite: SuiteAES128SHA1_80, LocalKey: key, RemoteKey: key})
	if err != nil {
		return nil
	}
	pkt := []byte{0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff}
	enc, err := st.tx.ctx.EncryptRTP(nil, pkt, nil)
	if err != nil {
		return nil
	}
	if _, err := st.rx.DecryptRTP(nil, append([]byte(nil), enc...), nil); err != nil {
		return nil
	}
	_, err = st.rx.DecryptRTP(nil, enc, nil)
	return errors.Unwrap(err)
}

// dropReason classifies a decryption error.
func srtpDropReason(err error) DropReason {
	switch {
	case errSRTPReplay != nil && errors.Is(err, errSRTPReplay):
		return DropSRTPReplay
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
		return DropSRTPAuth
	}
	return DropMalformed // too short, bad header
}

// decryptRTP authenticates and decrypts pkt in place (the reader's buffer);
// the plaintext is returned. Caller: the leg's RTP reader.
func (st *srtpState) decryptRTP(c *counters, pkt []byte) ([]byte, bool) {
	out, err := st.rx.DecryptRTP(pkt[:0], pkt, &st.rxHdr)
	if err != nil {
		c.drops[srtpDropReason(err)].Add(1)
		return nil, false
	}
	return out, true
}

// decryptRTCP is decryptRTP for SRTCP. Caller: the leg's RTCP reader.
func (st *srtpState) decryptRTCP(c *counters, pkt []byte) ([]byte, bool) {
	out, err := st.rxc.DecryptRTCP(pkt[:0], pkt, &st.rxcHdr)
	if err != nil {
		c.drops[srtpDropReason(err)].Add(1)
		return nil, false
	}
	return out, true
}

// sendRTP encrypts pkt into the state's buffer (pkt is the caller's, and may
// go to other legs too) and sends it.
func (st *srtpState) sendRTP(tx *sender, pkt []byte, to netip.AddrPort) error {
	s := st.tx
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err := s.ctx.EncryptRTP(s.buf[:0], pkt, &s.rtpHdr)
	if err != nil {
		return err
	}
	return tx.sendTo(out, to)
}

// sendRTCP is sendRTP for SRTCP.
func (st *srtpState) sendRTCP(tx *sender, pkt []byte, to netip.AddrPort) error {
	s := st.txc
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err := s.ctx.EncryptRTCP(s.buf[:0], pkt, &s.rtcpHdr)
	if err != nil {
		return err
	}
	return tx.sendTo(out, to)
}

// srtpLooksRTP is the header check of an SRTP packet before decryption:
// the padding octet and the extension's length are not trustworthy yet.
func srtpLooksRTP(b []byte) bool { return len(b) >= rtpHeaderLen && b[0]>>6 == 2 }

// srtpLooksRTCP is srtpLooksRTP for SRTCP: common header, sender SSRC,
// E-flag/index and at least a 4-octet tag.
func srtpLooksRTCP(b []byte) bool { return len(b) >= 8+4+4 && b[0]>>6 == 2 }

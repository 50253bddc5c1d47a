package rtpproxy

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/srtp/v3"
)

func testKey(seed byte) []byte {
	k := make([]byte, SRTPKeyLen)
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

// srtpPeer is the far end of an SRTP leg: it encrypts with the key the leg
// decrypts with, and decrypts with the key the leg encrypts with.
type srtpPeer struct {
	enc, dec, encc, decc *srtp.Context
}

func newSRTPPeer(t testing.TB, s SRTP) *srtpPeer {
	t.Helper()
	profile, _ := srtpProfile(s.Suite)
	mk := func(key []byte) *srtp.Context {
		c, err := srtp.CreateContext(key[:16], key[16:], profile)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return &srtpPeer{enc: mk(s.RemoteKey), dec: mk(s.LocalKey), encc: mk(s.RemoteKey), decc: mk(s.LocalKey)}
}

// TestSRTPRelayToPlain: an SRTP leg relayed to a plain one, both suites:
// media is decrypted on the way in and encrypted on the way out, RTCP too;
// forged and replayed packets are dropped and counted.
func TestSRTPRelayToPlain(t *testing.T) {
	for _, suite := range []string{SuiteAES128SHA1_80, SuiteAES128SHA1_32} {
		t.Run(suite, func(t *testing.T) {
			_, a, b, pa, pb := relayPair(t)
			keys := SRTP{Suite: suite, LocalKey: testKey(1), RemoteKey: testKey(100)}
			if err := a.SetSRTP(keys); err != nil {
				t.Fatal(err)
			}
			far := newSRTPPeer(t, keys)
			plain := rtpPacket(0, 1, 0, 7, 160)
			enc, err := far.enc.EncryptRTP(nil, plain, nil)
			if err != nil {
				t.Fatal(err)
			}
			pa.send(t, legAddr(a), enc)
			if got, _ := recv(t, pb.rtp); !bytes.Equal(got, plain) {
				t.Fatalf("plain side got % x, want % x", got[:16], plain[:16])
			}
			// The other way: pb's plain RTP leaves a encrypted with a's key.
			back := rtpPacket(0, 5, 0, 8, 160)
			pb.send(t, legAddr(b), back)
			got, _ := recv(t, pa.rtp)
			if bytes.Equal(got, back) {
				t.Fatal("sent in the clear")
			}
			dec, err := far.dec.DecryptRTP(nil, got, nil)
			if err != nil || !bytes.Equal(dec, back) {
				t.Fatalf("decrypting what the leg sent: %v", err)
			}

			// Forged (a flipped payload bit) and replayed packets.
			forged := bytes.Clone(enc)
			forged[20] ^= 1
			forged[3]++ // a new sequence number, so it is not a replay
			pa.send(t, legAddr(a), forged)
			pa.send(t, legAddr(a), enc) // replay of seq 1
			next, _ := far.enc.EncryptRTP(nil, rtpPacket(0, 2, 160, 7, 160), nil)
			pa.send(t, legAddr(a), next)
			if got, _ := recv(t, pb.rtp); seqOf(got) != 2 {
				t.Fatalf("after a forged and a replayed packet got seq %d, want 2", seqOf(got))
			}
			if d := a.Drops(); d[DropSRTPAuth] != 1 || d[DropSRTPReplay] != 1 {
				t.Fatalf("drops %v, want one srtp_auth and one srtp_replay", d)
			}

			// SRTCP in, plain RTCP out to the plain side.
			rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 7}})
			encRR, err := far.encc.EncryptRTCP(nil, rr, nil)
			if err != nil {
				t.Fatal(err)
			}
			pa.rtcp.WriteToUDPAddrPort(encRR, legRTCPAddr(a))
			c := make([]byte, 1500)
			pb.rtcp.SetReadDeadline(deadline())
			n, _, err := pb.rtcp.ReadFromUDPAddrPort(c)
			if err != nil || !bytes.Equal(c[:n], rr) {
				t.Fatalf("plain side RTCP % x (%v), want % x", c[:n], err, rr)
			}
			// Plain RTCP from b goes out of a as SRTCP.
			pb.rtcp.WriteToUDPAddrPort(rr, legRTCPAddr(b))
			pa.rtcp.SetReadDeadline(deadline())
			n, _, err = pa.rtcp.ReadFromUDPAddrPort(c)
			if err != nil {
				t.Fatal(err)
			}
			if dec, err := far.decc.DecryptRTCP(nil, c[:n], nil); err != nil || !bytes.Equal(dec, rr) {
				t.Fatalf("decrypting the leg's SRTCP: %v", err)
			}
			// Back to plain RTP.
			if err := a.SetSRTP(SRTP{}); err != nil || a.SRTPSuite() != "" {
				t.Fatalf("SetSRTP(zero): %v, suite %q", err, a.SRTPSuite())
			}
			pa.send(t, legAddr(a), rtpPacket(0, 9, 0, 7, 160))
			if got, _ := recv(t, pb.rtp); seqOf(got) != 9 {
				t.Fatalf("plain again: got seq %d", seqOf(got))
			}
		})
	}
}

// TestSRTPBothSides: a relay of two SRTP legs with different keys
// re-encrypts; plain RTP sent to an SRTP leg is refused as forged.
func TestSRTPBothSides(t *testing.T) {
	_, a, b, pa, pb := relayPair(t)
	ka := SRTP{Suite: SuiteAES128SHA1_80, LocalKey: testKey(1), RemoteKey: testKey(40)}
	kb := SRTP{Suite: SuiteAES128SHA1_32, LocalKey: testKey(80), RemoteKey: testKey(120)}
	if err := a.SetSRTP(ka); err != nil {
		t.Fatal(err)
	}
	if err := b.SetSRTP(kb); err != nil {
		t.Fatal(err)
	}
	fa, fb := newSRTPPeer(t, ka), newSRTPPeer(t, kb)
	plain := rtpPacket(8, 1, 0, 7, 160)
	pa.send(t, legAddr(a), plain) // not SRTP: fails authentication
	enc, _ := fa.enc.EncryptRTP(nil, rtpPacket(8, 2, 0, 7, 160), nil)
	pa.send(t, legAddr(a), enc)
	got, _ := recv(t, pb.rtp)
	dec, err := fb.dec.DecryptRTP(nil, got, nil)
	if err != nil || seqOf(dec) != 2 {
		t.Fatalf("b's peer: %v, seq %d", err, seqOf(dec))
	}
	if d := a.Drops(); d[DropSRTPAuth] != 1 {
		t.Fatalf("drops %v", d)
	}
}

func TestSetSRTPRefusesBadKeys(t *testing.T) {
	p := newTestPool(t, testPortMin, testPortMax)
	l := openLeg(t, p)
	for name, s := range map[string]SRTP{
		"suite":      {Suite: "AES_256_CM_HMAC_SHA1_80", LocalKey: testKey(1), RemoteKey: testKey(2)},
		"short key":  {Suite: SuiteAES128SHA1_80, LocalKey: testKey(1)[:16], RemoteKey: testKey(2)},
		"no remote":  {Suite: SuiteAES128SHA1_32, LocalKey: testKey(1)},
		"long local": {Suite: SuiteAES128SHA1_32, LocalKey: append(testKey(1), 0), RemoteKey: testKey(2)},
	} {
		if err := l.SetSRTP(s); !errors.Is(err, ErrSRTP) {
			t.Errorf("%s: %v, want ErrSRTP", name, err)
		}
	}
	if l.SRTPSuite() != "" {
		t.Fatalf("suite %q after refusals", l.SRTPSuite())
	}
	if errSRTPReplay == nil {
		t.Fatal("pion's replay error was not learnt")
	}
}

func deadline() time.Time { return time.Now().Add(5 * time.Second) }

// TestSRTPForgedDoesNotLatch: on an SRTP leg a packet that fails
// authentication does not latch, even from an allowed address (a spoofed
// source on the signalling IP), so the real phone still gets through.
func TestSRTPForgedDoesNotLatch(t *testing.T) {
	_, a, _, _, pb := relayPair(t)
	a.SetSignalingIP(netip.AddrFrom4([4]byte{127, 0, 0, 2}))
	keys := SRTP{Suite: SuiteAES128SHA1_80, LocalKey: testKey(1), RemoteKey: testKey(100)}
	if err := a.SetSRTP(keys); err != nil {
		t.Fatal(err)
	}
	spoof, phone := newPeerOn(t, ip2), newPeerOn(t, ip2)
	far := newSRTPPeer(t, keys)
	spoof.send(t, legAddr(a), rtpPacket(0, 1, 0, 7, 160)) // not SRTP at all
	enc, _ := far.enc.EncryptRTP(nil, rtpPacket(0, 2, 0, 7, 160), nil)
	phone.send(t, legAddr(a), enc)
	if got, _ := recv(t, pb.rtp); seqOf(got) != 2 {
		t.Fatalf("got seq %d, want the phone's 2", seqOf(got))
	}
	if a.Remote() != phone.addr() {
		t.Fatalf("latched to %v, want the phone %v", a.Remote(), phone.addr())
	}
	if d := a.Drops(); d[DropSRTPAuth] != 1 || d[DropSource] != 0 {
		t.Fatalf("drops %v", d)
	}
}

// FuzzSRTPReceive hands arbitrary datagrams to an SRTP leg's RTP and RTCP
// paths: nothing panics, and each is either taken or dropped for one reason.
func FuzzSRTPReceive(f *testing.F) {
	keys := SRTP{Suite: SuiteAES128SHA1_80, LocalKey: testKey(1), RemoteKey: testKey(100)}
	far := newSRTPPeer(f, keys)
	enc, _ := far.enc.EncryptRTP(nil, rtpPacket(0, 1, 0, 7, 160), nil)
	f.Add(enc)
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 7}})
	encRR, _ := far.encc.EncryptRTCP(nil, rr, nil)
	f.Add(encRR)
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff})
	p := newTestPool(f, testPortMin, testPortMax)
	l := openLeg(f, p)
	src := netip.MustParseAddrPort("127.0.0.1:30990")
	l.SetRemote(src)
	if err := l.SetSRTP(keys); err != nil {
		f.Fatal(err)
	}
	var sum rtcpSummary
	f.Fuzz(func(t *testing.T, b []byte) {
		before, in := l.Drops(), l.Stats().PacketsReceived
		l.handleRTP(bytes.Clone(b), src)
		after := l.Drops()
		var n uint64
		for i := range after {
			n += after[i] - before[i]
		}
		if n+l.Stats().PacketsReceived-in != 1 {
			t.Fatalf("% x: %d drops and %d packets", b, n, l.Stats().PacketsReceived-in)
		}
		l.handleRTCP(bytes.Clone(b), src, &sum)
	})
}

// TestSRTPRekeyKeepsIndex: keying a leg again with the same keys (a
// re-INVITE of a long call) keeps both directions' rollover counters; a
// new remote key starts the receive side afresh.
func TestSRTPRekeyKeepsIndex(t *testing.T) {
	_, a, b, pa, pb := relayPair(t)
	keys := SRTP{Suite: SuiteAES128SHA1_32, LocalKey: testKey(1), RemoteKey: testKey(100)}
	if err := a.SetSRTP(keys); err != nil {
		t.Fatal(err)
	}
	far := newSRTPPeer(t, keys)
	// Both directions cross a sequence number rollover (ROC 0 -> 1).
	for _, seq := range []uint16{65534, 65535, 0} {
		enc, _ := far.enc.EncryptRTP(nil, rtpPacket(0, seq, uint32(seq)*160, 7, 20), nil)
		pa.send(t, legAddr(a), enc)
		expectSeq(t, pb, seq, "in")
		pb.send(t, legAddr(b), rtpPacket(0, seq, uint32(seq)*160, 8, 20))
		got, _ := recv(t, pa.rtp)
		if _, err := far.dec.DecryptRTP(nil, got, nil); err != nil {
			t.Fatalf("out seq %d: %v", seq, err)
		}
	}
	if err := a.SetSRTP(SRTP{Suite: keys.Suite, LocalKey: bytes.Clone(keys.LocalKey), RemoteKey: bytes.Clone(keys.RemoteKey)}); err != nil {
		t.Fatal(err)
	}
	enc, _ := far.enc.EncryptRTP(nil, rtpPacket(0, 1, 160, 7, 20), nil)
	pa.send(t, legAddr(a), enc)
	expectSeq(t, pb, 1, "in after rekeying with the same keys")
	pb.send(t, legAddr(b), rtpPacket(0, 1, 160, 8, 20))
	got, _ := recv(t, pa.rtp)
	if _, err := far.dec.DecryptRTP(nil, got, nil); err != nil {
		t.Fatalf("out after rekeying with the same keys: %v", err)
	}
	if d := a.Drops(); d[DropSRTPAuth] != 0 {
		t.Fatalf("drops %v", d)
	}
}

package sip

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
)

// pionSDP is what buildSDP wrote when it built a pion/sdp description and
// marshalled it: the reference its hand-written replacement must match.
func pionSDP(m localMedia, offer *description) []byte {
	ip := m.Addr.Addr().Unmap()
	addrType := "IP4"
	if ip.Is6() {
		addrType = "IP6"
	}
	sd := sdp.SessionDescription{
		Origin: sdp.Origin{Username: "mediagw", SessionID: m.SessID, SessionVersion: m.Version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: ip.String()},
		SessionName:           "mediagw",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: ip.String()}},
		TimeDescriptions:      []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
	audio := &sdp.MediaDescription{MediaName: sdp.MediaName{Media: "audio", Port: sdp.RangedPort{Value: int(m.Addr.Port())},
		Protos: []string{"RTP", "AVP"}}}
	for _, f := range m.Formats {
		pt := strconv.Itoa(int(f.PT))
		audio.MediaName.Formats = append(audio.MediaName.Formats, pt)
		rtpmap := fmt.Sprintf("%s %s/%d", pt, f.Name, f.Rate)
		if f.Channels > 1 {
			rtpmap += "/" + strconv.Itoa(f.Channels)
		}
		audio.Attributes = append(audio.Attributes, sdp.NewAttribute("rtpmap", rtpmap))
		if f.Fmtp != "" {
			audio.Attributes = append(audio.Attributes, sdp.NewAttribute("fmtp", pt+" "+f.Fmtp))
		}
	}
	if m.Ptime > 0 {
		audio.Attributes = append(audio.Attributes, sdp.NewAttribute("ptime", strconv.Itoa(int(m.Ptime/time.Millisecond))))
	}
	audio.Attributes = append(audio.Attributes, sdp.NewPropertyAttribute(m.Dir.String()))
	if offer == nil {
		sd.MediaDescriptions = []*sdp.MediaDescription{audio}
	} else {
		for i, l := range offer.Lines {
			if i == offer.AudioIndex {
				sd.MediaDescriptions = append(sd.MediaDescriptions, audio)
				continue
			}
			sd.MediaDescriptions = append(sd.MediaDescriptions, &sdp.MediaDescription{MediaName: sdp.MediaName{
				Media: l.Media, Port: sdp.RangedPort{Value: 0}, Protos: strings.Split(l.Proto, "/"), Formats: l.Formats[:1]}})
		}
	}
	b, _ := sd.Marshal()
	return b
}

func TestBuildSDPLikePion(t *testing.T) {
	opus := format{PT: 111, Name: "opus", Rate: 48000, Channels: 2, Fmtp: "minptime=10;useinbandfec=1"}
	cases := map[string]localMedia{
		"offer, PCMU PCMA events": {SessID: 1, Version: 2, Addr: netip.MustParseAddrPort("127.0.0.1:33000"),
			Formats: append(configuredFormats([]string{"PCMU", "PCMA"}), defaultTE), Dir: dirSendRecv},
		"IPv6, ptime, sendonly": {SessID: 1<<63 + 5, Version: 0, Addr: netip.MustParseAddrPort("[::1]:65535"),
			Formats: []format{staticFormats[8]}, Dir: dirSendOnly, Ptime: 30 * time.Millisecond},
		"v4-mapped, stereo": {SessID: 9, Version: 10, Addr: netip.MustParseAddrPort("[::ffff:10.1.2.3]:4000"),
			Formats: []format{opus}, Dir: dirInactive, Ptime: 20 * time.Millisecond},
	}
	for name, m := range cases {
		if got, want := string(buildSDP(m, nil)), string(pionSDP(m, nil)); got != want {
			t.Errorf("%s:\n%q\nwant\n%q", name, got, want)
		}
	}
	for i, seed := range sdpSeeds {
		offer, err := parseSDP([]byte(seed))
		if err != nil {
			continue
		}
		m := cases["IPv6, ptime, sendonly"]
		if got, want := string(buildSDP(m, offer)), string(pionSDP(m, offer)); got != want {
			t.Errorf("answer to seed %d:\n%q\nwant\n%q", i, got, want)
		}
	}
}

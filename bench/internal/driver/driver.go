// Package driver sets up and tears down relayed calls on a system under test
// through its control protocol: MGCP (osmo-mgw, our gateway), rtpengine's ng
// protocol, or no system at all (the generator's own ceiling).
package driver

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Call is one relayed call: the generator's side A sends to AToB and the SUT
// relays it to side B; for the reverse direction B sends to BToA.
type Call struct {
	AToB, BToA netip.AddrPort
	ref        [3]string // driver's handles (endpoint, call id, tags)
}

// Driver sets up calls between the generator's addresses a and b.
type Driver interface {
	Setup(ctx context.Context, id int, a, b netip.AddrPort) (Call, error)
	Teardown(ctx context.Context, c Call) error
	Close() error
}

// SDP returns a minimal PCMU audio offer or answer for addr.
func SDP(addr netip.AddrPort, sessID int) string {
	ip := addr.Addr().String()
	return fmt.Sprintf("v=0\r\no=- %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
		sessID, ip, ip, addr.Port())
}

// MediaAddr returns the first audio stream's address from an SDP body: the
// media-level c= line if any, else the session-level one.
func MediaAddr(sdp string) (netip.AddrPort, error) {
	var sessIP, mediaIP string
	port := -1
	inOther := false // inside a media section that is not the audio one
lines:
	for _, l := range strings.Split(strings.ReplaceAll(sdp, "\r\n", "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "m="):
			if port >= 0 {
				break lines // the next media section: done
			}
			f := strings.Fields(l[2:])
			if len(f) < 2 || f[0] != "audio" {
				inOther = true
				continue
			}
			inOther = false
			p, err := strconv.Atoi(strings.SplitN(f[1], "/", 2)[0])
			if err != nil || p <= 0 || p > 65535 {
				return netip.AddrPort{}, fmt.Errorf("%w: m= line %q", ErrMalformed, l)
			}
			port = p
		case strings.HasPrefix(l, "c="):
			f := strings.Fields(l[2:])
			if len(f) < 3 {
				return netip.AddrPort{}, fmt.Errorf("%w: c= line %q", ErrMalformed, l)
			}
			switch {
			case port >= 0:
				mediaIP = f[2]
			case !inOther:
				sessIP = f[2]
			}
		}
	}
	ipText := mediaIP
	if ipText == "" {
		ipText = sessIP
	}
	if port < 0 || ipText == "" {
		return netip.AddrPort{}, fmt.Errorf("%w: no audio address in SDP", ErrMalformed)
	}
	ip, err := netip.ParseAddr(strings.SplitN(ipText, "/", 2)[0])
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: address %q", ErrMalformed, ipText)
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// Loop is no system under test: A sends straight to B (and B to A).
type Loop struct{}

func (Loop) Setup(_ context.Context, _ int, a, b netip.AddrPort) (Call, error) {
	return Call{AToB: b, BToA: a}, nil
}
func (Loop) Teardown(context.Context, Call) error { return nil }
func (Loop) Close() error                         { return nil }

// MGCP drives an rtpbridge endpoint: two CRCX per call (the first on the
// wildcard endpoint, the second on the endpoint it returned in Z:), one DLCX
// of the endpoint and call to tear down.
type MGCP struct {
	Client   *MGCPClient
	Wildcard string // "rtpbridge/*@mgw" (osmo-mgw) or "rtpbridge/$@mgw"
	Prefix   string // call id prefix, unique per run
}

func (m *MGCP) crcx(ctx context.Context, ep, callID string, addr netip.AddrPort, id int) (*MGCPResponse, netip.AddrPort, error) {
	r, err := m.Client.Do(ctx, "CRCX", ep, []string{"C: " + callID, "L: p:20, a:PCMU", "M: sendrecv"}, SDP(addr, id))
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	if r.Code != 200 {
		return nil, netip.AddrPort{}, fmt.Errorf("CRCX %s: %d %s", ep, r.Code, r.Comment)
	}
	media, err := MediaAddr(r.SDP)
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("CRCX %s: %w", ep, err)
	}
	return r, media, nil
}

func (m *MGCP) Setup(ctx context.Context, id int, a, b netip.AddrPort) (Call, error) {
	callID := fmt.Sprintf("%s%x", m.Prefix, id)
	r1, toA, err := m.crcx(ctx, m.Wildcard, callID, a, id)
	if err != nil {
		return Call{}, err
	}
	ep := r1.Param("Z")
	if ep == "" {
		return Call{}, fmt.Errorf("CRCX %s: no Z: in response", m.Wildcard)
	}
	_, toB, err := m.crcx(ctx, ep, callID, b, id)
	if err != nil {
		_, _ = m.Client.Do(ctx, "DLCX", ep, []string{"C: " + callID}, "")
		return Call{}, err
	}
	// The connection that faces A receives A's packets: A sends to it.
	return Call{AToB: toA, BToA: toB, ref: [3]string{ep, callID}}, nil
}

func (m *MGCP) Teardown(ctx context.Context, c Call) error {
	r, err := m.Client.Do(ctx, "DLCX", c.ref[0], []string{"C: " + c.ref[1]}, "")
	if err != nil {
		return err
	}
	if r.Code != 200 && r.Code != 250 {
		return fmt.Errorf("DLCX %s: %d %s", c.ref[0], r.Code, r.Comment)
	}
	return nil
}

func (m *MGCP) Close() error { return m.Client.Close() }

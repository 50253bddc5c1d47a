package rtpproxy

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Config is the yaml section `rtp`.
type Config struct {
	Bind         string        `yaml:"bind"`          // "0.0.0.0"
	ExternalIP   string        `yaml:"external_ip"`   // "" = bind address, or primary IP when bind is unspecified
	PortMin      int           `yaml:"port_min"`      // 20000
	PortMax      int           `yaml:"port_max"`      // 29999
	MediaTimeout time.Duration `yaml:"media_timeout"` // 60s; 0 disables (used by session)
	// StrictSource: once a leg has latched its remote, packets from any
	// other address are dropped (counted, reason "source"). false forwards
	// them without re-latching (rtpengine's default).
	StrictSource bool `yaml:"strict_source"` // true
	// RelatchAfter: a latched remote silent this long may be replaced by a
	// packet from an address signalling allowed (the SDP address, or any
	// port of the signalling source's IP); 0 = only signalling re-latches.
	RelatchAfter time.Duration `yaml:"relatch_after"` // 5s
	// SRTP is how SIP legs negotiate SRTP with SDES (RTP/SAVP, a=crypto):
	// "off" answers only RTP/AVP (SAVP offers get 488), "optional" answers
	// SAVP with SAVP and AVP with AVP, "required" refuses plain offers (488)
	// and offers SAVP itself. The pool keys legs as told (Leg.SetSRTP).
	SRTP string `yaml:"srtp"` // "optional"
}

// SRTP modes of Config.SRTP.
const (
	SRTPOff      = "off"
	SRTPOptional = "optional"
	SRTPRequired = "required"
)

// DefaultConfig returns the built-in defaults of DESIGN §6.
func DefaultConfig() Config {
	return Config{
		Bind:         "0.0.0.0",
		PortMin:      20000,
		PortMax:      29999,
		MediaTimeout: 60 * time.Second,
		StrictSource: true,
		RelatchAfter: 5 * time.Second,
		SRTP:         SRTPOptional,
	}
}

// Port numbers a range may use: below 1024 needs privileges and collides with
// well-known services.
const (
	lowestPort  = 1024
	highestPort = 65535
)

// layout is a validated Config: where pairs start, how many there are, and
// which addresses to bind and advertise.
type layout struct {
	bind       netip.Addr
	advertised netip.Addr
	firstPort  int // even RTP port of pair 0
	pairs      int
	strict     bool  // rtp.strict_source
	relatch    int64 // rtp.relatch_after in nanoseconds; 0 = never by silence
}

// Validate reports the first bad value, naming its yaml key.
func (c Config) Validate() error {
	_, err := c.layout(false)
	return err
}

// layout validates c; with discover it also finds the advertised address,
// which for an unspecified bind address asks the routing table.
func (c Config) layout(discover bool) (layout, error) {
	var lo layout
	bind := c.Bind
	if bind == "" {
		bind = "0.0.0.0"
	}
	addr, err := netip.ParseAddr(bind)
	if err != nil {
		return lo, fmt.Errorf("rtp.bind: %q is not an IP address", c.Bind)
	}
	if addr.Zone() != "" {
		return lo, fmt.Errorf("rtp.bind: %q: zoned addresses are not supported", c.Bind)
	}
	lo.bind = addr.Unmap()

	if c.ExternalIP != "" {
		ext, err := netip.ParseAddr(c.ExternalIP)
		if err != nil {
			return lo, fmt.Errorf("rtp.external_ip: %q is not an IP address", c.ExternalIP)
		}
		if ext.IsUnspecified() || ext.Zone() != "" {
			return lo, fmt.Errorf("rtp.external_ip: %q cannot be put in SDP", c.ExternalIP)
		}
		lo.advertised = ext.Unmap()
	}

	if c.PortMin < lowestPort || c.PortMin > highestPort {
		return lo, fmt.Errorf("rtp.port_min: %d is outside %d..%d", c.PortMin, lowestPort, highestPort)
	}
	if c.PortMax < lowestPort || c.PortMax > highestPort {
		return lo, fmt.Errorf("rtp.port_max: %d is outside %d..%d", c.PortMax, lowestPort, highestPort)
	}
	if c.PortMin >= c.PortMax {
		return lo, fmt.Errorf("rtp.port_max: %d must be above rtp.port_min %d", c.PortMax, c.PortMin)
	}
	// RTP ports are even (RFC 3550 §11); an odd port_min starts at the next even one.
	lo.firstPort = c.PortMin + c.PortMin%2
	lo.pairs = (c.PortMax - lo.firstPort + 1) / 2
	if lo.pairs < 1 {
		return lo, fmt.Errorf("rtp.port_max: %d..%d holds no even/odd port pair", c.PortMin, c.PortMax)
	}
	if c.MediaTimeout < 0 {
		return lo, fmt.Errorf("rtp.media_timeout: %v is negative", c.MediaTimeout)
	}
	if c.RelatchAfter < 0 {
		return lo, fmt.Errorf("rtp.relatch_after: %v is negative", c.RelatchAfter)
	}
	lo.strict, lo.relatch = c.StrictSource, int64(c.RelatchAfter)
	switch c.SRTP {
	case "", SRTPOff, SRTPOptional, SRTPRequired:
	default:
		return lo, fmt.Errorf("rtp.srtp: %q is not off, optional or required", c.SRTP)
	}

	if !lo.advertised.IsValid() {
		switch {
		case !lo.bind.IsUnspecified():
			lo.advertised = lo.bind
		case discover:
			lo.advertised = primaryIP(lo.bind.Is6())
		}
	}
	return lo, nil
}

// primaryIP finds the source address the kernel would use towards a
// documentation-only (never routed) address: connecting a UDP socket picks a
// route and a source address without sending anything. With no route it falls
// back to loopback.
func primaryIP(v6 bool) netip.Addr {
	network, probe, fallback := "udp4", "192.0.2.1:9", netip.MustParseAddr("127.0.0.1")
	if v6 {
		network, probe, fallback = "udp6", "[2001:db8::1]:9", netip.IPv6Loopback()
	}
	conn, err := net.Dial(network, probe)
	if err != nil {
		return fallback
	}
	defer conn.Close()
	ua, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return fallback
	}
	ap := ua.AddrPort()
	if a := ap.Addr().Unmap(); a.IsValid() && !a.IsUnspecified() {
		return a
	}
	return fallback
}

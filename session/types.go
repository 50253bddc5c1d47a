package session

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Front names who owns or released a connection.
type Front string

const (
	FrontSIP    Front = "sip"
	FrontMGCP   Front = "mgcp"
	FrontHTTP   Front = "http"
	FrontNG     Front = "ng"     // rtpengine ng protocol (Kamailio, OpenSIPS)
	FrontSystem Front = "system" // media timeout, shutdown
)

// Mode is a connection mode (RFC 3435 names).
type Mode string

const (
	ModeSendRecv   Mode = "sendrecv"
	ModeSendOnly   Mode = "sendonly"
	ModeRecvOnly   Mode = "recvonly"
	ModeInactive   Mode = "inactive"
	ModeLoopback   Mode = "loopback"
	ModeConference Mode = "confrnce"
)

// ParseMode accepts a mode name case-insensitively; "" is sendrecv.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeSendRecv, nil
	case ModeSendRecv, ModeSendOnly, ModeRecvOnly, ModeInactive, ModeLoopback, ModeConference:
		return m, nil
	}
	return "", fmt.Errorf("%w: mode %q", ErrInvalidParam, s)
}

// sends and receives report whether media flows out to / in from the remote.
func (m Mode) sends() bool {
	return m == ModeSendRecv || m == ModeSendOnly || m == ModeConference || m == ModeLoopback
}
func (m Mode) receives() bool {
	return m == ModeSendRecv || m == ModeRecvOnly || m == ModeConference || m == ModeLoopback
}

// Kind distinguishes mixed conferences from two-party relays.
type Kind string

const (
	KindConference Kind = "conference" // mixed (hairpinned while two members share a codec)
	KindBridge     Kind = "bridge"     // at most two members, relayed, never mixed
)

// ConnectionParams describe a connection to create or, in ModifyConnection,
// what to change (zero fields are left as they are).
type ConnectionParams struct {
	Remote netip.AddrPort // remote media address; zero = not known yet (nothing is accepted until it is, unless SignalingIP is set)
	// SignalingIP is the IP the signalling for this connection came from
	// (SIP: the request's source). Before latching, media from any port of
	// it is accepted too (a phone behind a NAT). Zero = only Remote; the
	// MGCP and HTTP fronts leave it zero (their peer is a call agent or an
	// application server, not the media endpoint).
	SignalingIP netip.Addr
	// SRTP keys the connection (SDES, RFC 4568); nil leaves it as it is
	// (plain RTP on create), a zero SRTP makes it plain RTP.
	SRTP   *SRTP
	Codec  string        // "PCMU", "PCMA", "G729", ...; "" = PCMU on create
	Ptime  time.Duration // 0 = conference.ptime on create
	Mode   Mode          // "" = sendrecv on create
	Owner  Front         // who created it and hears about its release
	CallID string        // SIP Call-ID or MGCP C:
	Tag    string        // opaque to the table: the owner's key (MGCP endpoint, SIP To-tag)
	// TelephoneEvent is the RTP payload type of RFC 4733 telephone-events
	// the remote sends (from its SDP); 0 = none (on modify: unchanged).
	// Their digits become DigitReceived events and reach media operations.
	TelephoneEvent uint8
}

// Stats are a connection's media statistics.
type Stats struct {
	PacketsSent, OctetsSent         uint64
	PacketsReceived, OctetsReceived uint64
	PacketsLost                     int64
	Jitter, Latency                 time.Duration
	LastReceived                    time.Time
}

// Connection is a snapshot of one connection.
type Connection struct {
	ID             string
	ConferenceID   string         // "" when in none
	Local          netip.AddrPort // MediaRxIP:MediaRxPort (RTCP is port+1)
	Remote         netip.AddrPort
	Codec          string
	Ptime          time.Duration
	Mode           Mode
	Owner          Front
	CallID         string
	Tag            string
	Enhanced       bool   // holds an enhanced_rtp resource (low-bitrate codec)
	SRTPSuite      string // the SRTP suite of its media, "" for plain RTP
	TelephoneEvent uint8  // RFC 4733 payload type the remote sends; 0 = none
	Created        time.Time
	Stats          Stats
}

// MemberAttrs are a conferee's attributes.
type MemberAttrs struct {
	Muted       bool `json:"Mute"`
	ReceiveOnly bool `json:"ReceiveOnly"`
	Coach       bool `json:"Coach"`
	Pupil       bool `json:"Pupil"`
}

// Member is one connection's membership of a conference.
type Member struct {
	ConnectionID string
	MemberAttrs
	Talking bool // the mixer hears it talking now (never while hairpinned)
}

// Conference is a snapshot of one conference or bridge.
type Conference struct {
	ID      string
	Kind    Kind
	Mixing  bool // members hold conference resources (false for bridges and hairpins)
	Members []Member
	Links   []string // conferences linked to this one: each hears the other's members
	Created time.Time
	// CascadeOf: in a cluster, the node holding this conference when this is
	// a cascade of it (its members joined here); CascadeLink is the member
	// that links it there.
	CascadeOf, CascadeLink string
}

// Release says who releases and why.
type Release struct {
	By     Front
	Code   int    // 0 normal; 12 media timeout; 5 shutdown
	Reason string // free text for logs and protocol reason headers
}

// Scope is which row of the DeleteConnection table ran.
type Scope string

const (
	ScopeConnection Scope = "connection"
	ScopeConference Scope = "conference"
	ScopeMember     Scope = "member"
)

// Deleted is what a DeleteConnection released.
type Deleted struct {
	Scope              Scope
	ConferenceID       string       // the conference affected, if any
	Connections        []Connection // released connections with final statistics (none for ScopeMember)
	ConferenceReleased bool         // the conference ended (last member left, or released whole)
}

// EventType says what an Event announces.
type EventType int

const (
	ConnectionReleased EventType = iota + 1
	ConferenceReleased
	DigitReceived // an RFC 4733 telephone-event from a conference member (never mixed)
	StartTalking  // a conference member's level rose above the talker threshold
	StopTalking   // ... and fell below it for the hang-over time
	// OperationComplete: a media operation ended (Event.Op says how); the
	// event stream calls it <Action>_Complete.
	OperationComplete
)

func (e EventType) String() string {
	switch e {
	case ConnectionReleased:
		return "connection_released"
	case ConferenceReleased:
		return "conference_released"
	case DigitReceived:
		return "digit_received"
	case StartTalking:
		return "start_talking"
	case StopTalking:
		return "stop_talking"
	case OperationComplete:
		return "operation_complete"
	}
	return "unknown"
}

// Event announces a release (or a digit) to subscribers. For
// ConnectionReleased, Connection is the final snapshot (owner, tag,
// statistics); for ConferenceReleased, ConferenceID names it; for
// DigitReceived, Connection.ID and ConferenceID say who sent Digit (the
// RFC 4733 event code: 0-9, 10 '*', 11 '#', 12-15 A-D), once at its start
// and once at its end (DigitEnd).
type Event struct {
	Type         EventType
	Connection   Connection
	ConferenceID string
	Digit        byte
	DigitEnd     bool
	Op           *OperationResult // OperationComplete
	Release
}

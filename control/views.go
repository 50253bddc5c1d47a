package control

import (
	"net/http"
	"strconv"

	"github.com/mediagw/mediagw/session"
)

type connectionView struct {
	ConnectionID   string `json:"ConnectionId"`
	ConferenceID   string `json:"ConferenceId,omitempty"`
	MediaRxIP      string `json:"MediaRxIP"`
	MediaRxPort    string `json:"MediaRxPort"`
	MediaTxIP      string `json:"MediaTxIP,omitempty"`
	MediaTxPort    string `json:"MediaTxPort,omitempty"`
	Codec          string `json:"Codec"`
	SRTP           string `json:"SRTP,omitempty"` // the SRTP suite; absent for plain RTP
	FramesizeMs    int64  `json:"Framesize"`
	Mode           string `json:"Mode"`
	Owner          string `json:"Owner"`
	CallID         string `json:"CallId,omitempty"`
	PacketsSent    uint64 `json:"PacketsSent"`
	OctetsSent     uint64 `json:"OctetsSent"`
	PacketsRecv    uint64 `json:"PacketsReceived"`
	OctetsRecv     uint64 `json:"OctetsReceived"`
	PacketsLost    int64  `json:"PacketsLost"`
	JitterMs       int64  `json:"JitterMs"`
	LatencyMs      int64  `json:"LatencyMs"`
	CreatedRFC3339 string `json:"Created"`
	Node           string `json:"Node,omitempty"` // in a cluster: the node that holds it
}

func viewConnection(c session.Connection) connectionView {
	v := connectionView{
		ConnectionID: c.ID, ConferenceID: c.ConferenceID,
		MediaRxIP: c.Local.Addr().String(), MediaRxPort: strconv.Itoa(int(c.Local.Port())),
		Codec: c.Codec, SRTP: c.SRTPSuite, FramesizeMs: c.Ptime.Milliseconds(), Mode: string(c.Mode),
		Owner: string(c.Owner), CallID: c.CallID,
		PacketsSent: c.Stats.PacketsSent, OctetsSent: c.Stats.OctetsSent,
		PacketsRecv: c.Stats.PacketsReceived, OctetsRecv: c.Stats.OctetsReceived,
		PacketsLost: c.Stats.PacketsLost, JitterMs: c.Stats.Jitter.Milliseconds(),
		LatencyMs: c.Stats.Latency.Milliseconds(), CreatedRFC3339: c.Created.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
	}
	if c.Remote.IsValid() {
		v.MediaTxIP, v.MediaTxPort = c.Remote.Addr().String(), strconv.Itoa(int(c.Remote.Port()))
	}
	return v
}

type memberView struct {
	ConnectionID string `json:"ConnectionId"`
	Mute         bool   `json:"Mute"`
	ReceiveOnly  bool   `json:"ReceiveOnly"`
	Coach        bool   `json:"Coach"`
	Pupil        bool   `json:"Pupil"`
	Talking      bool   `json:"Talking"`
}

type conferenceView struct {
	ConferenceID string       `json:"ConferenceId"`
	Kind         string       `json:"Kind"`
	Mixing       bool         `json:"Mixing"`
	Members      []memberView `json:"Members"`
	Links        []string     `json:"Links,omitempty"` // conferences linked to this one
	Created      string       `json:"Created"`
	Node         string       `json:"Node,omitempty"`
	CascadeOf    string       `json:"CascadeOf,omitempty"`   // a cascade of this node's conference
	CascadeLink  string       `json:"CascadeLink,omitempty"` // the member that links it there
}

func (s *Server) handleConnections(w http.ResponseWriter, r *http.Request) {
	conns := s.table.Connections()
	out := make([]any, 0, len(conns))
	for _, c := range conns {
		v := viewConnection(c)
		v.Node = s.nodeName()
		out = append(out, v)
	}
	for _, v := range s.gather(r, "/v1/connections", "Connections") { // the other nodes' (cluster.go)
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"Connections": out})
}

func (s *Server) handleConferences(w http.ResponseWriter, r *http.Request) {
	confs := s.table.Conferences()
	out := make([]any, 0, len(confs))
	for _, cf := range confs {
		v := conferenceView{ConferenceID: cf.ID, Kind: string(cf.Kind), Mixing: cf.Mixing, Members: make([]memberView, len(cf.Members)),
			Links: cf.Links, Created: cf.Created.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Node: s.nodeName(),
			CascadeOf: cf.CascadeOf, CascadeLink: cf.CascadeLink}
		for j, m := range cf.Members {
			v.Members[j] = memberView{m.ConnectionID, m.Muted, m.ReceiveOnly, m.Coach, m.Pupil, m.Talking}
		}
		out = append(out, v)
	}
	for _, v := range s.gather(r, "/v1/conferences", "Conferences") {
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"Conferences": out})
}

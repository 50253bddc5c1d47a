package mgcp

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/internal/jsonw"
	"github.com/mediagw/mediagw/session"
)

// Persistence (issue 13, DESIGN §10). The table keeps the connections and
// the conferences behind the endpoints; the front keeps what is its own:
// per connection where its release is announced (the CRCX's N: and call
// agent), and per endpoint the current notification request as the call
// agent sent it (X:, R:, D:, Q:, T:, N:, without S:), whether it is still
// armed, and the connection "$" stood for. Restore, before Serve, attaches
// the table's MGCP connections again, re-installs the requests (signals are
// not played again: they ran before the restart or were cut by it), and
// releases the MGCP connections no record claims, announcing them to the
// call agent with a DLCX like any release it did not ask for.
//
// After a restore that kept connections the gateway does not send RSIP
// restart (RFC 3435 §4.4.6: "restart" tells the call agent every
// connection is gone, and it clears its calls) but RSIP disconnected
// (§2.3.12, §4.4.7): the endpoints lost contact for a while and their
// connections are in place; the call agent may audit them (AUEP, AUCX).

// State is where the front keeps its records (session.State).
type State = session.State

// Kinds of the persisted objects.
const (
	StateConn     = "mgcp-conn"
	StateEndpoint = "mgcp-endpoint"
)

const recordVersion = 1

type connRecord struct {
	V        int    `json:"v"`
	ID       string `json:"id"`
	CallID   string `json:"call_id,omitempty"`
	Endpoint string `json:"endpoint"`
	Notify   string `json:"notify,omitempty"`
	Src      string `json:"src,omitempty"`
}

type endpointRecord struct {
	V        int    `json:"v"`
	Endpoint string `json:"endpoint"`
	Request  Params `json:"request"`            // X:, R:, D:, Q:, T:, N: as sent
	NewConn  string `json:"new_conn,omitempty"` // what "$" stood for
	Src      string `json:"src,omitempty"`
	Active   bool   `json:"active"` // still detecting (not ended by a notification)
}

// requestParams are the parameters of a request that make it what it is
// (S: is played once, not kept).
var requestParams = []string{"X", "R", "D", "Q", "T", "N"}

func keptRequest(c *Command) Params {
	var out Params
	for _, n := range requestParams {
		if v, ok := c.Params.Get(n); ok {
			out = append(out, Param{n, v})
		}
	}
	return out
}

func addrString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return ""
	}
	return ap.String()
}

// saveConnLocked queues a connection's record. Caller holds mu.
func (s *Server) saveConnLocked(id, callID string, info connInfo) {
	if s.state == nil {
		return
	}
	// By hand: it runs on every CRCX, on the command loop (json.Marshal
	// cost a few per cent of the CRCX+DLCX rate); TestConnRecordEncoding
	// holds it to encoding/json's reading.
	b := make([]byte, 0, 160)
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, recordVersion, 10)
	b = append(b, `,"id":`...)
	b = jsonw.String(b, id)
	if callID != "" {
		b = append(b, `,"call_id":`...)
		b = jsonw.String(b, callID)
	}
	b = append(b, `,"endpoint":`...)
	b = jsonw.String(b, info.endpoint)
	if info.notify.IsValid() {
		b = append(b, `,"notify":"`...)
		b = append(info.notify.AppendTo(b), '"')
	}
	if info.src.IsValid() {
		b = append(b, `,"src":"`...)
		b = append(info.src.AppendTo(b), '"')
	}
	s.state.Put(StateConn, id, append(b, '}'))
}

// saveEndpointLocked queues an endpoint's current request. Caller holds mu.
func (s *Server) saveEndpointLocked(key string, st *endpointState) {
	if s.state == nil || st.requestID == "" {
		return
	}
	req := st.raw
	if _, ok := req.Get("D"); !ok && st.dmText != "" { // the digit map an earlier command set
		req = append(req[:len(req):len(req)], Param{"D", st.dmText})
	}
	b, err := json.Marshal(endpointRecord{V: recordVersion, Endpoint: key, Request: req, NewConn: st.newConn,
		Src: addrString(st.src), Active: st.active})
	if err == nil {
		s.state.Put(StateEndpoint, key, b)
	}
}

func (s *Server) unsave(kind, id string) {
	if s.state != nil {
		s.state.Delete(kind, id)
	}
}

// RestoreReport says what Restore did.
type RestoreReport struct {
	Connections int // MGCP connections attached again
	Requests    int // notification requests re-installed
	Lost        int // connections the table could not restore (port taken, bad record): a DLCX tells the call agent once serving
	Dropped     int // records not restorable
	Released    int // MGCP connections of the table no record claimed
}

// Restore attaches the connections the table restored to their endpoints
// again, re-installs the endpoints' requests, releases the MGCP
// connections it has no record of, and keeps st for later changes. Call it
// once, after the table's Restore and before Serve. It fails only when st
// cannot be read or holds a layout this build does not know.
func (s *Server) Restore(st State) (RestoreReport, error) {
	var rep RestoreReport
	var conns []connRecord
	var eps []endpointRecord
	var bad [][2]string
	read := func(kind string, each func(id string, v []byte) (ver int, ok bool)) error {
		return st.ForEach(kind, func(id string, v []byte) error {
			ver, ok := each(id, v)
			switch {
			case !ok:
				bad = append(bad, [2]string{kind, id})
			case ver != recordVersion:
				return fmt.Errorf("mgcp: state of %s %s has layout %d; this gateway reads %d", kind, id, ver, recordVersion)
			}
			return nil
		})
	}
	err := read(StateConn, func(id string, v []byte) (int, bool) {
		var r connRecord
		if json.Unmarshal(v, &r) != nil || r.ID != id {
			return 0, false
		}
		if r.V == recordVersion {
			conns = append(conns, r)
		}
		return r.V, true
	})
	if err == nil {
		err = read(StateEndpoint, func(id string, v []byte) (int, bool) {
			var r endpointRecord
			if json.Unmarshal(v, &r) != nil || r.Endpoint != id {
				return 0, false
			}
			if r.V == recordVersion {
				eps = append(eps, r)
			}
			return r.V, true
		})
	}
	if err != nil {
		return rep, err
	}
	s.state = st
	for _, k := range bad {
		st.Delete(k[0], k[1])
		rep.Dropped++
	}
	owned := map[string]bool{}
	for _, r := range conns {
		c, err := s.table.Connection(r.ID)
		name, _ := endpointOf(c.ConferenceID)
		info := connInfo{endpoint: r.Endpoint}
		info.notify, _ = netip.ParseAddrPort(r.Notify)
		info.src, _ = netip.ParseAddrPort(r.Src)
		if err != nil || c.Owner != session.FrontMGCP || name == "" || name != r.Endpoint {
			s.log.WithFields(logrus.Fields{"conn_id": r.ID, "endpoint": r.Endpoint}).Warn("MGCP connection not restored: the table did not bring it back; the call agent gets a DLCX")
			st.Delete(StateConn, r.ID)
			s.lost = append(s.lost, lostConn{id: r.ID, callID: r.CallID, info: info})
			rep.Lost++
			continue
		}
		s.mu.Lock()
		s.conns[r.ID] = info
		s.mu.Unlock()
		owned[r.ID] = true
		rep.Connections++
	}
	for _, r := range eps {
		if s.restoreRequest(r) {
			rep.Requests++
			continue
		}
		st.Delete(StateEndpoint, r.Endpoint)
		rep.Dropped++
	}
	for _, c := range s.table.Connections() {
		if c.Owner != session.FrontMGCP || owned[c.ID] {
			continue
		}
		// Announced by onEvent: a DLCX to whoever it can find (the configured notified entity).
		if _, err := s.table.DeleteConnection(c.ID, "", session.Release{By: session.FrontSystem, Reason: "no MGCP record kept"}); err == nil {
			rep.Released++
		}
	}
	s.restored.Store(rep.Connections > 0)
	return rep, nil
}

// lostConn is a kept connection the table did not restore.
type lostConn struct {
	id, callID string
	info       connInfo
}

// announceLost sends, once Serve has begun, a DLCX for every kept
// connection that was not restored, as for any release the call agent did
// not ask for (E: 900: the endpoint could not keep it).
func (s *Server) announceLost() {
	lost := s.lost
	s.lost = nil
	for _, l := range lost {
		dst := s.notifyFor(l.info)
		if !dst.IsValid() {
			continue
		}
		s.sendCommand(&Command{Verb: "DLCX", Endpoint: l.info.endpoint + "@" + s.cfg.Domain, Version: "1.0",
			Params: Params{{"C", l.callID}, {"I", l.id}, {"E", "900 connection not restored after a restart"}}}, dst)
	}
}

// restoreRequest installs an endpoint's kept request again.
func (s *Server) restoreRequest(r endpointRecord) bool {
	ep, err := parseEndpoint(r.Endpoint+"@"+s.cfg.Domain, s.cfg.Domain)
	if err != nil || ep.wild() || !s.endpointExists(ep) {
		return false
	}
	src, _ := netip.ParseAddrPort(r.Src)
	c := &Command{Verb: "RQNT", Endpoint: r.Endpoint + "@" + s.cfg.Domain, Params: r.Request}
	resolve := s.resolverFor(ep, r.NewConn != "")
	nr, bad := s.readRequest(c, resolve, true)
	if bad == nil {
		bad = s.install(ep.local(), nr, r.NewConn, src)
	}
	if bad != nil {
		s.log.WithFields(logrus.Fields{"endpoint": r.Endpoint, "code": bad.Code}).Warn("MGCP notification request not restored")
		return false
	}
	_ = s.takeAfterReply() // nothing was quarantined before the restart
	if !r.Active {
		s.mu.Lock()
		if st := s.endpoints[ep.local()]; st != nil {
			st.active = false
			s.resetDial(st)
		}
		s.mu.Unlock()
	}
	return true
}

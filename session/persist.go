package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/mediagw/mediagw/internal/jsonw"
	"github.com/mediagw/mediagw/rtpproxy"
)

// Persistence (issue 13, DESIGN §10): the table hands every change of a
// connection or a conference to Config.State, which only queues (a store's
// writer commits it off the media path and outside this lock), and Restore
// builds the table again from what was kept, before the fronts listen:
// the same ConnectionIds, the same port pairs (so peers keep sending to
// the right place), the same conferences and member attributes.
//
// Kept: connections made over the HTTP API, SIP, MGCP and ng (and their
// conferences, bridges and links). The fronts keep call state of their own
// (SIP dialogs, MGCP endpoints' requests, ng calls) in the same store;
// after this Restore each front's own restore attaches its connections
// again and releases those it has no record of. Media operations:
// persist_ops.go. Not restored: SRTP keys (an SRTP connection is dropped,
// and its front hangs the call up).

// Persister receives the table's state as it changes; *store.File and
// *store.Redis satisfy it. Both calls must only queue.
type Persister interface {
	Put(kind, id string, value []byte)
	Delete(kind, id string)
}

// Flusher is what a Persister may also do (*store.File and *store.Redis
// do): wait until everything queued before the call is written.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Synced waits, at most until ctx ends, until every change queued before
// the call is written to the state. A front answers a release with it
// (SIP's 200 to BYE), so a release acknowledged before a crash does not
// come back at the restore. Without a state, or with one that cannot wait,
// it returns at once. Never call it holding a lock the writer needs.
func (t *Table) Synced(ctx context.Context) error {
	f, ok := t.cfg.State.(Flusher)
	if !ok {
		return nil
	}
	return f.Flush(ctx)
}

// State is where a front keeps its own records beside the table's: a
// store's queueing writes and its committed objects.
type State interface {
	Persister
	StateReader
}

// StateReader is what Restore reads: a store's committed objects.
type StateReader interface {
	ForEach(kind string, fn func(id string, value []byte) error) error
}

// Kinds of persisted objects.
const (
	StateConn = "conn"
	StateConf = "conf"
	StateIDs  = "ids" // one object, "table": the last ConnectionId and ConferenceId given out
)

type idsRecord struct {
	V    int    `json:"v"`
	Conn uint64 `json:"conn"`
	Conf uint64 `json:"conf"`
	Op   uint64 `json:"op"`
}

// idBlock is how far ahead of the IDs given out the kept marks run: the
// counters are written once per idBlock new IDs, not per ID, and a restart
// goes on after the marks (skipping at most idBlock of each).
const idBlock = 1024

// saveIDsLocked keeps the ID counters ahead of the IDs given out, so IDs
// never repeat across a restart, whatever was kept. Caller holds mu.
func (t *Table) saveIDsLocked() {
	if t.cfg.State == nil || t.nextConn < t.idMarks[0] && t.nextConf < t.idMarks[1] && t.ops.next < t.idMarks[2] {
		return
	}
	t.idMarks = [3]uint64{t.nextConn + idBlock, t.nextConf + idBlock, t.ops.next + idBlock}
	b := make([]byte, 0, 48)
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, stateVersion, 10)
	b = append(b, `,"conn":`...)
	b = strconv.AppendUint(b, t.idMarks[0], 10)
	b = append(b, `,"conf":`...)
	b = strconv.AppendUint(b, t.idMarks[1], 10)
	b = append(b, `,"op":`...)
	b = strconv.AppendUint(b, t.idMarks[2], 10)
	t.cfg.State.Put(StateIDs, "table", append(b, '}'))
}

// stateVersion is the layout of the records below; Restore refuses others.
const stateVersion = 1

type connRecord struct {
	V              int       `json:"v"`
	ID             string    `json:"id"`
	Port           int       `json:"port"`
	Remote         string    `json:"remote,omitempty"`
	Codec          string    `json:"codec"`
	PtimeMs        int       `json:"ptime_ms"`
	Mode           Mode      `json:"mode"`
	Owner          Front     `json:"owner"`
	CallID         string    `json:"call_id,omitempty"`
	Tag            string    `json:"tag,omitempty"`
	TelephoneEvent uint8     `json:"telephone_event,omitempty"`
	SRTP           bool      `json:"srtp,omitempty"`
	Created        time.Time `json:"created"`
}

type confRecord struct {
	V       int            `json:"v"`
	ID      string         `json:"id"`
	Kind    Kind           `json:"kind"`
	Created time.Time      `json:"created"`
	Members []memberRecord `json:"members"`
	Links   []string       `json:"links,omitempty"`     // the conferences linked to it (link.go)
	Hairpin *bool          `json:"hairpin,omitempty"`   // ConferenceOptions; absent: the default (true)
	Tone    bool           `json:"join_tone,omitempty"` // ConferenceOptions.SoundToneOnJoin
	Claimed bool           `json:"claimed,omitempty"`   // its name is claimed in the cluster
}

type memberRecord struct {
	Conn  string      `json:"conn"`
	Attrs MemberAttrs `json:"attrs"`
}

// kept reports whether c is of the connections Restore brings back (no
// point writing the others yet).
func kept(c *conn) bool { return keptFront(c.Owner) }

func keptFront(f Front) bool {
	return f == FrontHTTP || f == FrontSIP || f == FrontMGCP || f == FrontNG
}

// saveConnLocked queues c's state. Caller holds mu.
func (t *Table) saveConnLocked(c *conn) {
	if t.cfg.State == nil || !kept(c) {
		return
	}
	t.cfg.State.Put(StateConn, c.ID, appendConnRecord(make([]byte, 0, 256), c))
}

// saveConfLocked queues cf's state, while one of its members is kept.
// Caller holds mu.
func (t *Table) saveConfLocked(cf *conf) {
	if t.cfg.State == nil {
		return
	}
	if !slices.ContainsFunc(cf.members, func(mb *member) bool { return kept(mb.c) }) {
		t.forgetLocked(StateConf, cf.id)
		return
	}
	t.cfg.State.Put(StateConf, cf.id, appendConfRecord(make([]byte, 0, 128+64*len(cf.members)), cf))
}

// appendConfRecord writes cf as a confRecord in JSON, by hand for the same
// reason as appendConnRecord (TestConfRecordEncoding holds it to
// encoding/json's reading).
func appendConfRecord(b []byte, cf *conf) []byte {
	flag := func(b []byte, name string, v bool) []byte {
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		return strconv.AppendBool(b, v)
	}
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, stateVersion, 10)
	b = append(b, `,"id":`...)
	b = jsonw.String(b, cf.id)
	b = append(b, `,"kind":`...)
	b = jsonw.String(b, string(cf.kind))
	b = append(b, `,"created":"`...)
	b = cf.created.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","hairpin":`...)
	b = strconv.AppendBool(b, cf.opts.Hairpin)
	if cf.opts.SoundToneOnJoin {
		b = append(b, `,"join_tone":true`...)
	}
	if cf.claimed {
		b = append(b, `,"claimed":true`...)
	}
	b = append(b, `,"members":[`...)
	for i, mb := range cf.members {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"conn":`...)
		b = jsonw.String(b, mb.c.ID)
		b = append(b, `,"attrs":{"Mute":`...)
		b = strconv.AppendBool(b, mb.attrs.Muted)
		b = flag(b, "ReceiveOnly", mb.attrs.ReceiveOnly)
		b = flag(b, "Coach", mb.attrs.Coach)
		b = flag(b, "Pupil", mb.attrs.Pupil)
		b = append(b, '}', '}')
	}
	b = append(b, ']')
	if len(cf.links) > 0 {
		b = append(b, `,"links":[`...)
		for i, id := range cf.linkedTo() {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonw.String(b, id)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (t *Table) forgetLocked(kind, id string) {
	if t.cfg.State != nil {
		t.cfg.State.Delete(kind, id)
	}
}

// RestoreReport says what Restore did.
type RestoreReport struct {
	Connections, Conferences int // restored
	Dropped                  int // connections not restorable (front state not kept, SRTP, port taken, bad record)
	Links                    int // conference links made again
	Recordings               int // Record operations resumed into their files
	Interrupted              int // other operations, completed with ResultCode 9 by AnnounceRestored
}

// Restore rebuilds the table from st (before anything else uses the
// table): connections on their own port pairs, then conferences and
// bridges with their members. A connection that cannot be restored is
// dropped from the state and counted, never the whole restore. It fails
// only when st cannot be read or holds a layout it does not know.
func (t *Table) Restore(st StateReader) (RestoreReport, error) {
	var rep RestoreReport
	var bad [][2]string // kind, id of records that do not decode: dropped once the reads succeeded
	conns, err := readRecords(st, StateConn, &bad, func(r connRecord) (int, string) { return r.V, r.ID })
	if err != nil {
		return rep, err
	}
	confs, err := readRecords(st, StateConf, &bad, func(r confRecord) (int, string) { return r.V, r.ID })
	if err != nil {
		return rep, err
	}
	for _, k := range bad {
		t.forgetLocked(k[0], k[1])
		rep.Dropped++
	}
	var ids idsRecord
	err = st.ForEach(StateIDs, func(id string, v []byte) error {
		if id == "table" && json.Unmarshal(v, &ids) == nil && ids.V != stateVersion {
			return fmt.Errorf("session: state of the ID counters has layout %d; this gateway reads %d", ids.V, stateVersion)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	slices.SortFunc(conns, func(a, b connRecord) int { return cmpID(a.ID, b.ID) })
	t.mu.Lock()
	t.nextConn, t.nextConf, t.ops.next = max(t.nextConn, ids.Conn), max(t.nextConf, ids.Conf), max(t.ops.next, ids.Op)
	for _, r := range conns { // IDs go on after every recorded one, restored or not
		if n, err := strconv.ParseUint(r.ID, 10, 64); err == nil && t.counterOf(n) > t.nextConn {
			t.nextConn = t.counterOf(n)
		}
	}
	for _, r := range confs {
		if n, err := strconv.ParseUint(r.ID, 10, 64); err == nil && t.counterOf(n) > t.nextConf {
			t.nextConf = t.counterOf(n)
		}
	}
	t.mu.Unlock()
	for _, r := range conns {
		if err := t.restoreConn(r); err != nil {
			t.log.WithError(err).WithField("conn_id", r.ID).Warn("connection not restored")
			t.mu.Lock()
			t.forgetLocked(StateConn, r.ID)
			t.mu.Unlock()
			rep.Dropped++
			continue
		}
		rep.Connections++
	}
	slices.SortFunc(confs, func(a, b confRecord) int { return cmpID(a.ID, b.ID) })
	for _, r := range confs {
		if t.restoreConf(r) {
			rep.Conferences++
		}
	}
	t.mu.Lock()
	for _, r := range confs { // links, once both sides are back (each written on both sides: made once)
		for _, b := range r.Links {
			if cmpID(r.ID, b) < 0 && t.confs[r.ID] != nil && t.confs[b] != nil {
				if err := t.linkLocked(r.ID, b); err != nil {
					t.log.WithError(err).WithFields(map[string]any{"conf_id": r.ID, "linked_to": b}).Warn("conference link not restored")
				} else {
					rep.Links++
				}
			}
		}
	}
	t.mu.Unlock()
	t.reclaim()
	return rep, t.restoreOps(st, &rep)
}

// readRecords decodes every record of kind: one that does not decode, or
// names another ID than its key, goes to bad; one of another layout fails
// the read.
func readRecords[T any](st StateReader, kind string, bad *[][2]string, head func(T) (version int, id string)) ([]T, error) {
	var out []T
	err := st.ForEach(kind, func(id string, v []byte) error {
		var r T
		if err := json.Unmarshal(v, &r); err != nil {
			*bad = append(*bad, [2]string{kind, id})
			return nil
		}
		ver, rid := head(r)
		switch {
		case rid != id:
			*bad = append(*bad, [2]string{kind, id})
		case ver != stateVersion:
			return fmt.Errorf("session: state of %s %s has layout %d; this gateway reads %d", kind, id, ver, stateVersion)
		default:
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

func cmpID(a, b string) int {
	if idLess(a, b) {
		return -1
	}
	if idLess(b, a) {
		return 1
	}
	return 0
}

// restoreConn opens r's port pair again and registers the connection.
func (t *Table) restoreConn(r connRecord) error {
	switch {
	case !keptFront(r.Owner):
		return fmt.Errorf("owned by %s, whose call state is not kept", r.Owner)
	case r.SRTP:
		return errors.New("SRTP keys are not kept")
	case !ValidConnectionID(r.ID) || !codecRe.MatchString(r.Codec):
		return errors.New("bad record")
	}
	mode, err := ParseMode(string(r.Mode))
	if err != nil {
		return err
	}
	var remote netip.AddrPort
	if r.Remote != "" {
		if remote, err = netip.ParseAddrPort(r.Remote); err != nil {
			return err
		}
	}
	enhanced := !mixable(r.Codec)
	t.mu.Lock()
	if _, taken := t.conns[r.ID]; taken {
		t.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrConnectionExists, r.ID)
	}
	if err := t.reserve(poolRTP, 1); err != nil {
		t.mu.Unlock()
		return err
	}
	if enhanced {
		if err := t.reserve(poolEnhanced, 1); err != nil {
			t.free(poolRTP, 1)
			t.mu.Unlock()
			return err
		}
	}
	t.mu.Unlock()
	leg, err := t.ports.OpenPort(r.Port)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.free(poolRTP, 1)
		if enhanced {
			t.free(poolEnhanced, 1)
		}
		if errors.Is(err, rtpproxy.ErrPortTaken) {
			return fmt.Errorf("port %d was taken meanwhile: %w", r.Port, err)
		}
		return err
	}
	now := time.Now()
	c := &conn{
		Connection: Connection{ID: r.ID, Local: leg.LocalAddr(), Remote: remote, Codec: r.Codec,
			Ptime: time.Duration(r.PtimeMs) * time.Millisecond, Mode: mode, Owner: r.Owner, CallID: r.CallID, Tag: r.Tag,
			Enhanced: enhanced, Created: r.Created, TelephoneEvent: r.TelephoneEvent},
		leg:      leg,
		modified: now, // the media timeout starts again
	}
	if remote.IsValid() {
		leg.SetRemote(remote)
	}
	t.applyMedia(c)
	t.conns[c.ID] = c
	if t.cfg.Cluster != nil {
		t.cfg.Cluster.ConnectionCreated(c.ID)
	}
	t.saveConnLocked(c)
	return nil
}

// restoreConf makes r's conference again with its restored members, or
// forgets it when none is left.
func (t *Table) restoreConf(r confRecord) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	var members []memberRecord
	for _, m := range r.Members {
		if c := t.conns[m.Conn]; c != nil && c.conf == nil {
			members = append(members, m)
		}
	}
	if len(members) == 0 || !ValidConferenceID(r.ID) || t.confs[r.ID] != nil {
		t.forgetLocked(StateConf, r.ID)
		return false
	}
	o := DefaultConferenceOptions()
	if r.Hairpin != nil {
		o.Hairpin = *r.Hairpin
	}
	o.SoundToneOnJoin = r.Tone
	cf, err := t.newConfWith(r.ID, r.Kind, o)
	if err != nil {
		t.log.WithError(err).WithField("conf_id", r.ID).Warn("conference not restored")
		t.forgetLocked(StateConf, r.ID)
		return false
	}
	cf.created = r.Created
	cf.claimed = r.Claimed && t.cfg.Cluster != nil
	for _, m := range members {
		if err := t.join(cf, m.Conn, m.Attrs); err != nil {
			t.log.WithError(err).WithFields(map[string]any{"conf_id": r.ID, "conn_id": m.Conn}).Warn("member not restored")
		}
	}
	if len(cf.members) == 0 {
		t.dropEmpty(cf)
		t.forgetLocked(StateConf, r.ID)
		return false
	}
	t.confs[cf.id] = cf
	t.saveConfLocked(cf)
	return true
}

// appendConnRecord writes c as a connRecord in JSON: by hand, because it
// runs under the table lock on every create and modify (json.Marshal
// took several times as long); TestConnRecordEncoding holds it to
// encoding/json's reading of the struct.
func appendConnRecord(b []byte, c *conn) []byte {
	str := func(b []byte, name, v string) []byte {
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		return jsonw.String(b, v)
	}
	num := func(b []byte, name string, v int64) []byte {
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		return strconv.AppendInt(b, v, 10)
	}
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, stateVersion, 10)
	b = str(b, "id", c.ID)
	b = num(b, "port", int64(c.Local.Port()))
	if c.Remote.IsValid() {
		b = append(b, `,"remote":"`...)
		b = c.Remote.AppendTo(b)
		b = append(b, '"')
	}
	b = str(b, "codec", c.Codec)
	b = num(b, "ptime_ms", int64(c.Ptime/time.Millisecond))
	b = str(b, "mode", string(c.Mode))
	b = str(b, "owner", string(c.Owner))
	if c.CallID != "" {
		b = str(b, "call_id", c.CallID)
	}
	if c.Tag != "" {
		b = str(b, "tag", c.Tag)
	}
	if c.TelephoneEvent != 0 {
		b = num(b, "telephone_event", int64(c.TelephoneEvent))
	}
	if c.srtp {
		b = append(b, `,"srtp":true`...)
	}
	b = append(b, `,"created":"`...)
	b = c.Created.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"', '}')
}

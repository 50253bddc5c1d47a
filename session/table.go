package session

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/confbridge"
	"github.com/mediagw/mediagw/rtpproxy"
)

// PortPool is what the table needs of the RTP port pairs (*rtpproxy.Pool).
type PortPool interface {
	Open() (*rtpproxy.Leg, error)
	OpenPort(port int) (*rtpproxy.Leg, error) // a restored connection's own pair (persist.go)
	FreePairs() int
	Pairs() int
	Packets() (in, out uint64)
	Drops() rtpproxy.Drops
}

// MixerFactory makes conference mixers (*confbridge.Engine).
type MixerFactory interface {
	NewBridge(opts confbridge.Options) *confbridge.Bridge
}

// Table is the session table: every connection and conference of the
// gateway, the resource pools, and the one release path.
type Table struct {
	cfg    Config
	ports  PortPool
	mixers MixerFactory
	log    *logrus.Entry
	met    *metrics
	subs   atomic.Pointer[[]func(Event)] // copy-on-write: read without the lock

	mu       sync.Mutex // guards every field below, and the conn/conf structs they reach
	conns    map[string]*conn
	confs    map[string]*conf
	nextConn uint64
	nextConf uint64
	inUse    [poolCount]int
	draining bool
	pending  [poolCount]int // reserved by creations whose sockets are being bound
	refusing bool           // Drain(true): no new connections, the others go on (drain.go)
	ops      opState        // media operations and buffered digits (operations.go)
	prompts  promptCache    // decoded Play prompts (prompts.go)

	restoredOps []OperationResult // operations a restart interrupted, for AnnounceRestored (persist_ops.go)
	idMarks     [3]uint64         // the kept marks of nextConn, nextConf and ops.next (persist.go)
}

type pool int

const (
	poolRTP pool = iota
	poolEnhanced
	poolConference
	poolCount
)

var poolNames = [poolCount]string{"rtp", "enhanced_rtp", "conference"}

// conn is a live connection; fields are guarded by Table.mu.
type conn struct {
	Connection // snapshot fields; Stats are filled from the leg on copy
	leg        *rtpproxy.Leg
	conf       *conf
	lent       *lent     // a mixer lent for media operations (lent.go)
	srtp       bool      // keyed for SRTP (not persisted: persist.go)
	inband     string    // codec/conference of the leg's in-band detector, "" when none (digits.go)
	modified   time.Time // last create/modify, the base for media timeouts
}

// conf is a live conference or bridge; fields are guarded by Table.mu.
type conf struct {
	id      string
	kind    Kind
	created time.Time
	members []*member
	mixer   *confbridge.Bridge // KindConference only
	held    int                // conference resources held (0 unless mixing)
	links   []*link            // conferences linked to this one (link.go)
	opts    ConferenceOptions  // as created (kept in the state)
	claimed bool               // its name is claimed in the cluster (cluster.go)
	cascade *cascade           // a cascade of a conference another node holds (cascade.go)
}

type member struct {
	c     *conn
	attrs MemberAttrs
	m     *confbridge.Member // KindConference only
}

// New builds a table. ports and mixers are usually an *rtpproxy.Pool and a
// *confbridge.Engine.
func New(cfg Config, ports PortPool, mixers MixerFactory, log *logrus.Entry) *Table {
	if cfg.Conference.Ptime == 0 {
		cfg.Conference = DefaultConferenceConfig()
	}
	if cfg.Media == (MediaConfig{}) {
		cfg.Media = DefaultMediaConfig()
	}
	if log == nil {
		l := logrus.New()
		l.SetOutput(discard{})
		log = logrus.NewEntry(l)
	}
	t := &Table{
		cfg:     cfg,
		ports:   ports,
		mixers:  mixers,
		log:     log.WithField("component", "session"),
		conns:   make(map[string]*conn),
		confs:   make(map[string]*conf),
		ops:     opState{ops: map[string]*operation{}, gathers: map[string]*operation{}, outputs: map[string]*operation{}, records: map[string]*operation{}, detects: map[string]*operation{}, buf: map[string][]byte{}},
		prompts: promptCache{max: cfg.Media.CacheBytes},
	}
	t.met = newMetrics(t)
	return t
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func (t *Table) subscribers() []func(Event) {
	if p := t.subs.Load(); p != nil {
		return *p
	}
	return nil
}

// Subscribe registers fn to hear of every release. fn runs after the
// release, outside the table lock, on the releasing goroutine: it must not
// block (hand slow work such as sending BYE to a goroutine of your own).
func (t *Table) Subscribe(fn func(Event)) {
	t.mu.Lock() // serializes writers
	defer t.mu.Unlock()
	var subs []func(Event)
	if old := t.subs.Load(); old != nil {
		subs = append(subs, *old...)
	}
	subs = append(subs, fn)
	t.subs.Store(&subs)
}

var (
	confIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	codecRe  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)
)

// ValidConferenceID reports whether id is a well-formed ConferenceId.
func ValidConferenceID(id string) bool { return confIDRe.MatchString(id) }

// ValidConnectionID reports whether id is the canonical decimal string of a
// positive integer.
func ValidConnectionID(id string) bool {
	// Decimal digits only (ParseUint takes no sign or underscore in base
	// 10), no leading zero, not 0, within uint64.
	_, err := strconv.ParseUint(id, 10, 64)
	return err == nil && id[0] != '0'
}

func checkConnID(id string) error {
	if !ValidConnectionID(id) {
		return fmt.Errorf("%w: %q", ErrInvalidConnectionID, id)
	}
	return nil
}

// mixable reports whether the mixer handles a codec natively.
func mixable(codec string) bool {
	_, ok := confbridge.ParseCodec(codec)
	return ok
}

func normCodec(name string) string { return strings.ToUpper(name) }

func (t *Table) capacity(p pool) int {
	switch p {
	case poolRTP:
		return t.cfg.Resources.RTP
	case poolEnhanced:
		return t.cfg.Resources.EnhancedRTP
	}
	return t.cfg.Resources.Conference
}

// reserve takes n units of p, or fails with ErrNoResources. Caller holds mu.
func (t *Table) reserve(p pool, n int) error {
	if c := t.capacity(p); c > 0 && t.inUse[p]+n > c {
		return fmt.Errorf("%w: %s pool exhausted (%d of %d in use)", ErrNoResources, poolNames[p], t.inUse[p], c)
	}
	t.inUse[p] += n
	return nil
}

func (t *Table) free(p pool, n int) {
	t.inUse[p] -= n
	if t.inUse[p] < 0 {
		t.log.WithField("pool", poolNames[p]).Error("resource count went negative")
		t.inUse[p] = 0
	}
}

// InUse reports the units of a pool ("rtp", "enhanced_rtp", "conference") in use.
func (t *Table) InUse(poolName string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, n := range poolNames {
		if n == poolName {
			return t.inUse[i]
		}
	}
	return 0
}

// CreateConnection opens a port pair facing p.Remote.
func (t *Table) CreateConnection(p ConnectionParams) (Connection, error) {
	mode, err := ParseMode(string(p.Mode))
	if err != nil {
		return Connection{}, err
	}
	if p.Codec == "" {
		p.Codec = "PCMU"
	}
	if !codecRe.MatchString(p.Codec) {
		return Connection{}, fmt.Errorf("%w: codec %q", ErrInvalidParam, p.Codec)
	}
	p.Codec = normCodec(p.Codec)
	if p.Ptime == 0 {
		p.Ptime = t.cfg.Conference.Ptime
	}
	if p.Ptime < 0 || p.Ptime > 200*time.Millisecond {
		return Connection{}, fmt.Errorf("%w: ptime %s", ErrInvalidParam, p.Ptime)
	}
	if p.Remote.IsValid() && p.Remote.Port() == 0 {
		return Connection{}, fmt.Errorf("%w: remote port 0", ErrInvalidParam)
	}
	if p.SRTP != nil {
		if err := p.SRTP.Validate(); err != nil {
			return Connection{}, fmt.Errorf("%w: %v", ErrInvalidParam, err)
		}
	}
	enhanced := !mixable(p.Codec)

	t.mu.Lock()
	if t.draining || t.refusing {
		t.mu.Unlock()
		return Connection{}, ErrDraining
	}
	if err := t.reserve(poolRTP, 1); err != nil {
		t.mu.Unlock()
		return Connection{}, err
	}
	if enhanced {
		if err := t.reserve(poolEnhanced, 1); err != nil {
			t.free(poolRTP, 1)
			t.mu.Unlock()
			return Connection{}, err
		}
	}
	t.pending[poolRTP]++
	if enhanced {
		t.pending[poolEnhanced]++
	}
	t.mu.Unlock()

	leg, openErr := t.ports.Open() // binds sockets: outside the lock

	t.mu.Lock()
	t.pending[poolRTP]--
	if enhanced {
		t.pending[poolEnhanced]--
	}
	if openErr != nil || t.draining {
		t.free(poolRTP, 1)
		if enhanced {
			t.free(poolEnhanced, 1)
		}
		t.mu.Unlock()
		if openErr != nil {
			return Connection{}, fmt.Errorf("%w: %v", ErrNoResources, openErr)
		}
		_ = leg.Close() // Shutdown began while the sockets were being bound
		return Connection{}, ErrDraining
	}
	t.nextConn++
	t.saveIDsLocked()
	now := time.Now()
	c := &conn{
		Connection: Connection{
			ID:       t.idOf(t.nextConn),
			Local:    leg.LocalAddr(),
			Remote:   p.Remote,
			Codec:    p.Codec,
			Ptime:    p.Ptime,
			Mode:     mode,
			Owner:    p.Owner,
			CallID:   p.CallID,
			Tag:      p.Tag,
			Enhanced: enhanced,
			Created:  now,

			TelephoneEvent: p.TelephoneEvent,
		},
		leg:      leg,
		modified: now,
	}
	if p.SRTP != nil {
		_ = leg.SetSRTP(*p.SRTP)    // validated above
		c.srtp = p.SRTP.Suite != "" // a zero SRTP is plain RTP, said explicitly
	}
	if p.SignalingIP.IsValid() {
		leg.SetSignalingIP(p.SignalingIP)
	}
	if p.Remote.IsValid() {
		leg.SetRemote(p.Remote)
	}
	t.applyMedia(c)
	t.conns[c.ID] = c
	if t.cfg.Cluster != nil {
		t.cfg.Cluster.ConnectionCreated(c.ID)
	}
	t.saveConnLocked(c)
	snap := t.snapshot(c)
	t.mu.Unlock()
	if !t.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		return snap, nil
	}
	t.log.WithFields(logrus.Fields{"conn_id": snap.ID, "call_id": p.CallID, "owner": p.Owner,
		"local": snap.Local.String(), "remote": p.Remote.String(), "codec": p.Codec}).Debug("connection created")
	return snap, nil
}

// applyMedia sets a connection's direction and packet handler from its mode
// and membership. Caller holds mu.
func (t *Table) applyMedia(c *conn) {
	send, recv := c.Mode.sends(), c.Mode.receives()
	if c.conf != nil && c.conf.kind == KindBridge {
		if mb := c.conf.memberOf(c); mb != nil && mb.attrs.Muted {
			recv = false
		}
	}
	c.leg.SetDirection(send, recv)
	if c.conf == nil {
		switch {
		case c.lent != nil:
			c.leg.SetHandler(c.lent.members[c.ID])
		case c.Mode == ModeLoopback:
			rtpproxy.Loopback(c.leg)
		default:
			c.leg.SetHandler(nil)
		}
	}
	// Telephone-events: a conference's mixer hears its members' itself;
	// every other connection (relayed, looped back, alone) through its leg.
	if c.TelephoneEvent != 0 && (c.conf == nil || c.conf.kind == KindBridge) {
		id, confID := c.ID, ""
		if c.conf != nil {
			confID = c.conf.id
		}
		c.leg.SetEvents(c.TelephoneEvent, func(event byte, end bool) { t.legDigit(id, confID, event, end) })
	} else {
		c.leg.SetEvents(0, nil)
	}
	t.applyLegInband(c)
}

// snapshot copies c with live statistics. Caller holds mu.
func (t *Table) snapshot(c *conn) Connection {
	s := c.Connection
	if c.conf != nil {
		s.ConferenceID = c.conf.id
	}
	if r := c.leg.Remote(); r.IsValid() {
		s.Remote = r
	}
	s.Stats = legStats(c.leg)
	s.SRTPSuite = c.leg.SRTPSuite()
	return s
}

// SRTPMode is rtp.srtp: how the SIP front negotiates SRTP (off, optional,
// required).
func (t *Table) SRTPMode() string {
	if t.cfg.SRTP == "" {
		return rtpproxy.SRTPOptional
	}
	return t.cfg.SRTP
}

func legStats(l *rtpproxy.Leg) Stats {
	st := l.Stats()
	return Stats{
		PacketsSent: st.PacketsSent, OctetsSent: st.OctetsSent,
		PacketsReceived: st.PacketsReceived, OctetsReceived: st.OctetsReceived,
		PacketsLost: st.PacketsLost, Jitter: st.Jitter, Latency: st.Latency,
		LastReceived: l.LastReceived(),
	}
}

// ModifyConnection changes a connection's remote, codec, ptime or mode; zero
// fields of p are left as they are.
func (t *Table) ModifyConnection(id string, p ConnectionParams) (Connection, error) {
	if err := checkConnID(id); err != nil {
		return Connection{}, err
	}
	var mode Mode
	if p.Mode != "" {
		m, err := ParseMode(string(p.Mode))
		if err != nil {
			return Connection{}, err
		}
		mode = m
	}
	if p.Codec != "" && !codecRe.MatchString(p.Codec) {
		return Connection{}, fmt.Errorf("%w: codec %q", ErrInvalidParam, p.Codec)
	}
	if p.Ptime < 0 || p.Ptime > 200*time.Millisecond {
		return Connection{}, fmt.Errorf("%w: ptime %s", ErrInvalidParam, p.Ptime)
	}
	if p.Remote.IsValid() && p.Remote.Port() == 0 {
		return Connection{}, fmt.Errorf("%w: remote port 0", ErrInvalidParam)
	}
	if p.SRTP != nil {
		if err := p.SRTP.Validate(); err != nil {
			return Connection{}, fmt.Errorf("%w: %v", ErrInvalidParam, err)
		}
	}

	t.mu.Lock()
	defer t.unlockAnnounce()
	c, ok := t.conns[id]
	if !ok {
		return Connection{}, fmt.Errorf("%w: %s", ErrUnknownConnection, id)
	}
	if p.Codec != "" && normCodec(p.Codec) != c.Codec {
		if err := t.changeCodec(c, normCodec(p.Codec)); err != nil {
			return Connection{}, err
		}
	}
	if p.Ptime != 0 {
		c.Ptime = p.Ptime
	}
	if p.SRTP != nil {
		_ = c.leg.SetSRTP(*p.SRTP) // validated above
		c.srtp = p.SRTP.Suite != ""
	}
	if p.SignalingIP.IsValid() {
		c.leg.SetSignalingIP(p.SignalingIP)
	}
	if p.Remote.IsValid() {
		c.Remote = p.Remote
		c.leg.SetRemote(p.Remote)
	}
	if mode != "" {
		if mode == ModeLoopback && c.conf != nil {
			return Connection{}, fmt.Errorf("%w: loopback while in conference %s", ErrInvalidParam, c.conf.id)
		}
		if mode == ModeLoopback {
			t.reclaimConnLocked(c)
		}
		c.Mode = mode
	}
	if p.TelephoneEvent != 0 && p.TelephoneEvent != c.TelephoneEvent {
		t.reclaimConnLocked(c) // the lent mixer's event payload type
		c.TelephoneEvent = p.TelephoneEvent
	}
	c.modified = time.Now()
	t.applyMedia(c)
	if c.Mode != ModeLoopback {
		t.listenLocked(c)
	}
	t.saveConnLocked(c)
	return t.snapshot(c), nil
}

// changeCodec swaps a connection's codec, moving its enhanced_rtp resource
// and its mixer membership. Caller holds mu.
func (t *Table) changeCodec(c *conn, codec string) error {
	t.reclaimConnLocked(c) // the lent mixer decodes the old codec
	enhanced := !mixable(codec)
	if enhanced && !c.Enhanced {
		if err := t.reserve(poolEnhanced, 1); err != nil {
			return err
		}
	}
	if c.conf != nil && c.conf.kind == KindConference {
		mb := c.conf.memberOf(c)
		cc, ok := confbridge.ParseCodec(codec)
		if !ok {
			if enhanced && !c.Enhanced {
				t.free(poolEnhanced, 1)
			}
			return fmt.Errorf("%w: %s cannot join the mixer of conference %s", ErrCodecUnsupported, codec, c.conf.id)
		}
		c.leg.SetHandler(nil)
		c.conf.mixer.Remove(c.ID)
		m, err := c.conf.mixer.Add(c.ID, cc, c.leg)
		if err != nil {
			// Put the old membership back; the old codec was accepted before.
			old, _ := confbridge.ParseCodec(c.Codec)
			m, _ = c.conf.mixer.Add(c.ID, old, c.leg)
			if m != nil {
				mb.m = m
				t.applyAttrs(c.conf, mb)
				c.leg.SetHandler(m)
			}
			if enhanced && !c.Enhanced {
				t.free(poolEnhanced, 1)
			}
			return fmt.Errorf("%w: %v", ErrInternal, err)
		}
		mb.m = m
		t.applyAttrs(c.conf, mb)
		c.leg.SetHandler(m)
		if err := t.rebalance(c.conf); err != nil {
			t.log.WithError(err).WithField("conf_id", c.conf.id).Warn("conference resources over capacity after codec change")
		}
	}
	if !enhanced && c.Enhanced {
		t.free(poolEnhanced, 1)
	}
	c.Enhanced = enhanced
	c.Codec = codec
	return nil
}

func (cf *conf) memberOf(c *conn) *member {
	for _, mb := range cf.members {
		if mb.c == c {
			return mb
		}
	}
	return nil
}

// CreateConference makes a conference (or bridge) with connID as its first
// member. An empty confID picks a free numeric ID.
func (t *Table) CreateConference(confID string, kind Kind, connID string, a MemberAttrs) (Conference, error) {
	return t.CreateConferenceWith(confID, kind, connID, a, DefaultConferenceOptions())
}

// ConferenceOptions tune a new conference (Media Control CreateConference).
type ConferenceOptions struct {
	Hairpin         bool // two members of one codec are relayed without mixing (default true)
	SoundToneOnJoin bool // a short tone to the conference when a member joins or leaves
}

// DefaultConferenceOptions are what JoinOrCreate and CreateConference use.
func DefaultConferenceOptions() ConferenceOptions { return ConferenceOptions{Hairpin: true} }

// CreateConferenceWith is CreateConference with options.
func (t *Table) CreateConferenceWith(confID string, kind Kind, connID string, a MemberAttrs, o ConferenceOptions) (Conference, error) {
	if confID != "" && t.cfg.Cluster != nil {
		t.mu.Lock()
		_, exists := t.confs[confID]
		t.mu.Unlock()
		if exists {
			return Conference{}, fmt.Errorf("%w: %s", ErrConferenceExists, confID)
		}
		if err := t.claim(confID); err != nil {
			return Conference{}, err
		}
	}
	t.mu.Lock()
	defer t.unlockAnnounce()
	cf, err := t.newConfWith(confID, kind, o)
	if err != nil {
		t.unclaimLocked(confID)
		return Conference{}, err
	}
	cf.claimed = confID != "" && t.cfg.Cluster != nil
	if err := t.install(cf, connID, a); err != nil {
		t.unclaimLocked(confID)
		return Conference{}, err
	}
	if t.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		t.log.WithFields(logrus.Fields{"conf_id": cf.id, "kind": kind, "conn_id": connID}).Debug("conference created")
	}
	return cf.snapshot(), nil
}

// JoinConference adds connID to an existing conference.
func (t *Table) JoinConference(confID, connID string, a MemberAttrs) (Conference, error) {
	t.mu.Lock()
	cf, ok := t.confs[confID]
	if !ok && t.cfg.Cluster != nil && confID != "" { // held by another node: a cascade here
		t.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), claimWait)
		owner, err := t.cfg.Cluster.ConferenceOwner(ctx, confID)
		cancel()
		if err == nil && owner != "" && owner != t.cfg.Cluster.Name() {
			return t.cascadeJoin(confID, owner, connID, a)
		}
		t.mu.Lock()
		cf, ok = t.confs[confID]
	}
	defer t.unlockAnnounce()
	if !ok {
		return Conference{}, fmt.Errorf("%w: %s", ErrUnknownConference, confID)
	}
	if err := t.join(cf, connID, a); err != nil {
		return Conference{}, err
	}
	return cf.snapshot(), nil
}

// JoinOrCreate joins connID to confID, creating the conference of the given
// kind when it does not exist yet.
func (t *Table) JoinOrCreate(confID string, kind Kind, connID string, a MemberAttrs) (Conference, error) {
	if confID == "" {
		return t.CreateConference("", kind, connID, a)
	}
	t.mu.Lock()
	if _, ok := t.confs[confID]; !ok && t.cfg.Cluster != nil {
		t.mu.Unlock()
		if err := t.claim(confID); err != nil {
			var ee *ElsewhereError
			if errors.As(err, &ee) && kind == KindConference {
				return t.cascadeJoin(confID, ee.Node, connID, a)
			}
			return Conference{}, err
		}
		t.mu.Lock()
	}
	defer t.unlockAnnounce()
	cf, ok := t.confs[confID]
	if ok {
		if cf.kind != kind {
			return Conference{}, fmt.Errorf("%w: %s is a %s, not a %s", ErrInvalidParam, confID, cf.kind, kind)
		}
		if err := t.join(cf, connID, a); err != nil {
			return Conference{}, err
		}
		return cf.snapshot(), nil
	}
	cf, err := t.newConf(confID, kind)
	if err != nil {
		t.unclaimLocked(confID)
		return Conference{}, err
	}
	cf.claimed = t.cfg.Cluster != nil
	if err := t.install(cf, connID, a); err != nil {
		t.unclaimLocked(confID)
		return Conference{}, err
	}
	return cf.snapshot(), nil
}

// install joins connID as the first member of cf, a new conference, and
// puts cf in the table; if the join fails cf is dropped. Caller holds t.mu.
func (t *Table) install(cf *conf, connID string, a MemberAttrs) error {
	if err := t.join(cf, connID, a); err != nil {
		t.dropEmpty(cf)
		return err
	}
	t.confs[cf.id] = cf
	t.saveConfLocked(cf)
	return nil
}

// Bridge relays two connections to each other in a new kind-bridge conference.
func (t *Table) Bridge(connA, connB string) (Conference, error) {
	if connA == connB {
		return Conference{}, fmt.Errorf("%w: cannot bridge %s to itself", ErrInvalidParam, connA)
	}
	t.mu.Lock()
	defer t.unlockAnnounce()
	cf, err := t.newConf("", KindBridge)
	if err != nil {
		return Conference{}, err
	}
	if err := t.join(cf, connA, MemberAttrs{}); err != nil {
		t.dropEmpty(cf)
		return Conference{}, err
	}
	if err := t.join(cf, connB, MemberAttrs{}); err != nil {
		t.leave(cf, cf.members[0].c)
		t.dropEmpty(cf)
		return Conference{}, err
	}
	t.confs[cf.id] = cf
	t.saveConfLocked(cf)
	return cf.snapshot(), nil
}

// newConf makes an unregistered conference. Caller holds mu.
func (t *Table) newConf(confID string, kind Kind) (*conf, error) {
	return t.newConfWith(confID, kind, DefaultConferenceOptions())
}

func (t *Table) newConfWith(confID string, kind Kind, o ConferenceOptions) (*conf, error) {
	if t.draining {
		return nil, ErrDraining
	}
	if kind != KindConference && kind != KindBridge {
		return nil, fmt.Errorf("%w: conference kind %q", ErrInvalidParam, kind)
	}
	if confID == "" {
		for {
			t.nextConf++
			t.saveIDsLocked()
			confID = t.idOf(t.nextConf)
			if _, taken := t.confs[confID]; !taken {
				break
			}
		}
	} else if !ValidConferenceID(confID) {
		return nil, fmt.Errorf("%w: ConferenceId %q", ErrInvalidParam, confID)
	} else if _, taken := t.confs[confID]; taken {
		return nil, fmt.Errorf("%w: %s", ErrConferenceExists, confID)
	}
	cf := &conf{id: confID, kind: kind, created: time.Now(), opts: o}
	if kind == KindConference {
		id := confID
		cf.mixer = t.mixers.NewBridge(confbridge.Options{
			Hairpin:  o.Hairpin,
			JoinTone: o.SoundToneOnJoin || t.cfg.Conference.JoinTone, LeaveTone: o.SoundToneOnJoin || t.cfg.Conference.JoinTone,
			TalkThreshold: t.cfg.Conference.talkLevel(),
			OnDigit: func(member string, event byte, end bool) {
				t.announce(Event{Type: DigitReceived, Connection: Connection{ID: member, ConferenceID: id},
					ConferenceID: id, Digit: event, DigitEnd: end})
				if !end { // after its DigitReceived: a gather it completes is announced later
					t.met.digits.WithLabelValues("rfc4733").Inc()
					t.digitArrived(member, event)
				}
			},
			OnTalk: func(member string, talking bool) {
				typ := StopTalking
				if talking {
					typ = StartTalking
				}
				t.announce(Event{Type: typ, Connection: Connection{ID: member, ConferenceID: id}, ConferenceID: id})
			},
		})
	}
	return cf, nil
}

// dropEmpty discards a conference that never got a member. Caller holds mu.
func (t *Table) dropEmpty(cf *conf) {
	if len(cf.members) == 0 && cf.mixer != nil {
		cf.mixer.Close()
	}
}

// join adds a connection to cf. Caller holds mu.
func (t *Table) join(cf *conf, connID string, a MemberAttrs) error {
	if err := checkConnID(connID); err != nil {
		return err
	}
	c, ok := t.conns[connID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownConnection, connID)
	}
	if c.conf != nil {
		return fmt.Errorf("%w: connection %s is already in conference %s", ErrConnectionExists, connID, c.conf.id)
	}
	if c.Mode == ModeLoopback {
		return fmt.Errorf("%w: connection %s is in loopback mode", ErrInvalidParam, connID)
	}
	mb := &member{c: c, attrs: a}
	switch cf.kind {
	case KindBridge:
		if len(cf.members) >= 2 {
			return fmt.Errorf("%w: %s", ErrBridgeFull, cf.id)
		}
		t.reclaimConnLocked(c)
		if len(cf.members) == 1 {
			t.reclaimConnLocked(cf.members[0].c)
		}
		cf.members = append(cf.members, mb)
		c.conf = cf
		if len(cf.members) == 2 {
			rtpproxy.Relay(cf.members[0].c.leg, cf.members[1].c.leg)
		}
		t.applyMedia(c)
		for _, x := range cf.members {
			t.listenLocked(x.c)
		}
	case KindConference:
		if max := t.cfg.Conference.MaxMembers; max > 0 && len(cf.members) >= max {
			return fmt.Errorf("%w: %s", ErrConferenceFull, cf.id)
		}
		codec, ok := confbridge.ParseCodec(c.Codec)
		if !ok {
			return fmt.Errorf("%w: %s cannot join the mixer of conference %s", ErrCodecUnsupported, c.Codec, cf.id)
		}
		t.reclaimConnLocked(c)
		m, err := cf.mixer.Add(c.ID, codec, c.leg)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInternal, err)
		}
		if c.TelephoneEvent != 0 {
			m.SetEventPayloadType(c.TelephoneEvent)
		}
		mb.m = m
		cf.members = append(cf.members, mb)
		t.applyAttrs(cf, mb)
		if err := t.rebalance(cf); err != nil {
			cf.members = cf.members[:len(cf.members)-1]
			cf.mixer.Remove(c.ID)
			return err
		}
		c.conf = cf
		t.applyMedia(c)
		c.leg.SetHandler(m)
	}
	if t.confs[cf.id] == cf {
		t.saveConfLocked(cf)
	}
	return nil
}

// rebalance makes the conference resources held match the mixer's state:
// one per member while mixing, none while hairpinned. Caller holds mu.
func (t *Table) rebalance(cf *conf) error {
	need := 0
	if cf.kind == KindConference && cf.mixer.Mixing() {
		need = len(cf.members)
	}
	switch d := need - cf.held; {
	case d > 0:
		if err := t.reserve(poolConference, d); err != nil {
			return err
		}
	case d < 0:
		t.free(poolConference, -d)
	}
	cf.held = need
	return nil
}

func (t *Table) applyAttrs(cf *conf, mb *member) {
	if cf.kind != KindConference {
		return
	}
	t.applyInband(cf, mb.c)
	if err := cf.mixer.SetMuted(mb.c.ID, mb.attrs.Muted); err != nil {
		t.log.WithError(err).WithField("conn_id", mb.c.ID).Warn("set muted")
	}
	if err := cf.mixer.SetReceiveOnly(mb.c.ID, mb.attrs.ReceiveOnly); err != nil {
		t.log.WithError(err).WithField("conn_id", mb.c.ID).Warn("set receive-only")
	}
	if err := cf.mixer.SetCoach(mb.c.ID, mb.attrs.Coach); err != nil {
		t.log.WithError(err).WithField("conn_id", mb.c.ID).Warn("set coach")
	}
	if err := cf.mixer.SetPupil(mb.c.ID, mb.attrs.Pupil); err != nil {
		t.log.WithError(err).WithField("conn_id", mb.c.ID).Warn("set pupil")
	}
}

// leave removes c from cf, leaving the connection open. It reports whether
// cf is now empty (and so released). Caller holds mu.
func (t *Table) leave(cf *conf, c *conn) (empty bool) {
	t.reclaimConnLocked(c)
	for i, mb := range cf.members {
		if mb.c != c {
			continue
		}
		cf.members = append(cf.members[:i], cf.members[i+1:]...)
		break
	}
	c.leg.SetHandler(nil)
	c.conf = nil
	switch cf.kind {
	case KindBridge:
		for _, other := range cf.members {
			other.c.leg.SetHandler(nil)
			t.listenLocked(other.c)
		}
	case KindConference:
		t.stopMemberOutputLocked(c.ID)
		cf.mixer.Remove(c.ID)
		if err := t.rebalance(cf); err != nil { // shrinking never needs more
			t.log.WithError(err).Error("rebalance on leave")
		}
	}
	t.applyMedia(c)
	if len(cf.members) > 0 && t.confs[cf.id] == cf {
		t.saveConfLocked(cf)
	}
	return len(cf.members) == 0
}

// LeaveConference removes connID from confID; the connection stays open.
func (t *Table) LeaveConference(confID, connID string, r Release) error {
	if connID == "" || confID == "" {
		return fmt.Errorf("%w: LeaveConference needs ConnectionId and ConferenceId", ErrInsufficientParams)
	}
	_, err := t.DeleteConnection(connID, confID, r)
	return err
}

// SetConfereeAttribute changes a member's attributes.
func (t *Table) SetConfereeAttribute(confID, connID string, a MemberAttrs) error {
	if confID == "" || connID == "" {
		return fmt.Errorf("%w: SetConfereeAttribute needs ConnectionId and ConferenceId", ErrInsufficientParams)
	}
	if err := checkConnID(connID); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cf, ok := t.confs[confID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownConference, confID)
	}
	c, ok := t.conns[connID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownConnection, connID)
	}
	mb := cf.memberOf(c)
	if mb == nil {
		return fmt.Errorf("%w: %s in %s", ErrNotMember, connID, confID)
	}
	old := mb.attrs
	mb.attrs = a
	t.applyAttrs(cf, mb)
	if err := t.rebalance(cf); err != nil { // the change ends a hairpin: mixing needs resources
		mb.attrs = old
		t.applyAttrs(cf, mb)
		return err
	}
	t.applyMedia(c)
	t.saveConfLocked(cf)
	return nil
}

// DeleteConnection is the one release path (DESIGN §2):
//   - connID only: release the connection (leaving its conference);
//   - confID only: release the conference and every connection in it;
//   - both: remove the connection from the conference; it stays open.
//
// A conference whose last member leaves is released by every route.
func (t *Table) DeleteConnection(connID, confID string, r Release) (Deleted, error) {
	d, err := t.deleteConnection(connID, confID, r)
	t.met.deleted(d.Scope, connID, confID, err)
	return d, err
}

func (t *Table) deleteConnection(connID, confID string, r Release) (Deleted, error) {
	switch {
	case connID == "" && confID == "":
		return Deleted{}, fmt.Errorf("%w: DeleteConnection needs ConnectionId or ConferenceId", ErrInsufficientParams)
	case connID != "":
		if err := checkConnID(connID); err != nil {
			return Deleted{}, err
		}
	}
	var rel releaser
	t.mu.Lock()
	var d Deleted
	switch {
	case confID == "": // the connection
		c, ok := t.conns[connID]
		if !ok {
			t.mu.Unlock()
			return Deleted{Scope: ScopeConnection}, fmt.Errorf("%w: %s", ErrUnknownConnection, connID)
		}
		d = Deleted{Scope: ScopeConnection}
		if cf := c.conf; cf != nil {
			d.ConferenceID = cf.id
			switch {
			case cf.cascade != nil && cf.cascade.link == c.ID: // a cascade without its link: it goes whole
				for len(cf.members) > 0 {
					m := cf.members[len(cf.members)-1].c
					t.leave(cf, m)
					if m != c {
						t.releaseConn(m, &rel)
					}
				}
				t.releaseConf(cf, &rel)
				d.ConferenceReleased = true
			case t.leave(cf, c):
				t.releaseConf(cf, &rel)
				d.ConferenceReleased = true
			case t.collapseLocked(cf, &rel):
				d.ConferenceReleased = true
			}
		}
		t.releaseConn(c, &rel)
	case connID == "": // the conference
		cf, ok := t.confs[confID]
		if !ok {
			t.mu.Unlock()
			return Deleted{Scope: ScopeConference}, fmt.Errorf("%w: %s", ErrUnknownConference, confID)
		}
		d = Deleted{Scope: ScopeConference, ConferenceID: cf.id, ConferenceReleased: true}
		for len(cf.members) > 0 {
			c := cf.members[len(cf.members)-1].c
			t.leave(cf, c)
			t.releaseConn(c, &rel)
		}
		t.releaseConf(cf, &rel)
	default: // the membership
		cf, ok := t.confs[confID]
		if !ok {
			t.mu.Unlock()
			return Deleted{Scope: ScopeMember}, fmt.Errorf("%w: %s", ErrUnknownConference, confID)
		}
		c, ok := t.conns[connID]
		if !ok {
			t.mu.Unlock()
			return Deleted{Scope: ScopeMember}, fmt.Errorf("%w: %s", ErrUnknownConnection, connID)
		}
		if c.conf != cf {
			t.mu.Unlock()
			return Deleted{Scope: ScopeMember}, fmt.Errorf("%w: %s in %s", ErrNotMember, connID, confID)
		}
		d = Deleted{Scope: ScopeMember, ConferenceID: cf.id}
		if t.leave(cf, c) || t.collapseLocked(cf, &rel) {
			if t.confs[cf.id] == cf {
				t.releaseConf(cf, &rel)
			}
			d.ConferenceReleased = true
		}
		t.listenLocked(c)
	}
	rel.ops = append(t.takePendingLocked(), rel.ops...)
	t.mu.Unlock()
	subs := t.subscribers()

	d.Connections = rel.finish(r, subs, t.log)
	for _, cf := range rel.confs {
		if cf.cascade != nil && cf.cascade.remote != "" {
			t.cfg.Cluster.Uncascade(cf.cascade.owner, cf.cascade.remote)
		}
	}
	return d, nil
}

// announce tells the subscribers of an event that is not a release. It
// takes no lock (it runs on media goroutines).
func (t *Table) announce(ev Event) {
	for _, fn := range t.subscribers() {
		fn(ev)
	}
}

// releaser collects what a release must close and announce once the lock
// is dropped.
type releaser struct {
	conns []*conn
	confs []*conf
	ops   []OperationResult // operations autostopped, announced before the releases
}

// releaseConn unregisters c and its resources. Caller holds mu.
func (t *Table) releaseConn(c *conn, rel *releaser) {
	rel.ops = append(rel.ops, t.stopConnOpsLocked(c)...)
	delete(t.conns, c.ID)
	t.forgetLocked(StateConn, c.ID)
	if t.cfg.Cluster != nil {
		t.cfg.Cluster.ConnectionReleased(c.ID)
	}
	t.free(poolRTP, 1)
	if c.Enhanced {
		t.free(poolEnhanced, 1)
	}
	c.leg.SetHandler(nil)
	rel.conns = append(rel.conns, c)
}

// releaseConf unregisters an empty conference. Caller holds mu.
func (t *Table) releaseConf(cf *conf, rel *releaser) {
	t.stopConfOutputLocked(cf.id)
	t.unlinkAllLocked(cf)
	delete(t.confs, cf.id)
	t.forgetLocked(StateConf, cf.id)
	if cf.claimed {
		t.cfg.Cluster.ReleaseConference(cf.id)
	}
	if cf.held > 0 {
		t.free(poolConference, cf.held)
		cf.held = 0
	}
	rel.confs = append(rel.confs, cf)
}

// finish closes sockets and mixers and tells the subscribers, outside the lock.
func (rel *releaser) finish(r Release, subs []func(Event), log *logrus.Entry) []Connection {
	out := make([]Connection, 0, len(rel.conns))
	for _, c := range rel.conns {
		if err := c.leg.Close(); err != nil {
			log.WithError(err).WithField("conn_id", c.ID).Warn("closing RTP leg")
		}
		s := c.Connection
		s.Stats = legStats(c.leg)
		if r := c.leg.Remote(); r.IsValid() {
			s.Remote = r
		}
		out = append(out, s)
	}
	for _, cf := range rel.confs {
		if cf.mixer != nil {
			cf.mixer.Close()
		}
	}
	for i := range rel.ops {
		op := &rel.ops[i]
		ev := Event{Type: OperationComplete, Connection: Connection{ID: op.ConnectionID, ConferenceID: op.ConferenceID},
			ConferenceID: op.ConferenceID, Op: op}
		for _, fn := range subs {
			fn(ev)
		}
	}
	for i := range out {
		ev := Event{Type: ConnectionReleased, Connection: out[i], ConferenceID: out[i].ConferenceID, Release: r}
		for _, fn := range subs {
			fn(ev)
		}
	}
	for _, cf := range rel.confs {
		ev := Event{Type: ConferenceReleased, ConferenceID: cf.id, Release: r}
		for _, fn := range subs {
			fn(ev)
		}
	}
	return out
}

// Connection returns a snapshot of one connection.
func (t *Table) Connection(id string) (Connection, error) {
	if err := checkConnID(id); err != nil {
		return Connection{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.conns[id]
	if !ok {
		return Connection{}, fmt.Errorf("%w: %s", ErrUnknownConnection, id)
	}
	return t.snapshot(c), nil
}

// Connections returns snapshots of every connection, by ascending ID.
func (t *Table) Connections() []Connection {
	t.mu.Lock()
	out := make([]Connection, 0, len(t.conns))
	for _, c := range t.conns {
		out = append(out, t.snapshot(c))
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return idLess(out[i].ID, out[j].ID) })
	return out
}

// Conference returns a snapshot of one conference.
func (t *Table) Conference(id string) (Conference, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cf, ok := t.confs[id]
	if !ok {
		return Conference{}, fmt.Errorf("%w: %s", ErrUnknownConference, id)
	}
	return cf.snapshot(), nil
}

// Conferences returns snapshots of every conference and bridge, by ID.
func (t *Table) Conferences() []Conference {
	t.mu.Lock()
	out := make([]Conference, 0, len(t.confs))
	for _, cf := range t.confs {
		out = append(out, cf.snapshot())
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return idLess(out[i].ID, out[j].ID) })
	return out
}

func idLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// snapshot copies a conference. Caller holds mu.
func (cf *conf) snapshot() Conference {
	s := Conference{ID: cf.id, Kind: cf.kind, Created: cf.created, Mixing: cf.held > 0,
		Members: make([]Member, len(cf.members)), Links: cf.linkedTo()}
	if cf.cascade != nil {
		s.CascadeOf, s.CascadeLink = cf.cascade.owner, cf.cascade.link
	}
	for i, mb := range cf.members {
		s.Members[i] = Member{ConnectionID: mb.c.ID, MemberAttrs: mb.attrs}
		if cf.mixer != nil {
			s.Members[i].Talking = cf.mixer.Talking(mb.c.ID)
		}
	}
	return s
}

// FreePorts reports how many RTP ports (RTP and RTCP) are free (0 for a
// table built without a port pool, as some tests do).
func (t *Table) FreePorts() int {
	if t.ports == nil {
		return 0
	}
	return 2 * t.ports.FreePairs()
}

// Draining reports whether the table refuses new connections: Shutdown
// has begun, or Drain(true) is in force.
func (t *Table) Draining() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.draining || t.refusing
}

// counts returns the numbers of connections, mixing-kind conferences and bridges.
func (t *Table) counts() (conns, confs, bridges int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, cf := range t.confs {
		if cf.kind == KindBridge {
			bridges++
		} else {
			confs++
		}
	}
	return len(t.conns), confs, bridges
}

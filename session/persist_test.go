package session

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mediagw/mediagw/audio"
	"github.com/mediagw/mediagw/internal/memstate"
)

// The table's state survives a crash: restored into a new table, HTTP
// connections keep their IDs and port pairs, the conference its members
// and attributes, the bridge relays again; an SRTP connection (its keys
// are not kept) is dropped; new IDs continue after the restored ones; a
// release deletes what it released.
func TestRestoreAfterCrash(t *testing.T) {
	lo, hi := testPortMin+1180, testPortMin+1199
	state := memstate.New()
	f := newFixture(t, DefaultResources(), lo, hi)
	f.cfg.State = state
	pa, pb := newPhone(t, 0xa), newPhone(t, 0xb)
	a, _ := f.CreateConnection(ConnectionParams{Remote: pa.addr(), Codec: "PCMU", Owner: FrontHTTP})
	b, _ := f.CreateConnection(ConnectionParams{Remote: pb.addr(), Codec: "PCMU", Owner: FrontHTTP})
	br, err := f.Bridge(a.ID, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	cid, ids := f.conference(t, "kept", 2)
	if err := f.SetConfereeAttribute(cid, ids[1], MemberAttrs{Muted: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.CreateConnection(ConnectionParams{Remote: remote, Codec: "PCMU", Owner: FrontSIP,
		SRTP: &SRTP{Suite: SuiteAES128SHA1_80, LocalKey: make([]byte, SRTPKeyLen), RemoteKey: make([]byte, SRTPKeyLen)}}); err != nil {
		t.Fatal(err)
	}
	before := map[string]Connection{}
	for _, c := range f.Connections() {
		before[c.ID] = c
	}
	crashed := state.Snapshot()
	f.Shutdown()   // the crash left crashed behind
	f.pool.Close() // and its sockets died with the process
	if n := state.Count(StateConn) + state.Count(StateConf); n != 0 {
		t.Fatalf("a clean shutdown left %d objects in the state", n)
	}

	g := newFixture(t, DefaultResources(), lo, hi)
	g.cfg.State = crashed
	rep, err := g.Restore(crashed)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connections != 4 || rep.Conferences != 2 || rep.Dropped != 1 {
		t.Fatalf("restore: %+v, want 4 connections, 2 conferences, the SRTP one dropped", rep)
	}
	for id, c := range before {
		got, err := g.Connection(id)
		if c.Owner == FrontSIP {
			if err == nil {
				t.Fatalf("the SRTP connection %s was restored", id)
			}
			continue
		}
		if err != nil || got.Local != c.Local || got.Remote != c.Remote || got.Codec != c.Codec || got.ConferenceID != c.ConferenceID {
			t.Fatalf("connection %s restored as %+v (%v), was %+v", id, got, err, c)
		}
	}
	if cf, _ := g.Conference(cid); len(cf.Members) != 2 || !cf.Members[1].Muted {
		t.Fatalf("conference restored as %+v", cf)
	}
	if cf, _ := g.Conference(br.ID); cf.Kind != KindBridge || len(cf.Members) != 2 {
		t.Fatalf("bridge restored as %+v", cf)
	}
	// The bridge relays again: what a sends reaches b.
	pa.src = audio.NewTone(440, 0, -20, audio.Off).Read
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { pace(stop, map[*phone]netip.AddrPort{pa: a.Local}); close(done) }()
	by, _ := pb.heard(300 * time.Millisecond)
	close(stop)
	<-done
	if by[0xa] < 5 {
		t.Fatalf("b heard %v through the restored bridge", by)
	}
	c, err := g.CreateConnection(ConnectionParams{Remote: remote, Codec: "PCMU", Owner: FrontHTTP})
	if err != nil {
		t.Fatal(err)
	}
	if _, taken := before[c.ID]; taken {
		t.Fatalf("a new connection after the restore got ID %s", c.ID)
	}
	if _, err := g.DeleteConnection("", cid, Release{By: FrontHTTP}); err != nil {
		t.Fatal(err)
	}
	if _, ok := crashed.Get(StateConf, cid); ok {
		t.Fatal("a released conference stayed in the state")
	}
}

// A state written in another layout is refused whole, clearly.
func TestRestoreRefusesUnknownLayout(t *testing.T) {
	f := newFixture(t, DefaultResources(), testPortMin+1200, testPortMin+1209)
	st := memstate.New()
	st.Put(StateConn, "7", []byte(`{"v":99,"id":"7"}`))
	if _, err := f.Restore(st); err == nil {
		t.Fatal("a layout-99 record was accepted")
	}
	st = memstate.New()
	st.Put(StateConn, "8", []byte(`{"v":1,"id":"8","port":30000,"codec":"PCMU","mode":"sendrecv","owner":"ng"}`))
	if rep, err := f.Restore(st); err != nil || rep.Dropped != 1 || rep.Connections != 0 {
		t.Fatalf("an ng connection's record: %+v, %v (want it dropped)", rep, err)
	}
	st = memstate.New()
	st.Put(StateConn, "7", []byte(`not json`))
	if rep, err := f.Restore(st); err != nil || rep.Dropped != 1 {
		t.Fatalf("a bad record: %+v, %v (want it dropped)", rep, err)
	}
}

// The hand-written connection record reads back, through encoding/json,
// as what json.Marshal of the record would have said.
func TestConnRecordEncoding(t *testing.T) {
	created := time.Date(2026, 12, 4, 5, 6, 7, 890, time.UTC)
	for _, c := range []*conn{
		{Connection: Connection{ID: "42", Local: netip.MustParseAddrPort("127.0.0.1:20000"), Remote: netip.MustParseAddrPort("[::1]:4000"),
			Codec: "PCMA", Ptime: 30 * time.Millisecond, Mode: ModeRecvOnly, Owner: FrontHTTP, CallID: "a\"b\\c\x01\n", Tag: "t\u00e9",
			TelephoneEvent: 101, Created: created}, srtp: true},
		{Connection: Connection{ID: "7", Local: netip.MustParseAddrPort("127.0.0.1:20002"), Codec: "PCMU", Ptime: 20 * time.Millisecond,
			Mode: ModeSendRecv, Owner: FrontHTTP, Created: created}},
	} {
		var got connRecord
		if err := json.Unmarshal(appendConnRecord(nil, c), &got); err != nil {
			t.Fatalf("%s: %v", appendConnRecord(nil, c), err)
		}
		want := connRecord{V: stateVersion, ID: c.ID, Port: int(c.Local.Port()), Codec: c.Codec, PtimeMs: int(c.Ptime / time.Millisecond),
			Mode: c.Mode, Owner: c.Owner, CallID: c.CallID, Tag: c.Tag, TelephoneEvent: c.TelephoneEvent, SRTP: c.srtp, Created: c.Created}
		if c.Remote.IsValid() {
			want.Remote = c.Remote.String()
		}
		if got != want {
			t.Fatalf("read back %+v, want %+v", got, want)
		}
	}
}

// A recording survives a crash: restored, it goes on under its
// OperationId into the same file (what was written before stays), while a
// Play the crash cut completes with ResultCode 9 once announced, and new
// OperationIds continue after the restored ones.
func TestRecordResumesAfterCrash(t *testing.T) {
	lo, hi := testPortMin+1180, testPortMin+1199
	dir, recDir := t.TempDir(), t.TempDir()
	writePrompt(t, dir, "tone.wav", 600, audio.PCM16)
	state := memstate.New()
	f := newFixture(t, DefaultResources(), lo, hi)
	f.cfg.State = state
	f.cfg.Media.Dir, f.cfg.Media.RecordDir = dir, recDir
	cid, _ := f.conference(t, "rec", 2)
	rec, err := f.Record("", cid, RecordParams{Filename: "mix.wav", Encoding: audio.Ulaw, TermDigit: -1, State: "r"})
	if err != nil {
		t.Fatal(err)
	}
	play, _ := f.Play("", cid, PlayParams{Prompts: []string{"tone.wav"}, TermDigit: -1, State: "p"})
	time.Sleep(300 * time.Millisecond)
	crashed := state.Snapshot()
	f.Shutdown()
	f.pool.Close()
	for len(f.events) > 0 { // the first process's events are not the second's
		<-f.events
	}
	loud := func() (frames, samples int) {
		b, _ := os.ReadFile(filepath.Join(recDir, "mix.wav"))
		pcm, _, err := audio.ParseWAV(b)
		if err != nil {
			t.Fatalf("mix.wav: %v", err)
		}
		for i := 0; i+160 <= len(pcm); i += 160 {
			if audio.LevelDBm0(pcm[i:i+160]) > -15 {
				frames++
			}
		}
		return frames, len(pcm)
	}
	time.Sleep(100 * time.Millisecond) // the writer closes the file after the stop
	before, samplesBefore := loud()
	if before < 8 || before > 20 {
		t.Fatalf("%d loud frames before the crash, want about 15", before)
	}

	g := newFixture(t, DefaultResources(), lo, hi)
	g.cfg.State = crashed
	g.cfg.Media.Dir, g.cfg.Media.RecordDir = dir, recDir
	rep, err := g.Restore(crashed)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recordings != 1 || rep.Interrupted != 1 {
		t.Fatalf("restore: %+v, want 1 recording resumed and 1 operation interrupted", rep)
	}
	g.AnnounceRestored()
	if r := g.nextOp(t); r.OperationID != play || r.ResultCode != CodeRestarted || r.TerminationCondition != TermAutoStop || r.State != "p" {
		t.Fatalf("the interrupted Play: %+v", r)
	}
	play2, err := g.Play("", cid, PlayParams{Prompts: []string{"tone.wav"}, TermDigit: -1})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(play2); n <= mustAtoi(t, rec) || n <= mustAtoi(t, play) {
		t.Fatalf("a new operation after the restore got id %s (before: %s, %s)", play2, rec, play)
	}
	if r := g.nextOp(t); r.OperationID != play2 || r.TerminationCondition != TermEOD {
		t.Fatalf("%+v", r)
	}
	if done, err := g.StopMediaOperation("", rec); err != nil || len(done) != 1 {
		t.Fatalf("stopping the resumed recording by its OperationId: %v %v", err, done)
	}
	if r := g.nextOp(t); r.OperationID != rec || r.Filename != "mix.wav" || r.State != "r" || r.ResultCode != 0 {
		t.Fatalf("the resumed recording ended as %+v", r)
	}
	time.Sleep(100 * time.Millisecond)
	after, samplesAfter := loud()
	if after < before+25 || samplesAfter < samplesBefore+8000*6/10 {
		t.Fatalf("after the restore: %d loud frames in %d samples (before: %d in %d); want the second prompt appended",
			after, samplesAfter, before, samplesBefore)
	}
	if _, ok := crashed.Get(StateOp, rec); ok {
		t.Fatal("the ended recording stayed in the state")
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Conference links come back with their conferences, and each conference
// with the options it was created with.
func TestLinksRestored(t *testing.T) {
	lo, hi := testPortMin+1180, testPortMin+1199
	state := memstate.New()
	f := newFixture(t, DefaultResources(), lo, hi)
	f.cfg.State = state
	a, _ := f.conference(t, "la", 2)
	b, _ := f.conference(t, "lb", 2)
	if err := f.LinkConferences(a, b); err != nil {
		t.Fatal(err)
	}
	solo := f.conn(t, "PCMU")
	if _, err := f.CreateConferenceWith("nohp", KindConference, solo.ID, MemberAttrs{}, ConferenceOptions{SoundToneOnJoin: true}); err != nil {
		t.Fatal(err)
	}
	crashed := state.Snapshot()
	f.Shutdown()
	f.pool.Close()
	g := newFixture(t, DefaultResources(), lo, hi)
	g.cfg.State = crashed
	rep, err := g.Restore(crashed)
	if err != nil || rep.Conferences != 3 || rep.Links != 1 {
		t.Fatalf("restore: %+v %v, want 3 conferences and 1 link", rep, err)
	}
	g.mu.Lock()
	la, nohp := g.confs[a].opts, g.confs["nohp"].opts
	g.mu.Unlock()
	if !la.Hairpin || la.SoundToneOnJoin || nohp.Hairpin || !nohp.SoundToneOnJoin {
		t.Fatalf("options restored as %+v and %+v", la, nohp)
	}
	if cf, _ := g.Conference(a); len(cf.Links) != 1 || cf.Links[0] != b {
		t.Fatalf("conference %s restored with links %v", a, cf.Links)
	}
	if err := g.LinkConferences(b, a); ResultCode(err) != ResultCode(ErrLinked) {
		t.Fatalf("linking the restored pair again: %v", err)
	}
}

// The hand-written conference record reads back, through encoding/json,
// as what json.Marshal of the record would have said.
func TestConfRecordEncoding(t *testing.T) {
	created := time.Date(2026, 12, 4, 5, 6, 7, 890, time.UTC)
	a := &conn{Connection: Connection{ID: "1"}}
	b := &conn{Connection: Connection{ID: "2\"x"}}
	other := &conf{id: "o\\ther"}
	cf := &conf{id: "c\u00e9", kind: KindConference, created: created, opts: ConferenceOptions{SoundToneOnJoin: true},
		members: []*member{{c: a, attrs: MemberAttrs{Muted: true, Pupil: true}}, {c: b, attrs: MemberAttrs{ReceiveOnly: true, Coach: true}}}}
	l := &link{a: cf, b: other}
	cf.links = []*link{l}
	for _, x := range []*conf{cf, {id: "e", kind: KindBridge, created: created}} {
		var got confRecord
		if err := json.Unmarshal(appendConfRecord(nil, x), &got); err != nil {
			t.Fatalf("%s: %v", appendConfRecord(nil, x), err)
		}
		want := confRecord{V: stateVersion, ID: x.id, Kind: x.kind, Created: x.created, Members: []memberRecord{}, Links: x.linkedTo(),
			Hairpin: &x.opts.Hairpin, Tone: x.opts.SoundToneOnJoin}
		for _, mb := range x.members {
			want.Members = append(want.Members, memberRecord{Conn: mb.c.ID, Attrs: mb.attrs})
		}
		wb, _ := json.Marshal(want)
		gb, _ := json.Marshal(got)
		if string(wb) != string(gb) {
			t.Fatalf("read back %s, want %s", gb, wb)
		}
	}
}
